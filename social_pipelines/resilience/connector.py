"""Connecting accounts to guarded platforms: one breaker per platform account, shared
rate buckets, every request through the door, and for platforms whose tokens expire a
session kept in the state store (`sessions.py`).

An account the platform refused for good is marked `reconnect_needed` (`store/tokens.py`):
Mastodon's at the first refused token (it has no refresh), a session platform's when its
refresh and a new login were refused too. A marked account does not connect (the skip
says why) except to verify it (`verifying=True`: `token_refresh_job`, `accounts check`).

One `Connector` per process and state store: breakers and buckets are cheap handles onto
shared state (the store, the bucket file or tables), built in the process that uses them.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import httpx

from social_pipelines.errors import AuthExpired
from social_pipelines.log import Log
from social_pipelines.platforms.account import AccountBase
from social_pipelines.platforms.catalog import spec_for
from social_pipelines.platforms.policy import PlatformPolicy
from social_pipelines.platforms.registry import connect
from social_pipelines.resilience.breaker import SharedBreaker
from social_pipelines.resilience.door import AccountDoor
from social_pipelines.resilience.guarded import GuardedPlatform
from social_pipelines.resilience.policy import policy_for
from social_pipelines.resilience.rate_limits import RateLimits
from social_pipelines.resilience.sessions import ReconnectNeeded, StoredSession
from social_pipelines.store.state import StateStore
from social_pipelines.store.tokens import TokenRow

_LOG = logging.getLogger(__name__)


def breaker_name(platform: str, account: str) -> str:
    return f"{platform}:{account}"


class Connector:
    _instances: dict[tuple[int, str], Connector] = {}
    _lock = threading.Lock()

    def __init__(
        self,
        store: StateStore,
        *,
        bucket_path: Path,
        overrides: Mapping[str, Mapping[str, Any]] | None = None,
        secret_key: str | None = None,
    ) -> None:
        self.store = store
        self.overrides = {k: dict(v) for k, v in (overrides or {}).items()}
        self.tokens = store.tokens(secret_key)
        if store.backend == "postgresql":
            self.rate_limits = RateLimits(store.engine, postgres_url=store.url)
        else:
            self.rate_limits = RateLimits(store.engine, sqlite_path=bucket_path)
        self._breakers: dict[str, SharedBreaker] = {}

    @classmethod
    def for_store(
        cls,
        store: StateStore,
        *,
        bucket_path: Path,
        overrides: Mapping[str, Mapping[str, Any]] | None = None,
        secret_key: str | None = None,
    ) -> Connector:
        """The process's connector for `store` (its buckets and breakers are shared
        handles, built once per process)."""
        key = (os.getpid(), store.url)
        with cls._lock:
            cached = cls._instances.get(key)
            # A store closed and opened again is a new store: its connector is new too.
            if cached is None or cached.store is not store:
                cached = cls(
                    store, bucket_path=bucket_path, overrides=overrides, secret_key=secret_key
                )
                cls._instances[key] = cached
            cached.overrides = {k: dict(v) for k, v in (overrides or {}).items()}
            cached.tokens = store.tokens(secret_key)
            return cached

    def policy(self, account: AccountBase) -> PlatformPolicy:
        """The account's platform row, with the settings' overrides for the platform and
        then the account's own (`[accounts.NAME.policy]`)."""
        return account_policy(account, self.overrides)

    def breaker(
        self, platform: str, account: str, policy: PlatformPolicy | None = None
    ) -> SharedBreaker:
        name = breaker_name(platform, account)
        if name not in self._breakers:
            policy = policy or policy_for(platform, self.overrides)
            self._breakers[name] = SharedBreaker(
                self.store.engine,
                name,
                fail_max=policy.breaker_fail_max,
                reset_timeout=policy.breaker_reset_seconds,
            )
        return self._breakers[name]

    def mark(self, account: AccountBase) -> TokenRow | None:
        """The account's reconnect mark, if it has one."""
        row = self.tokens.get(account.platform, account.name)
        return row if row is not None and row.reconnect_needed else None

    def connect(
        self,
        account: AccountBase,
        *,
        variables: Mapping[str, str] | None = None,
        timeout: float | None = None,
        log: Log | None = None,
        transport: httpx.BaseTransport | None = None,
        verifying: bool = False,
    ) -> GuardedPlatform:
        """`account` behind its breaker and retries, every request through its door.

        `variables` resolve the account's credentials (default: the environment);
        `transport` replaces the network (the sandbox in process, a test's mock). A marked
        account raises `ReconnectNeeded`, unless `verifying` (then an accepted call clears
        the mark)."""
        policy = self.policy(account)
        if not verifying and (row := self.mark(account)) is not None:
            raise ReconnectNeeded(
                f"{account.platform} account {account.name!r} needs reconnecting "
                f"({row.reason}); run `social-pipelines accounts connect {account.name}`",
                platform=account.platform,
            )
        breaker = self.breaker(account.platform, account.name, policy)
        door = AccountDoor(
            self.rate_limits,
            breaker,
            platform=account.platform,
            account=account.name,
            policy=policy,
            log=log,
        )
        variables = os.environ if variables is None else variables
        timeout = timeout or policy.call_timeout
        spec = spec_for(account.platform)
        session = None
        if spec.authenticator is not None:
            session = StoredSession(
                self.tokens,
                account,
                spec.authenticator,
                http=spec.authenticator.client(
                    account, door=door, timeout=timeout, transport=transport
                ),
                variables=variables,
                policy=policy,
                log=log,
                ignore_mark=verifying,
            )
        adapter = connect(
            account,
            variables=variables,
            door=door,
            timeout=timeout,
            transport=transport,
            session=session,
        )
        tokens = self.tokens

        def refused(error: AuthExpired) -> None:
            # Mastodon has no refresh: a refused token needs a person now. A session
            # platform's refusal arrives after its one refresh and repeat: the same.
            if tokens.mark_reconnect(account.platform, account.name, str(error)):
                (log or _LOG).warning(
                    f"{account.platform} account {account.name!r} marked reconnect_needed: {error}"
                )

        return GuardedPlatform(
            adapter,
            account=account.name,
            policy=policy,
            breaker=breaker,
            capabilities=spec.capabilities,
            log=log,
            session=session,
            on_auth_refused=refused,
        )


def account_policy(
    account: AccountBase, overrides: Mapping[str, Mapping[str, Any]] | None = None
) -> PlatformPolicy:
    """The policy `account` runs under: its platform's row, the settings' overrides for the
    platform, then the account's own."""
    base = policy_for(account.platform, overrides)
    if not account.policy:
        return base
    return PlatformPolicy.model_validate({**base.model_dump(), **account.policy})
