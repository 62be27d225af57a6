"""Helpers shared by the benchmarks: the sandbox, the account, the full stack, statistics."""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from datetime import timedelta
from functools import cached_property
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from social_pipelines.delivery import Deliverer
from social_pipelines.models import DeliveryKind, DeliveryState, Draft, Identity, delivery_id
from social_pipelines.platforms.mastodon import MastodonAccount
from social_pipelines.resilience.connector import Connector
from social_pipelines.resilience.guarded import GuardedPlatform
from social_pipelines.sandbox.accounts import BRAND, token_for
from social_pipelines.store import QuotaRule, StateStore
from social_pipelines.store.schema import deliveries

REPLY_TEXT = "Thanks for asking! Dagster keeps every run and its config, so replays are easy."


def account_config(sandbox_url: str) -> MastodonAccount:
    """The sandbox's posting account as the accounts file would declare it."""
    return MastodonAccount(
        name=BRAND, platform="mastodon", instance_url=sandbox_url, token_env="BENCH_TOKEN"
    )


def seed_subjects(sandbox: Any, count: int, *, prefix: str) -> list[str]:
    """Seed `count` posts by another account to reply to; returns their ids."""
    ids: list[str] = []
    for start in range(0, count, 2000):
        posts = [
            {"author": "datadiana", "text": f"Is Dagster worth it? ({prefix} {i})"}
            for i in range(start, min(count, start + 2000))
        ]
        ids += sandbox.seed(posts)["statuses"]
    return ids


class FullStack:
    """One process's full stack: state store, connector, guarded platform, deliverer.

    Build it in the process that uses it, never before a fork (engines, buckets, locks).
    """

    def __init__(
        self,
        state_dir: Path,
        sandbox_url: str,
        *,
        overrides: Mapping[str, Mapping[str, Any]],
        quotas: Sequence[QuotaRule] = (),
    ) -> None:
        self.store = StateStore(f"sqlite:///{state_dir / 'state.db'}")
        self.connector = Connector(
            self.store, bucket_path=state_dir / "buckets.db", overrides=overrides
        )
        self.platform: GuardedPlatform = self.connector.connect(
            account_config(sandbox_url), variables={"BENCH_TOKEN": token_for(BRAND)}
        )
        self.deliverer = Deliverer(self.store.ledger, self.platform, run_id="bench", quotas=quotas)

    @cached_property
    def identity(self) -> Identity:
        """The account as the platform says (one read through the whole stack)."""
        return self.platform.whoami()

    def sent_rows(self) -> int:
        """Sent deliveries of the account in the ledger: the rows every quota check counts
        over (`store/quotas.py`), so the size the timings were taken at."""
        c = deliveries.c
        with self.store.engine.connect() as connection:
            return connection.execute(
                sa.select(sa.func.count()).where(
                    c.platform == self.identity.platform,
                    c.account_key == self.identity.stable_key,
                    c.state == str(DeliveryState.SENT),
                )
            ).scalar_one()

    def draft(self, subject: str, text: str = REPLY_TEXT) -> Draft:
        """A reply to post `subject`: a new delivery for every new subject."""
        key = self.identity.stable_key
        return Draft(
            delivery_id=delivery_id(self.identity.platform, key, DeliveryKind.REPLY, subject),
            campaign="bench",
            account=BRAND,
            platform=self.identity.platform,
            account_key=key,
            kind=DeliveryKind.REPLY,
            subject=subject,
            text=text,
        )

    def close(self) -> None:
        self.platform.close()
        self.connector.rate_limits.close()
        self.store.dispose()


def high_quotas() -> list[QuotaRule]:
    """Quotas that are checked on every claim but never reached."""
    return [QuotaRule(10_000_000, timedelta(hours=1)), QuotaRule(100_000_000, timedelta(days=1))]


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


def spread(values: Sequence[float]) -> str:
    """min..max of a series, for judging the noise around a median."""
    return f"{min(values):.0f}..{max(values):.0f}" if values else "-"
