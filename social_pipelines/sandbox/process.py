"""`SandboxProcess`: the sandbox server as a child process, for tests, demos and benchmarks.

A real process (not an in-thread server) is what makes restarts, SIGKILL and several client
processes meaningful, and keeps the server's event loop out of the caller's. The admin
helpers are thin typed wrappers over `/_sandbox/*` (see docs/sandbox.md).
"""

from __future__ import annotations

import contextlib
import os
import queue
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from types import TracebackType
from typing import IO, Any

import httpx

from social_pipelines.sandbox.accounts import BRAND, token_for

URL_PREFIX = "SANDBOX_URL="
PACKAGE_ROOT = Path(__file__).resolve().parents[2]


class SandboxStartError(RuntimeError):
    """The server exited or stayed silent instead of printing its URL."""


class SandboxProcess:
    """Start with `with SandboxProcess(db_path) as sandbox:` or `.start()` / `.stop()`.

    `db_path=None` uses a temporary directory removed on `stop()`. Rate-limit options are
    passed only on the first start: `restart()` keeps whatever the database holds (including
    changes made through the admin API), like a real platform coming back.
    """

    def __init__(
        self,
        db_path: str | Path | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        domain: str = "sandbox.local",
        rate_limit: int | None = None,
        rate_window: float | None = None,
        rate_limit_enabled: bool = True,
        seed: int = 0,
        max_characters: int = 500,
        ignore_idempotency_keys: bool = False,
        media_processing_seconds: float | None = None,
        startup_timeout: float = 30.0,
        stop_timeout: float = 5.0,
        extra_args: tuple[str, ...] = (),
        own_group: bool = False,
    ) -> None:
        """`own_group`: in a process group of its own, so that a terminal's Ctrl-C reaches
        only its parent, which stops it when it is done with it."""
        self._tempdir: tempfile.TemporaryDirectory[str] | None = None
        if db_path is None:
            self._tempdir = tempfile.TemporaryDirectory(prefix="sandbox-")
            db_path = Path(self._tempdir.name) / "sandbox.db"
        self.db_path = Path(db_path)
        self.host = host
        self.port = port
        self.domain = domain
        self.fault_seed = seed
        self.max_characters = max_characters
        self.startup_timeout = startup_timeout
        self.stop_timeout = stop_timeout
        self.extra_args = extra_args
        self.own_group = own_group
        self._first_start_args: list[str] = []
        if rate_limit is not None:
            self._first_start_args += ["--rate-limit", str(rate_limit)]
        if rate_window is not None:
            self._first_start_args += ["--rate-window", str(rate_window)]
        if not rate_limit_enabled:
            self._first_start_args.append("--no-rate-limit")
        if ignore_idempotency_keys:
            self._first_start_args.append("--ignore-idempotency-keys")
        if media_processing_seconds is not None:
            self._first_start_args += ["--media-processing-seconds", str(media_processing_seconds)]
        self._started_once = False
        self._proc: subprocess.Popen[str] | None = None
        self._stderr: IO[bytes] | None = None
        self._client: httpx.Client | None = None
        self.url = ""

    # Lifecycle

    def __enter__(self) -> SandboxProcess:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def pid(self) -> int | None:
        return None if self._proc is None else self._proc.pid

    def start(self) -> SandboxProcess:
        if self.running:
            return self
        try:
            self._spawn(self.port)
        except SandboxStartError:
            if not self._started_once or self.port == 0:
                raise
            # restart(): the old port may be taken by now; any free port will do.
            self._spawn(0)
        self._started_once = True
        return self

    def _command(self, port: int) -> list[str]:
        command = [
            sys.executable,
            "-m",
            "social_pipelines.sandbox",
            "--host",
            self.host,
            "--port",
            str(port),
            "--db",
            str(self.db_path),
            "--domain",
            self.domain,
            "--seed",
            str(self.fault_seed),
            "--max-characters",
            str(self.max_characters),
        ]
        if not self._started_once:
            command += self._first_start_args
        return [*command, *self.extra_args]

    def _spawn(self, port: int) -> None:
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(
            [str(PACKAGE_ROOT), *filter(None, [env.get("PYTHONPATH")])]
        )
        if self._stderr is not None:
            self._stderr.close()
        self._stderr = tempfile.TemporaryFile()  # noqa: SIM115 - lives as long as the child
        proc = subprocess.Popen(  # noqa: S603 - our own module, argument list
            self._command(port),
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            stdin=subprocess.DEVNULL,
            text=True,
            env=env,
            process_group=0 if self.own_group else None,
        )
        lines: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=_pump, args=(proc.stdout, lines), daemon=True).start()
        deadline = time.monotonic() + self.startup_timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                self._abandon(proc)
                raise SandboxStartError(
                    f"sandbox printed no {URL_PREFIX} line within {self.startup_timeout:.0f}s;"
                    f" stderr:\n{self._stderr_text()}"
                )
            try:
                line = lines.get(timeout=min(remaining, 0.5))
            except queue.Empty:
                continue
            if line is None:
                code = proc.wait()
                raise SandboxStartError(
                    f"sandbox exited with status {code} before it was ready;"
                    f" stderr:\n{self._stderr_text()}"
                )
            if line.startswith(URL_PREFIX):
                self.url = line[len(URL_PREFIX) :].strip()
                break
        self._proc = proc
        self.port = int(self.url.rsplit(":", 1)[1])
        self._client = httpx.Client(base_url=self.url, timeout=30.0, trust_env=False)

    def _abandon(self, proc: subprocess.Popen[str]) -> None:
        proc.kill()
        proc.wait()

    def _stderr_text(self) -> str:
        if self._stderr is None:
            return ""
        self._stderr.seek(0)
        return self._stderr.read().decode("utf-8", "replace")[-8000:]

    def stderr(self) -> str:
        """What the server wrote to stderr so far (for diagnostics)."""
        return self._stderr_text()

    def stop(self) -> int | None:
        """SIGTERM, then SIGKILL after `stop_timeout`; the exit status (None if not running)."""
        proc = self._proc
        if proc is None:
            return None
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=self.stop_timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        return self._forget()

    def kill(self) -> int | None:
        """SIGKILL: no shutdown at all, like a crashed host."""
        proc = self._proc
        if proc is None:
            return None
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
        return self._forget()

    def _forget(self) -> int | None:
        proc = self._proc
        self._proc = None
        if self._client is not None:
            self._client.close()
            self._client = None
        return None if proc is None else proc.returncode

    def restart(self) -> SandboxProcess:
        """Stop and start again on the same database (and the same port when it is free)."""
        self.stop()
        return self.start()

    def close(self) -> None:
        """Stop, and remove the temporary database if this object created it."""
        self.stop()
        if self._stderr is not None:
            self._stderr.close()
            self._stderr = None
        if self._tempdir is not None:
            with contextlib.suppress(OSError):
                self._tempdir.cleanup()
            self._tempdir = None

    # Clients

    def token(self, username: str = BRAND) -> str:
        return token_for(username)

    def client(self, username: str | None = BRAND, **kwargs: Any) -> httpx.Client:
        """An httpx client for the API, authenticated as `username` (None: anonymous)."""
        headers = dict(kwargs.pop("headers", {}))
        if username is not None:
            headers["Authorization"] = f"Bearer {token_for(username)}"
        kwargs.setdefault("timeout", 30.0)
        kwargs.setdefault("trust_env", False)
        return httpx.Client(base_url=self.url, headers=headers, **kwargs)

    # Admin helpers (/_sandbox/*)

    def _admin(
        self, method: str, path: str, json: Any = None, params: dict[str, str] | None = None
    ) -> Any:
        if self._client is None:
            raise RuntimeError("the sandbox is not running")
        response = self._client.request(method, "/_sandbox/" + path, json=json, params=params)
        response.raise_for_status()
        return response.json()

    def health(self) -> bool:
        try:
            return bool(self._admin("GET", "health").get("ok"))
        except (httpx.HTTPError, RuntimeError):
            return False

    def seed(self, posts: list[dict[str, Any]] | dict[str, Any]) -> dict[str, Any]:
        """Seed posts: a list of posts, or a whole payload `{"posts": [...]}` (as
        `demo_posts()` returns). `{"created", "skipped", "statuses", "by_key"}`."""
        payload = posts if isinstance(posts, dict) else {"posts": posts}
        result: dict[str, Any] = self._admin("POST", "seed", payload)
        return result

    def posted(self, account: str | None = None) -> list[dict[str, Any]]:
        params = {"account": account} if account else None
        statuses: list[dict[str, Any]] = self._admin("GET", "posted", params=params)["statuses"]
        return statuses

    def stats(self) -> dict[str, Any]:
        result: dict[str, Any] = self._admin("GET", "stats")
        return result

    def faults(self) -> dict[str, Any]:
        result: dict[str, Any] = self._admin("GET", "faults")
        return result

    def set_faults(self, **settings: Any) -> dict[str, Any]:
        """Replace the whole fault set, e.g. `set_faults(error_503=0.2, seed=7)`."""
        result: dict[str, Any] = self._admin("POST", "faults", settings)
        return result

    def clear_faults(self) -> dict[str, Any]:
        result: dict[str, Any] = self._admin("DELETE", "faults")
        return result

    def set_rate_limit(
        self,
        *,
        enabled: bool | None = None,
        limit: int | None = None,
        window_seconds: float | None = None,
    ) -> dict[str, Any]:
        """Change only what is given; counting restarts."""
        body = {
            key: value
            for key, value in (
                ("enabled", enabled),
                ("limit", limit),
                ("window_seconds", window_seconds),
            )
            if value is not None
        }
        result: dict[str, Any] = self._admin("POST", "rate-limit", body)
        return result

    def idempotency(self) -> dict[str, Any]:
        """`{"honoured": bool}`: whether the server dedupes by `Idempotency-Key`."""
        result: dict[str, Any] = self._admin("GET", "idempotency")
        return result

    def set_idempotency(self, *, honoured: bool) -> dict[str, Any]:
        """Honour or ignore `Idempotency-Key` from now on (persisted, undone by reset)."""
        result: dict[str, Any] = self._admin("POST", "idempotency", {"honoured": honoured})
        return result

    def media_processing(self) -> dict[str, Any]:
        """`{"processing_seconds": N}`: how long new uploads stay unfinished (0: off)."""
        result: dict[str, Any] = self._admin("GET", "media")
        return result

    def set_media_processing(self, seconds: float) -> dict[str, Any]:
        """Uploads from now on answer 202 and stay unfinished `seconds` (0: off;
        persisted, undone by reset)."""
        result: dict[str, Any] = self._admin("POST", "media", {"processing_seconds": seconds})
        return result

    def create_account(self, username: str, display_name: str | None = None) -> dict[str, Any]:
        """`{"account": Account, "token": ..., "created": bool}`."""
        body: dict[str, Any] = {"username": username}
        if display_name is not None:
            body["display_name"] = display_name
        result: dict[str, Any] = self._admin("POST", "accounts", body)
        return result

    def reset(self) -> None:
        self._admin("POST", "reset")


def _pump(stream: IO[str] | None, lines: queue.Queue[str | None]) -> None:
    """Forward the server's stdout lines; None marks its end (the process exited)."""
    if stream is None:
        lines.put(None)
        return
    for line in stream:
        lines.put(line)
    lines.put(None)
