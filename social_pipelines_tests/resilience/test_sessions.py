"""Stored sessions on both databases against a token server that rotates strictly: reuse
across processes, refresh ahead of expiry and on an expired answer, transient failures
never taken for a dead token, reconnect marks, encryption at rest, and two processes
refreshing one account at once without locking it out."""

from __future__ import annotations

import multiprocessing
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from cryptography.fernet import Fernet

from social_pipelines.errors import ConfigError, Transient
from social_pipelines.platforms.account import AccountBase
from social_pipelines.platforms.auth import SessionAuth, TokenSet
from social_pipelines.platforms.http import build_client, route
from social_pipelines.platforms.policy import PlatformPolicy
from social_pipelines.resilience.sessions import ReconnectNeeded, StoredSession
from social_pipelines.store import StateStore
from social_pipelines.store.schema import account_tokens
from social_pipelines.store.tokens import TokenStore
from social_pipelines_tests.doors import RecordingDoor
from social_pipelines_tests.token_server import (
    PASSWORD,
    RotatingAuthenticator,
    Tokens,
    token_server,
)

ACCOUNT = AccountBase(name="brand_tokens", platform="tokens")
VARIABLES = {"TEST_APP_PASSWORD": PASSWORD}
POLICY = PlatformPolicy(retry_attempts=3, retry_initial_seconds=0.01, retry_max_seconds=1)


@pytest.fixture
def server() -> Iterator[tuple[str, Tokens]]:
    with token_server() as running:
        yield running


@pytest.fixture
def store(store_url: str) -> Iterator[StateStore]:
    opened = StateStore(store_url)
    yield opened
    opened.dispose()


def session(
    store: StateStore,
    base_url: str,
    *,
    key: str | None = None,
    ignore_mark: bool = False,
    variables: dict[str, str] | None = None,
) -> StoredSession:
    authenticator = RotatingAuthenticator(base_url)
    return StoredSession(
        store.tokens(key),
        ACCOUNT,
        authenticator,
        http=authenticator.client(ACCOUNT, door=RecordingDoor(), timeout=5),
        variables=VARIABLES if variables is None else variables,
        policy=POLICY,
        sleep=lambda _: None,
        ignore_mark=ignore_mark,
    )


def test_a_session_is_stored_once_and_reused_by_every_other_process(
    store: StateStore, server: tuple[str, Tokens]
) -> None:
    url, remote = server
    first = session(store, url).current()
    again = session(store, url).current()  # another process: same store, new session
    assert again.access_token == first.access_token
    assert remote.logins == 1 and remote.refreshes == 0


def test_tokens_expiring_soon_are_refreshed_first_and_the_rotation_is_kept(
    store: StateStore, server: tuple[str, Tokens]
) -> None:
    url, remote = server
    remote.lifetime = 60  # inside the 5 minutes ahead
    first = session(store, url).current()
    remote.lifetime = 3600
    fresh = session(store, url).current()
    assert remote.refreshes == 1
    assert fresh.access_token != first.access_token
    assert fresh.refresh_token == remote.refresh != first.refresh_token
    assert session(store, url).current().access_token == fresh.access_token  # stored


def test_a_refresh_answering_no_refresh_token_keeps_the_stored_one(
    store: StateStore, server: tuple[str, Tokens]
) -> None:
    url, remote = server
    held = session(store, url).current()
    remote.omit_refresh = True
    renewed = session(store, url).renew(held)
    assert renewed.access_token != held.access_token
    assert renewed.refresh_token == held.refresh_token != ""


def test_an_expired_answer_is_refreshed_once_and_repeated_once(
    store: StateStore, server: tuple[str, Tokens]
) -> None:
    url, remote = server
    kept = session(store, url)
    kept.current()
    remote.access.clear()  # the platform no longer takes the access token
    client = build_client(url, door=RecordingDoor(), platform="tokens", timeout=5)
    client.auth = SessionAuth(kept, RotatingAuthenticator(url).expired)
    assert client.get("/me", extensions=route("read")).status_code == 200
    assert remote.refreshes == 1
    remote.access.clear()
    remote.refresh = "revoked"  # and now the refresh token is dead: a new login serves
    assert client.get("/me", extensions=route("read")).status_code == 200
    assert remote.refused_refreshes == 1 and remote.logins == 2
    remote.access.clear()
    remote.refresh = "revoked"
    remote.refuse_logins = True  # and the app password too: one try each, no loop
    with pytest.raises(ReconnectNeeded):
        client.get("/me", extensions=route("read"))
    assert remote.refused_refreshes == 2 and remote.logins == 2


def test_a_transient_token_endpoint_is_repeated_never_taken_for_a_dead_token(
    store: StateStore, server: tuple[str, Tokens]
) -> None:
    url, remote = server
    held = session(store, url).current()
    remote.fail_next = 2
    renewed = session(store, url).renew(held)
    assert renewed.access_token != held.access_token and remote.refreshes == 1
    # Down for good, the tokens in hand still valid: they are used, nothing is marked.
    remote.fail_next = 100
    kept = session(store, url).renew(renewed)
    assert kept.access_token == renewed.access_token
    row = store.tokens().get("tokens", ACCOUNT.name)
    assert row is not None and not row.reconnect_needed


def test_a_transient_failure_with_an_expired_token_is_transient(
    store: StateStore, server: tuple[str, Tokens]
) -> None:
    url, remote = server
    remote.lifetime = -10  # already expired
    session(store, url).current()
    remote.fail_next = 100
    with pytest.raises(Transient):
        session(store, url).current()
    row = store.tokens().get("tokens", ACCOUNT.name)
    assert row is not None and not row.reconnect_needed


def test_a_refused_refresh_and_login_mark_the_account_until_it_is_accepted_again(
    store: StateStore, server: tuple[str, Tokens]
) -> None:
    url, remote = server
    held = session(store, url).current()
    remote.refresh = "revoked"
    remote.refuse_logins = True
    with pytest.raises(ReconnectNeeded) as raised:
        session(store, url).renew(held)
    assert PASSWORD not in str(raised.value)
    row = store.tokens().get("tokens", ACCOUNT.name)
    assert row is not None and row.reconnect_needed and "refused" in (row.reason or "")
    with pytest.raises(ReconnectNeeded, match="needs reconnecting"):
        session(store, url).current()  # every later run is stopped with the reason
    logins = remote.logins
    remote.refuse_logins = False  # a new app password, say
    verified = session(store, url, ignore_mark=True).renew(held)
    assert remote.logins == logins + 1
    row = store.tokens().get("tokens", ACCOUNT.name)
    assert row is not None and not row.reconnect_needed
    assert session(store, url).current().access_token == verified.access_token


def test_tokens_are_sealed_with_the_secret_key_and_refused_with_another(
    store: StateStore, server: tuple[str, Tokens]
) -> None:
    url, _ = server
    key = Fernet.generate_key().decode()
    held = session(store, url, key=key).current()
    with store.engine.connect() as connection:
        payload = connection.execute(sa.select(account_tokens.c.payload)).scalar_one()
    assert held.access_token not in payload and held.refresh_token not in payload
    assert store.tokens(key).any_plain() is False
    with pytest.raises(ConfigError, match="SOCIAL_SECRET_KEY is not set"):
        store.tokens(None).get("tokens", ACCOUNT.name)
    with pytest.raises(ConfigError, match="does not decrypt") as raised:
        store.tokens(Fernet.generate_key().decode()).get("tokens", ACCOUNT.name)
    assert key not in str(raised.value)


def test_without_a_key_tokens_are_stored_plainly_and_that_is_visible(
    store: StateStore, server: tuple[str, Tokens]
) -> None:
    url, _ = server
    session(store, url).current()
    assert store.tokens().any_plain() is True


def test_a_bad_secret_key_is_refused_without_showing_it() -> None:
    with pytest.raises(ConfigError, match="not a Fernet key") as raised:
        TokenStore(sa.create_engine("sqlite://"), cipher=None).cipher.__class__("not-a-key!")
    assert "not-a-key" not in str(raised.value)


def test_a_stored_refresh_token_is_never_overwritten_by_an_empty_one() -> None:
    held = TokenSet(access_token="a1", refresh_token="r1", subject="did:x")
    newer = held.merged(TokenSet(access_token="a2"))
    assert (newer.access_token, newer.refresh_token, newer.subject) == ("a2", "r1", "did:x")
    assert "a1" not in repr(held) and "r1" not in repr(held)
    assert TokenSet.from_json(newer.to_json()) == newer
    soon = replace(held, expires_at=datetime.now(UTC) + timedelta(minutes=2))
    assert soon.expires_within(300) and not soon.expires_within(60)


# -- two processes refreshing one account at once ------------------------------------------


def _refresh_many(store_url: str, base_url: str, rounds: int, start: Any) -> int:
    """In a process of its own: force a refresh `rounds` times, as runs that each got an
    expired answer would."""
    opened = StateStore(store_url)
    try:
        start.wait()
        done = 0
        for _ in range(rounds):
            kept = session(opened, base_url)
            kept.renew(kept.current())
            done += 1
        return done
    finally:
        opened.dispose()


def test_two_processes_refreshing_at_once_never_lock_the_account_out(
    store_url: str, server: tuple[str, Tokens]
) -> None:
    url, remote = server
    opened = StateStore(store_url)
    try:
        session(opened, url).current()
    finally:
        opened.dispose()
    context = multiprocessing.get_context("spawn")
    with context.Manager() as manager:
        start = manager.Event()
        with context.Pool(2) as pool:
            results = [
                pool.apply_async(_refresh_many, (store_url, url, 8, start)) for _ in range(2)
            ]
            start.set()
            assert [result.get(timeout=120) for result in results] == [8, 8]
    # Every refresh used the one valid refresh token: none was refused, nothing marked.
    assert remote.refused_refreshes == 0
    assert remote.refreshes >= 8
    opened = StateStore(store_url)
    try:
        row = opened.tokens().get("tokens", ACCOUNT.name)
        assert row is not None and not row.reconnect_needed
        assert TokenSet.from_json(row.payload or "").refresh_token == remote.refresh
    finally:
        opened.dispose()
