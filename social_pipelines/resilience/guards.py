"""Building guarded platforms: one breaker per platform account, shared rate buckets.

One `Guards` per process and state store: breakers and buckets are cheap handles onto
shared state (the store, the bucket file or tables), built in the process that uses them.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from social_pipelines.campaigns import AccountConfig
from social_pipelines.log import Log
from social_pipelines.platforms.registry import connect
from social_pipelines.resilience.breaker import SharedBreaker
from social_pipelines.resilience.guarded import GuardedPlatform
from social_pipelines.resilience.limits import RateLimits, RequestGate
from social_pipelines.resilience.policy import PlatformPolicy, policy_for
from social_pipelines.store.state import StateStore


def breaker_name(platform: str, account: str) -> str:
    return f"{platform}:{account}"


class Guards:
    _instances: dict[tuple[int, str], Guards] = {}
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
            self.limits = RateLimits(store.engine, postgres_url=store.url)
        else:
            self.limits = RateLimits(store.engine, sqlite_path=bucket_path)
        self._breakers: dict[str, SharedBreaker] = {}

    @classmethod
    def for_store(
        cls,
        store: StateStore,
        *,
        bucket_path: Path,
        overrides: Mapping[str, Mapping[str, Any]] | None = None,
    ) -> Guards:
        key = (os.getpid(), store.url)
        with cls._lock:
            if key not in cls._instances:
                cls._instances[key] = cls(store, bucket_path=bucket_path, overrides=overrides)
            return cls._instances[key]

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
        account: AccountConfig,
        token: SecretStr,
        *,
        timeout: float | None = None,
        log: Log | None = None,
    ) -> GuardedPlatform:
        policy = self.policy(account.platform)

        gate = RequestGate(self.limits, account.platform, account.name, policy)
        adapter = connect(
            account,
            token,
            timeout=timeout or policy.call_timeout,
            on_rate_limit=gate.answered,
            before_request=gate,
        )
        return GuardedPlatform(
            adapter,
            account=account.name,
            policy=policy,
            breaker=self.breaker(account.platform, account.name),
            limits=self.limits,
            gate=gate,
            log=log,
        )
