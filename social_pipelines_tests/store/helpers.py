"""Building blocks for the store tests: a settable clock, drafts, and the functions that
run in spawned processes (they must be importable by name in a fresh interpreter)."""

from __future__ import annotations

import multiprocessing
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import sqlalchemy as sa

from social_pipelines.models import DeliveryKind, Draft, delivery_id
from social_pipelines.store.migrate import VERSION_TABLE
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
    reference: str | None = None,
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
        reference=reference,
    )


def revision_rows(engine: sa.Engine) -> list[str]:
    """The rows of the store's Alembic version table: exactly one, its revision."""
    with engine.connect() as connection:
        return list(
            connection.exec_driver_sql(f"SELECT version_num FROM {VERSION_TABLE}").scalars()
        )


T = TypeVar("T")


def at_once_in_threads(count: int, work: Callable[[], T]) -> tuple[list[T], list[BaseException]]:
    """Run `work` in `count` threads released together: what they returned, what they raised."""
    barrier = threading.Barrier(count)
    results: list[T] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def run() -> None:
        try:
            barrier.wait(timeout=30)
            result = work()
            with lock:
                results.append(result)
        except BaseException as error:
            with lock:
                errors.append(error)

    threads = [threading.Thread(target=run) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return results, errors


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
