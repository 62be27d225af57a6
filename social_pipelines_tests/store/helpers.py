"""Building blocks for the store tests: a settable clock, drafts, and the functions that
run in spawned processes (they must be importable by name in a fresh interpreter)."""

from __future__ import annotations

import multiprocessing
from datetime import UTC, datetime, timedelta
from typing import Any

from social_pipelines.models import DeliveryKind, Draft, delivery_id
from social_pipelines.store.state import StateStore

START = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
LEASE = timedelta(minutes=10)


class FakeClock:
    """A clock the test moves by hand: `clock()` is now, `advance()` moves it."""

    def __init__(self, now: datetime = START) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> datetime:
        self.now += timedelta(**delta)
        return self.now


def make_draft(
    subject: str = "post-1",
    *,
    text: str = "Thanks @alice!",
    account_key: str = "109@social.example",
    platform: str = "mastodon",
    kind: DeliveryKind = DeliveryKind.REPLY,
    campaign: str = "mentions",
) -> Draft:
    return Draft(
        delivery_id=delivery_id(platform, account_key, kind, subject),
        campaign=campaign,
        account="brand",
        platform=platform,
        account_key=account_key,
        kind=kind,
        subject=subject,
        text=text,
    )


def spawn_context() -> Any:
    return multiprocessing.get_context("spawn")


# -- run in child processes ----------------------------------------------------------------


def open_store_at_once(url: str, barrier: Any, queue: Any) -> None:
    """Open the store (creating its schema) as soon as every sibling is ready."""
    try:
        barrier.wait(timeout=60)
        store = StateStore(url)
        store.dispose()
        queue.put("ok")
    except BaseException as error:
        queue.put(f"{type(error).__name__}: {error}")


def claim_all(url: str, ids: list[str], run_id: str, barrier: Any, queue: Any) -> None:
    """Claim every delivery in `ids` once, starting together with the siblings."""
    try:
        store = StateStore(url)
        barrier.wait(timeout=60)
        results = [
            (did, str(store.ledger.claim(did, run_id=run_id, lease=LEASE).result)) for did in ids
        ]
        store.dispose()
        queue.put((run_id, results))
    except BaseException as error:
        queue.put((run_id, f"{type(error).__name__}: {error}"))
