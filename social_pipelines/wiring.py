"""Building what every entry point runs on, one way: the resources, the CLI and `doctor`.

Plain Python, no Dagster: from configuration values to the state store, the connector
(breakers and shared rate limits) and the accounts and campaigns files. Resources hold
the values as their config and call `wire`; the CLI builds them from `Settings`
(`wire_settings`), so a command and a run can never disagree about where state lives.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from social_pipelines.accounts import AccountBook, load_accounts
from social_pipelines.campaigns import CampaignBook, load_campaigns
from social_pipelines.delivery import Deliverer
from social_pipelines.log import Log
from social_pipelines.platforms.account import AccountBase
from social_pipelines.platforms.policy import DAY, HOUR, PlatformPolicy
from social_pipelines.resilience.connector import Connector
from social_pipelines.resilience.guarded import GuardedPlatform
from social_pipelines.settings import Settings
from social_pipelines.store import QuotaRule, StateStore


@dataclass(frozen=True)
class Wiring:
    store: StateStore
    connector: Connector
    accounts_file: Path
    campaigns_file: Path
    variables: Mapping[str, str] = field(repr=False)
    http_timeout: float = 10.0
    claim_lease: timedelta = timedelta(seconds=60)

    def accounts(self) -> AccountBook:
        """Read at every call: an edited file counts from the next step on."""
        return load_accounts(self.accounts_file, self.variables)

    def campaigns(self) -> CampaignBook:
        return load_campaigns(self.campaigns_file, self.accounts())

    def policy(self, platform: str) -> PlatformPolicy:
        return self.connector.policy(platform)

    def connect(self, account: AccountBase, *, log: Log | None = None) -> GuardedPlatform:
        """`account` behind its breaker, retries and shared limits; use it with `with`.
        `log` gets what the door decides on the way (repeats, 429s): a run's own log."""
        return self.connector.connect(
            account, variables=self.variables, timeout=self.http_timeout, log=log
        )

    def deliverer(
        self,
        account: AccountBase,
        platform: GuardedPlatform,
        *,
        run_id: str | None,
        log: Log | None = None,
    ) -> Deliverer:
        """A deliverer for this account with its platform's posting quotas, settle time and
        the claim lease; open it with `with` so its heartbeat renews the claims."""
        policy = self.policy(account.platform)
        quotas = [
            QuotaRule(limit, timedelta(seconds=seconds))
            for limit, seconds in ((policy.quota_per_hour, HOUR), (policy.quota_per_day, DAY))
            if limit is not None
        ]
        return Deliverer(
            self.store.ledger,
            platform,
            run_id=run_id,
            quotas=quotas,
            lease=self.claim_lease,
            settle=timedelta(seconds=policy.reconcile_settle_seconds),
            log=log,
        )


def wire(
    *,
    database_url: str,
    bucket_path: Path,
    accounts_file: Path,
    campaigns_file: Path,
    variables: Mapping[str, str],
    policies: Mapping[str, Mapping[str, Any]] | None = None,
    http_timeout: float = 10.0,
    claim_lease_seconds: float = 60.0,
) -> Wiring:
    """Open the state store and the connector for these values (once per process each)."""
    store = StateStore.open(database_url)
    return Wiring(
        store=store,
        connector=Connector.for_store(store, bucket_path=bucket_path, overrides=policies),
        accounts_file=accounts_file,
        campaigns_file=campaigns_file,
        variables=variables,
        http_timeout=http_timeout,
        claim_lease=timedelta(seconds=claim_lease_seconds),
    )


def wire_settings(settings: Settings) -> Wiring:
    return wire(
        database_url=settings.state_store_url,
        bucket_path=settings.bucket_path,
        accounts_file=settings.accounts_file,
        campaigns_file=settings.campaigns_file,
        variables=settings.variables(),
        policies=settings.policies,
        http_timeout=settings.http_timeout,
        claim_lease_seconds=settings.claim_lease_seconds,
    )


def policies_json(policies: Mapping[str, Mapping[str, Any]]) -> str:
    """Policy overrides as resource config (a JSON object: no secret is ever in one)."""
    return json.dumps(policies, sort_keys=True)
