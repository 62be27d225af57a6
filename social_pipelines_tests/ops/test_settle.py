"""How a posting step ends (`ops/settle.py`), in a real one-op job that Dagster retries.

`build_op_context` cannot vary `retry_number` in Dagster 1.13 (the direct context has no
step to count attempts of: reading it raises AttributeError), so each test runs its step
the supported way, `execute_in_process`, and Dagster itself counts the retries. The step
writes down what `settle_or_retry` or `platform_errors` raised on each attempt, and asks
Dagster for the same retry with no wait, so nothing sleeps.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass

import pytest
from dagster import (
    DagsterExecutionInterruptedError,
    DagsterInstance,
    ExecuteInProcessResult,
    Failure,
    OpExecutionContext,
    RetryPolicy,
    RetryRequested,
    job,
    op,
)

from social_pipelines.delivery import DeliveryReport, DeliveryResult, Outcome
from social_pipelines.errors import (
    AuthExpired,
    ConfigError,
    OutcomeUnknown,
    RateLimited,
    Rejected,
    SocialError,
    Transient,
)
from social_pipelines.ops.settle import (
    platform_errors,
    retried_unless_interrupted,
    settle_or_retry,
)
from social_pipelines.platforms.policy import PlatformPolicy

POLICY = PlatformPolicy(op_retries=3, op_retry_delay=10.0)
# What Dagster's own policy would allow on top: more than the platform's, so every stop
# below is the platform policy's (or a Failure that allows no retries).
OP_RETRY = RetryPolicy(max_retries=POLICY.op_retries + 2)


@dataclass(frozen=True)
class Attempt:
    retry_number: int
    raised: BaseException | None  # what the step body raised; None: it returned


@dataclass(frozen=True)
class Ran:
    result: ExecuteInProcessResult
    attempts: list[Attempt]
    warnings: list[str]

    @property
    def raised(self) -> list[BaseException | None]:
        return [attempt.raised for attempt in self.attempts]

    @property
    def last(self) -> BaseException | None:
        return self.attempts[-1].raised


def run_step(body: Callable[[OpExecutionContext], None]) -> Ran:
    """Run `body` as the one op of a job, retried by Dagster as a posting op is."""
    attempts: list[Attempt] = []

    # `context` unannotated: Dagster cannot resolve a string annotation of a nested op.
    @op(retry_policy=OP_RETRY)
    def step(context) -> None:
        try:
            body(context)
        except Exception as raised:
            attempts.append(Attempt(context.retry_number, raised))
            if isinstance(raised, RetryRequested):
                # Dagster would sleep `seconds_to_wait` in this process: retry at once.
                raise RetryRequested(max_retries=raised.max_retries, seconds_to_wait=0) from None
            raise
        attempts.append(Attempt(context.retry_number, None))

    @job
    def settling() -> None:
        step()

    with DagsterInstance.ephemeral() as instance:
        result = settling.execute_in_process(instance=instance, raise_on_error=False)
        warnings = [
            entry.user_message
            for entry in instance.all_logs(result.run_id)
            if entry.level == logging.WARNING and entry.step_key == "step"
        ]
    return Ran(result, attempts, warnings)


def result(outcome: Outcome, label: str, error: str = "") -> DeliveryResult:
    return DeliveryResult(delivery_id=f"id-{label}", outcome=outcome, label=label, error=error)


def settling(report: DeliveryReport | Callable[[int], DeliveryReport]) -> Ran:
    """`settle_or_retry` over `report` (or the report of each retry number)."""
    report_for = report if callable(report) else (lambda _retry: report)

    def body(context: OpExecutionContext) -> None:
        settle_or_retry(context, report_for(context.retry_number), POLICY, what="mentions")

    return run_step(body)


def within_backoff(wait: float, retry_number: int) -> bool:
    ceiling = POLICY.op_retry_delay * 2**retry_number
    return ceiling / 2 <= wait <= ceiling


# -- settle_or_retry ---------------------------------------------------------------------


def test_a_step_whose_deliveries_all_settled_or_wait_succeeds_at_once() -> None:
    report = DeliveryReport(
        tuple(
            result(outcome, outcome.value)
            for outcome in (
                Outcome.SENT,
                Outcome.RECONCILED,
                Outcome.ALREADY_SENT,
                Outcome.DRY_RUN,
                Outcome.DEFERRED,  # a later run sends it
                Outcome.IN_FLIGHT,  # another run holds it
            )
        )
    )
    ran = settling(report)
    assert ran.result.success
    assert ran.attempts == [Attempt(0, None)]
    assert ran.warnings == []


def test_an_empty_report_succeeds() -> None:
    ran = settling(DeliveryReport())
    assert ran.result.success
    assert ran.attempts == [Attempt(0, None)]


@pytest.mark.parametrize("unsettled", [Outcome.FAILED, Outcome.UNKNOWN])
def test_unsettled_deliveries_retry_with_the_platforms_backoff_then_fail_for_good(
    unsettled: Outcome,
) -> None:
    report = DeliveryReport(
        (result(Outcome.SENT, "fine"), result(unsettled, "post-7", error="mastodon: 503"))
    )
    ran = settling(report)

    assert not ran.result.success
    assert [a.retry_number for a in ran.attempts] == [0, 1, 2, 3]
    *retries, last = ran.raised
    for retry_number, retry in enumerate(retries):
        assert isinstance(retry, RetryRequested)
        assert retry.max_retries == POLICY.op_retries
        assert within_backoff(retry.seconds_to_wait, retry_number), retry.seconds_to_wait
    assert len(ran.warnings) == len(retries)
    for warning, retry in zip(ran.warnings, retries, strict=True):
        assert isinstance(retry, RetryRequested)
        assert warning == (
            f"1 deliveries of mentions not settled; retrying in {retry.seconds_to_wait} s"
        )
    # The last retry allowed: no more retries, the reasons in metadata.
    assert isinstance(last, Failure)
    assert last.allow_retries is False
    assert last.description is not None
    assert last.description.startswith("mentions: 0 dead, 1 still unsettled")
    assert last.metadata["reasons"].value == [f"{unsettled}: post-7: mastodon: 503"]


def test_the_failure_reaches_the_run_with_its_reasons() -> None:
    ran = settling(DeliveryReport((result(Outcome.UNKNOWN, "post-7"),)))
    [failure] = [event for event in ran.result.all_events if event.is_step_failure]
    user_failure = failure.step_failure_data.user_failure_data
    assert user_failure is not None
    assert user_failure.label == "intentional-failure"
    assert user_failure.metadata["reasons"].value == ["unknown: post-7"]


def test_a_delivery_that_settles_on_a_retry_ends_the_step_in_success() -> None:
    def report(retry_number: int) -> DeliveryReport:
        outcome = Outcome.FAILED if retry_number == 0 else Outcome.SENT
        return DeliveryReport((result(outcome, "post-7"),))

    ran = settling(report)
    assert ran.result.success
    assert [a.retry_number for a in ran.attempts] == [0, 1]
    assert isinstance(ran.raised[0], RetryRequested)
    assert ran.last is None


def test_dead_deliveries_fail_the_step_at_once_naming_them() -> None:
    report = DeliveryReport(
        (
            result(Outcome.SENT, "fine"),
            result(Outcome.DEAD, "reply to post-1", error="mastodon: text too long (HTTP 422)"),
            result(Outcome.DEAD, "reply to post-2", error="out of attempts"),
        )
    )
    ran = settling(report)
    assert [a.retry_number for a in ran.attempts] == [0]  # never retried
    failure = ran.last
    assert isinstance(failure, Failure)
    assert failure.allow_retries is False
    assert failure.description is not None
    assert failure.description.startswith("mentions: 2 dead, 0 still unsettled")
    assert failure.metadata["reasons"].value == [
        "dead: reply to post-1: mastodon: text too long (HTTP 422)",
        "dead: reply to post-2: out of attempts",
    ]


def test_unsettled_ones_are_retried_before_dead_ones_fail_the_step() -> None:
    report = DeliveryReport((result(Outcome.DEAD, "gone"), result(Outcome.FAILED, "later")))
    ran = settling(report)
    assert [type(raised) for raised in ran.raised] == [RetryRequested] * 3 + [Failure]
    failure = ran.last
    assert isinstance(failure, Failure)
    assert failure.description is not None
    assert failure.description.startswith("mentions: 1 dead, 1 still unsettled")
    assert failure.metadata["reasons"].value == ["failed: later", "dead: gone"]


def test_reasons_in_metadata_are_capped_at_fifty() -> None:
    report = DeliveryReport(tuple(result(Outcome.DEAD, f"post-{n}") for n in range(60)))
    failure = settling(report).last
    assert isinstance(failure, Failure)
    assert failure.description is not None
    assert failure.description.startswith("mentions: 60 dead")
    assert len(failure.metadata["reasons"].value) == 50


# -- platform_errors ---------------------------------------------------------------------


def raising(error: BaseException) -> Ran:
    """A step whose platform call raises `error` inside `platform_errors`."""

    def body(context: OpExecutionContext) -> None:
        with platform_errors(context, POLICY):
            raise error

    return run_step(body)


def test_a_config_error_fails_the_step_without_retries() -> None:
    ran = raising(ConfigError("account 'brand': environment variable BRAND_TOKEN is not set"))
    assert [a.retry_number for a in ran.attempts] == [0]
    failure = ran.last
    assert isinstance(failure, Failure)
    assert failure.allow_retries is False
    assert failure.description == "account 'brand': environment variable BRAND_TOKEN is not set"


@pytest.mark.parametrize(
    "error",
    [
        Transient("connect error", platform="mastodon"),
        RateLimited("slow down", platform="mastodon", status_code=429, retry_after=5),
    ],
    ids=["transient", "rate_limited"],
)
def test_a_retryable_platform_error_retries_with_the_platforms_backoff(
    error: SocialError,
) -> None:
    ran = raising(error)
    assert [a.retry_number for a in ran.attempts] == [0, 1, 2, 3]
    *retries, last = ran.raised
    for retry_number, retry in enumerate(retries):
        assert isinstance(retry, RetryRequested)
        assert retry.max_retries == POLICY.op_retries
        assert within_backoff(retry.seconds_to_wait, retry_number), retry.seconds_to_wait
        assert retry.__cause__ is error  # the platform's error stays visible in the run
    assert ran.warnings[0].startswith(f"{error}; retrying the step in ")
    # Out of retries: a failure with the platform's reason, as for a permanent error.
    assert isinstance(last, Failure)
    assert last.allow_retries is False
    assert last.metadata["error_kind"].value == error.kind


@pytest.mark.parametrize(
    ("error", "kind", "status"),
    [
        (
            AuthExpired("access token refused", platform="mastodon", status_code=401),
            "auth_expired",
            401,
        ),
        (Rejected("Validation failed", platform="mastodon", status_code=422), "rejected", 422),
        (OutcomeUnknown("read timeout", platform="mastodon"), "outcome_unknown", 0),
    ],
    ids=["auth_expired", "rejected", "outcome_unknown"],
)
def test_a_permanent_platform_error_fails_the_step_with_its_kind(
    error: SocialError, kind: str, status: int
) -> None:
    ran = raising(error)
    assert [a.retry_number for a in ran.attempts] == [0]
    failure = ran.last
    assert isinstance(failure, Failure)
    assert failure.allow_retries is False
    assert failure.description == str(error)
    assert failure.metadata["error_kind"].value == kind
    assert failure.metadata["status_code"].value == status
    assert ran.warnings == []


def test_anything_else_passes_through_to_dagsters_retry_policy() -> None:
    bug = KeyError("a bug, not a platform answer")
    ran = raising(bug)
    assert all(raised is bug for raised in ran.raised)
    assert len(ran.attempts) == OP_RETRY.max_retries + 1


# -- retried_unless_interrupted ----------------------------------------------------------------

NO_WAIT = RetryPolicy(max_retries=2, delay=0)


def run_op(body: Callable[[OpExecutionContext], None], *, by_decorator: bool) -> list[int]:
    """`body` as the one op of a job, retried either by `retried_unless_interrupted` or by
    Dagster's own `retry_policy`; the retry numbers it ran with."""
    attempts: list[int] = []

    def step_body(context) -> None:
        attempts.append(context.retry_number)
        body(context)

    if by_decorator:
        step = op(name="step")(retried_unless_interrupted(NO_WAIT)(step_body))
    else:
        step = op(name="step", retry_policy=NO_WAIT)(step_body)

    @job
    def one_step() -> None:
        step()

    with (
        DagsterInstance.ephemeral() as instance,
        contextlib.suppress(DagsterExecutionInterruptedError),  # the run stopped
    ):
        one_step.execute_in_process(instance=instance, raise_on_error=False)
    return attempts


def interrupted(_context: OpExecutionContext) -> None:
    """SIGINT to this process in the step's body: what Terminate in the UI sends."""
    os.kill(os.getpid(), signal.SIGINT)
    time.sleep(5)  # the signal interrupts this at once


def test_unexpected_errors_are_retried_as_a_retry_policy_would() -> None:
    def bug(_context: OpExecutionContext) -> None:
        raise KeyError("a bug")

    assert run_op(bug, by_decorator=True) == run_op(bug, by_decorator=False) == [0, 1, 2]

    def final(_context: OpExecutionContext) -> None:
        raise Failure("no", allow_retries=False)

    assert run_op(final, by_decorator=True) == [0]


def test_an_interrupt_stops_the_step_instead_of_retrying_it() -> None:
    """dagster#15026: Dagster's in-process executor retries an interrupted step that has a
    retry policy (so a terminated posting run would post on); ours stops."""
    assert run_op(interrupted, by_decorator=False) == [0, 1, 2]
    assert run_op(interrupted, by_decorator=True) == [0]
