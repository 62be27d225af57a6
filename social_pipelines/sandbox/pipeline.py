"""What happens to every `/api/` request before and after its handler, in order:

1. `latency` (if faults are set and the request is in their scope);
2. token -> account (an expired or unknown token is no account);
3. rate limit: counted against the account, or the client IP without one; over -> 429;
4. no account on an authenticated endpoint (or a token sent that is no account, where a
   public endpoint checks tokens) -> 401;
5. `Idempotency-Key` claimed (status creation only, unless the sandbox ignores keys);
6. one fault draw: errors and "before" faults answer here, nothing processed;
7. the handler;
8. "after" faults: reset the connection or delay the answer.

Keeping this in one place is what makes the documented order true for every endpoint.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.types import Receive, Scope, Send

from social_pipelines.sandbox.accounts import Account
from social_pipelines.sandbox.idempotency import Claim
from social_pipelines.sandbox.ids import now_ms
from social_pipelines.sandbox.state import Sandbox
from social_pipelines.sandbox.transport import reset_connection

INVALID_TOKEN = "The access token is invalid"  # noqa: S105 - an error message
TEMPORARY_PROBLEM = "There was a temporary problem serving your request, please try again"
NGINX_PAGE = (
    "<html>\r\n<head><title>{status}</title></head>\r\n<body>\r\n<center><h1>{status}</h1>"
    "</center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"
)


@dataclass(frozen=True)
class ApiContext:
    account: Account | None
    base_url: str
    claim: Claim | None
    now: float

    @property
    def viewer_id(self) -> int | None:
        return None if self.account is None else self.account.id


Handler = Callable[[Request, ApiContext], Awaitable[Response]]


class NoResponse(Response):
    """Sends nothing: the connection was already reset."""

    def __init__(self) -> None:
        super().__init__(status_code=499)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        return None


def error(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=headers)


def bearer_token(request: Request) -> str | None:
    """Doorkeeper's order: `Authorization: Bearer`, then an `access_token` parameter."""
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    return request.query_params.get("access_token") or None


def base_url(request: Request) -> str:
    return str(request.base_url).rstrip("/")


class ApiPipeline:
    def __init__(self, sandbox: Sandbox) -> None:
        self.sandbox = sandbox

    async def run(
        self,
        request: Request,
        handler: Handler,
        *,
        public: bool = False,
        idempotent: bool = False,
        checks_token: bool = False,
    ) -> Response:
        """`public`: answered without a token; with `checks_token` too, a token that is sent
        must still be valid (Doorkeeper's `authorize_if_got_token!`, Mastodon's timelines),
        where the instance endpoints ignore a bad one."""
        sandbox = self.sandbox
        in_scope = sandbox.faults.in_scope(request.method, request.url.path)
        latency = sandbox.faults.settings.latency
        if in_scope and latency > 0:
            await asyncio.sleep(latency)
        now = time.time()
        account = sandbox.accounts.by_token(bearer_token(request))
        if account is not None and sandbox.faults.tokens_expired(now):
            account = None
        client = request.client.host if request.client else "unknown"
        bucket = f"account:{account.id}" if account else f"ip:{client}"
        with sandbox.db.transaction():
            sandbox.db.incr("requests")
            decision = sandbox.limiter.hit(bucket, now)
            if decision is not None and not decision.allowed:
                sandbox.db.incr("violations")
        headers = decision.headers() if decision is not None else {}
        if decision is not None and not decision.allowed:
            retry = {"Retry-After": str(decision.retry_after(now))}
            return error(429, "Too many requests", {**headers, **retry})
        if account is None and (not public or (checks_token and bearer_token(request))):
            return error(401, INVALID_TOKEN, headers)

        claim = None
        key = request.headers.get("idempotency-key")
        if idempotent and account is not None and key and sandbox.idempotency.honoured:
            claim = await sandbox.idempotency.claim(account.id, key, now_ms())
        try:
            fault = None
            if in_scope:
                with sandbox.db.transaction():
                    fault = sandbox.faults.draw()
            early = await self._before(fault, request, headers)
            if early is not None:
                return early
            context = ApiContext(account, base_url(request), claim, now)
            response = await handler(request, context)
            response.headers.update(headers)
            if fault == "reset_after":
                return await _reset(request)
            if fault == "timeout_after":
                await asyncio.sleep(sandbox.faults.settings.timeout_delay)
            return response
        finally:
            if claim is not None:
                sandbox.idempotency.release(claim)

    async def _before(
        self, fault: str | None, request: Request, headers: dict[str, str]
    ) -> Response | None:
        """The answer to a fault that strikes before anything is processed, if any."""
        if fault == "error_500":
            return error(500, "Internal server error", headers)
        if fault == "error_502":
            return _nginx(502, "Bad Gateway", headers)
        if fault == "error_503":
            return error(503, TEMPORARY_PROBLEM, headers)
        if fault == "reset_before":
            return await _reset(request)
        if fault == "timeout_before":
            await asyncio.sleep(self.sandbox.faults.settings.timeout_delay)
            return _nginx(504, "Gateway Time-out", headers)
        return None


async def _reset(request: Request) -> Response:
    if await reset_connection(request.scope):
        return NoResponse()
    # Not served by the sandbox's own uvicorn protocol: the closest thing is a failure.
    raise ConnectionAbortedError("injected reset: transport not reachable under this server")


def _nginx(status: int, reason: str, headers: dict[str, str]) -> HTMLResponse:
    page = NGINX_PAGE.format(status=f"{status} {reason}")
    return HTMLResponse(page, status_code=status, headers=headers)
