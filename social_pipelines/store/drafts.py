"""Replies written once per delivery: a retried or re-executed run reuses the stored draft
instead of asking the writer (a language model, which costs and may answer otherwise)
again. The first draft stored for a delivery is kept, whichever process stored it."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import sqlalchemy as sa

from social_pipelines.clock import Clock, utcnow
from social_pipelines.store.engine import for_writing
from social_pipelines.store.schema import reply_drafts
from social_pipelines.store.sql import insert_missing

# `text` is what `writer` wrote (`reason`: why the template stood in, if it did).
ACCEPTED = "accepted"
# The model's draft was refused (`reason` names the filter and quotes it); `text` is the
# template's, which answers instead.
REFUSED = "refused"
_d = reply_drafts.c


@dataclass(frozen=True)
class StoredDraft:
    delivery_id: str
    campaign: str
    writer: str  # who wrote `text`: llm or template
    text: str
    status: str  # ACCEPTED or REFUSED
    reason: str | None = None


class DraftStore:
    def __init__(self, engine: sa.Engine, *, clock: Clock = utcnow) -> None:
        self.engine = engine
        self.writer = for_writing(engine)
        self.clock = clock

    def get_many(self, delivery_ids: Iterable[str]) -> dict[str, StoredDraft]:
        ids = list(delivery_ids)
        if not ids:
            return {}
        with self.engine.connect() as connection:
            rows = connection.execute(sa.select(reply_drafts).where(_d.delivery_id.in_(ids))).all()
        return {
            row.delivery_id: StoredDraft(
                delivery_id=row.delivery_id,
                campaign=row.campaign,
                writer=row.writer,
                text=row.text,
                status=row.status,
                reason=row.reason,
            )
            for row in rows
        }

    def keep(self, draft: StoredDraft) -> StoredDraft:
        """Store `draft` unless one is stored for its delivery (another process may have
        raced us to it); the stored one either way, so every process posts the same text."""
        with self.writer.begin() as connection:
            insert_missing(
                connection,
                reply_drafts,
                {
                    "delivery_id": draft.delivery_id,
                    "campaign": draft.campaign,
                    "writer": draft.writer,
                    "text": draft.text,
                    "status": draft.status,
                    "reason": draft.reason,
                    "created_at": self.clock(),
                },
            )
        return self.get_many([draft.delivery_id])[draft.delivery_id]
