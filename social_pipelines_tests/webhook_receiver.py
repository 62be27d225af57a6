"""A tiny webhook receiver on 127.0.0.1 for the alert tests: it records every request's
path, headers and body, and answers 200, or what the test asks for (500, 429 with a
Retry-After, ...) for the next requests.

    with WebhookReceiver() as receiver:
        url = receiver.url("/hook/secret-token")
        receiver.answer(500, times=2)     # the next two requests get 500
        ...
        receiver.wait_for(1)              # the bodies, once one has arrived

Also a script: `python -m social_pipelines_tests.webhook_receiver [PORT]` prints each body
it gets as indented JSON (how the README's example payload was captured).
"""

from __future__ import annotations

import json
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


class WebhookReceiver:
    def __init__(self, port: int = 0) -> None:
        self.received: list[Received] = []
        self._answers: deque[tuple[int, dict[str, str]]] = deque()
        self._lock = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                status, headers = receiver._record(
                    Received(self.path, dict(self.headers.items()), body)
                )
                answer = b"ok" if status < 400 else b"receiver says no"
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, format: str, *args: Any) -> None:
                pass  # quiet: a test reads `received`

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.server.daemon_threads = True
        self._thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)

    @property
    def base_url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host!s}:{port}"

    def url(self, path: str = "/hook") -> str:
        return self.base_url + path

    def answer(self, status: int, *, times: int = 1, headers: dict[str, str] | None = None) -> None:
        """Answer the next `times` requests with `status` (then 200 again)."""
        with self._lock:
            self._answers.extend([(status, headers or {})] * times)

    def _record(self, received: Received) -> tuple[int, dict[str, str]]:
        with self._lock:
            self.received.append(received)
            answer = self._answers.popleft() if self._answers else (200, {})
            self._lock.notify_all()
            return answer

    def bodies(self) -> list[Any]:
        with self._lock:
            return [r.json() for r in self.received]

    def wait_for(self, count: int, timeout: float = 5.0) -> list[Any]:
        """The bodies, once at least `count` requests have arrived."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while len(self.received) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"{len(self.received)} requests arrived, not {count}")
                self._lock.wait(left)
        return self.bodies()

    def __enter__(self) -> WebhookReceiver:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.server.shutdown()
        self.server.server_close()


def main() -> None:
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 8977
    with WebhookReceiver(port) as receiver:
        print(f"listening on {receiver.url('/')}", flush=True)
        seen = 0
        try:
            while True:
                bodies = receiver.wait_for(seen + 1, timeout=3600)
                for body in bodies[seen:]:
                    print(json.dumps(body, indent=2, ensure_ascii=False), flush=True)
                seen = len(bodies)
        except KeyboardInterrupt:
            pass


if __name__ == "__main__":
    main()
