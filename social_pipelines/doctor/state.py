"""The doctor's checks of our own state: settings, the state store and its schema, accounts
and tokens, circuits, quotas, deliveries and posts.

Plain Python over the wiring (the same store and connector every run uses), reading only:
nothing here calls a platform unless asked (`online`), and nothing is upgraded or repaired.
A store behind the code's schema is reported, not migrated, and the checks that read it
wait until it is current; a new store is created as any command would create it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from social_pipelines.accounts import AccountBook
from social_pipelines.accounts_cli import check_account, token_expiry, unencrypted_tokens
from social_pipelines.doctor.report import Check, duration, ok, problem, warn, when
from social_pipelines.errors import ConfigError, summarize
from social_pipelines.models import DeliveryKind, DeliveryState
from social_pipelines.platforms.account import AccountBase
from social_pipelines.platforms.auth import AuthorizationFlow
from social_pipelines.platforms.catalog import spec_for
from social_pipelines.platforms.policy import PlatformPolicy
from social_pipelines.publishing.states import TargetState, post_view
from social_pipelines.replies.llm import NAME as LLM
from social_pipelines.replies.llm import POLICY as LLM_POLICY
from social_pipelines.resilience.breaker import HALF_OPEN, stored_snapshots
from social_pipelines.resilience.policy import policy_for
from social_pipelines.settings import Settings
from social_pipelines.store import OutboxStatus
from social_pipelines.store.engine import create_engine
from social_pipelines.store.migrate import HEAD, stored_schema
from social_pipelines.store.quotas import used_by_account
from social_pipelines.token_upkeep import REFRESH_WITHIN
from social_pipelines.wiring import Wiring

# A post due this long ago and not sent is overdue: the due-posts sensor launches runs a
# little before each post's time, so minutes late means nothing is publishing it.
OVERDUE_AFTER = timedelta(minutes=5)
# A delivery due this long and not taken: the redelivery sensor looks every minute.
DUE_UNTAKEN_AFTER = timedelta(minutes=15)
# An unknown outcome is reconciled by the next redelivery run, after seconds of settling.
UNKNOWN_TOO_LONG = timedelta(hours=1)
# At most this many posts are looked at for lateness in one doctor run.
OVERDUE_SCAN = 500


@dataclass(frozen=True)
class Horizon:
    """What the checks count as now and recent."""

    now: datetime
    days: int  # dead letters and missed posts of the last `days` days are problems

    @property
    def since(self) -> datetime:
        return self.now - timedelta(days=self.days)


def shown_url(url: str) -> str:
    """A database URL without its password, for a row."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # an unparsable URL: say nothing of it but its scheme
        return url.split("://", 1)[0] + "://..."


def settings_check(settings: Settings) -> Check:
    return ok(
        "settings",
        f"valid; DAGSTER_HOME {settings.dagster_home}; accounts {settings.accounts_file}; "
        f"campaigns {settings.campaigns_file}",
    )


def schema_check(settings: Settings) -> tuple[Check, bool]:
    """The state store reached and its schema read, nothing changed; True when the other
    checks may open it (current, or new: opening creates it at the current revision)."""
    name = "state store"
    url = settings.state_store_url
    engine = create_engine(url)
    try:
        stored = stored_schema(engine)
    except SQLAlchemyError as error:
        cause = getattr(error, "orig", None) or error
        first = str(cause).strip().splitlines()[0] if str(cause).strip() else type(cause).__name__
        return problem(name, f"cannot reach {shown_url(url)}: {first}"), False
    finally:
        engine.dispose()
    where = f"{engine.dialect.name} {shown_url(url)}"
    if stored.is_new:
        return ok(name, f"{where}: new, created at revision {HEAD} (the current schema)"), True
    if stored.is_current:
        return ok(name, f"{where}: at revision {HEAD} (the current schema)"), True
    if not stored.is_known:
        return problem(
            name,
            f"{where}: at {stored.describe()}, which this code does not know (its newest is "
            f"{HEAD}): a newer release upgraded it; upgrade social_pipelines",
        ), False
    return problem(
        name,
        f"{where}: at {stored.describe()}, behind this code's revision {HEAD}: the next run "
        "or command that opens it upgrades it (`social-pipelines ledger --limit 1` does); "
        "the checks that read it are skipped until then",
    ), False


# -- accounts ----------------------------------------------------------------------------


def account_checks(
    settings: Settings, wiring: Wiring, now: datetime, *, online: bool
) -> list[Check]:
    """One row per account (its mark, its token's expiry; with `online` one `whoami`, the
    call `accounts check` makes), then the campaigns file and the tokens' encryption."""
    try:
        book = wiring.accounts()
    except ConfigError as error:
        return [problem("accounts file", str(error))]
    rows = [_account(wiring, account, now, online=online) for account in book.accounts.values()]
    if not rows:
        rows.append(warn("accounts", f"{book.path} names no account: nothing posts"))
    rows.append(_campaigns(wiring))
    rows.append(_encryption(settings, wiring, book))
    return rows


def _account(wiring: Wiring, account: AccountBase, now: datetime, *, online: bool) -> Check:
    name = f"account {account.name}"
    try:
        row = wiring.tokens.get(account.platform, account.name)
        expiry = token_expiry(wiring, account)
    except ConfigError as error:
        return problem(name, f"{account.platform}: {error}")
    head = f"{account.platform}; token expiry: {expiry}"
    if online:
        checked = check_account(wiring, account)
        if not checked.ok:
            return problem(
                name, f"{head}; {checked.state}; `social-pipelines accounts connect {account.name}`"
            )
        head += f"; whoami: {checked.identity}"
        row = wiring.tokens.get(account.platform, account.name)  # the call may have changed it
    if row is not None and row.reconnect_needed:
        since = f" since {when(row.marked_at)}" if row.marked_at else ""
        return problem(
            name,
            f"{head}; reconnect_needed{since}: {row.reason or 'refused'}; nothing posts as it "
            f"until `social-pipelines accounts connect {account.name}` (token_refresh_job "
            "verifies it every 15 minutes)",
        )
    authenticator = spec_for(account.platform).authenticator
    if authenticator is not None and (row is None or row.payload is None):
        if isinstance(authenticator, AuthorizationFlow):
            return problem(
                name,
                f"{head}: a person must authorise it: `social-pipelines accounts connect "
                f"{account.name}`",
            )
        return ok(name, f"{head}: a session is made from its credentials at first use")
    if row is not None and row.payload is not None and row.expires_at is not None:
        left = row.expires_at - now
        if row.refresh_expires_at is not None and row.refresh_expires_at <= now:
            return problem(
                name,
                f"{head}; its refresh token expired at {when(row.refresh_expires_at)}: "
                f"`social-pipelines accounts connect {account.name}`",
            )
        if left <= timedelta(0):
            return warn(
                name,
                f"{head}: expired {duration(left)} ago; refreshed at its next use, or by "
                "token_refresh_job (is token_refresh_schedule running?)",
            )
        if left <= REFRESH_WITHIN:
            return warn(
                name,
                f"{head}: expires in {duration(left)}; token_refresh_job refreshes tokens "
                f"expiring within {duration(REFRESH_WITHIN)} every 15 minutes",
            )
    return ok(name, head if online else f"{head}; not called (--online makes one whoami)")


def _campaigns(wiring: Wiring) -> Check:
    try:
        book = wiring.campaigns()
    except ConfigError as error:
        return problem("campaigns file", str(error))
    enabled = len(book.enabled())
    return ok("campaigns file", f"{wiring.campaigns_file}: {enabled} reply campaign(s) enabled")


def _encryption(settings: Settings, wiring: Wiring, book: AccountBook) -> Check:
    why = unencrypted_tokens(settings, wiring, book)
    if why:
        return warn("token encryption", f"{why}; set SOCIAL_SECRET_KEY (a Fernet key)")
    if settings.secret_key is None:
        return ok("token encryption", "no account stores tokens")
    return ok("token encryption", "tokens and sessions sealed with SOCIAL_SECRET_KEY")


# -- circuits and quotas -----------------------------------------------------------------


def _reset_seconds(wiring: Wiring, book: AccountBook | None) -> Callable[[str], float]:
    """Each breaker's reset timeout by name (`platform:account`), from the policy it runs
    under: the account's when the accounts file names it, else its platform's."""
    overrides = wiring.connector.overrides

    def reset(name: str) -> float:
        platform, _, account = name.partition(":")
        if platform == LLM:
            return LLM_POLICY.breaker_reset_seconds
        if book is not None and account in book.accounts:
            return wiring.policy(book.accounts[account]).breaker_reset_seconds
        try:
            return policy_for(platform, overrides).breaker_reset_seconds
        except ConfigError:
            return PlatformPolicy().breaker_reset_seconds

    return reset


def breaker_checks(wiring: Wiring, now: datetime) -> list[Check]:
    """A problem row per circuit not closed (nothing goes to that account while it is),
    else one row saying they are closed."""
    try:
        book: AccountBook | None = wiring.accounts()
    except ConfigError:
        book = None  # the accounts row says why; platform policies still time the circuits
    snapshots = stored_snapshots(wiring.store.engine, _reset_seconds(wiring, book))
    rows = []
    for snapshot in snapshots:
        if not snapshot.is_open:
            continue
        since = f" since {when(snapshot.opened_at)}" if snapshot.opened_at else ""
        if snapshot.state == HALF_OPEN:
            detail = f"half-open{since}: one trial call is deciding whether it closes"
        elif snapshot.reset_at is not None and snapshot.reset_at > now:
            detail = (
                f"open{since}: nothing is sent to it until {when(snapshot.reset_at)} "
                f"(in {duration(snapshot.reset_at - now)}), then one trial call"
            )
        else:
            detail = f"open{since}: the next call to it is the trial that may close it"
        rows.append(
            problem(
                f"circuit {snapshot.name}", f"{detail} ({snapshot.fail_counter} failure(s) counted)"
            )
        )
    if not rows:
        counting = sum(1 for s in snapshots if s.fail_counter)
        detail = f"{len(snapshots)} closed" if snapshots else "none used yet"
        if counting:
            detail += f" ({counting} counting recent failures)"
        rows.append(ok("circuits", detail))
    return rows


def quota_checks(wiring: Wiring, now: datetime) -> list[Check]:
    """Each account's posting quota against what it counts (sent, in flight, unknown): at
    the limit is a warning (its posts are deferred until the window frees)."""
    try:
        book = wiring.accounts()
    except ConfigError:
        return []  # the accounts row says why
    engine = wiring.store.engine
    hour = used_by_account(engine, since=now - timedelta(hours=1), now=now)
    day = used_by_account(engine, since=now - timedelta(days=1), now=now)
    rows = []
    for account in book.accounts.values():
        policy = wiring.policy(account)
        key = (account.platform, account.name)
        windows = [
            ("in the last hour", hour.get(key, 0), policy.quota_per_hour),
            ("in the last 24 h", day.get(key, 0), policy.quota_per_day),
        ]
        parts = [
            f"{used}/{limit} {label}" if limit is not None else f"{used} {label} (no quota)"
            for label, used, limit in windows
        ]
        detail = ", ".join(parts)
        over = [label for label, used, limit in windows if limit is not None and used > limit]
        full = [label for label, used, limit in windows if limit is not None and used >= limit]
        name = f"quota {account.name}"
        if over:
            rows.append(problem(name, f"{detail}: over its quota {' and '.join(over)}"))
        elif full:
            rows.append(
                warn(name, f"{detail}: used up; its posts are deferred until the window frees")
            )
        else:
            rows.append(ok(name, detail))
    return rows


# -- deliveries and posts ----------------------------------------------------------------


def delivery_checks(wiring: Wiring, horizon: Horizon) -> list[Check]:
    now = horizon.now
    seen = wiring.store.ledger.overview(dead_since=horizon.since, due_for=DUE_UNTAKEN_AFTER)
    rows = [
        ok(
            "deliveries deferred",
            f"{seen.deferred} deferred; the next falls due at {when(seen.next_deferred_at)}"
            if seen.deferred and seen.next_deferred_at
            else "none deferred",
        )
    ]
    if seen.due and seen.due_since:
        rows.append(
            warn(
                "deliveries due",
                f"{seen.due} due since {when(seen.due_since)} ({duration(now - seen.due_since)}) "
                "and not taken: deferred_deliveries_sensor launches redeliver_job for them "
                "unless their accounts are held (circuit open, reconnect needed)",
            )
        )
    if seen.unknown and seen.oldest_unknown:
        detail = (
            f"{seen.unknown} may have reached the platform (oldest since "
            f"{when(seen.oldest_unknown)}): each is looked for among the account's posts "
            "before any new attempt; `social-pipelines ledger --state unknown`"
        )
        stale = now - seen.oldest_unknown > UNKNOWN_TOO_LONG
        rows.append(
            problem(
                "deliveries unknown",
                f"{detail}; not settled for {duration(now - seen.oldest_unknown)}",
            )
            if stale
            else warn("deliveries unknown", detail)
        )
    else:
        rows.append(ok("deliveries unknown", "none"))
    older = seen.dead - seen.recent_dead_count
    if seen.recent_dead_count:
        newest = "; ".join(
            f"{d.kind} {d.subject} as {d.account}: {summarize(d.error)}" for d in seen.recent_dead
        )
        more = seen.recent_dead_count - len(seen.recent_dead)
        rows.append(
            problem(
                "deliveries dead",
                f"{seen.recent_dead_count} dead in the last {horizon.days} d ({newest}"
                + (f"; {more} more" if more > 0 else "")
                + "): dead letters a person must look at: `social-pipelines dead-letters` "
                "(or `ledger --state dead`), then `social-pipelines retry ID` to send one again",
            )
        )
    else:
        rows.append(
            ok(
                "deliveries dead",
                f"none in the last {horizon.days} d"
                + (f" ({older} older: `social-pipelines dead-letters`)" if older else ""),
            )
        )
    return rows


def post_checks(wiring: Wiring, horizon: Horizon) -> list[Check]:
    """Missed posts (found too late, never sent) of the last days, and overdue ones: due
    more than `OVERDUE_AFTER` ago and not sent, nor waiting for a deferral."""
    outbox, ledger, now = wiring.store.outbox, wiring.store.ledger, horizon.now
    missed = {
        r.post_id for r in outbox.list(statuses=[OutboxStatus.MISSED], changed_since=horizon.since)
    }
    for delivery in ledger.list(
        states=[DeliveryState.CANCELLED], changed_since=horizon.since, limit=10_000
    ):
        if delivery.kind == DeliveryKind.PUBLISH and delivery.error_kind == "missed":
            missed.add(delivery.subject.rsplit("/", 1)[0])
    rows = []
    if missed:
        named = ", ".join(sorted(missed)[:5]) + (
            f" and {len(missed) - 5} more" if len(missed) > 5 else ""
        )
        rows.append(
            problem(
                "posts missed",
                f"{len(missed)} missed in the last {horizon.days} d ({named}): found later than "
                "SOCIAL_PUBLISH_MAX_LATENESS, never sent unless publish_job runs with "
                "force_late; `social-pipelines list --state missed`",
            )
        )
    else:
        rows.append(ok("posts missed", f"none in the last {horizon.days} d"))
    records = outbox.due_by_time(until=now - OVERDUE_AFTER, limit=OVERDUE_SCAN)
    deliveries = outbox.deliveries(records)
    late: list[str] = []
    for record in records:
        view = post_view(record, deliveries[record.post_id], now)
        for target in view.targets:
            waiting = (
                target.delivery is not None
                and target.delivery.not_before is not None
                and target.delivery.not_before > now
            )
            if target.state == TargetState.DUE or (
                target.state == TargetState.PUBLISHING and not waiting
            ):
                since = duration(now - record.post.at)
                late.append(f"{record.post_id} to {target.target} (due {since} ago)")
    if late:
        cut = " (at least)" if len(records) == OVERDUE_SCAN else ""
        rows.append(
            problem(
                "posts overdue",
                f"{len(late)}{cut} target(s) due more than {duration(OVERDUE_AFTER)} ago and not "
                f"sent: {'; '.join(late[:5])}"
                + (f"; {len(late) - 5} more" if len(late) > 5 else "")
                + ": is due_posts_sensor running? `social-pipelines show ID`",
            )
        )
    else:
        rows.append(
            ok("posts overdue", f"none due more than {duration(OVERDUE_AFTER)} ago and unsent")
        )
    return rows


# -- alerts ----------------------------------------------------------------------------

# An alert not yet tried is the alerts sensor's next tick's (every 30 s); older than this,
# nothing is taking alerts out (the sensor stopped, or the daemon).
ALERT_UNTRIED_TOO_LONG = timedelta(minutes=5)


def alert_checks(wiring: Wiring, now: datetime) -> list[Check]:
    """Alerts a sink has not taken: kept, never dropped, and here until they go out. One
    that failed, or that nobody tried for minutes, means people are not being told."""
    alerts = wiring.store.alerts
    waiting = alerts.undelivered(limit=20)
    if not waiting:
        return [ok("alerts", "every alert was delivered")]
    total = alerts.undelivered_count()
    failed = [w for w in waiting if w.delivery.attempts]
    stuck = [
        w
        for w in waiting
        if not w.delivery.attempts and now - w.created_at > ALERT_UNTRIED_TOO_LONG
    ]
    oldest = waiting[0]
    detail = (
        f"{total} alert deliveries not taken by their sink, oldest since "
        f"{when(oldest.created_at)}; {oldest.described()}"
    )
    if failed:
        return [problem("alerts", f"{detail}; last failure: {failed[-1].described()}")]
    if stuck:
        return [
            problem(
                "alerts",
                f"{detail}; not tried for {duration(now - stuck[0].created_at)}: is "
                "alerts_sensor running?",
            )
        ]
    return [warn("alerts", f"{detail}; alerts_sensor sends them at its next tick")]
