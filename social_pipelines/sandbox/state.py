"""The sandbox's configuration and the long-lived objects every request handler shares."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from social_pipelines.sandbox.accounts import Accounts
from social_pipelines.sandbox.db import Database
from social_pipelines.sandbox.entities import Entities
from social_pipelines.sandbox.faults import FaultInjector
from social_pipelines.sandbox.idempotency import IdempotencyKeys
from social_pipelines.sandbox.ids import now_ms
from social_pipelines.sandbox.notifications import Notifications
from social_pipelines.sandbox.processing import MediaProcessing
from social_pipelines.sandbox.ratelimit import SETTING as RATE_SETTING
from social_pipelines.sandbox.ratelimit import RateLimitConfig, RateLimiter
from social_pipelines.sandbox.statuses import Statuses

DEFAULT_DOMAIN = "sandbox.local"
DEFAULT_MAX_CHARACTERS = 500


@dataclass(frozen=True)
class SandboxConfig:
    db_path: Path
    domain: str = DEFAULT_DOMAIN
    # None: keep what the database has (an earlier start or the admin API set it), else
    # Mastodon's default. Given: applied and stored.
    rate_limit: RateLimitConfig | None = None
    seed: int = 0
    max_characters: int = DEFAULT_MAX_CHARACTERS
    # None: keep what the database has (default: honoured); given: applied and stored.
    honour_idempotency_keys: bool | None = None
    # None: keep what the database has (default: 0, uploads processed at once); given:
    # applied and stored.
    media_processing_seconds: float | None = None


class Sandbox:
    def __init__(self, config: SandboxConfig) -> None:
        self.config = config
        self.db = Database(config.db_path)
        self.accounts = Accounts(self.db)
        self.accounts.ensure_builtin()
        self.statuses = Statuses(self.db, config.domain)
        if self.db.previous_version < 3:  # written before tags and notifications existed
            self.statuses.index_all()
        self.notifications = Notifications(self.db)
        self.entities = Entities(self.accounts, self.statuses, config.domain, config.max_characters)
        stored = self.db.get_setting(RATE_SETTING)
        if config.rate_limit is not None:
            self.startup_rate_limit = config.rate_limit.validated()
        elif stored:
            self.startup_rate_limit = RateLimitConfig.from_json(stored)
        else:
            self.startup_rate_limit = RateLimitConfig()
        self.limiter = RateLimiter(self.db, self.startup_rate_limit)
        if stored is None or config.rate_limit is not None:
            with self.db.transaction():
                self.db.set_setting(RATE_SETTING, self.startup_rate_limit.to_json())
        self.faults = FaultInjector(self.db, config.seed)
        self.idempotency = IdempotencyKeys(self.db, honoured=config.honour_idempotency_keys)
        self.processing = MediaProcessing(self.db, seconds=config.media_processing_seconds)
        with self.db.transaction():
            self.idempotency.purge(now_ms())

    def reset(self) -> None:
        """Back to a freshly started server: no statuses, media, keys, counters or faults,
        the rate limit, idempotency and media processing settings this process started
        with; accounts stay."""
        with self.db.transaction():
            for table in (
                "media",
                "idempotency_keys",
                "rate_windows",
                "counters",
                "status_tags",
                "notifications",
            ):
                self.db.execute(f"DELETE FROM {table}")  # noqa: S608
            self.db.execute("DELETE FROM statuses")
        self.limiter.configure(self.startup_rate_limit)
        self.idempotency.configure(honoured=self.idempotency.startup_honoured)
        self.processing.configure(self.processing.startup_seconds)
        self.faults.clear()

    def close(self) -> None:
        self.db.close()
