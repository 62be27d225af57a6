"""The outbox from the shell: `schedule`, `list`, `show`, `cancel`, `retry`, `dead-letters`,
`calendar sync|check` and `render`.

Exit status: 0 done; 1 the post or delivery named is unknown (or `cancel` found it already
out); 2 the input is invalid (the reason is printed). Every command reads and writes the
same state store the runs use (`wiring.py`), so what it shows is what the sensor will act on.
"""

from __future__ import annotations

import argparse
import json
import secrets
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

from social_pipelines.errors import ConfigError, summarize
from social_pipelines.models import DeliveryState, Post, PostImage, PostState
from social_pipelines.publishing.intake import refusals, schedule
from social_pipelines.publishing.retry import retry
from social_pipelines.publishing.states import PostView, TargetState, TargetView, post_view
from social_pipelines.settings import Settings, load_settings
from social_pipelines.store import OutboxStatus, SaveOutcome
from social_pipelines.store.records import DeliveryRecord
from social_pipelines.when import WhenError, parse_when
from social_pipelines.wiring import Wiring, wire_settings

OK, UNKNOWN, INVALID = 0, 1, 2


class _Images(argparse.Action):
    """`--image X --alt Y` pairs: an `--alt` belongs to the `--image` before it."""

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: Any,
        option_string: str | None = None,
    ) -> None:
        images: list[dict[str, str]] = getattr(namespace, "images", None) or []
        if option_string == "--image":
            images.append({"source": str(values), "alt": ""})
        else:
            if not images or images[-1]["alt"]:
                parser.error("--alt describes the --image just before it: give --image first")
            images[-1]["alt"] = str(values)
        namespace.images = images


def _wiring() -> tuple[Settings, Wiring]:
    settings = load_settings()
    return settings, wire_settings(settings)


def _new_id(at: datetime) -> str:
    return f"post-{at:%Y%m%d-%H%M}-{secrets.token_hex(3)}"


def _image(source: str) -> PostImage:
    """Checked now, not at publishing time: a local file that exists, or an https URL."""
    if "://" in source:
        if not source.startswith("https://"):
            raise ConfigError(f"--image {source!r}: only https:// URLs (or a local file)")
        return PostImage(source=source)
    path = Path(source).expanduser()
    if not path.is_file():
        raise ConfigError(f"--image {source!r}: no such file")
    return PostImage(source=str(path.resolve()))


def cmd_schedule(args: argparse.Namespace) -> int:
    settings, wiring = _wiring()
    try:
        at = parse_when(args.at, timezone=settings.default_timezone)
    except WhenError as error:
        raise ConfigError(f"--at: {error}") from None
    targets = tuple(dict.fromkeys(t.strip() for t in args.to.split(",") if t.strip()))
    book = wiring.accounts()
    unknown = [target for target in targets if target not in book.accounts]
    if unknown:
        raise ConfigError(
            f"--to: no account {', '.join(map(repr, unknown))} in {book.path}; "
            f"known: {', '.join(sorted(book.accounts)) or 'none'}"
        )
    images = [
        _image(image["source"]).model_copy(update={"alt": image["alt"]})
        for image in args.images or []
    ]
    try:
        post = Post(
            id=args.id or _new_id(at),
            text=args.text,
            link=args.link,
            images=tuple(images),
            targets=targets,
            at=at,
        )
    except ValueError as error:
        raise ConfigError(f"invalid post: {_pydantic_message(error)}") from None
    scheduled = schedule(wiring.store.outbox, post, wiring.content_checker(book))
    for target, reason in scheduled.refused.items():
        print(f"refused for {target}: {reason}", file=sys.stderr)
    result = scheduled.result
    if result is None:
        raise ConfigError("the post fits none of its targets; nothing scheduled")
    if result.outcome == SaveOutcome.CONFLICT:
        raise ConfigError(result.detail)
    if result.outcome == SaveOutcome.CHANGED_AFTER_PUBLISHING:
        print(
            f"post {post.id!r} is already out: the change is recorded and not published",
            file=sys.stderr,
        )
    elif result.outcome == SaveOutcome.KEPT_CANCELLED:
        print(f"post {post.id!r} was cancelled; it stays cancelled", file=sys.stderr)
    print(post.id)
    return OK


def _pydantic_message(error: ValueError) -> str:
    errors = getattr(error, "errors", None)
    if errors is None:
        return str(error)
    return "; ".join(
        f"{'.'.join(map(str, item['loc'])) or 'post'}: {item['msg']}" for item in errors()
    )


def _views(wiring: Wiring, records: list[Any]) -> list[PostView]:
    outbox = wiring.store.outbox
    deliveries = outbox.deliveries(records)
    now = outbox.clock()
    return [post_view(record, deliveries[record.post_id], now) for record in records]


def _one_view(wiring: Wiring, post_id: str) -> PostView | None:
    """The post's view, or None after saying it is not in the outbox."""
    record = wiring.store.outbox.get(post_id)
    if record is None:
        print(f"no post {post_id!r} in the outbox", file=sys.stderr)
        return None
    (view,) = _views(wiring, [record])
    return view


def _target_json(view: TargetView) -> dict[str, Any]:
    delivery: DeliveryRecord | None = view.delivery
    return {
        "target": view.target,
        "state": str(view.state),
        "reason": view.reason,
        "url": view.url,
        "delivery_id": delivery.delivery_id if delivery else None,
        "attempts": delivery.attempts if delivery else 0,
    }


def _post_json(view: PostView) -> dict[str, Any]:
    post = view.record.post
    return {
        "id": post.id,
        "state": str(view.state),
        "at": post.at.isoformat(),
        "revision": view.record.revision,
        "origin": str(view.record.origin),
        "source": view.record.source,
        "reason": view.record.status_reason,
        "targets": [_target_json(target) for target in view.targets],
    }


def _target_line(view: TargetView) -> str:
    detail = view.url or (summarize(view.reason) if view.reason else "")
    return f"{view.target}: {view.state}" + (f" ({detail})" if detail else "")


def cmd_list(args: argparse.Namespace) -> int:
    _, wiring = _wiring()
    views = _views(wiring, wiring.store.outbox.list())
    if args.state:
        views = [view for view in views if view.state == PostState(args.state)]
    if args.json:
        print(json.dumps([_post_json(view) for view in views], indent=2))
        return OK
    if not views:
        print("no posts" + (f" in state {args.state}" if args.state else ""))
    for view in views:
        targets = "; ".join(_target_line(target) for target in view.targets)
        print(
            f"{view.record.post_id}  {view.record.post.at:%Y-%m-%d %H:%M} UTC"
            f"  {view.state}  {targets}"
        )
    return OK


def cmd_show(args: argparse.Namespace) -> int:
    wiring = _wiring()[1]
    outbox = wiring.store.outbox
    view = _one_view(wiring, args.id)
    if view is None:
        return UNKNOWN
    record = view.record
    revisions = outbox.revisions(args.id)
    attempts = {
        target.target: wiring.store.ledger.attempts(target.delivery.delivery_id)
        for target in view.targets
        if target.delivery is not None
    }
    if args.json:
        data = _post_json(view)
        data["revisions"] = [
            {
                "revision": r.revision,
                "created_at": r.created_at.isoformat(),
                "note": r.note,
                "post": r.post.model_dump(mode="json"),
            }
            for r in revisions
        ]
        for target in data["targets"]:
            target["attempt_log"] = [
                {
                    "attempt": a.attempt,
                    "started_at": a.started_at.isoformat(),
                    "outcome": a.outcome,
                    "error": summarize(a.error),
                }
                for a in attempts.get(target["target"], [])
            ]
        print(json.dumps(data, indent=2))
        return OK
    post = record.post
    print(
        f"post {post.id}: {view.state} (revision {record.revision}, from {record.origin}"
        + (f" {record.source}" if record.source else "")
        + ")"
    )
    print(f"  at {post.at:%Y-%m-%d %H:%M:%S} UTC")
    if record.status_reason:
        print(f"  {record.status_reason}")
    print(f"  text: {post.text}")
    if post.link:
        print(f"  link: {post.link}")
    for number, image in enumerate(post.images, 1):
        print(f"  image {number}: {image.source} (alt: {image.alt or 'none'})")
    for target in view.targets:
        print(f"  {_target_line(target)}")
        for attempt in attempts.get(target.target, []):
            print(
                f"    attempt {attempt.attempt} {attempt.started_at:%Y-%m-%d %H:%M:%S}"
                f" {attempt.outcome or 'in progress'}"
                + (f": {summarize(attempt.error)}" if attempt.error else "")
            )
    for revision in revisions:
        note = f" ({revision.note})" if revision.note else ""
        print(f"  revision {revision.revision} {revision.created_at:%Y-%m-%d %H:%M:%S}{note}")
    return OK


def cmd_cancel(args: argparse.Namespace) -> int:
    wiring = _wiring()[1]
    outbox = wiring.store.outbox
    view = _one_view(wiring, args.id)
    if view is None:
        return UNKNOWN
    record = view.record
    pending = [
        t
        for t in view.targets
        if t.state not in (TargetState.PUBLISHED, TargetState.CANCELLED, TargetState.REFUSED)
    ]
    out = [t.target for t in view.targets if t.state == TargetState.PUBLISHED]
    if record.status == OutboxStatus.CANCELLED or not pending:
        print(
            f"post {args.id!r} is {view.state}: nothing left to cancel"
            + (f" (out on {', '.join(out)})" if out else ""),
            file=sys.stderr,
        )
        return UNKNOWN
    outbox.cancel(args.id, "cancelled by `social-pipelines cancel`")
    print(
        f"cancelled {args.id}: {', '.join(t.target for t in pending)}"
        + (f"; already out on {', '.join(out)}" if out else "")
    )
    return OK


def cmd_retry(args: argparse.Namespace) -> int:
    _, wiring = _wiring()
    revived = retry(wiring.store, args.id)
    if revived is None:
        print(f"no post or delivery {args.id!r}", file=sys.stderr)
        return UNKNOWN
    for row in revived:
        print(f"due again: {row.subject} (was {row.error_kind}; looked for before any resend)")
    if not revived:
        print(f"{args.id}: nothing dead or failed to retry")
    return OK


def cmd_dead_letters(args: argparse.Namespace) -> int:
    _, wiring = _wiring()
    dead = wiring.store.ledger.list(states=[DeliveryState.DEAD], newest=True, limit=10_000)
    if args.json:
        print(
            json.dumps(
                [
                    {
                        "delivery_id": d.delivery_id,
                        "kind": d.kind,
                        "subject": d.subject,
                        "account": d.account,
                        "platform": d.platform,
                        "attempts": d.attempts,
                        "error_kind": d.error_kind,
                        "reason": summarize(d.error),
                        "updated_at": d.updated_at.isoformat(),
                    }
                    for d in dead
                ],
                indent=2,
            )
        )
        return OK
    if not dead:
        print("no dead deliveries")
    for d in dead:
        print(
            f"{d.updated_at:%Y-%m-%d %H:%M:%S} {d.kind} {d.subject} as {d.account} "
            f"({d.delivery_id}) attempts={d.attempts} {d.error_kind}: {summarize(d.error)}"
        )
    return OK


def cmd_calendar(args: argparse.Namespace) -> int:
    _, wiring = _wiring()
    if wiring.calendar_dir is None:
        raise ConfigError("no calendar: set SOCIAL_CALENDAR_DIR to the folder of post files")
    if args.action == "sync":
        report = wiring.sync_calendar()
        assert report is not None
        for line in report.lines():
            print(line)
        return OK
    book = wiring.accounts()
    load = wiring.load_calendar(book)
    assert load is not None
    problems = [str(problem) for problem in load.problems]
    check = wiring.content_checker(book)
    for sourced in load.posts.values():
        for target, reason in refusals(sourced.post, check).items():
            problems.append(f"{sourced}: refused for {target}: {reason}")
    for problem in problems:
        print(problem)
    print(f"calendar {wiring.calendar_dir}: {len(load.posts)} post(s), {len(problems)} problem(s)")
    return INVALID if problems else OK


def cmd_render(args: argparse.Namespace) -> int:
    from social_pipelines.media import write_previews

    written = write_previews(args.image, args.platform, Path(args.out))
    for path in written:
        print(path)
    return OK


def add_commands(commands: Any) -> None:
    """The outbox's subcommands on the `social-pipelines` parser."""
    add = commands.add_parser
    schedule_ = add("schedule", help="add a post to the outbox; prints its id")
    schedule_.add_argument("--to", required=True, metavar="ACCOUNT[,ACCOUNT...]")
    schedule_.add_argument("--at", required=True, metavar="WHEN", help="ISO 8601 time, or now")
    schedule_.add_argument("--text", required=True)
    schedule_.add_argument("--id", help="the post's id ([A-Za-z0-9_-]); default: generated")
    schedule_.add_argument("--image", action=_Images, metavar="PATH_OR_URL", dest="images")
    schedule_.add_argument("--alt", action=_Images, metavar="TEXT", dest="images")
    schedule_.add_argument("--link", metavar="URL")
    schedule_.set_defaults(handler=cmd_schedule)

    states = [str(state) for state in PostState]
    list_ = add("list", help="posts with their state per target")
    list_.add_argument("--state", choices=states, metavar="STATE", help=", ".join(states))
    list_.add_argument("--json", action="store_true")
    list_.set_defaults(handler=cmd_list)

    show = add("show", help="one post: revisions, deliveries per target, attempts, URLs")
    show.add_argument("id")
    show.add_argument("--json", action="store_true")
    show.set_defaults(handler=cmd_show)

    cancel = add("cancel", help="cancel what of a post is not yet sent")
    cancel.add_argument("id")
    cancel.set_defaults(handler=cmd_cancel)

    retry = add("retry", help="make a post's dead or failed targets (or one delivery) due again")
    retry.add_argument("id", metavar="ID_OR_DELIVERY")
    retry.set_defaults(handler=cmd_retry)

    dead = add("dead-letters", help="every dead delivery with its reason")
    dead.add_argument("--json", action="store_true")
    dead.set_defaults(handler=cmd_dead_letters)

    calendar = add("calendar", help="sync the content calendar, or only check it")
    calendar.add_argument("action", choices=["sync", "check"])
    calendar.set_defaults(handler=cmd_calendar)

    render = add("render", help="write what each platform would get of an image")
    render.add_argument("image", metavar="IMAGE")
    render.add_argument("--platform", action="append", required=True, metavar="NAME")
    render.add_argument("--out", required=True, metavar="DIR")
    render.set_defaults(handler=cmd_render)
