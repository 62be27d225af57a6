"""Building what every entry point runs on, one way: the resources, the CLI and `doctor`.

Plain Python, no Dagster: from configuration values to the state store, the connector
(breakers and shared rate limits) and the accounts and campaigns files. Resources hold
the values as their config and call `wire`; the CLI builds them from `Settings`
(`wire_settings`), so a command and a run can never disagree about where state lives.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from social_pipelines.accounts import AccountBook, load_accounts
from social_pipelines.calendar import CalendarLoad, load_calendar
from social_pipelines.campaigns import CampaignBook, load_campaigns
from social_pipelines.delivery import Deliverer, Prepare, prepare_reply
from social_pipelines.errors import SocialError
from social_pipelines.log import Log
from social_pipelines.models import ContentRules, Post
from social_pipelines.platforms.account import AccountBase
from social_pipelines.platforms.content import check_target, static_rules
from social_pipelines.platforms.policy import DAY, HOUR, PlatformPolicy
from social_pipelines.publishing.images import PostImages
from social_pipelines.publishing.intake import CheckTarget, SyncReport, sync_calendar
from social_pipelines.replies.drafting import Drafter
from social_pipelines.replies.llm import NAME as LLM
from social_pipelines.replies.llm import POLICY as LLM_POLICY
from social_pipelines.replies.llm import (
    ChatClient,
    LLMReplyWriter,
    LLMSettings,
    openai_rate_limits,
)
from social_pipelines.replies.template import TemplateReplyWriter
from social_pipelines.resilience.connector import Connector
from social_pipelines.resilience.door import AccountDoor
from social_pipelines.resilience.guarded import GuardedPlatform
from social_pipelines.settings import Settings
from social_pipelines.store import QuotaRule, StateStore
from social_pipelines.store.tokens import TokenStore

_LOG = logging.getLogger(__name__)


@dataclass(frozen=True)
class Wiring:
    store: StateStore
    connector: Connector
    accounts_file: Path
    campaigns_file: Path
    variables: Mapping[str, str] = field(repr=False)
    http_timeout: float = 10.0
    claim_lease: timedelta = timedelta(seconds=60)
    calendar_dir: Path | None = None
    default_timezone: str | None = None
    max_lateness: timedelta = timedelta(hours=6)
    media_cache_dir: Path | None = None

    def content_checker(self, book: AccountBook | None = None) -> CheckTarget:
        """Every reason a post cannot go to a target, under the rules of the target's
        platform: read from the platform where it tells them (a Mastodon instance's
        `/api/v2/instance`), its documented defaults where it does not or cannot be
        reached now (the publish step checks again then, against the live rules)."""
        accounts = book or self.accounts()
        rules: dict[str, ContentRules] = {}

        def rules_for(target: str) -> ContentRules:
            if target not in rules:
                account = accounts.get(target)
                try:
                    with self.connect(account) as platform:
                        rules[target] = platform.content_rules()
                except SocialError as error:
                    _LOG.warning(
                        f"content rules of {target}: {error}; checked against "
                        f"{account.platform}'s documented defaults"
                    )
                    rules[target] = static_rules(account.platform)
            return rules[target]

        def check(post: Post, target: str) -> list[str]:
            return [str(problem) for problem in check_target(post, target, rules_for(target))]

        return check

    def load_calendar(self, book: AccountBook | None = None) -> CalendarLoad | None:
        """The content calendar as it is now; None when none is configured."""
        if self.calendar_dir is None:
            return None
        return load_calendar(
            self.calendar_dir, book or self.accounts(), default_timezone=self.default_timezone
        )

    def sync_calendar(self) -> SyncReport | None:
        """Bring the outbox in line with the calendar; None when none is configured."""
        book = self.accounts()
        load = self.load_calendar(book)
        if load is None:
            return None
        return sync_calendar(self.store.outbox, load, self.content_checker(book))

    def images(self) -> PostImages:
        """Posts' images rendered per platform, cached beside the state store."""
        return PostImages(self.media_cache_dir or Path(".social_media_cache"))

    def accounts(self) -> AccountBook:
        """Read at every call: an edited file counts from the next step on."""
        return load_accounts(self.accounts_file, self.variables)

    def campaigns(self) -> CampaignBook:
        return load_campaigns(self.campaigns_file, self.accounts())

    def policy(self, account: AccountBase) -> PlatformPolicy:
        return self.connector.policy(account)

    @property
    def tokens(self) -> TokenStore:
        """Stored tokens and reconnect marks (sealed with SOCIAL_SECRET_KEY when set)."""
        return self.connector.tokens

    def connect(
        self, account: AccountBase, *, log: Log | None = None, verifying: bool = False
    ) -> GuardedPlatform:
        """`account` behind its breaker, retries and shared limits; use it with `with`.
        `log` gets what the door decides on the way (repeats, 429s): a run's own log.
        A marked account (`reconnect_needed`) connects only when `verifying`."""
        return self.connector.connect(
            account,
            variables=self.variables,
            timeout=self.http_timeout,
            log=log,
            verifying=verifying,
        )

    def drafter(
        self, platform: GuardedPlatform, llm: LLMSettings | None, *, log: Log | None = None
    ) -> Drafter:
        """Who writes a campaign's replies on `platform`, each once per delivery: the
        template, or the language model behind its own breaker, limits and door."""
        template = TemplateReplyWriter(length=platform.text_length)
        if llm is None:
            return Drafter(self.store.drafts, template, None, log=log)
        breaker = self.connector.breaker(LLM, llm.model, LLM_POLICY)
        door = AccountDoor(
            self.connector.rate_limits,
            breaker,
            platform=LLM,
            account=llm.model,
            policy=LLM_POLICY,
            log=log,
            read_limits=openai_rate_limits,
        )
        writer = LLMReplyWriter(
            ChatClient(llm, door=door), length=platform.text_length, platform=platform.name
        )
        return Drafter(self.store.drafts, template, writer, breaker=breaker, log=log)

    def deliverer(
        self,
        account: AccountBase,
        platform: GuardedPlatform,
        *,
        run_id: str | None,
        log: Log | None = None,
        prepare: Prepare = prepare_reply,
    ) -> Deliverer:
        """A deliverer for this account with its platform's posting quotas, settle time and
        the claim lease; open it with `with` so its heartbeat renews the claims. `prepare`
        makes what a claimed row creates (a reply's text; a publish's post and images)."""
        policy = self.policy(account)
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
            prepare=prepare,
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
    calendar_dir: Path | None = None,
    default_timezone: str | None = None,
    max_lateness: timedelta = timedelta(hours=6),
    media_cache_dir: Path | None = None,
    secret_key: str | None = None,
) -> Wiring:
    """Open the state store and the connector for these values (once per process each)."""
    store = StateStore.open(database_url)
    return Wiring(
        store=store,
        connector=Connector.for_store(
            store, bucket_path=bucket_path, overrides=policies, secret_key=secret_key
        ),
        accounts_file=accounts_file,
        campaigns_file=campaigns_file,
        variables=variables,
        http_timeout=http_timeout,
        claim_lease=timedelta(seconds=claim_lease_seconds),
        calendar_dir=calendar_dir,
        default_timezone=default_timezone,
        max_lateness=max_lateness,
        media_cache_dir=media_cache_dir,
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
        calendar_dir=settings.calendar_dir,
        default_timezone=settings.default_timezone,
        max_lateness=settings.publish_max_lateness,
        media_cache_dir=settings.media_cache_path,
        secret_key=settings.secret_key.get_secret_value() if settings.secret_key else None,
    )


def policies_json(policies: Mapping[str, Mapping[str, Any]]) -> str:
    """Policy overrides as resource config (a JSON object: no secret is ever in one)."""
    return json.dumps(policies, sort_keys=True)
