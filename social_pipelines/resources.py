"""Dagster resources: thin wrappers that hand the plain-Python layers to ops.

`definitions.py` builds them fully configured from the settings, once; here nothing reads
settings. Secrets never pass through as config values: tokens are read from the variables
the accounts file names, and a database URL (which may hold a password) or a sandbox token
set in the environment comes in as an `EnvVar`.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from dagster import ConfigurableResource
from pydantic import Field, SecretStr

from social_pipelines.accounts import AccountBook
from social_pipelines.alerts import AlertConfig, Alerter
from social_pipelines.campaigns import CampaignBook
from social_pipelines.delivery import Deliverer, Prepare, prepare_reply
from social_pipelines.log import Log
from social_pipelines.platforms.account import AccountBase
from social_pipelines.platforms.policy import PlatformPolicy
from social_pipelines.replies.drafting import Drafter
from social_pipelines.replies.llm import LLMSettings
from social_pipelines.resilience.guarded import GuardedPlatform
from social_pipelines.settings import credential_variables
from social_pipelines.store import StateStore
from social_pipelines.wiring import Wiring, wire


class StateStoreResource(ConfigurableResource):
    """The ledger and the rest of the state store (SQLite by default, PostgreSQL in
    production), shared by every run process."""

    database_url: str

    def open(self) -> StateStore:
        return StateStore.open(self.database_url)


class PlatformsResource(ConfigurableResource):
    """Accounts and campaigns from their files, and platform clients that are
    breaker-protected, rate-limited and retried: the only way ops reach a platform."""

    state_store: StateStoreResource
    accounts_file: str
    campaigns_file: str
    bucket_path: str
    sandbox_url: str
    sandbox_token: str = ""
    policies: str = "{}"  # JSON: per-platform policy overrides
    http_timeout: float = 10.0
    claim_lease_seconds: float = 60.0
    calendar_dir: str = ""  # empty: no content calendar
    default_timezone: str = ""
    publish_max_lateness_seconds: float = 6 * 3600.0
    media_cache_dir: str = ""
    # SOCIAL_SECRET_KEY, always by EnvVar (never a config value), and never in a repr.
    secret_key: str = Field(default="", repr=False)

    def wiring(self) -> Wiring:
        overrides: dict[str, dict[str, Any]] = json.loads(self.policies)
        return wire(
            database_url=self.state_store.database_url,
            bucket_path=Path(self.bucket_path),
            accounts_file=Path(self.accounts_file),
            campaigns_file=Path(self.campaigns_file),
            variables=credential_variables(self.sandbox_url, self.sandbox_token),
            policies=overrides,
            http_timeout=self.http_timeout,
            claim_lease_seconds=self.claim_lease_seconds,
            calendar_dir=Path(self.calendar_dir) if self.calendar_dir else None,
            default_timezone=self.default_timezone or None,
            max_lateness=timedelta(seconds=self.publish_max_lateness_seconds),
            media_cache_dir=Path(self.media_cache_dir) if self.media_cache_dir else None,
            secret_key=self.secret_key or None,
        )

    def accounts(self) -> AccountBook:
        return self.wiring().accounts()

    def campaigns(self) -> CampaignBook:
        return self.wiring().campaigns()

    def account(self, name: str) -> AccountBase:
        return self.accounts().get(name)

    def policy(self, account: AccountBase) -> PlatformPolicy:
        return self.wiring().policy(account)

    def connect(self, account: AccountBase, *, log: Log | None = None) -> GuardedPlatform:
        """Open it with `with`; `log` gets the door's decisions (repeats, 429s)."""
        return self.wiring().connect(account, log=log)

    def deliverer(
        self,
        account: AccountBase,
        platform: GuardedPlatform,
        *,
        run_id: str | None,
        log: Log | None = None,
        prepare: Prepare = prepare_reply,
    ) -> Deliverer:
        return self.wiring().deliverer(account, platform, run_id=run_id, log=log, prepare=prepare)


class ReplyWriterResource(ConfigurableResource):
    """Who writes replies: the template, and for `writer = "llm"` campaigns the language
    model at `llm_base_url` (OpenAI-compatible). The key comes in by `EnvVar` only."""

    llm_base_url: str = ""
    llm_model: str = ""
    # SOCIAL_LLM_API_KEY, always by EnvVar (never a config value); never in a repr.
    llm_api_key: str = Field(default="", repr=False)
    llm_timeout: float = 60.0
    llm_max_tokens_field: str = "max_completion_tokens"  # or max_tokens (Ollama)

    def llm(self) -> LLMSettings | None:
        if not (self.llm_base_url and self.llm_model):
            return None
        return LLMSettings(
            base_url=self.llm_base_url,
            model=self.llm_model,
            api_key=SecretStr(self.llm_api_key) if self.llm_api_key else None,
            timeout=self.llm_timeout,
            max_tokens_field="max_tokens"
            if self.llm_max_tokens_field == "max_tokens"
            else "max_completion_tokens",
        )

    def drafter(
        self, platforms: PlatformsResource, platform: GuardedPlatform, *, log: Log | None = None
    ) -> Drafter:
        return platforms.wiring().drafter(platform, self.llm(), log=log)


class AlertsResource(ConfigurableResource):
    """Where alerts go: the generic JSON webhook and Slack's incoming webhook (their URLs
    are secrets, by `EnvVar` only and never in a repr), or the event log when neither is
    set; the alert outbox is in the state store."""

    state_store: StateStoreResource
    webhook_url: str = Field(default="", repr=False)
    slack_webhook_url: str = Field(default="", repr=False)
    ui_base_url: str = "http://127.0.0.1:3000"
    rate_per_minute: int = 10

    def config(self) -> AlertConfig:
        return AlertConfig(
            webhook_url=SecretStr(self.webhook_url) if self.webhook_url else None,
            slack_webhook_url=SecretStr(self.slack_webhook_url) if self.slack_webhook_url else None,
            ui_base_url=self.ui_base_url,
            rate_per_minute=self.rate_per_minute,
        )

    def alerter(self) -> Alerter:
        return Alerter(self.state_store.open().alerts, self.config())


class HistoryResource(ConfigurableResource):
    """How long finished runs are kept (SOCIAL_RUN_RETENTION_DAYS; 0: forever)."""

    run_retention_days: float = 90.0

    def cutoff(self, now: datetime) -> datetime | None:
        """Runs that finished before this are deleted; None: every run is kept."""
        if self.run_retention_days <= 0:
            return None
        return now - timedelta(days=self.run_retention_days)
