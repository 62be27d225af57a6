"""Mastodon's per-account API rate limit: fixed, epoch-aligned windows (rack-attack style).

The count is one SQL upsert per request, so it is exact however many client processes
hammer the same account, and it survives a restart: a client cannot escape its budget by
crashing the server. Every request counts, including those answered 429 (that is how a
client that ignores the headers keeps itself locked out).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

from social_pipelines.sandbox.db import Database
from social_pipelines.sandbox.ids import iso_micro

SETTING = "rate_limit"


@dataclass(frozen=True)
class RateLimitConfig:
    enabled: bool = True
    limit: int = 300
    window_seconds: float = 300.0

    def to_json(self) -> dict[str, object]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RateLimitConfig:
        return cls(
            enabled=bool(data.get("enabled", True)),
            limit=int(data.get("limit", 300)),
            window_seconds=float(data.get("window_seconds", 300.0)),
        )

    def validated(self) -> RateLimitConfig:
        if self.limit < 1:
            raise ValueError("limit must be at least 1")
        if not self.window_seconds > 0:
            raise ValueError("window_seconds must be positive")
        return self


@dataclass(frozen=True)
class RateDecision:
    allowed: bool
    limit: int
    remaining: int
    reset_at: float

    def headers(self) -> dict[str, str]:
        return {
            "X-RateLimit-Limit": str(self.limit),
            "X-RateLimit-Remaining": str(self.remaining),
            "X-RateLimit-Reset": iso_micro(self.reset_at),
        }

    def retry_after(self, now: float) -> int:
        """Whole seconds until the window resets, at least 1."""
        return max(1, math.ceil(self.reset_at - now))


class RateLimiter:
    def __init__(self, db: Database, config: RateLimitConfig) -> None:
        self.db = db
        self.config = config

    def configure(self, config: RateLimitConfig) -> None:
        """Apply and persist a new configuration; counting starts afresh."""
        self.config = config.validated()
        with self.db.transaction():
            self.db.set_setting(SETTING, self.config.to_json())
            self.db.execute("DELETE FROM rate_windows")

    def hit(self, bucket: str, now: float) -> RateDecision | None:
        """Count one request against `bucket` (call inside a transaction); None if disabled."""
        config = self.config
        if not config.enabled:
            return None
        window_no = math.floor(now / config.window_seconds)
        row = self.db.one(
            "INSERT INTO rate_windows(bucket, window_no, count) VALUES (?, ?, 1)"
            " ON CONFLICT(bucket, window_no) DO UPDATE SET count = count + 1 RETURNING count",
            (bucket, window_no),
        )
        assert row is not None
        count = int(row["count"])
        if count == 1:
            self.db.execute(
                "DELETE FROM rate_windows WHERE bucket = ? AND window_no < ?", (bucket, window_no)
            )
        return RateDecision(
            allowed=count <= config.limit,
            limit=config.limit,
            remaining=max(0, config.limit - count),
            reset_at=(window_no + 1) * config.window_seconds,
        )
