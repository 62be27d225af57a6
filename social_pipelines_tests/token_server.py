"""A token server on loopback that rotates refresh tokens strictly, for session tests.

Like Bluesky's PDS and OAuth servers that rotate: each refresh token works once, and a
second use of it is refused (`invalid_grant`) — so two processes refreshing one account at
once would lock it out unless they take turns. Reached over real HTTP from any process.
Also an authenticator for it, built like an adapter's (`platforms/auth.Authenticator`).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs

import httpx

from social_pipelines.errors import AuthExpired
from social_pipelines.platforms.auth import TokenSet
from social_pipelines.platforms.http import Door, build_client, route, status_error

PASSWORD = "app-password-s3cret"


@dataclass
class Tokens:
    """The server's state: the one valid refresh token, the valid access tokens."""

    serial: int = 0
    refresh: str = ""
    access: set[str] = field(default_factory=set)
    logins: int = 0
    refreshes: int = 0
    refused_refreshes: int = 0
    fail_next: int = 0  # answer this many token requests 503
    refuse_logins: bool = False
    lifetime: float = 3600.0
    omit_refresh: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock)

    def issue(self) -> dict[str, Any]:
        self.serial += 1
        access = f"access-{self.serial}"
        self.access = {access}
        body: dict[str, Any] = {"access_token": access, "expires_in": self.lifetime}
        if not self.omit_refresh or not self.refresh:
            self.refresh = f"refresh-{self.serial}"
            body["refresh_token"] = self.refresh
        return body


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, format: str, *args: object) -> None:  # quiet
        pass

    def _answer(self, status: int, body: Mapping[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        form = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
        state = self.server.tokens
        with state.lock:
            if state.fail_next > 0:
                state.fail_next -= 1
                self._answer(503, {"error": "temporarily_unavailable"})
                return
            if self.path == "/login":
                if state.refuse_logins or form.get("password") != PASSWORD:
                    self._answer(401, {"error": "AuthenticationRequired"})
                    return
                state.logins += 1
                self._answer(200, state.issue())
            elif self.path == "/token":
                if form.get("refresh_token") != state.refresh:
                    state.refused_refreshes += 1
                    self._answer(400, {"error": "invalid_grant"})
                    return
                state.refreshes += 1
                self._answer(200, state.issue())
            else:
                self._answer(404, {"error": "not found"})

    def do_GET(self) -> None:
        token = (self.headers.get("Authorization") or "").removeprefix("Bearer ")
        with self.server.tokens.lock:
            valid = token in self.server.tokens.access
        if self.path == "/me" and valid:
            self._answer(200, {"id": "user-1"})
        else:
            self._answer(401, {"error": "invalid_token"})


class _Server(ThreadingHTTPServer):
    tokens: Tokens


@contextmanager
def token_server() -> Iterator[tuple[str, Tokens]]:
    server = _Server(("127.0.0.1", 0), _Handler)
    server.tokens = Tokens()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", server.tokens
    finally:
        server.shutdown()
        server.server_close()


class RotatingAuthenticator:
    """The authenticator of the token server's 'platform', built as an adapter's is."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url

    def client(
        self,
        account: Any,
        *,
        door: Door,
        timeout: float,
        transport: httpx.BaseTransport | None = None,
    ) -> httpx.Client:
        return build_client(
            self.base_url, door=door, platform="tokens", timeout=timeout, transport=transport
        )

    def _tokens(self, response: httpx.Response) -> TokenSet:
        if response.status_code in (400, 401):
            raise AuthExpired(
                "refused", platform="tokens", status_code=response.status_code, detail=response.text
            )
        if not response.is_success:
            raise status_error(response, platform="tokens", create=False)
        body = response.json()
        return TokenSet(
            access_token=body["access_token"],
            refresh_token=body.get("refresh_token", ""),
            expires_at=datetime.now(UTC) + timedelta(seconds=float(body["expires_in"])),
            subject="user-1",
        )

    def login(self, account: Any, *, variables: Mapping[str, str], http: httpx.Client) -> TokenSet:
        return self._tokens(
            http.post(
                "/login",
                data={"password": variables["TEST_APP_PASSWORD"]},
                extensions=route("login"),
            )
        )

    def refresh(
        self,
        account: Any,
        tokens: TokenSet,
        *,
        variables: Mapping[str, str],
        http: httpx.Client,
    ) -> TokenSet:
        return self._tokens(
            http.post(
                "/token", data={"refresh_token": tokens.refresh_token}, extensions=route("auth")
            )
        )

    def expired(self, response: httpx.Response) -> bool:
        return response.status_code == 401
