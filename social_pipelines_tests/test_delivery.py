"""The Deliverer against a fake platform and a real ledger (SQLite): exactly once."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from social_pipelines.delivery import DEFAULT_LEASE, Cancelled, Deliverer, Outcome, Sender
from social_pipelines.errors import (
    AuthExpired,
    Duplicate,
    OutcomeUnknown,
    QuotaExhausted,
    RateLimited,
    Rejected,
    SocialError,
    Transient,
)
from social_pipelines.models import (
    CreatePost,
    Delivery,
    DeliveryKind,
    DeliveryState,
    Draft,
    Published,
    SocialPost,
    content_hash,
    delivery_id,
)
from social_pipelines.store import ClaimResult, DeliveryRecord, Ledger, QuotaRule
from social_pipelines.store.state import StateStore

ACCOUNT_KEY = "109@fake.example"


class FakePlatform:
    """A remote platform in memory: posts it holds, and scripted failures for creates.

    A scripted failure can say whether the post landed anyway (a timeout after the server
    created it) so reconciliation has something real to find or miss.
    """

    name = "fake"

    def __init__(self) -> None:
        self.posts: list[SocialPost] = []
        self.creates: list[tuple[CreatePost, str]] = []
        self.create_failures: list[tuple[SocialError, bool]] = []
        self.list_failure: SocialError | None = None
        self.listed = 0
        self.sought: list[Delivery] = []

    def fail_next_create(self, error: SocialError, *, landed: bool = False) -> None:
        self.create_failures.append((error, landed))

    def land(self, post: CreatePost) -> SocialPost:
        """Hold `post` as the platform would once a create of it went through (whether or
        not the answer reached the sender)."""
        number = len(self.posts) + 1
        stored = SocialPost(
            platform=self.name,
            id=f"remote-{number}",
            author_id="109",
            author_handle="brand",
            text=post.text,
            url=f"https://fake.example/@brand/{number}",
            created_at=datetime.now(UTC),
            in_reply_to_id=post.in_reply_to_id,
        )
        self.posts.append(stored)
        return stored

    # -- what the deliverer uses --------------------------------------------------------

    def create_post(self, post: CreatePost, *, idempotency_key: str) -> Published:
        self.creates.append((post, idempotency_key))
        if self.create_failures:
            error, landed = self.create_failures.pop(0)
            if landed:
                self.land(post)
            raise error
        stored = self.land(post)
        return Published(remote_id=stored.id, url=stored.url, created_at=stored.created_at)

    def find_delivery(self, delivery: Delivery) -> Published | None:
        """Like an adapter: a reply by the post it answers, a publish by its content."""
        self.listed += 1
        self.sought.append(delivery)
        if self.list_failure is not None:
            raise self.list_failure
        for post in reversed(self.posts):
            if post.id in delivery.taken_ids:
                continue  # another delivery's post, as the adapters skip it
            if delivery.kind == DeliveryKind.REPLY:
                found = post.in_reply_to_id == delivery.subject
            else:
                found = content_hash(post.text) == content_hash(delivery.text)
            if found:
                return Published(remote_id=post.id, url=post.url, created_at=post.created_at)
        return None


def _draft(subject: str = "their-post-1", text: str = "@alice thanks!", **kw: object) -> Draft:
    kind = kw.pop("kind", DeliveryKind.REPLY)
    in_reply_to = None
    if kind == DeliveryKind.REPLY:
        in_reply_to = SocialPost(
            platform="fake",
            id=subject,
            author_id="7",
            author_handle="alice",
            text="hi brand",
            created_at=datetime(2025, 3, 1, tzinfo=UTC),
        )
    return Draft(
        delivery_id=delivery_id("fake", ACCOUNT_KEY, kind, subject),  # type: ignore[arg-type]
        campaign="mentions",
        account="brand",
        platform="fake",
        account_key=ACCOUNT_KEY,
        kind=kind,  # type: ignore[arg-type]
        subject=subject,
        text=text,
        in_reply_to=in_reply_to,
    )


@pytest.fixture
def store(tmp_path: Path) -> Iterator[StateStore]:
    opened = StateStore(f"sqlite:///{tmp_path / 'state.db'}")
    yield opened
    opened.dispose()


@pytest.fixture
def ledger(store: StateStore) -> Ledger:
    return store.ledger


@pytest.fixture
def platform() -> FakePlatform:
    return FakePlatform()


@pytest.fixture
def deliverer(ledger: Ledger, platform: FakePlatform) -> Deliverer:
    """One step per call: an unknown outcome is left to the next call (see the in-step
    tests below for the default)."""
    return Deliverer(ledger, platform, run_id="run-1", settle=timedelta(0), reconciles_in_step=0)


def test_the_fake_is_what_a_deliverer_sends_through(platform: FakePlatform) -> None:
    sender: Sender = platform  # checked by the type checker
    assert sender.name == "fake"


def test_sent_once_then_already_sent(
    deliverer: Deliverer, platform: FakePlatform, ledger: Ledger
) -> None:
    draft = _draft()
    first = deliverer.deliver(draft)
    assert first.outcome == Outcome.SENT
    assert (first.remote_id, first.url) == ("remote-1", "https://fake.example/@brand/1")
    assert first.settled
    [(post, key)] = platform.creates
    assert key == draft.delivery_id
    assert (post.text, post.in_reply_to_id) == ("@alice thanks!", "their-post-1")

    # Again, and again with a changed text, from another run: nothing more is posted.
    again = Deliverer(ledger, platform, run_id="run-2").deliver(
        _draft(text="@alice a whole new wording")
    )
    assert again.outcome == Outcome.ALREADY_SENT
    assert (again.remote_id, again.url) == (first.remote_id, first.url)
    assert again.settled
    assert len(platform.creates) == 1 and len(platform.posts) == 1

    record = ledger.get(draft.delivery_id)
    assert record.state == DeliveryState.SENT and record.text == "@alice thanks!"
    assert [row.outcome for row in ledger.attempts(draft.delivery_id)] == ["sent"]


def test_unknown_then_reconciled_without_a_second_create(
    deliverer: Deliverer, platform: FakePlatform, ledger: Ledger
) -> None:
    draft = _draft()
    platform.fail_next_create(OutcomeUnknown("read timeout"), landed=True)
    first = deliverer.deliver(draft)
    assert first.outcome == Outcome.UNKNOWN
    assert first.error_kind == "outcome_unknown"
    assert not first.settled
    assert ledger.get(draft.delivery_id).state == DeliveryState.UNKNOWN

    second = deliverer.deliver(draft)
    assert second.outcome == Outcome.RECONCILED
    assert (second.remote_id, second.url) == ("remote-1", "https://fake.example/@brand/1")
    assert len(platform.creates) == 1 and len(platform.posts) == 1
    assert ledger.get(draft.delivery_id).state == DeliveryState.SENT
    assert [r.outcome for r in ledger.attempts(draft.delivery_id)] == ["unknown", "reconciled"]

    assert deliverer.deliver(draft).outcome == Outcome.ALREADY_SENT
    assert len(platform.creates) == 1


def test_unknown_then_sent_once_when_it_did_not_land(
    deliverer: Deliverer, platform: FakePlatform, ledger: Ledger
) -> None:
    draft = _draft()
    platform.fail_next_create(OutcomeUnknown("reset"), landed=False)
    assert deliverer.deliver(draft).outcome == Outcome.UNKNOWN
    second = deliverer.deliver(draft)
    assert second.outcome == Outcome.SENT
    assert platform.listed == 1  # it looked before sending again
    assert len(platform.creates) == 2 and len(platform.posts) == 1
    assert deliverer.deliver(draft).outcome == Outcome.ALREADY_SENT
    assert len(platform.creates) == 2


def test_reconciliation_matches_the_post_answered_not_any_post(
    deliverer: Deliverer, platform: FakePlatform
) -> None:
    # Another reply of ours is out, to a different post: it must not count as this one.
    assert deliverer.deliver(_draft("other-post")).outcome == Outcome.SENT
    platform.fail_next_create(OutcomeUnknown("timeout"), landed=False)
    assert deliverer.deliver(_draft("their-post-1")).outcome == Outcome.UNKNOWN
    result = deliverer.deliver(_draft("their-post-1"))
    assert result.outcome == Outcome.SENT
    assert result.remote_id == "remote-2"


def test_a_publish_is_reconciled_by_its_content(
    deliverer: Deliverer, platform: FakePlatform
) -> None:
    draft = _draft("outbox-1:fake", text="Launch day!  ", kind=DeliveryKind.PUBLISH)
    platform.fail_next_create(OutcomeUnknown("timeout"), landed=True)
    assert deliverer.deliver(draft).outcome == Outcome.UNKNOWN
    assert deliverer.deliver(draft).outcome == Outcome.RECONCILED
    assert len(platform.creates) == 1


def test_unknown_stays_unknown_while_the_platform_cannot_be_read(
    deliverer: Deliverer, platform: FakePlatform, ledger: Ledger
) -> None:
    draft = _draft()
    platform.fail_next_create(OutcomeUnknown("timeout"), landed=True)
    deliverer.deliver(draft)
    platform.list_failure = Transient("connect error")
    result = deliverer.deliver(draft)
    assert result.outcome == Outcome.UNKNOWN
    assert result.error_kind == "transient"
    assert len(platform.creates) == 1
    assert ledger.get(draft.delivery_id).state == DeliveryState.UNKNOWN

    platform.list_failure = None
    assert deliverer.deliver(draft).outcome == Outcome.RECONCILED
    assert len(platform.creates) == 1


def test_a_run_that_died_mid_send_is_reconciled_after_its_lease(
    tmp_path: Path, platform: FakePlatform
) -> None:
    now = [datetime(2025, 3, 1, 12, 0, tzinfo=UTC)]
    store = StateStore(f"sqlite:///{tmp_path / 'lease.db'}", clock=lambda: now[0])
    try:
        draft = _draft()
        store.ledger.plan(draft)
        # A run claims it, the post goes out, and the run is killed before recording it.
        crashed = store.ledger.claim(draft.delivery_id, run_id="dead-run", lease=DEFAULT_LEASE)
        assert crashed.result == ClaimResult.CLAIMED
        platform.land(CreatePost(text=draft.text, in_reply_to_id=draft.subject))

        deliverer = Deliverer(store.ledger, platform, run_id="run-2", reconciles_in_step=0)
        assert deliverer.deliver(draft).outcome == Outcome.IN_FLIGHT
        now[0] += DEFAULT_LEASE + timedelta(seconds=1)
        result = deliverer.deliver(draft)
        assert result.outcome == Outcome.RECONCILED
        assert result.remote_id == "remote-1"
        assert platform.creates == []
    finally:
        store.dispose()


def test_in_flight_elsewhere_is_left_alone(
    deliverer: Deliverer, platform: FakePlatform, ledger: Ledger
) -> None:
    draft = _draft()
    ledger.plan(draft)
    ledger.claim(draft.delivery_id, run_id="other-run", lease=DEFAULT_LEASE)
    result = deliverer.deliver(draft)
    assert result.outcome == Outcome.IN_FLIGHT
    assert not result.settled
    assert platform.creates == []


def test_duplicate_answer_triggers_reconciliation(
    deliverer: Deliverer, platform: FakePlatform, ledger: Ledger
) -> None:
    draft = _draft()
    platform.fail_next_create(Duplicate("already posted", status_code=422), landed=True)
    assert deliverer.deliver(draft).outcome == Outcome.UNKNOWN
    result = deliverer.deliver(draft)
    assert result.outcome == Outcome.RECONCILED
    assert result.remote_id == "remote-1"
    assert ledger.get(draft.delivery_id).state == DeliveryState.SENT
    assert [r.outcome for r in ledger.attempts(draft.delivery_id)] == ["unknown", "reconciled"]
    assert len(platform.creates) == 1


def test_duplicate_answer_that_cannot_be_found_is_unknown(
    deliverer: Deliverer, platform: FakePlatform, ledger: Ledger
) -> None:
    draft = _draft()
    platform.fail_next_create(Duplicate("already posted"), landed=False)
    result = deliverer.deliver(draft)
    assert result.outcome == Outcome.UNKNOWN
    assert result.error_kind == "duplicate"
    assert ledger.get(draft.delivery_id).state == DeliveryState.UNKNOWN


def test_a_duplicate_of_another_post_is_dead_not_resent(
    deliverer: Deliverer, platform: FakePlatform, ledger: Ledger
) -> None:
    """X refuses a reply whose text the account already posted to someone else: not found
    after the settle time, it is dead with the reason, not resent until out of attempts."""
    draft = _draft()
    for _ in range(2):
        platform.fail_next_create(Duplicate("duplicate content", status_code=403), landed=False)
        # Refused, then not found: one more create, in case the timeline was only slow.
        assert deliverer.deliver(draft).outcome == Outcome.UNKNOWN
    result = deliverer.deliver(draft)
    assert result.outcome == Outcome.DEAD
    assert result.error_kind == "rejected"
    assert "duplicate of another post" in result.error
    assert "duplicate content" in (ledger.get(draft.delivery_id).error or "")
    assert len(platform.creates) == 2
    outcomes = [r.outcome for r in ledger.attempts(draft.delivery_id)]
    assert outcomes == ["unknown", "unknown", "dead"]


def test_rejected_is_dead_and_stays_dead(
    deliverer: Deliverer, platform: FakePlatform, ledger: Ledger
) -> None:
    draft = _draft()
    platform.fail_next_create(Rejected("text too long", status_code=422))
    result = deliverer.deliver(draft)
    assert result.outcome == Outcome.DEAD
    assert result.settled
    assert result.error_kind == "rejected"
    assert "text too long" in result.error
    record = ledger.get(draft.delivery_id)
    assert (record.state, record.status_code) == (DeliveryState.DEAD, 422)

    again = deliverer.deliver(draft)
    assert again.outcome == Outcome.DEAD
    assert "text too long" in again.error
    assert len(platform.creates) == 1


def test_rate_limited_is_deferred_until_its_retry_after(
    deliverer: Deliverer, platform: FakePlatform, ledger: Ledger
) -> None:
    draft = _draft()
    platform.fail_next_create(RateLimited("slow down", retry_after=600, status_code=429))
    before = datetime.now(UTC)
    result = deliverer.deliver(draft)
    after = datetime.now(UTC)
    assert result.outcome == Outcome.DEFERRED
    assert not result.settled
    record = ledger.get(draft.delivery_id)
    assert record.state == DeliveryState.FAILED
    assert record.error_kind == "rate_limited"
    expected = timedelta(seconds=600)
    assert before + expected <= record.not_before <= after + expected
    assert [r.outcome for r in ledger.attempts(draft.delivery_id)] == ["deferred"]

    # Before that time, a new run leaves it alone.
    assert deliverer.deliver(draft).outcome == Outcome.DEFERRED
    assert len(platform.creates) == 1


def test_quota_exhausted_is_deferred_until_the_quota_resets(
    deliverer: Deliverer, platform: FakePlatform, ledger: Ledger
) -> None:
    until = datetime.now(UTC) + timedelta(hours=1)
    platform.fail_next_create(QuotaExhausted("daily quota", until=until))
    assert deliverer.deliver(_draft()).outcome == Outcome.DEFERRED
    assert ledger.get(_draft().delivery_id).not_before == until


@pytest.mark.parametrize(
    "error", [Transient("503", status_code=503), AuthExpired("token refused", status_code=401)]
)
def test_retryable_failures_are_failed_then_sent_by_the_next_run(
    deliverer: Deliverer, platform: FakePlatform, ledger: Ledger, error: SocialError
) -> None:
    draft = _draft()
    platform.fail_next_create(error)
    result = deliverer.deliver(draft)
    assert result.outcome == Outcome.FAILED
    assert result.error_kind == error.kind
    assert ledger.get(draft.delivery_id).state == DeliveryState.FAILED

    assert deliverer.deliver(draft).outcome == Outcome.SENT
    assert len(platform.creates) == 2 and len(platform.posts) == 1
    assert [r.outcome for r in ledger.attempts(draft.delivery_id)] == ["failed", "sent"]


def test_a_delivery_out_of_attempts_is_dead(ledger: Ledger, platform: FakePlatform) -> None:
    deliverer = Deliverer(ledger, platform, run_id="run-1", max_attempts=2)
    draft = _draft()
    platform.fail_next_create(Transient("reset"))
    platform.fail_next_create(Transient("reset again"))
    assert deliverer.deliver(draft).outcome == Outcome.FAILED
    last = deliverer.deliver(draft)
    assert last.outcome == Outcome.DEAD
    assert "reset again" in last.error
    assert deliverer.deliver(draft).outcome == Outcome.DEAD
    assert len(platform.creates) == 2 and platform.posts == []


def test_a_doubtful_delivery_out_of_attempts_is_not_sent_again(
    ledger: Ledger, platform: FakePlatform
) -> None:
    deliverer = Deliverer(
        ledger, platform, run_id="run-1", max_attempts=1, settle=timedelta(0), reconciles_in_step=0
    )
    draft = _draft()
    platform.fail_next_create(OutcomeUnknown("timeout"), landed=False)
    assert deliverer.deliver(draft).outcome == Outcome.UNKNOWN
    result = deliverer.deliver(draft)
    assert result.outcome == Outcome.DEAD
    assert "out of attempts (1)" in result.error
    assert result.error_kind == "out_of_attempts"  # ours to give up on, not the platform's
    assert len(platform.creates) == 1
    assert ledger.get(draft.delivery_id).state == DeliveryState.DEAD


def test_out_of_attempts_after_an_error_page_says_its_title_and_keeps_the_page(
    ledger: Ledger, platform: FakePlatform
) -> None:
    page = "<html><head><title>502 Bad Gateway</title></head><body>" + "x" * 500
    deliverer = Deliverer(
        ledger, platform, run_id="run-1", max_attempts=1, settle=timedelta(0), reconciles_in_step=0
    )
    draft = _draft()
    platform.fail_next_create(
        OutcomeUnknown("server error", status_code=502, detail=page), landed=False
    )
    assert deliverer.deliver(draft).outcome == Outcome.UNKNOWN
    result = deliverer.deliver(draft)
    assert result.outcome == Outcome.DEAD
    assert result.error == "out of attempts (1): server error (HTTP 502): 502 Bad Gateway"
    stored = ledger.get(draft.delivery_id).error
    assert stored.startswith("out of attempts (1): server error (HTTP 502): <html>")
    assert "x" * 500 in stored
    # Asked again later, the dead delivery reports its reason read back from the ledger,
    # summarised the same way.
    again = deliverer.deliver(draft)
    assert again.outcome == Outcome.DEAD
    assert again.error == result.error


def test_send_drives_a_planned_delivery_from_the_ledger_alone(
    deliverer: Deliverer, platform: FakePlatform, ledger: Ledger
) -> None:
    draft = _draft("their-post-9")
    ledger.plan(draft)
    result = deliverer.send(draft.delivery_id)
    assert result.outcome == Outcome.SENT
    [(post, key)] = platform.creates
    assert (post.text, post.in_reply_to_id, key) == (draft.text, "their-post-9", draft.delivery_id)


def test_a_publish_is_not_sent_as_a_reply(deliverer: Deliverer, platform: FakePlatform) -> None:
    deliverer.deliver(_draft("outbox-7:fake", text="Launch!", kind=DeliveryKind.PUBLISH))
    [(post, _)] = platform.creates
    assert post.in_reply_to_id is None


def test_a_full_quota_defers_without_calling_the_platform(
    ledger: Ledger, platform: FakePlatform
) -> None:
    quota = QuotaRule(limit=1, window=timedelta(hours=1))
    deliverer = Deliverer(ledger, platform, run_id="run-1", quotas=[quota])
    first = deliverer.deliver(_draft("post-a"))
    assert first.outcome == Outcome.SENT
    second = deliverer.deliver(_draft("post-b"))
    assert second.outcome == Outcome.DEFERRED
    assert second.error_kind == "quota_exhausted"
    sent_at = ledger.get(first.delivery_id).sent_at
    assert second.not_before == sent_at + quota.window
    assert len(platform.creates) == 1


# -- the default: an unknown outcome is settled in the same step, after the settle time ----


class Recorder:
    """A clock that a sleep moves on (remembering how long), and the log lines."""

    def __init__(self) -> None:
        self.now = datetime.now(UTC)
        self.sleeps: list[float] = []
        self.lines: list[str] = []

    def clock(self) -> datetime:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += timedelta(seconds=seconds)

    def info(self, msg: str) -> None:
        self.lines.append(msg)

    warning = info


@pytest.fixture
def seen(tmp_path: Path) -> Iterator[tuple[Recorder, Ledger]]:
    recorder = Recorder()
    store = StateStore(f"sqlite:///{tmp_path / 'clocked.db'}", clock=recorder.clock)
    yield recorder, store.ledger
    store.dispose()


def test_unknown_is_looked_for_after_the_settle_time_before_any_resend(
    seen: tuple[Recorder, Ledger], platform: FakePlatform
) -> None:
    seen, ledger = seen
    deliverer = Deliverer(
        ledger, platform, run_id="run-1", settle=timedelta(seconds=5), sleep=seen.sleep, log=seen
    )
    draft = _draft()
    platform.fail_next_create(OutcomeUnknown("read timeout"), landed=True)
    result = deliverer.deliver(draft)
    assert result.outcome == Outcome.RECONCILED
    assert len(platform.creates) == 1 and platform.listed == 1
    assert seen.sleeps == [5.0]
    assert [r.outcome for r in ledger.attempts(draft.delivery_id)] == ["unknown", "reconciled"]
    log = "\n".join(seen.lines)
    assert "may be out" in log and "reconciled" in log and "it was out already" in log


def test_a_miss_after_the_settle_time_sends_again_once_and_says_so(
    seen: tuple[Recorder, Ledger], platform: FakePlatform
) -> None:
    seen, ledger = seen
    deliverer = Deliverer(
        ledger, platform, run_id="run-1", settle=timedelta(seconds=2), sleep=seen.sleep, log=seen
    )
    draft = _draft()
    platform.fail_next_create(OutcomeUnknown("reset after sending"), landed=False)
    result = deliverer.deliver(draft)
    assert result.outcome == Outcome.SENT
    assert len(platform.creates) == 2 and len(platform.posts) == 1
    assert platform.listed == 1  # looked, missed, and only then sent again
    assert [key for _, key in platform.creates] == [draft.delivery_id] * 2  # key still sent
    assert any(
        "not among the account's own posts, so it may be sent again" in line for line in seen.lines
    )


def test_nobody_reconciles_an_unknown_delivery_before_its_settle_time(
    ledger: Ledger, platform: FakePlatform
) -> None:
    """Another run finding the row during the settle time leaves it alone."""
    first = Deliverer(ledger, platform, settle=timedelta(minutes=5), reconciles_in_step=0)
    draft = _draft()
    platform.fail_next_create(OutcomeUnknown("read timeout"), landed=False)
    assert first.deliver(draft).outcome == Outcome.UNKNOWN
    other = Deliverer(ledger, platform, run_id="run-2", settle=timedelta(minutes=5))
    result = other.send(draft.delivery_id)
    assert result.outcome == Outcome.DEFERRED
    assert platform.listed == 0 and len(platform.creates) == 1
    assert ledger.due() == []
    assert ledger.next_due_at() == ledger.get(draft.delivery_id).not_before


def test_in_step_reconciliation_is_bounded(
    seen: tuple[Recorder, Ledger], platform: FakePlatform
) -> None:
    seen, ledger = seen
    deliverer = Deliverer(ledger, platform, settle=timedelta(seconds=1), sleep=seen.sleep)
    for _ in range(5):
        platform.fail_next_create(OutcomeUnknown("read timeout"), landed=False)
    result = deliverer.deliver(_draft())
    assert result.outcome == Outcome.UNKNOWN
    assert len(seen.sleeps) == 3 and len(platform.creates) == 4 and platform.listed == 3


def test_the_heartbeat_keeps_a_live_claim_and_stops_with_the_deliverer(
    tmp_path: Path, platform: FakePlatform
) -> None:
    store = StateStore(f"sqlite:///{tmp_path / 'beat.db'}")
    try:
        draft = _draft()
        store.ledger.plan(draft)
        lease = timedelta(seconds=4)
        with Deliverer(store.ledger, platform, run_id="live-run", lease=lease) as deliverer:
            held = store.ledger.claim(draft.delivery_id, run_id=deliverer.run_id, lease=lease)
            assert held.result == ClaimResult.CLAIMED
            first_lease = store.ledger.get(draft.delivery_id).lease_until
            time.sleep(2.5)  # more than a beat (lease / 4)
            renewed = store.ledger.get(draft.delivery_id).lease_until
            assert renewed > first_lease
        stopped = store.ledger.get(draft.delivery_id).lease_until
        time.sleep(1.5)
        assert store.ledger.get(draft.delivery_id).lease_until == stopped
    finally:
        store.dispose()


# -- prepare: what to create is decided inside the claim -----------------------------------


class Outbox:
    """What a publish's `prepare` reads: the post as it is now, and uploads it makes."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.cancelled = ""
        self.uploads: list[str] = []

    def prepare(
        self, record: DeliveryRecord, stage: Callable[[str], None]
    ) -> CreatePost | Cancelled:
        if self.cancelled:
            return Cancelled(self.cancelled)
        media = record.staged_id
        if media is None:  # an earlier attempt's upload is reused, never made twice
            media = f"media-{len(self.uploads) + 1}"
            self.uploads.append(media)
            stage(media)
        return CreatePost(text=self.text, media_ids=(media,))


def _publish(outbox: Outbox) -> Draft:
    return _draft("post-7/brand", text=outbox.text, kind=DeliveryKind.PUBLISH)


def test_a_retried_publish_is_sent_with_the_media_its_first_attempt_staged(
    ledger: Ledger, platform: FakePlatform
) -> None:
    outbox = Outbox("launch day")
    deliverer = Deliverer(ledger, platform, run_id="run-1", prepare=outbox.prepare)
    draft = _publish(outbox)
    platform.fail_next_create(Transient("connect error"))
    assert deliverer.deliver(draft).outcome == Outcome.FAILED
    assert ledger.get(draft.delivery_id).staged_id == "media-1"

    assert deliverer.send(draft.delivery_id).outcome == Outcome.SENT
    assert outbox.uploads == ["media-1"]
    assert [post.media_ids for post, _ in platform.creates] == [("media-1",), ("media-1",)]


def test_a_cancel_made_before_a_redelivery_wins(ledger: Ledger, platform: FakePlatform) -> None:
    outbox = Outbox("launch day")
    deliverer = Deliverer(ledger, platform, run_id="run-1", prepare=outbox.prepare)
    draft = _publish(outbox)
    platform.fail_next_create(Transient("connect error"))
    assert deliverer.deliver(draft).outcome == Outcome.FAILED
    outbox.cancelled = "cancelled by its author"

    result = deliverer.send(draft.delivery_id)
    assert result.outcome == Outcome.CANCELLED and result.settled
    assert len(platform.creates) == 1  # only the first, refused attempt
    record = ledger.get(draft.delivery_id)
    assert record.state == DeliveryState.CANCELLED
    assert record.error == "cancelled by its author"
    assert deliverer.send(draft.delivery_id).outcome == Outcome.CANCELLED
    assert ledger.due() == []


def test_a_failed_upload_fails_the_attempt_without_doubt(
    ledger: Ledger, platform: FakePlatform
) -> None:
    def upload_times_out(record: DeliveryRecord, stage: Callable[[str], None]) -> CreatePost:
        raise OutcomeUnknown("read timeout on the upload")

    deliverer = Deliverer(ledger, platform, run_id="run-1", prepare=upload_times_out)
    result = deliverer.deliver(_draft(kind=DeliveryKind.PUBLISH))
    # Nothing anyone sees was created: a plain failure, not a reconciliation.
    assert result.outcome == Outcome.FAILED
    assert platform.creates == [] and platform.listed == 0


def test_a_claim_lost_while_preparing_sends_nothing(ledger: Ledger, platform: FakePlatform) -> None:
    def lapses(record: DeliveryRecord, stage: Callable[[str], None]) -> CreatePost:
        ledger.release_run("run-1")  # as if the heartbeat stopped and the lease ran out
        stage("media-1")
        return CreatePost(text=record.text)

    deliverer = Deliverer(ledger, platform, run_id="run-1", prepare=lapses)
    draft = _draft(kind=DeliveryKind.PUBLISH)
    assert deliverer.deliver(draft).outcome == Outcome.IN_FLIGHT
    assert platform.creates == []
    assert ledger.get(draft.delivery_id).staged_id is None


def test_reconciliation_is_given_the_reference_and_the_staged_id(
    ledger: Ledger, platform: FakePlatform
) -> None:
    """A platform that finds its posts by a staged id (a record key, a container id) gets
    it: the row's reference and staged id travel to `find_delivery`."""
    outbox = Outbox("launch day")
    deliverer = Deliverer(
        ledger,
        platform,
        run_id="run-1",
        prepare=outbox.prepare,
        settle=timedelta(0),
        reconciles_in_step=0,
    )
    draft = _publish(outbox).model_copy(update={"reference": "post-7/brand"})
    platform.fail_next_create(OutcomeUnknown("read timeout"), landed=True)
    assert deliverer.deliver(draft).outcome == Outcome.UNKNOWN
    assert deliverer.send(draft.delivery_id).outcome == Outcome.RECONCILED
    [sought] = platform.sought
    assert (sought.reference, sought.staged_id) == ("post-7/brand", "media-1")
    assert len(platform.creates) == 1


# Unknown outcomes are left to the next call, with no settle time to wait out.
NO_WAITING: dict = {"reconciles_in_step": 0, "settle": timedelta(0)}


def test_a_post_edited_since_its_plan_is_looked_for_by_the_text_sent(
    ledger: Ledger, platform: FakePlatform
) -> None:
    outbox = Outbox("first wording")
    deliverer = Deliverer(ledger, platform, run_id="run-1", prepare=outbox.prepare, **NO_WAITING)
    draft = _publish(outbox)
    outbox.text = "edited wording"  # the author edits after the plan, before the send
    platform.fail_next_create(OutcomeUnknown("timeout"), landed=True)
    assert deliverer.deliver(draft).outcome == Outcome.UNKNOWN
    assert ledger.get(draft.delivery_id).text == "edited wording"
    assert deliverer.send(draft.delivery_id).outcome == Outcome.RECONCILED
    assert [post.text for post, _ in platform.creates] == ["edited wording"]


def test_two_publishes_of_one_text_to_one_account_are_two_posts(
    ledger: Ledger, platform: FakePlatform
) -> None:
    deliverer = Deliverer(ledger, platform, run_id="run-1", **NO_WAITING)
    first = _draft("post-1/brand", text="Good morning!", kind=DeliveryKind.PUBLISH)
    second = _draft("post-2/brand", text="Good morning!", kind=DeliveryKind.PUBLISH)
    assert deliverer.deliver(first).outcome == Outcome.SENT
    # The second's create times out without landing: its reconciliation sees the first's
    # post, of the same text, and must not take it for its own.
    platform.fail_next_create(OutcomeUnknown("timeout"), landed=False)
    assert deliverer.deliver(second).outcome == Outcome.UNKNOWN
    assert deliverer.send(second.delivery_id).outcome == Outcome.SENT
    assert len(platform.posts) == 2
    assert ledger.get(first.delivery_id).remote_id != ledger.get(second.delivery_id).remote_id
    assert platform.sought[-1].taken_ids == {ledger.get(first.delivery_id).remote_id}


def test_a_post_another_delivery_took_meanwhile_is_looked_for_again(
    ledger: Ledger, platform: FakePlatform
) -> None:
    """Reconciliation finds a post that another process records for another delivery
    between the look and the write: nothing is recorded, the delivery stays unknown."""
    deliverer = Deliverer(ledger, platform, run_id="run-1", **NO_WAITING)
    first = _draft("post-1/brand", text="Same", kind=DeliveryKind.PUBLISH)
    second = _draft("post-2/brand", text="Same", kind=DeliveryKind.PUBLISH)
    platform.fail_next_create(OutcomeUnknown("timeout"), landed=True)
    assert deliverer.deliver(first).outcome == Outcome.UNKNOWN
    platform.fail_next_create(OutcomeUnknown("timeout"), landed=False)
    assert deliverer.deliver(second).outcome == Outcome.UNKNOWN
    other = Deliverer(ledger, platform, run_id="run-2", **NO_WAITING)
    look = platform.find_delivery

    def racing(delivery: Delivery) -> Published | None:
        found = look(delivery)
        if delivery.delivery_id == second.delivery_id:
            # Another process reconciles `first` to the same post right now.
            assert other.send(first.delivery_id).outcome == Outcome.RECONCILED
        return found

    platform.find_delivery = racing  # type: ignore[method-assign]
    result = deliverer.send(second.delivery_id)
    assert result.outcome == Outcome.UNKNOWN and "another delivery" in result.error
    assert ledger.get(first.delivery_id).remote_id == "remote-1"
    assert ledger.get(second.delivery_id).remote_id is None
    platform.find_delivery = look  # type: ignore[method-assign]
    # Looked for again: remote-1 is taken, nothing else matches, so it is sent once.
    assert deliverer.send(second.delivery_id).outcome == Outcome.SENT
    assert len(platform.posts) == 2
