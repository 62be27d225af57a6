"""Sending one delivery exactly once: claim in the ledger, send, record.

The rules of DESIGN.md's delivery ledger live here and nowhere else:
- a `sent` delivery is never sent again; its remote id and URL are returned instead;
- a delivery that may already be out (`unknown`, or a claimant that died mid-send) is
  reconciled against the account's own recent posts before anything is sent again, after
  the platform's settle time (a new post can take seconds to show in the account's list);
  the idempotency key is still sent with every create, as a second guard, never the only
  one (servers ignore keys or lose them);
- a platform "duplicate" answer triggers reconciliation, not failure;
- what to create is prepared inside the claim, right before the create (`prepare`): a
  cancel made a second before wins, a redelivered publish is sent with its images, and a
  remote id made on the way (an upload) is staged in the row for the next attempt;
- a create is repeated in place only when it provably never reached the platform (the
  guarded platform's retries decide that from the error class);
- a claim is a lease the deliverer renews while it works (a heartbeat), so a killed run's
  claims are free within about a lease whatever the run launcher;
- a run told to stop (SIGTERM, Ctrl-C: an interrupt raised wherever it is) lets go of the
  delivery in hand before it exits, never leaving it held until the lease runs out: a
  create that answered is recorded as sent, one in flight as unknown (reconciled first),
  one not yet made is given back for the next run;
- a used-up quota, a long rate-limit wait or an open circuit defers the delivery with a
  not-before time instead of failing or sleeping;
- a delivery out of attempts, or rejected, is dead with its reason, and stays visible.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from types import TracebackType
from typing import Protocol

from social_pipelines.errors import (
    CircuitOpen,
    Duplicate,
    Inconclusive,
    Interrupted,
    OutcomeUnknown,
    OutOfAttempts,
    QuotaExhausted,
    RateLimited,
    Rejected,
    SocialError,
    kind_of,
    summarize,
)
from social_pipelines.interrupts import interrupts_held, is_interrupt
from social_pipelines.log import Log
from social_pipelines.models import (
    CreatePost,
    Delivery,
    DeliveryKind,
    DeliveryState,
    Draft,
    Published,
)
from social_pipelines.store import (
    Claim,
    ClaimResult,
    DeliveryRecord,
    Ledger,
    QuotaRule,
    RemoteIdTaken,
)

# A claim lapses a minute after its holder's last sign of life; the holder renews it four
# times a lease, so one missed beat (a slow write) never loses a live claim.
DEFAULT_LEASE = timedelta(seconds=60)
DEFAULT_SETTLE = timedelta(seconds=5)
DEFAULT_MAX_ATTEMPTS = 6
# A create refused as a duplicate this many times, and not found among the account's own
# posts after each settle time, is a duplicate of another post, not of itself: dead. Two,
# not one: a slow timeline may hide our own post past one settle time (X shows a new post
# a read or two late), and a second refusal costs one create that makes nothing.
DUPLICATE_REFUSALS = 2
# An outcome-unknown create is reconciled in the same step at most this many times (each
# after the settle time); what is still unknown then is left to the step's retry.
IN_STEP_RECONCILES = 3
# Own posts a little older than the plan are looked at too (clock skew): the ids other
# deliveries took are counted from as far back.
RECONCILE_SLACK = timedelta(minutes=2)
_LOG = logging.getLogger(__name__)


class Sender(Protocol):
    """What the deliverer needs of a connected account (a `GuardedPlatform`)."""

    name: str

    def create_post(self, post: CreatePost, *, idempotency_key: str) -> Published: ...

    def find_delivery(self, delivery: Delivery) -> Published | None: ...


@dataclass
class _InHand:
    """The claimed attempt a deliverer works on, and how far it got: what an interrupt
    must settle (`Deliverer._let_go`)."""

    record: DeliveryRecord
    attempt: int
    doubtful: bool  # claimed to be reconciled: it may be out from an earlier attempt
    creating: bool = False  # the create was called: its request may have left
    published: Published | None = None  # the platform answered (or reconciling found it)
    reconciled: bool = False


class ClaimLost(Exception):
    """The claim lapsed (and may have been taken over) while this attempt worked: stop."""


@dataclass(frozen=True)
class Cancelled:
    """What `prepare` returns when the delivery must not go: what it delivers was withdrawn
    (a cancelled post) since it was planned."""

    reason: str
    # `missed` when it is withdrawn for being too late (the post's time is long past).
    kind: str = "cancelled"


# Runs inside the claim, right before the create: what to create, or that it was cancelled.
# It gets the row (its `reference`, a `staged_id` an earlier attempt left) and a `stage`
# callable that records a remote id made on the way (an upload) under the claim.
Prepare = Callable[[DeliveryRecord, Callable[[str], None]], "CreatePost | Cancelled"]


def prepare_reply(record: DeliveryRecord, stage: Callable[[str], None]) -> CreatePost:
    """A reply needs nothing but its row: the planned text, answering the post it is for."""
    return CreatePost(
        text=record.text,
        in_reply_to_id=record.subject if record.kind == DeliveryKind.REPLY else None,
    )


class Outcome(StrEnum):
    SENT = "sent"
    RECONCILED = "reconciled"  # it was out already: found on the platform, recorded as sent
    ALREADY_SENT = "already_sent"
    IN_FLIGHT = "in_flight"  # another run holds it right now
    DEFERRED = "deferred"  # waits for a quota window, a rate limit or a circuit
    FAILED = "failed"  # retryable; a later attempt will send it
    UNKNOWN = "unknown"  # may be out; the next attempt reconciles first
    DEAD = "dead"
    CANCELLED = "cancelled"  # withdrawn before it went out; never sent
    DRY_RUN = "dry_run"  # nothing sent or recorded: what a real run would send


SETTLED = frozenset(
    {
        Outcome.SENT,
        Outcome.RECONCILED,
        Outcome.ALREADY_SENT,
        Outcome.DEAD,
        Outcome.CANCELLED,
        Outcome.DRY_RUN,
    }
)
NEW = frozenset({Outcome.SENT, Outcome.RECONCILED})  # out because of this step
UNSETTLED = frozenset({Outcome.FAILED, Outcome.UNKNOWN})  # a retry of the step may settle


@dataclass(frozen=True)
class DeliveryResult:
    delivery_id: str
    outcome: Outcome
    url: str = ""
    remote_id: str = ""
    error: str = ""
    error_kind: str = ""
    not_before: datetime | None = None
    # What a person recognises the delivery by (the post answered, the outbox target).
    label: str = ""

    @property
    def settled(self) -> bool:
        """True when nothing more will happen to this delivery without a person."""
        return self.outcome in SETTLED

    def described(self) -> str:
        """One line for a log or a failure: outcome, what it was for, why."""
        return f"{self.outcome}: {self.label or self.delivery_id}" + (
            f": {self.error}" if self.error else ""
        )


@dataclass(frozen=True)
class DeliveryReport:
    """What a posting step did, delivery by delivery: what every posting op reports and
    what decides how its step ends (`ops/settle.py`)."""

    results: tuple[DeliveryResult, ...] = ()

    def of(self, *outcomes: Outcome) -> list[DeliveryResult]:
        return [result for result in self.results if result.outcome in outcomes]

    def count(self, *outcomes: Outcome) -> int:
        return len(self.of(*outcomes))

    @property
    def new(self) -> int:
        return self.count(*NEW)

    @property
    def unsettled(self) -> list[DeliveryResult]:
        return self.of(*UNSETTLED)

    @property
    def dead(self) -> list[DeliveryResult]:
        return self.of(Outcome.DEAD)

    @property
    def deferred_until(self) -> datetime | None:
        """The earliest time a deferred delivery may go."""
        times = [r.not_before for r in self.of(Outcome.DEFERRED) if r.not_before]
        return min(times) if times else None

    def outcomes(self) -> dict[Outcome, int]:
        """How many of each outcome, in the enum's order."""
        return {outcome: n for outcome in Outcome if (n := self.count(outcome))}


def _what(record: DeliveryRecord) -> str:
    """A delivery as a person reads it in a log line."""
    target = f"reply to {record.subject}" if record.kind == DeliveryKind.REPLY else record.subject
    return f"{record.platform} {target} as {record.account} ({record.delivery_id[:12]})"


def _result(
    record: DeliveryRecord, outcome: Outcome, error: SocialError | None = None
) -> DeliveryResult:
    return DeliveryResult(
        delivery_id=record.delivery_id,
        outcome=outcome,
        url=record.remote_url or "",
        remote_id=record.remote_id or "",
        # The ledger's 2 KB excerpt, read back, is summarised like a fresh error.
        error=str(error) if error else summarize(record.error),
        error_kind=error.kind if error else (record.error_kind or ""),
        not_before=record.not_before,
    )


class Heartbeat:
    """Renews the leases of every claim its holder has, from a daemon thread.

    Dagster's default run launcher never marks a SIGKILLed run failed, so no sensor would
    ever release what it held: only a lease that stops being renewed frees the claims of a
    process that is gone, and renewing it keeps a slow but live one from being overtaken.
    """

    def __init__(self, ledger: Ledger, holder: str, lease: timedelta, log: Log) -> None:
        self.ledger = ledger
        self.holder = holder
        self.lease = lease
        self.interval = lease.total_seconds() / 4
        self.log = log
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._beat, name=f"lease-heartbeat-{self.holder[:8]}", daemon=True
            )
            self._thread.start()

    def _beat(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.ledger.renew_leases(self.holder, self.lease)
            except Exception as error:  # a missed beat; the next one tries again
                self.log.warning(f"could not renew delivery claims of {self.holder}: {error}")

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None


class Deliverer:
    """Sends drafts for one account through its (guarded) platform, under the ledger.

    Use it as a context manager: while it is open, a heartbeat renews its claims.
    """

    def __init__(
        self,
        ledger: Ledger,
        platform: Sender,
        *,
        run_id: str | None = None,
        lease: timedelta = DEFAULT_LEASE,
        settle: timedelta = DEFAULT_SETTLE,
        quotas: Iterable[QuotaRule] = (),
        max_attempts: int = DEFAULT_MAX_ATTEMPTS,
        reconciles_in_step: int = IN_STEP_RECONCILES,
        prepare: Prepare = prepare_reply,
        log: Log | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        """`reconciles_in_step` bounds how often one `deliver`/`send` waits out the settle
        time and reconciles an unknown outcome itself (0: leave it to the next call);
        `prepare` turns a claimed row into what to create (`prepare_reply` for replies)."""
        self.ledger = ledger
        self.platform = platform
        # Claims are held in the name of the run; outside a run, of this deliverer.
        self.run_id = run_id or f"local-{uuid.uuid4().hex}"
        self.lease = lease
        self.settle = settle
        self.quotas = tuple(quotas)
        self.max_attempts = max_attempts
        self.reconciles_in_step = reconciles_in_step
        self.prepare = prepare
        self.log = log or _LOG
        self._sleep = sleep
        self._heartbeat = Heartbeat(ledger, self.run_id, lease, self.log)
        self._hand: _InHand | None = None

    def __enter__(self) -> Deliverer:
        self._heartbeat.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        self._heartbeat.stop()

    def deliver(self, draft: Draft) -> DeliveryResult:
        """Plan the draft (the first text planned wins) and send it once."""
        self._heartbeat.start()
        claim = self.ledger.plan_and_claim(
            draft, run_id=self.run_id, lease=self.lease, quotas=self.quotas
        )
        return self._settle_unknown(self._drive_in_hand(claim))

    def send(self, delivery_id: str) -> DeliveryResult:
        """Drive a planned delivery towards `sent` (or dead)."""
        return self._settle_unknown(self._send_once(delivery_id))

    def _send_once(self, delivery_id: str) -> DeliveryResult:
        self._heartbeat.start()
        claim = self.ledger.claim(
            delivery_id, run_id=self.run_id, lease=self.lease, quotas=self.quotas
        )
        return self._drive_in_hand(claim)

    def _drive_in_hand(self, claim: Claim) -> DeliveryResult:
        """`_drive` a claim; an interrupt on the way lets go of it first (`_let_go`)."""
        if claim.result not in (ClaimResult.CLAIMED, ClaimResult.RECONCILE):
            return self._drive(claim)
        hand = _InHand(claim.record, claim.attempt, doubtful=claim.result == ClaimResult.RECONCILE)
        self._hand = hand
        try:
            return self._drive(claim)
        except BaseException as stop:
            if is_interrupt(stop):
                with interrupts_held():
                    self._let_go(hand, stop)
            raise
        finally:
            self._hand = None

    def _let_go(self, hand: _InHand, stop: BaseException) -> None:
        """The run is stopping with `hand` claimed: record what is known of it, so nothing
        waits for the lease to run out and nothing is sent twice."""
        record = hand.record
        why = f"the run was interrupted ({type(stop).__name__})"
        try:
            current = self.ledger.get(record.delivery_id)
            if current is None or not (
                current.state == DeliveryState.SENDING
                and current.attempts == hand.attempt
                and current.run_id == self.run_id
            ):
                return  # the attempt was closed before the interrupt: nothing in hand
            if hand.published is not None:
                outcome = Outcome.RECONCILED if hand.reconciled else Outcome.SENT
                try:
                    done = self.ledger.record_sent(
                        record.delivery_id, hand.attempt, hand.published, outcome=outcome
                    )
                except RemoteIdTaken as taken:
                    self._unknown(record, hand.attempt, OutcomeUnknown(f"{why}: {taken}"))
                    self.log.warning(f"{why}: {_what(record)} recorded as unknown ({taken})")
                    return
                self.log.warning(
                    f"{why} after {_what(record)} went out: recorded as sent, {done.remote_url}"
                )
            elif hand.creating:
                self._unknown(
                    record,
                    hand.attempt,
                    OutcomeUnknown(f"{why} while the create was in flight; it may be out"),
                )
                self.log.warning(
                    f"{why} while the create of {_what(record)} was in flight: recorded as "
                    "unknown, so it is looked for among the account's own posts before "
                    "anything is sent again"
                )
            elif hand.doubtful:
                self._record(
                    record,
                    hand.attempt,
                    Interrupted(f"{why} while reconciling; it may be out"),
                    DeliveryState.UNKNOWN,
                    Outcome.UNKNOWN,
                    not_before=self.ledger.clock(),
                )
                self.log.warning(
                    f"{why} while reconciling {_what(record)}: it stays unknown, and the "
                    "next attempt reconciles it first"
                )
            else:
                self._record(
                    record,
                    hand.attempt,
                    Interrupted(f"{why} before it was sent"),
                    DeliveryState.FAILED,
                    Outcome.FAILED,
                )
                self.log.warning(
                    f"{why} before {_what(record)} was sent: nothing went out, its claim "
                    "is given back for the next run"
                )
        except Exception as error:
            self.log.warning(
                f"{why} with {_what(record)} in hand, and it could not be recorded "
                f"({error}): its claim lapses after the lease, then it is reconciled"
            )

    def _settle_unknown(self, result: DeliveryResult) -> DeliveryResult:
        """An unknown outcome is looked for after the settle time, in this step: found, it
        is recorded as sent; missed, it is sent again. Bounded; the rest waits for a retry."""
        for _ in range(self.reconciles_in_step):
            if result.outcome != Outcome.UNKNOWN or result.not_before is None:
                return result
            wait = (result.not_before - self.ledger.clock()).total_seconds()
            if wait > 0:
                self._sleep(wait)
            result = self._send_once(result.delivery_id)
        return result

    def _drive(self, claim: Claim) -> DeliveryResult:
        record = claim.record
        delivery_id = record.delivery_id
        match claim.result:
            case ClaimResult.SENT:
                return _result(record, Outcome.ALREADY_SENT)
            case ClaimResult.IN_FLIGHT:
                return _result(record, Outcome.IN_FLIGHT)
            case ClaimResult.DEFERRED:
                return _result(record, Outcome.DEFERRED)
            case ClaimResult.DEAD:
                return _result(record, Outcome.DEAD)
            case ClaimResult.CANCELLED:
                return _result(record, Outcome.CANCELLED)
            case ClaimResult.RECONCILE:
                settled = self._reconcile_first(claim)
                if settled is not None:
                    return settled
                if self._refused_as_duplicate(record) >= DUPLICATE_REFUSALS:
                    return self._duplicate_of_another(record, claim.attempt)
                until = self.ledger.quota_until(delivery_id, self.quotas)
                if until is not None:
                    return self._record(
                        record,
                        claim.attempt,
                        QuotaExhausted("posting quota used up", until=until),
                        DeliveryState.FAILED,
                        Outcome.DEFERRED,
                        not_before=until,
                    )
        if claim.attempt - record.attempt_base > self.max_attempts:
            return self._record(
                record,
                claim.attempt,
                # The last error as detail, not message: a stored page stays out of logs.
                OutOfAttempts(
                    f"out of attempts ({self.max_attempts})", detail=record.error or "no error"
                ),
                DeliveryState.DEAD,
                Outcome.DEAD,
            )
        return self._send(record, claim.attempt)

    def _reconcile_first(self, claim: Claim) -> DeliveryResult | None:
        """Settle a doubtful delivery from the platform's own record, if it is there."""
        record = claim.record
        try:
            return self._found_on_platform(record, claim.attempt)
        except SocialError as error:
            # Still cannot tell whether it is out: it stays unknown.
            self.log.warning(
                f"reconciling {_what(record)}: could not tell whether it is out ({error}); "
                "it stays unknown and is not sent again"
            )
            return self._unknown(record, claim.attempt, error)

    def _found_on_platform(self, record: DeliveryRecord, attempt: int) -> DeliveryResult | None:
        """Record the delivery as sent if the platform already has it; None on a miss."""
        found = self.reconcile(record)
        if found is None:
            self.log.warning(
                f"reconciled {_what(record)}: not among the account's own posts, so it may "
                f"be sent again (attempt {attempt}, same idempotency key)"
            )
            return None
        if self._hand is not None:
            self._hand.published, self._hand.reconciled = found, True
        try:
            done = self.ledger.record_sent(
                record.delivery_id, attempt, found, outcome=Outcome.RECONCILED
            )
        except RemoteIdTaken as taken:
            # Another delivery (of the same text) took that post meanwhile: look again.
            raise Inconclusive(f"{found.url}: {taken}; looked for again later") from taken
        self.log.info(f"reconciled {_what(record)}: it was out already, {found.url}")
        return _result(done, Outcome.RECONCILED)

    def _refused_as_duplicate(self, record: DeliveryRecord) -> int:
        """How many creates of this delivery (since a person last retried it) the platform
        refused as duplicates; 0 unless the latest was one."""
        duplicate = kind_of(Duplicate)
        if record.error_kind != duplicate:
            return 0
        return sum(
            1
            for attempt in self.ledger.attempts(record.delivery_id)
            if attempt.attempt > record.attempt_base and attempt.error_kind == duplicate
        )

    def _duplicate_of_another(self, record: DeliveryRecord, attempt: int) -> DeliveryResult:
        """The platform refused creates as duplicates, and each time, after the settle
        time, the delivery was not among the account's own posts: the same text is out for
        something else (X refuses a reply whose text the account already posted). Sending
        it again would be refused again until the attempts ran out; it is dead, with the
        reason, for a person to change the text and retry."""
        self.log.warning(
            f"{_what(record)}: refused as a duplicate and not among the account's own "
            "posts; the same text is out for another post, so it is not sent again"
        )
        error = Rejected(
            "refused as a duplicate of another post with the same text (not found among the "
            "account's own posts after the settle time); change the text to send it",
            platform=record.platform,
            detail=record.error or "",
        )
        return self._record(record, attempt, error, DeliveryState.DEAD, Outcome.DEAD)

    def _unknown(self, record: DeliveryRecord, attempt: int, error: SocialError) -> DeliveryResult:
        """It may be out: nobody sends it again before reconciliation has looked, and that
        waits for the settle time."""
        return self._record(
            record,
            attempt,
            error,
            DeliveryState.UNKNOWN,
            Outcome.UNKNOWN,
            not_before=self.ledger.clock() + self.settle,
        )

    def _send(self, record: DeliveryRecord, attempt: int) -> DeliveryResult:
        """Prepare inside the claim (a cancel made a second ago wins, a deferred publish
        gets its images), then create once."""
        try:
            prepared = self.prepare(record, self._stager(record))
        except ClaimLost as lost:
            self.log.warning(f"preparing {_what(record)}: {lost}; left to its new holder")
            return _result(record, Outcome.IN_FLIGHT)
        except SocialError as error:
            # Preparing creates nothing anyone sees (an orphaned upload at most).
            return self._not_sent(record, attempt, error, created=False)
        if isinstance(prepared, Cancelled):
            self.log.info(f"{_what(record)} cancelled before it was sent: {prepared.reason}")
            done = self.ledger.record_cancelled(
                record.delivery_id, attempt, prepared.reason, kind=prepared.kind
            )
            return _result(done, Outcome.CANCELLED)
        if prepared.text != record.text and (
            self.ledger.record_text(record.delivery_id, self.run_id, prepared.text) is None
        ):
            # An edit since the plan: what is looked for later must be what was sent.
            self.log.warning(f"preparing {_what(record)}: the claim lapsed; left to its holder")
            return _result(record, Outcome.IN_FLIGHT)
        # The plan time goes with every attempt: a record key derived from it and the
        # delivery id (Bluesky's rkey) is the same for every attempt, in any process.
        prepared = prepared.model_copy(update={"planned_at": record.created_at})
        hand = self._hand
        if hand is not None:
            hand.creating = True
        try:
            published = self.platform.create_post(prepared, idempotency_key=record.delivery_id)
        except SocialError as error:
            return self._not_sent(record, attempt, error, created=True)
        if hand is not None:
            hand.published = published
        try:
            done = self.ledger.record_sent(record.delivery_id, attempt, published)
        except RemoteIdTaken as taken:
            # The platform answered with another delivery's post (a key it confused): this
            # one may or may not be out, so it is reconciled before anything else.
            error = OutcomeUnknown(
                f"the create answered {published.url or published.remote_id}: {taken}"
            )
            return self._not_sent(record, attempt, error, created=True)
        return _result(done, Outcome.SENT)

    def _stager(self, record: DeliveryRecord) -> Callable[[str], None]:
        def stage(staged_id: str) -> None:
            if self.ledger.record_staged(record.delivery_id, self.run_id, staged_id) is None:
                raise ClaimLost(f"the claim lapsed before {staged_id!r} could be recorded")

        return stage

    def _not_sent(
        self, record: DeliveryRecord, attempt: int, error: SocialError, *, created: bool
    ) -> DeliveryResult:
        """What an error before `sent` makes of the delivery. Only a create can have left:
        then a duplicate answer or no answer means it may be out (reconcile first)."""
        if created and isinstance(error, (Duplicate, OutcomeUnknown)):
            self.log.warning(
                f"create of {_what(record)}: {error}; it may be out, so it is looked for "
                f"among the account's own posts in {self.settle.total_seconds():g} s before "
                "anything is sent again"
            )
            return self._unknown(record, attempt, error)
        if isinstance(error, Rejected):
            return self._record(record, attempt, error, DeliveryState.DEAD, Outcome.DEAD)
        if isinstance(error, (RateLimited, QuotaExhausted, CircuitOpen)):
            until = error.resume_at if isinstance(error, RateLimited) else error.until
            return self._record(
                record, attempt, error, DeliveryState.FAILED, Outcome.DEFERRED, not_before=until
            )
        if attempt - record.attempt_base >= self.max_attempts:
            return self._record(record, attempt, error, DeliveryState.DEAD, Outcome.DEAD)
        return self._record(record, attempt, error, DeliveryState.FAILED, Outcome.FAILED)

    def _record(
        self,
        record: DeliveryRecord,
        attempt: int,
        error: SocialError,
        state: DeliveryState,
        outcome: Outcome,
        *,
        not_before: datetime | None = None,
    ) -> DeliveryResult:
        done = self.ledger.record_error(
            record.delivery_id,
            attempt,
            error,
            state=state,
            not_before=not_before,
            outcome=outcome,
        )
        return _result(done, outcome, error)

    def reconcile(self, record: DeliveryRecord) -> Published | None:
        """Ask the platform whether the delivery is out already; only a miss allows a new
        send. Each adapter knows how to find its own posts (`find_delivery`)."""
        self.log.info(
            f"reconciling {_what(record)}: looking among the account's own posts since "
            f"{record.created_at:%H:%M:%S} UTC"
        )
        kind = DeliveryKind(record.kind)
        # A publish is found by its text; a post of the same text may be another's.
        taken = (
            self.ledger.remote_ids_since(
                record.platform,
                record.account_key,
                record.created_at - RECONCILE_SLACK,
                besides=record.delivery_id,
            )
            if kind == DeliveryKind.PUBLISH
            else frozenset()
        )
        return self.platform.find_delivery(
            Delivery(
                delivery_id=record.delivery_id,
                kind=kind,
                subject=record.subject,
                text=record.text,
                planned_at=record.created_at,
                reference=record.reference,
                staged_id=record.staged_id,
                taken_ids=taken,
            )
        )
