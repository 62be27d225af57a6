"""Posting quotas, counted from the ledger's own rows: no second bookkeeping to drift.

An account's quota is used by its posts sent in the window, its sends in flight, and its
unknown outcomes of the window (they may well have landed). The count and the claim it
decides are one transaction, under a lock per account, so racing runs cannot overshoot a
quota together.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa

from social_pipelines.models import DeliveryState
from social_pipelines.store.schema import deliveries


@dataclass(frozen=True)
class QuotaRule:
    """At most `limit` posts per account in any `window`."""

    limit: int
    window: timedelta


# Counted on every claim: built once.
_c = deliveries.c
_OTHERS_OF_ACCOUNT = sa.and_(
    _c.platform == sa.bindparam("platform"),
    _c.account_key == sa.bindparam("account_key"),
    _c.delivery_id != sa.bindparam("delivery_id"),
)
_IN_FLIGHT = sa.select(sa.func.count()).where(
    _OTHERS_OF_ACCOUNT,
    _c.state == str(DeliveryState.SENDING),
    _c.lease_until >= sa.bindparam("now"),
)
_SENT_IN_WINDOW = sa.and_(
    _OTHERS_OF_ACCOUNT, _c.state == str(DeliveryState.SENT), _c.sent_at >= sa.bindparam("since")
)
_SENT_COUNT = sa.select(sa.func.count()).where(_SENT_IN_WINDOW)
_UNKNOWN_COUNT = sa.select(sa.func.count()).where(
    _OTHERS_OF_ACCOUNT,
    _c.state == str(DeliveryState.UNKNOWN),
    _c.updated_at >= sa.bindparam("since"),
)
_NTH_SENT = (
    sa.select(_c.sent_at)
    .where(_SENT_IN_WINDOW)
    .order_by(_c.sent_at)
    .limit(1)
    .offset(sa.bindparam("offset", type_=sa.Integer))
)


def sent_since(
    connection: sa.Connection,
    *,
    platform: str,
    account_key: str,
    since: datetime,
    excluding: str = "",
) -> int:
    """Posts of an account sent since `since`, but `excluding` (the delivery a quota
    decision is about): the first of what a quota counts."""
    return connection.execute(
        _SENT_COUNT,
        {
            "platform": platform,
            "account_key": account_key,
            "delivery_id": excluding,
            "since": since,
        },
    ).scalar_one()


def locked_quota_until(
    connection: sa.Connection,
    *,
    platform: str,
    account_key: str,
    delivery_id: str,
    quotas: Sequence[QuotaRule],
    now: datetime,
) -> datetime | None:
    """When the account of `delivery_id` may post again under `quotas`; None: now.

    Call it inside the writing transaction whose decision it informs: on PostgreSQL it
    takes the account's advisory lock until that transaction ends (SQLite's write lock
    already serialises every writer).
    """
    if not quotas:
        return None
    if connection.dialect.name == "postgresql":
        connection.execute(
            sa.text("SELECT pg_advisory_xact_lock(hashtext(:key))"),
            {"key": f"{platform}:{account_key}"},
        )
    mine = {"platform": platform, "account_key": account_key, "delivery_id": delivery_id}
    in_flight = connection.execute(_IN_FLIGHT, {**mine, "now": now}).scalar_one()
    latest: datetime | None = None
    for rule in quotas:
        window = {**mine, "since": now - rule.window}
        sent = sent_since(
            connection,
            platform=platform,
            account_key=account_key,
            since=window["since"],
            excluding=delivery_id,
        )
        unknown = connection.execute(_UNKNOWN_COUNT, window).scalar_one()
        used = sent + in_flight + unknown
        if used < rule.limit:
            continue
        # The window frees when enough of the sent rows have aged out of it; sends in
        # flight and unknown ones age out no sooner than the newest sent row.
        free_index = min(used - rule.limit, max(sent - 1, 0))
        oldest_to_free = connection.execute(_NTH_SENT, {**window, "offset": free_index}).scalar()
        frees_at = (oldest_to_free or now) + rule.window
        latest = frees_at if latest is None else max(latest, frees_at)
    return latest


def used_by_account(
    engine: sa.Engine, *, since: datetime, now: datetime
) -> dict[tuple[str, str], int]:
    """What `locked_quota_until` counts for every account at once, by (platform, account
    name): posts sent since `since`, sends in flight now, unknown outcomes since `since`.
    A read for people (`doctor`), never a decision: decisions count under the lock."""
    counted = sa.or_(
        sa.and_(_c.state == str(DeliveryState.SENT), _c.sent_at >= since),
        sa.and_(_c.state == str(DeliveryState.SENDING), _c.lease_until >= now),
        sa.and_(_c.state == str(DeliveryState.UNKNOWN), _c.updated_at >= since),
    )
    query = (
        sa.select(_c.platform, _c.account, sa.func.count())
        .where(counted)
        .group_by(_c.platform, _c.account)
    )
    with engine.connect() as connection:
        return {(row[0], row[1]): row[2] for row in connection.execute(query)}
