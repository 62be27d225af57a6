"""The outbox: posts to publish, their revisions, and which of them the sensor looks at.

A post's content is stored as the author wrote it; every change of it is a new revision.
What went out is not kept here but in the ledger (one `publish` delivery per target), so
the outbox never has a second idea of what was sent. Two columns make the hot questions
cheap: `status` (open, done, missed, cancelled) and `next_check_at`, the time the due-posts
sensor looks at an open post again, both on one index.
"""

from __future__ import annotations

import builtins
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

import sqlalchemy as sa

from social_pipelines.clock import Clock, utcnow
from social_pipelines.models import DeliveryKind, DeliveryState, Post, publish_subject
from social_pipelines.store.engine import for_writing
from social_pipelines.store.records import DeliveryRecord
from social_pipelines.store.schema import deliveries, post_revisions, posts
from social_pipelines.store.sql import insert_missing

_p = posts.c
_d = deliveries.c
_IDS_PER_QUERY = 500
# A delivery in these states is out, or may be: the post's content is frozen from then on.
MAYBE_OUT = (str(DeliveryState.SENT), str(DeliveryState.SENDING), str(DeliveryState.UNKNOWN))


class OutboxStatus(StrEnum):
    OPEN = "open"  # waiting for its time, or publishing
    DONE = "done"  # every target settled (sent, dead, refused or cancelled)
    MISSED = "missed"  # found too late; never sent unless forced
    CANCELLED = "cancelled"


class Origin(StrEnum):
    CLI = "cli"
    CALENDAR = "calendar"


class SaveOutcome(StrEnum):
    CREATED = "created"
    REVISED = "revised"
    UNCHANGED = "unchanged"
    # The post went out (or may have): the edit is recorded as a revision, never sent.
    CHANGED_AFTER_PUBLISHING = "changed_after_publishing"
    # Cancelled by a person (`cancel`): the calendar does not bring it back.
    KEPT_CANCELLED = "kept_cancelled"
    # The id belongs to a post from elsewhere (the CLI, another calendar file).
    CONFLICT = "conflict"


@dataclass(frozen=True)
class PostRecord:
    """A `posts` row: the revision in effect and what the outbox knows about it."""

    post: Post
    revision: int
    latest_revision: int
    latest_hash: str
    status: OutboxStatus
    status_reason: str | None
    origin: Origin
    source: str
    refused: dict[str, str]
    next_check_at: datetime
    created_at: datetime
    updated_at: datetime

    @property
    def post_id(self) -> str:
        return self.post.id

    @property
    def subjects(self) -> dict[str, str]:
        """The ledger subject of each target, by target."""
        return {target: publish_subject(self.post.id, target) for target in self.post.targets}

    @classmethod
    def from_row(cls, row: sa.Row) -> PostRecord:
        return cls(
            post=Post.model_validate_json(row.content),
            revision=row.revision,
            latest_revision=row.latest_revision,
            latest_hash=row.latest_hash,
            status=OutboxStatus(row.status),
            status_reason=row.status_reason,
            origin=Origin(row.origin),
            source=row.source,
            refused=json.loads(row.refused or "{}"),
            next_check_at=row.next_check_at,
            created_at=row.created_at,
            updated_at=row.updated_at,
        )


@dataclass(frozen=True)
class RevisionRecord:
    post: Post
    revision: int
    origin: Origin
    source: str
    note: str | None
    created_at: datetime


@dataclass(frozen=True)
class SaveResult:
    outcome: SaveOutcome
    record: PostRecord | None
    detail: str = ""


@dataclass
class PostDeliveries:
    """A post's ledger rows, by target (a target without a row has not been planned)."""

    by_target: dict[str, DeliveryRecord] = field(default_factory=dict)


class Outbox:
    """Reads and writes posts; every write is one short transaction."""

    def __init__(self, engine: sa.Engine, *, clock: Clock = utcnow) -> None:
        self.engine = engine
        self.writer = for_writing(engine)
        self.clock = clock

    # -- writing -------------------------------------------------------------------------

    def save(
        self,
        post: Post,
        *,
        origin: Origin,
        source: str = "",
        refused: Mapping[str, str] | None = None,
        reopen_withdrawn: bool = False,
    ) -> SaveResult:
        """Add a post or revise it, atomically against a racing save, cancel or send.

        A post that is (or may be) out keeps its content: the edit becomes a revision with a
        note, and the outcome says so. A post cancelled by a person stays cancelled; one
        withdrawn from the calendar (its entry removed) comes back when `reopen_withdrawn`
        (its entry is there again).
        """
        now = self.clock()
        content = post.model_dump_json()
        digest = post.content_hash()
        refused_json = json.dumps(dict(sorted((refused or {}).items())))
        with self.writer.begin() as connection:
            # A racing first save (a sensor tick and `calendar sync`) inserts once: the loser
            # reads the winner's row, locked, and goes on as a revision of it.
            created = insert_missing(
                connection,
                posts,
                {
                    "post_id": post.id,
                    "revision": 1,
                    "latest_revision": 1,
                    "latest_hash": digest,
                    "content": content,
                    "at": post.at,
                    "status": str(OutboxStatus.OPEN),
                    "status_reason": None,
                    "origin": str(origin),
                    "source": source,
                    "refused": refused_json,
                    "next_check_at": post.at,
                    "created_at": now,
                    "updated_at": now,
                },
            )
            if created:
                _add_revision(connection, post, 1, content, digest, origin, source, None, now)
                return SaveResult(SaveOutcome.CREATED, _get(connection, post.id))
            row = connection.execute(
                sa.select(posts).where(_p.post_id == post.id).with_for_update()
            ).one()
            if row.origin != str(origin) or (origin == Origin.CALENDAR and row.source != source):
                where = "the command line" if row.origin == str(Origin.CLI) else row.source
                return SaveResult(
                    SaveOutcome.CONFLICT,
                    PostRecord.from_row(row),
                    f"id {post.id!r} is already used by a post from {where}",
                )
            withdrawn = row.status == str(OutboxStatus.CANCELLED)
            if withdrawn and not (reopen_withdrawn and row.status_reason == WITHDRAWN):
                return SaveResult(SaveOutcome.KEPT_CANCELLED, PostRecord.from_row(row))
            if row.latest_hash == digest and not withdrawn:
                if row.refused != refused_json and row.latest_revision == row.revision:
                    connection.execute(
                        posts.update()
                        .where(_p.post_id == post.id)
                        .values(refused=refused_json, updated_at=now)
                    )
                outcome = (
                    SaveOutcome.UNCHANGED
                    if row.latest_revision == row.revision
                    else SaveOutcome.CHANGED_AFTER_PUBLISHING
                )
                return SaveResult(outcome, _get(connection, post.id))
            revision = row.latest_revision + 1
            if _any_out(connection, post.id, Post.model_validate_json(row.content).targets):
                note = "changed after publishing: not published again"
                _add_revision(
                    connection, post, revision, content, digest, origin, source, note, now
                )
                connection.execute(
                    posts.update()
                    .where(_p.post_id == post.id)
                    .values(latest_revision=revision, latest_hash=digest, updated_at=now)
                )
                return SaveResult(
                    SaveOutcome.CHANGED_AFTER_PUBLISHING, _get(connection, post.id), note
                )
            _add_revision(connection, post, revision, content, digest, origin, source, None, now)
            connection.execute(
                posts.update()
                .where(_p.post_id == post.id)
                .values(
                    revision=revision,
                    latest_revision=revision,
                    latest_hash=digest,
                    content=content,
                    at=post.at,
                    status=str(OutboxStatus.OPEN),
                    status_reason=None,
                    refused=refused_json,
                    next_check_at=post.at,
                    updated_at=now,
                )
            )
            return SaveResult(SaveOutcome.REVISED, _get(connection, post.id))

    def cancel(self, post_id: str, reason: str) -> PostRecord | None:
        """Withdraw what of a post is not out yet: the post is cancelled and its planned or
        waiting deliveries with it. A delivery in flight or unknown is left to its claimant
        and reconciliation (it may be out); the re-read before every send sees the cancel.
        """
        now = self.clock()
        with self.writer.begin() as connection:
            row = connection.execute(
                sa.select(posts).where(_p.post_id == post_id).with_for_update()
            ).first()
            if row is None:
                return None
            connection.execute(
                posts.update()
                .where(_p.post_id == post_id)
                .values(status=str(OutboxStatus.CANCELLED), status_reason=reason, updated_at=now)
            )
            subjects = [
                publish_subject(post_id, t) for t in Post.model_validate_json(row.content).targets
            ]
            connection.execute(
                deliveries.update()
                .where(
                    _d.kind == str(DeliveryKind.PUBLISH),
                    _d.subject.in_(subjects),
                    _d.state.in_([str(DeliveryState.PLANNED), str(DeliveryState.FAILED)]),
                )
                .values(
                    state=str(DeliveryState.CANCELLED),
                    not_before=None,
                    error_kind="cancelled",
                    error=reason,
                    updated_at=now,
                )
            )
            return _get(connection, post_id)

    def set_status(
        self,
        post_id: str,
        status: OutboxStatus,
        *,
        reason: str | None = None,
        next_check_at: datetime | None = None,
        only_if: Iterable[OutboxStatus] = (OutboxStatus.OPEN,),
    ) -> bool:
        """Move a post on (done, missed, reopened), only from the states named: a cancel
        that came first is never overwritten."""
        values: dict[str, object] = {
            "status": str(status),
            "status_reason": reason,
            "updated_at": self.clock(),
        }
        if next_check_at is not None:
            values["next_check_at"] = next_check_at
        with self.writer.begin() as connection:
            result = connection.execute(
                posts.update()
                .where(_p.post_id == post_id, _p.status.in_([str(s) for s in only_if]))
                .values(**values)
            )
        return result.rowcount == 1

    def check_again_at(self, post_ids: Iterable[str], when: datetime) -> int:
        """Push the sensor's next look at open posts to `when` (a run took them, or they
        wait for a deferral)."""
        ids = list(dict.fromkeys(post_ids))
        changed = 0
        with self.writer.begin() as connection:
            for start in range(0, len(ids), _IDS_PER_QUERY):
                changed += connection.execute(
                    posts.update()
                    .where(
                        _p.post_id.in_(ids[start : start + _IDS_PER_QUERY]),
                        _p.status == str(OutboxStatus.OPEN),
                    )
                    .values(next_check_at=when)
                ).rowcount
        return changed

    # -- reading -------------------------------------------------------------------------

    def get(self, post_id: str) -> PostRecord | None:
        with self.engine.connect() as connection:
            return _get(connection, post_id)

    def get_many(self, post_ids: Iterable[str]) -> dict[str, PostRecord]:
        ids = list(dict.fromkeys(post_ids))
        found: dict[str, PostRecord] = {}
        with self.engine.connect() as connection:
            for start in range(0, len(ids), _IDS_PER_QUERY):
                rows = connection.execute(
                    sa.select(posts).where(_p.post_id.in_(ids[start : start + _IDS_PER_QUERY]))
                )
                found.update({row.post_id: PostRecord.from_row(row) for row in rows})
        return found

    def due(self, *, until: datetime, limit: int) -> builtins.list[PostRecord]:
        """Open posts the sensor should look at by `until`, earliest first (index-only)."""
        query = (
            sa.select(posts)
            .where(_p.status == str(OutboxStatus.OPEN), _p.next_check_at <= until)
            .order_by(_p.next_check_at, _p.post_id)
            .limit(limit)
        )
        with self.engine.connect() as connection:
            return [PostRecord.from_row(row) for row in connection.execute(query)]

    def due_by_time(self, *, until: datetime, limit: int) -> builtins.list[PostRecord]:
        """Open posts whose time is at or before `until`, earliest first, whatever the
        sensor's next look (a run asked for "every due post")."""
        query = (
            sa.select(posts)
            .where(_p.status == str(OutboxStatus.OPEN), _p.at <= until)
            .order_by(_p.at, _p.post_id)
            .limit(limit)
        )
        with self.engine.connect() as connection:
            return [PostRecord.from_row(row) for row in connection.execute(query)]

    def next_check(self) -> datetime | None:
        """When the earliest open post wants looking at."""
        with self.engine.connect() as connection:
            return connection.execute(
                sa.select(sa.func.min(_p.next_check_at)).where(_p.status == str(OutboxStatus.OPEN))
            ).scalar_one()

    def list(
        self,
        *,
        statuses: Iterable[OutboxStatus] | None = None,
        origin: Origin | None = None,
        limit: int | None = None,
        changed_since: datetime | None = None,
    ) -> builtins.list[PostRecord]:
        """Posts by time, earliest first; with `changed_since`, only those whose row changed
        since then (a status set, a revision)."""
        query = sa.select(posts).order_by(_p.at, _p.post_id)
        if statuses is not None:
            query = query.where(_p.status.in_([str(s) for s in statuses]))
        if changed_since is not None:
            query = query.where(_p.updated_at >= changed_since)
        if origin is not None:
            query = query.where(_p.origin == str(origin))
        if limit is not None:
            query = query.limit(limit)
        with self.engine.connect() as connection:
            return [PostRecord.from_row(row) for row in connection.execute(query)]

    def ids_from(self, origin: Origin) -> dict[str, tuple[OutboxStatus, str]]:
        """Every post of that origin: its status and source (the calendar's removals)."""
        query = sa.select(_p.post_id, _p.status, _p.source).where(_p.origin == str(origin))
        with self.engine.connect() as connection:
            return {
                row.post_id: (OutboxStatus(row.status), row.source)
                for row in connection.execute(query)
            }

    def revisions(self, post_id: str) -> builtins.list[RevisionRecord]:
        query = (
            sa.select(post_revisions)
            .where(post_revisions.c.post_id == post_id)
            .order_by(post_revisions.c.revision)
        )
        with self.engine.connect() as connection:
            return [
                RevisionRecord(
                    post=Post.model_validate_json(row.content),
                    revision=row.revision,
                    origin=Origin(row.origin),
                    source=row.source,
                    note=row.note,
                    created_at=row.created_at,
                )
                for row in connection.execute(query)
            ]

    def deliveries(self, records: Iterable[PostRecord]) -> dict[str, PostDeliveries]:
        """Each post's ledger rows by target, in one query per few hundred subjects."""
        wanted: dict[str, tuple[str, str]] = {}
        for record in records:
            for target, subject in record.subjects.items():
                wanted[subject] = (record.post_id, target)
        found: dict[str, PostDeliveries] = {
            post_id: PostDeliveries() for post_id, _ in wanted.values()
        }
        subjects = list(wanted)
        with self.engine.connect() as connection:
            for start in range(0, len(subjects), _IDS_PER_QUERY):
                rows = connection.execute(
                    sa.select(deliveries).where(
                        _d.kind == str(DeliveryKind.PUBLISH),
                        _d.subject.in_(subjects[start : start + _IDS_PER_QUERY]),
                    )
                )
                for row in rows:
                    post_id, target = wanted[row.subject]
                    found[post_id].by_target[target] = DeliveryRecord.from_row(row)
        return found


# The status reason of a calendar post whose entry was removed (it comes back with it).
WITHDRAWN = "removed from the calendar"


def _get(connection: sa.Connection, post_id: str) -> PostRecord | None:
    row = connection.execute(sa.select(posts).where(_p.post_id == post_id)).first()
    return PostRecord.from_row(row) if row else None


def _any_out(connection: sa.Connection, post_id: str, targets: Iterable[str]) -> bool:
    subjects = [publish_subject(post_id, target) for target in targets]
    return (
        connection.execute(
            sa.select(sa.func.count())
            .select_from(deliveries)
            .where(
                _d.kind == str(DeliveryKind.PUBLISH),
                _d.subject.in_(subjects),
                _d.state.in_(MAYBE_OUT),
            )
        ).scalar_one()
        > 0
    )


def _add_revision(
    connection: sa.Connection,
    post: Post,
    revision: int,
    content: str,
    digest: str,
    origin: Origin,
    source: str,
    note: str | None,
    now: datetime,
) -> None:
    connection.execute(
        post_revisions.insert().values(
            post_id=post.id,
            revision=revision,
            content=content,
            content_hash=digest,
            origin=str(origin),
            source=source,
            note=note,
            created_at=now,
        )
    )
