"""`social-pipelines accounts check` and `accounts connect NAME`.

`check` proves every account works with one cheap authenticated call (`whoami`) and shows
what each holds: identity, token expiry, state. `connect` gets an account (back) into a
usable state: an X account through OAuth 2.0 with PKCE in the browser, redirected to a
server on 127.0.0.1 that lives only for that; a Bluesky account by a new session from its
app password; any account by verifying it, which clears a `reconnect_needed` mark.
"""

from __future__ import annotations

import argparse
import html
import json
import secrets
import sys
import threading
import webbrowser
from collections.abc import Callable
from dataclasses import asdict, dataclass
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

from social_pipelines.accounts import AccountBook
from social_pipelines.errors import ConfigError, SocialError
from social_pipelines.platforms.account import AccountBase
from social_pipelines.platforms.auth import AuthorizationFlow, pkce_pair
from social_pipelines.platforms.catalog import spec_for
from social_pipelines.settings import Settings, load_settings
from social_pipelines.wiring import Wiring, wire_settings

DEFAULT_REDIRECT_PORT = 8976  # register http://127.0.0.1:8976/callback with the X app
CALLBACK_PATH = "/callback"


@dataclass(frozen=True)
class AccountCheck:
    account: str
    platform: str
    identity: str
    token_expiry: str
    state: str
    ok: bool


def check_account(wiring: Wiring, account: AccountBase) -> AccountCheck:
    """One cheap authenticated call (`whoami`); a marked account is verified by it, and
    its mark cleared when it passes."""
    row = wiring.tokens.get(account.platform, account.name)
    marked = row is not None and row.reconnect_needed
    try:
        with wiring.connect(account, log=_QUIET, verifying=marked) as platform:
            identity = platform.whoami()
    except (SocialError, ConfigError) as error:
        if marked:
            # The refusal's own words, as the mark keeps them (updated by this call).
            now = wiring.tokens.get(account.platform, account.name)
            state = f"reconnect_needed: {(now.reason if now else None) or error}"
        else:
            state = f"failed: {error}"
        return AccountCheck(
            account.name, account.platform, "-", token_expiry(wiring, account), state, False
        )
    if marked:
        wiring.tokens.clear_mark(account.platform, account.name)
    shown = identity.handle + (f"@{identity.domain}" if identity.domain else "")
    return AccountCheck(
        account.name,
        account.platform,
        f"{shown} ({identity.account_id})",
        token_expiry(wiring, account),
        "ok",
        True,
    )


def token_expiry(wiring: Wiring, account: AccountBase) -> str:
    """The account's token expiry as a person reads it (`accounts check`, `doctor`)."""
    if spec_for(account.platform).authenticator is None:
        return "does not expire"
    row = wiring.tokens.get(account.platform, account.name)
    if row is None or row.payload is None:
        return "no tokens stored"
    if row.expires_at is None:
        return "unknown"
    return f"{row.expires_at:%Y-%m-%d %H:%M} UTC"


class _Quiet:
    """What the checks log goes nowhere: the table says it."""

    def info(self, msg: str, /) -> None:
        pass

    def warning(self, msg: str, /) -> None:
        pass


_QUIET = _Quiet()


def cmd_check(args: argparse.Namespace) -> int:
    settings = load_settings()
    wiring = wire_settings(settings)
    book = wiring.accounts()
    checks = [check_account(wiring, account) for account in book.accounts.values()]
    warning = unencrypted_tokens(settings, wiring, book)
    warnings = [warning] if warning else []
    if args.json:
        print(json.dumps({"accounts": [asdict(c) for c in checks], "warnings": warnings}, indent=2))
    else:
        _table(checks)
        for warning in warnings:
            print(f"warning: {warning}", file=sys.stderr)
    return 0 if all(check.ok for check in checks) else 1


def unencrypted_tokens(settings: Settings, wiring: Wiring, book: AccountBook) -> str | None:
    """Why stored tokens are (or will be) kept in the clear, if they are: no key is set and
    some tokens are stored plainly, or an account's platform stores tokens."""
    if settings.secret_key is None and (
        wiring.tokens.any_plain()
        or any(spec_for(a.platform).authenticator for a in book.accounts.values())
    ):
        return (
            "SOCIAL_SECRET_KEY is not set: stored tokens and sessions are kept unencrypted "
            "in the state store"
        )
    return None


def _table(checks: list[AccountCheck]) -> None:
    header = ("account", "platform", "identity", "token expiry", "state")
    rows = [header] + [(c.account, c.platform, c.identity, c.token_expiry, c.state) for c in checks]
    widths = [max(len(row[i]) for row in rows) for i in range(len(header) - 1)]
    for row in rows:
        print(
            "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=False))
            + "  "
            + row[-1]
        )


# -- connect ------------------------------------------------------------------------------


def cmd_connect(args: argparse.Namespace) -> int:
    settings = load_settings()
    wiring = wire_settings(settings)
    account = wiring.accounts().get(args.name)
    authenticator = spec_for(account.platform).authenticator
    if isinstance(authenticator, AuthorizationFlow):
        connect_in_browser(
            wiring,
            account,
            port=args.port,
            timeout=args.timeout,
            open_url=_print_and_open(args.no_browser),
        )
    elif authenticator is not None:
        with wiring.connect(account, verifying=True) as platform:
            assert platform.session is not None
            platform.session.login()
    result = check_account(wiring, account)
    print(
        f"{result.account} ({result.platform}): {result.state}; {result.identity}; "
        f"token expiry: {result.token_expiry}"
    )
    return 0 if result.ok else 1


def _print_and_open(no_browser: bool) -> Callable[[str], None]:
    def show(url: str) -> None:
        print(f"Open this address to authorise the account:\n\n  {url}\n", flush=True)
        if not no_browser:
            webbrowser.open(url)

    return show


class _Callback(BaseHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # keep codes out of logs
        pass

    def do_GET(self) -> None:
        url = urlparse(self.path)
        if url.path != CALLBACK_PATH:
            self.send_error(404)
            return
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        server = self.server
        assert isinstance(server, _CallbackServer)
        server.answer = query
        ok = "code" in query and query.get("state") == server.state
        why = query.get("error_description") or query.get("error") or "state mismatch"
        body = "Authorised: you can close this window." if ok else f"Not authorised: {why}"
        data = f"<!doctype html><title>social-pipelines</title><p>{html.escape(body)}</p>".encode()
        self.send_response(200 if ok else 400)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
        server.done.set()


class _CallbackServer(HTTPServer):
    state: str
    answer: dict[str, str]
    done: threading.Event


def connect_in_browser(
    wiring: Wiring,
    account: AccountBase,
    *,
    port: int = DEFAULT_REDIRECT_PORT,
    timeout: float = 300.0,
    open_url: Callable[[str], None],
) -> None:
    """The authorization-code flow with PKCE: a loopback server on 127.0.0.1 receives the
    redirect, the state is checked, the code exchanged, the tokens stored (sealed)."""
    spec = spec_for(account.platform)
    flow = spec.authenticator
    assert isinstance(flow, AuthorizationFlow)
    verifier, challenge = pkce_pair()
    state = secrets.token_urlsafe(24)
    server = _CallbackServer(("127.0.0.1", port), _Callback)
    server.state, server.answer, server.done = state, {}, threading.Event()
    redirect_uri = f"http://127.0.0.1:{server.server_address[1]}{CALLBACK_PATH}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        open_url(
            flow.authorize_url(
                account,
                variables=wiring.variables,
                redirect_uri=redirect_uri,
                state=state,
                code_challenge=challenge,
            )
        )
        if not server.done.wait(timeout):
            raise ConfigError(
                f"account {account.name!r}: no authorisation arrived at {redirect_uri} within "
                f"{timeout:g} s"
            )
    finally:
        server.shutdown()
        server.server_close()
    answer = server.answer
    if answer.get("state") != state:
        raise ConfigError(
            f"account {account.name!r}: the redirect's state does not match; "
            "nothing was stored (start again)"
        )
    if "code" not in answer:
        raise ConfigError(
            f"account {account.name!r}: authorisation refused: "
            f"{answer.get('error_description') or answer.get('error') or 'no code'}"
        )
    with wiring.connect(account, verifying=True) as platform:
        session = platform.session
        assert session is not None
        tokens = flow.exchange_code(
            account,
            code=answer["code"],
            code_verifier=verifier,
            redirect_uri=redirect_uri,
            variables=wiring.variables,
            http=session.http,
        )
        session.store(tokens)


def add_commands(commands: Any) -> None:
    """`accounts check` and `accounts connect` on the `social-pipelines` parser."""
    accounts = commands.add_parser("accounts", help="check or connect the accounts")
    sub = accounts.add_subparsers(dest="accounts_command", required=True)
    check = sub.add_parser("check", help="one authenticated call per account; exit 1 if any fails")
    check.add_argument("--json", action="store_true")
    check.set_defaults(handler=cmd_check)
    connect = sub.add_parser(
        "connect", help="authorise an account (X in the browser) and store its tokens"
    )
    connect.add_argument("name")
    connect.add_argument(
        "--port",
        type=int,
        default=DEFAULT_REDIRECT_PORT,
        help=f"loopback port of the redirect (default {DEFAULT_REDIRECT_PORT}; the X app "
        "must list http://127.0.0.1:PORT/callback)",
    )
    connect.add_argument("--timeout", type=float, default=300.0)
    connect.add_argument("--no-browser", action="store_true", help="only print the address")
    connect.set_defaults(handler=cmd_connect)
