"""`accounts connect` for X: the authorization-code flow with PKCE through a loopback
redirect on 127.0.0.1, the tokens stored sealed, the mark cleared; a redirect with the
wrong state or a refusal stores nothing. X's token endpoint is mocked on its documented
shapes (platforms.md §1.1); the browser is played by a plain HTTP GET of the redirect."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlparse

import httpx
import pytest
import respx
from cryptography.fernet import Fernet
from pydantic import SecretStr

from social_pipelines.accounts_cli import connect_in_browser
from social_pipelines.errors import ConfigError
from social_pipelines.platforms.auth import TokenSet
from social_pipelines.settings import Settings
from social_pipelines.wiring import Wiring, wire_settings

CLIENT_ID = "x-client-id-123"
CLIENT_SECRET = "x-client-secret-very-secret-987"
ACCESS = "x-access-token-abc"
REFRESH = "x-refresh-token-def"
ACCOUNTS = """
[accounts.brand_x]
platform = "x"
client_id_env = "BRAND_X_CLIENT_ID"
client_secret_env = "BRAND_X_CLIENT_SECRET"
"""


@pytest.fixture
def wiring(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Wiring]:
    monkeypatch.setenv("BRAND_X_CLIENT_ID", CLIENT_ID)
    monkeypatch.setenv("BRAND_X_CLIENT_SECRET", CLIENT_SECRET)
    accounts = tmp_path / "accounts.toml"
    accounts.write_text(ACCOUNTS, encoding="utf-8")
    settings = Settings(
        _env_file=None,
        dagster_home=tmp_path,
        database_url=f"sqlite:///{tmp_path / 'state.db'}",
        accounts_file=accounts,
        secret_key=SecretStr(Fernet.generate_key().decode()),
    )
    yield wire_settings(settings)


def _browser(answer: Callable[[dict[str, str]], dict[str, str]]) -> Callable[[str], None]:
    """A person at the consent page: reads what it was given, then is redirected back."""

    def open_url(url: str) -> None:
        query = {k: v[0] for k, v in parse_qs(urlparse(url).query).items()}
        redirect = f"{query['redirect_uri']}?{urlencode(answer(query))}"
        # A refusal page answers 400: the flow decides what it means.
        with contextlib.suppress(urllib.error.HTTPError):
            urllib.request.urlopen(redirect, timeout=5).read()

    return open_url


def _token_endpoint(
    router: respx.MockRouter, seen: list[httpx.Request], challenge: dict[str, str]
) -> None:
    def token(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        form = {k: v[0] for k, v in parse_qs(request.content.decode()).items()}
        digest = hashlib.sha256(form["code_verifier"].encode()).digest()
        assert base64.urlsafe_b64encode(digest).rstrip(b"=").decode() == challenge["value"]
        assert form["grant_type"] == "authorization_code" and form["code"] == "the-code"
        return httpx.Response(
            200,
            json={
                "token_type": "bearer",
                "expires_in": 7200,
                "access_token": ACCESS,
                "scope": "tweet.read tweet.write users.read media.write offline.access",
                "refresh_token": REFRESH,
            },
        )

    router.post("https://api.x.com/2/oauth2/token").mock(side_effect=token)
    router.get("https://api.x.com/2/users/me").mock(
        return_value=httpx.Response(200, json={"data": {"id": "1500", "username": "brand"}})
    )


@pytest.mark.respx(assert_all_called=False)
def test_connect_runs_pkce_through_a_loopback_redirect_and_stores_the_tokens_sealed(
    wiring: Wiring, respx_mock: respx.MockRouter
) -> None:
    account = wiring.accounts().get("brand_x")
    wiring.tokens.mark_reconnect("x", "brand_x", "refresh token refused")
    seen: list[httpx.Request] = []
    challenge: dict[str, str] = {}

    def consent(query: dict[str, str]) -> dict[str, str]:
        assert urlparse(query["redirect_uri"]).hostname == "127.0.0.1"
        assert query["client_id"] == CLIENT_ID and query["response_type"] == "code"
        assert query["code_challenge_method"] == "S256"
        assert "offline.access" in query["scope"].split()
        challenge["value"] = query["code_challenge"]
        return {"code": "the-code", "state": query["state"]}

    _token_endpoint(respx_mock, seen, challenge)
    connect_in_browser(wiring, account, port=0, timeout=10, open_url=_browser(consent))

    [exchange] = seen
    basic = base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()
    assert exchange.headers["authorization"] == f"Basic {basic}"  # a confidential client
    row = wiring.tokens.get("x", "brand_x")
    assert row is not None and not row.reconnect_needed and row.encrypted
    stored = TokenSet.from_json(row.payload or "")
    assert (stored.access_token, stored.refresh_token, stored.subject) == (ACCESS, REFRESH, "1500")
    with wiring.store.engine.connect() as connection:
        raw = connection.exec_driver_sql("SELECT payload FROM account_tokens").scalar_one()
    assert ACCESS not in raw and REFRESH not in raw


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        (lambda q: {"code": "the-code", "state": "forged"}, "state does not match"),
        (
            lambda q: {"error": "access_denied", "state": q["state"]},
            "authorisation refused: access_denied",
        ),
    ],
)
@pytest.mark.respx(assert_all_called=False)
def test_a_forged_or_refused_redirect_stores_nothing(
    wiring: Wiring,
    respx_mock: respx.MockRouter,
    answer: Callable[[dict[str, str]], dict[str, str]],
    message: str,
) -> None:
    account = wiring.accounts().get("brand_x")
    seen: list[httpx.Request] = []
    _token_endpoint(respx_mock, seen, {})
    with pytest.raises(ConfigError, match=message):
        connect_in_browser(wiring, account, port=0, timeout=10, open_url=_browser(answer))
    assert seen == []
    assert wiring.tokens.get("x", "brand_x") is None
