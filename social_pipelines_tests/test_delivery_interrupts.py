"""A run told to stop lets go of the delivery in hand: never held until its lease runs out,
never sent twice. Real signals (SIGTERM to this process), handled as Dagster's run worker
handles them: by raising an interrupt wherever the code is."""

from __future__ import annotations

import os
import signal
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from types import FrameType

import pytest

from social_pipelines.delivery import Cancelled, Deliverer, Outcome
from social_pipelines.errors import OutcomeUnknown
from social_pipelines.models import CreatePost, Delivery, DeliveryState, Published
from social_pipelines.store import DeliveryRecord, Ledger
from social_pipelines.store.state import StateStore
from social_pipelines_tests.test_delivery import FakePlatform, Recorder, _draft


@pytest.fixture
def seen(tmp_path: Path) -> Iterator[tuple[Recorder, Ledger]]:
    """A ledger on a clock of its own, and the log lines."""
    recorder = Recorder()
    store = StateStore(f"sqlite:///{tmp_path / 'clocked.db'}", clock=recorder.clock)
    yield recorder, store.ledger
    store.dispose()


@pytest.fixture
def platform() -> FakePlatform:
    return FakePlatform()


class Stop(BaseException):
    """What Dagster raises in a step on SIGTERM (DagsterExecutionInterruptedError)."""


@pytest.fixture
def sigterm_stops() -> Iterator[None]:
    def stop(_signum: int, _frame: FrameType | None) -> None:
        raise Stop

    previous = signal.signal(signal.SIGTERM, stop)
    yield
    signal.signal(signal.SIGTERM, previous)


def sigterm() -> None:
    os.kill(os.getpid(), signal.SIGTERM)


class StoppedMidCreate(FakePlatform):
    """The platform makes the post, and the run is told to stop before the answer."""

    def create_post(self, post: CreatePost, *, idempotency_key: str) -> Published:
        self.creates.append((post, idempotency_key))
        self.land(post)
        sigterm()
        raise AssertionError("the signal interrupts before this line")


def deliverer(ledger: Ledger, sender: FakePlatform, log: Recorder, **kw: object) -> Deliverer:
    return Deliverer(
        ledger,
        sender,
        run_id="run-1",
        settle=timedelta(0),
        log=log,
        **kw,  # type: ignore[arg-type]
    )


def released(ledger: Ledger, delivery_id: str) -> DeliveryRecord:
    record = ledger.get(delivery_id)
    assert record is not None
    assert record.state != DeliveryState.SENDING and record.lease_until is None, record
    return record


@pytest.mark.usefixtures("sigterm_stops")
def test_stopped_while_the_create_is_in_flight_it_is_unknown_then_reconciled(
    seen: tuple[Recorder, Ledger],
) -> None:
    log, ledger = seen
    stopped = StoppedMidCreate()
    draft = _draft()
    with pytest.raises(Stop), deliverer(ledger, stopped, log) as stopping:
        stopping.deliver(draft)
    record = released(ledger, draft.delivery_id)
    assert record.state == DeliveryState.UNKNOWN and record.error_kind == "outcome_unknown"
    assert any("was in flight: recorded as unknown" in line for line in log.lines)

    # The next run finds it out already: one post, none sent twice.
    same_platform = FakePlatform()
    same_platform.posts = stopped.posts
    with Deliverer(ledger, same_platform, run_id="run-2") as nxt:
        result = nxt.deliver(draft)
    assert result.outcome == Outcome.RECONCILED
    assert len(stopped.posts) == 1 and same_platform.creates == []


@pytest.mark.usefixtures("sigterm_stops")
def test_stopped_before_the_create_its_claim_is_given_back_and_the_next_run_sends_it(
    seen: tuple[Recorder, Ledger], platform: FakePlatform
) -> None:
    log, ledger = seen

    def stopped_while_preparing(record: DeliveryRecord, _stage: Callable[[str], None]) -> Cancelled:
        sigterm()
        raise AssertionError("the signal interrupts before this line")

    draft = _draft()
    with (
        pytest.raises(Stop),
        deliverer(ledger, platform, log, prepare=stopped_while_preparing) as d,
    ):
        d.deliver(draft)
    record = released(ledger, draft.delivery_id)
    assert record.state == DeliveryState.FAILED and record.error_kind == "interrupted"
    assert record.not_before is None
    assert any("nothing went out, its claim is given back" in line for line in log.lines)
    assert platform.creates == []

    with Deliverer(ledger, platform, run_id="run-2") as nxt:
        assert nxt.deliver(draft).outcome == Outcome.SENT
    assert len(platform.creates) == 1


@pytest.mark.usefixtures("sigterm_stops")
def test_stopped_after_the_create_answered_it_is_recorded_as_sent(
    seen: tuple[Recorder, Ledger], platform: FakePlatform, monkeypatch: pytest.MonkeyPatch
) -> None:
    log, ledger = seen
    record_sent = ledger.record_sent
    calls = []

    def stopped_before_recording(*args: object, **kwargs: object) -> DeliveryRecord:
        calls.append(args)
        if len(calls) == 1:
            sigterm()  # the answer is in hand, the row not yet written
        return record_sent(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(ledger, "record_sent", stopped_before_recording)
    draft = _draft()
    with pytest.raises(Stop), deliverer(ledger, platform, log) as d:
        d.deliver(draft)
    record = released(ledger, draft.delivery_id)
    assert record.state == DeliveryState.SENT and record.remote_id == "remote-1"
    assert any("went out: recorded as sent" in line for line in log.lines)
    assert len(platform.creates) == 1


@pytest.mark.usefixtures("sigterm_stops")
def test_stopped_while_reconciling_it_stays_doubtful(seen: tuple[Recorder, Ledger]) -> None:
    log, ledger = seen

    class StoppedMidRead(FakePlatform):
        def find_delivery(self, delivery: Delivery) -> Published | None:
            sigterm()
            raise AssertionError("the signal interrupts before this line")

    draft = _draft()
    ledger.plan(draft)
    earlier = ledger.claim(draft.delivery_id, run_id="run-0", lease=timedelta(minutes=1))
    ledger.record_error(  # that attempt timed out: it may be out
        draft.delivery_id,
        earlier.attempt,
        OutcomeUnknown("read timeout"),
        state=DeliveryState.UNKNOWN,
    )
    with pytest.raises(Stop), deliverer(ledger, StoppedMidRead(), log) as d:
        d.deliver(draft)
    record = released(ledger, draft.delivery_id)
    assert record.state == DeliveryState.UNKNOWN and record.error_kind == "interrupted"
    assert record.not_before is not None and record.not_before <= log.clock()


@pytest.mark.usefixtures("sigterm_stops")
def test_a_second_signal_waits_until_the_delivery_is_recorded(
    seen: tuple[Recorder, Ledger], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The operator presses again while the first interrupt is being recorded: the record
    is finished first, then the second interrupt is raised."""
    log, ledger = seen
    get = ledger.get
    pressed: list[str] = []

    def impatient_get(delivery_id: str) -> DeliveryRecord | None:
        pressed.append(delivery_id)
        sigterm()  # the first thing letting go does is read the row
        return get(delivery_id)

    monkeypatch.setattr(ledger, "get", impatient_get)
    draft = _draft()
    with pytest.raises(Stop), deliverer(ledger, StoppedMidCreate(), log) as d:
        d.deliver(draft)
    assert pressed == [draft.delivery_id]
    monkeypatch.undo()
    assert released(ledger, draft.delivery_id).state == DeliveryState.UNKNOWN
