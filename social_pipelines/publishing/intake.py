"""Two ways in, one outbox: a post scheduled from the command line, and the calendar synced.

Both check every target against its platform's content rules before the post is stored: a
target the post cannot fit is refused with the reason, and the other targets go on. The
calendar's sync also withdraws what was removed from it, brings back what returns, and says
when an entry was edited after its post went out (that edit is never published).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from social_pipelines.calendar import CalendarLoad
from social_pipelines.models import Post
from social_pipelines.store.outbox import (
    WITHDRAWN,
    Origin,
    Outbox,
    OutboxStatus,
    SaveOutcome,
    SaveResult,
)

# Every reason a post cannot go to one target (empty: it fits). The caller binds it to the
# platform each account is on, and to the rules read from it where it can.
CheckTarget = Callable[[Post, str], list[str]]


def refusals(post: Post, check: CheckTarget) -> dict[str, str]:
    """The targets the post cannot go to, each with every reason."""
    refused: dict[str, str] = {}
    for target in post.targets:
        problems = check(post, target)
        if problems:
            refused[target] = "; ".join(problems)
    return refused


@dataclass(frozen=True)
class Scheduled:
    """What scheduling did: `result` is None when the post fits none of its targets (every
    one refused, with the reasons): nothing is stored then."""

    result: SaveResult | None
    refused: dict[str, str]


def schedule(outbox: Outbox, post: Post, check: CheckTarget) -> Scheduled:
    """Add (or revise) a post from the command line, each target checked once."""
    refused = refusals(post, check)
    if set(refused) >= set(post.targets):
        return Scheduled(None, refused)
    return Scheduled(outbox.save(post, origin=Origin.CLI, refused=refused), refused)


@dataclass
class SyncReport:
    """What one sync did; `problems` are the calendar's own (bad files and entries)."""

    created: list[str] = field(default_factory=list)
    revised: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    changed_after_publishing: list[str] = field(default_factory=list)
    withdrawn: list[str] = field(default_factory=list)
    kept_cancelled: list[str] = field(default_factory=list)
    kept_unreadable: list[str] = field(default_factory=list)
    refused_targets: dict[str, dict[str, str]] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        """One line per thing a person should know; unchanged posts are only counted."""
        lines = [f"problem: {problem}" for problem in self.problems]
        for post_id, refused in sorted(self.refused_targets.items()):
            lines += [f"refused: post {post_id!r} for {t}: {why}" for t, why in refused.items()]
        lines += [
            f"changed after publishing (not published again): post {post_id!r}"
            for post_id in self.changed_after_publishing
        ]
        lines += [f"cancelled (removed from the calendar): post {p!r}" for p in self.withdrawn]
        lines += [
            f"kept as it was (its entry could not be read): post {p!r}"
            for p in self.kept_unreadable
        ]
        lines.append(
            f"calendar: {len(self.created)} new, {len(self.revised)} revised,"
            f" {len(self.unchanged)} unchanged, {len(self.withdrawn)} cancelled,"
            f" {len(self.problems)} problem(s)"
        )
        return lines


def sync_calendar(outbox: Outbox, load: CalendarLoad, check: CheckTarget) -> SyncReport:
    """Bring the outbox in line with the calendar as loaded.

    A post whose entry could not be read this time (a syntax error in its file, a bad
    field in its entry) is kept as it is, never withdrawn: a typo must not cancel a post.
    Unchanged entries cost no content check: the stored revision's hash says they are.
    """
    report = SyncReport(problems=[str(problem) for problem in load.problems])
    known = outbox.get_many(load.posts)
    for post_id, sourced in load.posts.items():
        post = sourced.post
        source = str(sourced.file)
        stored = known.get(post_id)
        if (
            stored is not None
            and stored.latest_hash == post.content_hash()
            and stored.status != OutboxStatus.CANCELLED
            and stored.source == source
        ):
            outcome = (
                SaveOutcome.UNCHANGED
                if stored.latest_revision == stored.revision
                else SaveOutcome.CHANGED_AFTER_PUBLISHING
            )
            _note(report, post_id, outcome, refused={})
            continue
        if (
            stored is not None
            and stored.status == OutboxStatus.CANCELLED
            and (stored.status_reason != WITHDRAWN)
        ):
            report.kept_cancelled.append(post_id)  # a person cancelled it: it stays so
            continue
        refused = refusals(post, check)
        result = outbox.save(
            post, origin=Origin.CALENDAR, source=source, refused=refused, reopen_withdrawn=True
        )
        if result.outcome == SaveOutcome.CONFLICT:
            report.problems.append(f"{source}, entry {post_id!r}: {result.detail}")
            continue
        _note(report, post_id, result.outcome, refused)
    if not load.listed:
        return report  # the folder itself could not be read: a missing post proves nothing
    for post_id, (status, source) in outbox.ids_from(Origin.CALENDAR).items():
        if post_id in load.posts or status == OutboxStatus.CANCELLED:
            continue
        if post_id in load.refused_ids or _maybe_in(Path(source), load):
            report.kept_unreadable.append(post_id)
            continue
        if status in (OutboxStatus.OPEN, OutboxStatus.MISSED):
            cancelled = outbox.cancel(post_id, WITHDRAWN)
            if cancelled is not None:
                report.withdrawn.append(post_id)
    return report


def _note(report: SyncReport, post_id: str, outcome: SaveOutcome, refused: dict[str, str]) -> None:
    lists = {
        SaveOutcome.CREATED: report.created,
        SaveOutcome.REVISED: report.revised,
        SaveOutcome.UNCHANGED: report.unchanged,
        SaveOutcome.CHANGED_AFTER_PUBLISHING: report.changed_after_publishing,
        SaveOutcome.KEPT_CANCELLED: report.kept_cancelled,
    }
    lists[outcome].append(post_id)
    if refused and outcome in (SaveOutcome.CREATED, SaveOutcome.REVISED):
        report.refused_targets[post_id] = refused


def _maybe_in(source: Path, load: CalendarLoad) -> bool:
    """The post's file (or a folder holding it) was not read in full: it may still be
    there, in an entry that could not be read this time."""
    return any(source == part or part in source.parents for part in load.incomplete_files)
