"""An account's notifications, read the way `GET /api/v1/notifications` pages them.

The sandbox makes only `mention` notifications (`Statuses` writes one for each local
account a new status mentions); a type filter naming other types simply finds nothing,
as it would on a Mastodon account that has none of them.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

from social_pipelines.sandbox.db import Database
from social_pipelines.sandbox.statuses import Page

# Every type Mastodon 4.3 knows: `types[]`/`exclude_types[]` values outside it are ignored.
NOTIFICATION_TYPES = frozenset(
    {
        "mention",
        "status",
        "reblog",
        "follow",
        "follow_request",
        "favourite",
        "poll",
        "update",
        "admin.sign_up",
        "admin.report",
        "severed_relationships",
        "moderation_warning",
    }
)


@dataclass(frozen=True)
class NotificationRecord:
    id: int
    account_id: int
    from_account_id: int
    type: str
    status_id: int | None
    created_at_ms: int

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> NotificationRecord:
        return cls(
            id=int(row["id"]),
            account_id=int(row["account_id"]),
            from_account_id=int(row["from_account_id"]),
            type=row["type"],
            status_id=row["status_id"],
            created_at_ms=int(row["created_at_ms"]),
        )


class Notifications:
    def __init__(self, db: Database) -> None:
        self.db = db

    def of_account(
        self,
        account_id: int,
        page: Page,
        *,
        types: list[str] | None = None,
        exclude_types: list[str] | None = None,
        from_account_id: int | None = None,
    ) -> list[NotificationRecord]:
        """Newest first; `types` (empty: every type) less `exclude_types`, as Mastodon's
        `browserable` scope combines them, and paged by notification id like a timeline."""
        wanted = set(types or NOTIFICATION_TYPES) & NOTIFICATION_TYPES
        wanted -= set(exclude_types or ())
        if not wanted:
            return []
        marks = ",".join("?" * len(wanted))
        clauses = ["account_id = ?", f"type IN ({marks})"]
        values: list[object] = [account_id, *sorted(wanted)]
        if from_account_id is not None:
            clauses.append("from_account_id = ?")
            values.append(from_account_id)
        if page.max_id is not None:
            clauses.append("id < ?")
            values.append(page.max_id)
        if page.since_id is not None:
            clauses.append("id > ?")
            values.append(page.since_id)
        if page.min_id is not None:
            clauses.append("id > ?")
            values.append(page.min_id)
        order = "ASC" if page.min_id is not None else "DESC"
        sql = (
            f"SELECT * FROM notifications WHERE {' AND '.join(clauses)}"  # noqa: S608
            f" ORDER BY id {order} LIMIT ?"
        )
        records = [
            NotificationRecord.from_row(row) for row in self.db.all(sql, [*values, page.limit])
        ]
        if order == "ASC":
            records.reverse()
        return records
