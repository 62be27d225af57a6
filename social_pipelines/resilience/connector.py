"""Connecting accounts to guarded platforms: one breaker per platform account, shared
rate buckets, every request through the door.

One `Connector` per process and state store: breakers and buckets are cheap handles onto
shared state (the store, the bucket file or tables), built in the process that uses them.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import httpx

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
from social_pipelines.store.state import StateStore


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
    ) -> None:
        self.store = store
        self.overrides = {k: dict(v) for k, v in (overrides or {}).items()}
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
    ) -> Connector:
        """The process's connector for `store` (its buckets and breakers are shared
        handles, built once per process)."""
        key = (os.getpid(), store.url)
        with cls._lock:
            cached = cls._instances.get(key)
            # A store closed and opened again is a new store: its connector is new too.
            if cached is None or cached.store is not store:
                cached = cls(store, bucket_path=bucket_path, overrides=overrides)
                cls._instances[key] = cached
            return cached

    def policy(self, platform: str) -> PlatformPolicy:
        return policy_for(platform, self.overrides)

    def breaker(self, platform: str, account: str) -> SharedBreaker:
        name = breaker_name(platform, account)
        if name not in self._breakers:
            policy = self.policy(platform)
            self._breakers[name] = SharedBreaker(
                self.store.engine,
                name,
                fail_max=policy.breaker_fail_max,
                reset_timeout=policy.breaker_reset_seconds,
            )
        return self._breakers[name]

    def connect(
        self,
        account: AccountBase,
        *,
        variables: Mapping[str, str] | None = None,
        timeout: float | None = None,
        log: Log | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> GuardedPlatform:
        """`account` behind its breaker and retries, every request through its door.

        `variables` resolve the account's credentials (default: the environment);
        `transport` replaces the network (the sandbox in process, a test's mock)."""
        policy = self.policy(account.platform)
        breaker = self.breaker(account.platform, account.name)
        door = AccountDoor(
            self.rate_limits,
            breaker,
            platform=account.platform,
            account=account.name,
            policy=policy,
            log=log,
        )
        adapter = connect(
            account,
            variables=os.environ if variables is None else variables,
            door=door,
            timeout=timeout or policy.call_timeout,
            transport=transport,
        )
        return GuardedPlatform(
            adapter,
            account=account.name,
            policy=policy,
            breaker=breaker,
            capabilities=spec_for(account.platform).capabilities,
            log=log,
        )
