"""Dagster resources: thin wrappers that hand the plain-Python layers to ops.

Secrets never pass through here as config: tokens are read from the environment variable
an account names, and a database URL (which may hold a password) comes in as an `EnvVar`.
"""

from datetime import timedelta
from pathlib import Path

from dagster import ConfigurableResource

from social_pipelines.campaigns import AccountConfig, CampaignBook, load_campaigns
from social_pipelines.delivery import Deliverer
from social_pipelines.log import Log
from social_pipelines.platforms.base import Platform
from social_pipelines.replies.base import ReplyWriter
from social_pipelines.replies.template import TemplateReplyWriter
from social_pipelines.resilience.guards import Guards
from social_pipelines.resilience.policy import DAY, HOUR, PlatformPolicy
from social_pipelines.settings import get_settings
from social_pipelines.store import QuotaRule, StateStore


class StateStoreResource(ConfigurableResource):
    """The ledger and the rest of the state store (SQLite by default, PostgreSQL in
    production), shared by every run process."""

    database_url: str = ""

    def open(self) -> StateStore:
        return StateStore.open(self.database_url or get_settings().state_store_url)

    def guards(self) -> Guards:
        settings = get_settings()
        return Guards.for_store(
            self.open(), bucket_path=settings.bucket_path, overrides=settings.policies
        )


class PlatformsResource(ConfigurableResource):
    """Accounts and campaigns from the campaigns file, and platform clients that are
    breaker-protected, rate-limited and retried: the only way ops reach a platform."""

    state_store: StateStoreResource
    campaigns_file: str = ""
    http_timeout: float = 0.0

    def campaigns(self) -> CampaignBook:
        settings = get_settings()
        path = Path(self.campaigns_file) if self.campaigns_file else settings.campaigns_file
        return load_campaigns(path, settings.variables())

    def account(self, name: str) -> AccountConfig:
        return self.campaigns().accounts[name]

    def policy(self, account: AccountConfig) -> PlatformPolicy:
        return self.state_store.guards().policy(account.platform)

    def deliverer(
        self,
        account: AccountConfig,
        platform: Platform,
        *,
        run_id: str | None,
        log: Log | None = None,
    ) -> Deliverer:
        """A deliverer for this account with its platform's posting quotas, settle time and
        the claim lease; open it with `with` so its heartbeat renews the claims."""
        policy = self.policy(account)
        quotas = [
            QuotaRule(limit, timedelta(seconds=seconds))
            for limit, seconds in (
                (policy.quota_per_hour, HOUR),
                (policy.quota_per_day, DAY),
            )
            if limit is not None
        ]
        return Deliverer(
            self.state_store.open().ledger,
            platform,
            run_id=run_id,
            quotas=quotas,
            lease=timedelta(seconds=get_settings().claim_lease_seconds),
            settle=timedelta(seconds=policy.reconcile_settle_seconds),
            log=log,
        )

    def connect(self, account: AccountConfig, *, log: Log | None = None) -> Platform:
        """`log` gets what the door decides on the way (repeats, 429s): a run's own log."""
        settings = get_settings()
        return self.state_store.guards().connect(
            account,
            account.token(settings.variables()),
            timeout=self.http_timeout or settings.http_timeout,
            log=log,
        )


class ReplyWriterResource(ConfigurableResource):
    """Which writer drafts replies: the offline template writer by default."""

    writer: str = "template"

    def get(self, platform: Platform) -> ReplyWriter:
        if self.writer != "template":
            raise ValueError(f"reply writer {self.writer!r} is unknown; available: template")
        return TemplateReplyWriter(length=platform.text_length)
