"""How a posting step ends, decided from its deliveries' outcomes.

- all settled or deferred: success (deferred ones are reported; a later run sends them);
- some failed or unknown: ask Dagster to retry the step, with the platform's own backoff
  (the ledger makes the retry harmless: sent ones are skipped, unknown ones reconciled);
- some rejected for good: fail without retries, the reasons in metadata;
- anything unexpected (a bug, a lost database connection): retried like a RetryPolicy
  would (`retried_unless_interrupted`), but an interrupt stops the run.
"""

from __future__ import annotations

import functools
import random
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar, cast

from dagster import (
    DagsterError,
    Failure,
    MetadataValue,
    OpExecutionContext,
    RetryPolicy,
    RetryRequested,
)

from social_pipelines.delivery import DeliveryReport
from social_pipelines.errors import ConfigError, SocialError, error_class_for_kind
from social_pipelines.platforms.policy import PlatformPolicy


def _retry_delay(policy: PlatformPolicy, retry_number: int) -> float:
    """Exponential with full jitter: spread retrying runs apart."""
    ceiling = policy.op_retry_delay * (2**retry_number)
    return round(random.uniform(ceiling / 2, ceiling), 1)


def settle_or_retry(
    context: OpExecutionContext, report: DeliveryReport, policy: PlatformPolicy, *, what: str
) -> None:
    """End the step from its deliveries: `what` names them in the messages (a campaign)."""
    pending, dead = report.unsettled, report.dead
    if pending and context.retry_number < policy.op_retries:
        wait = _retry_delay(policy, context.retry_number)
        context.log.warning(
            f"{len(pending)} deliveries of {what} not settled; retrying in {wait} s"
        )
        raise RetryRequested(max_retries=policy.op_retries, seconds_to_wait=wait)
    if pending or dead:
        reasons = [result.described() for result in pending + dead]
        first = (dead + pending)[0]
        error_class = error_class_for_kind(first.error_kind) or first.error_kind or "unknown"
        raise Failure(
            description=(
                f"{what}: {len(dead)} dead, {len(pending)} still unsettled "
                "(a later run or the redelivery sensor picks up unsettled ones)"
            ),
            # The error class is what the run-failure alert reports (alert_sensors.py).
            metadata={"reasons": MetadataValue.json(reasons[:50]), "error_class": error_class},
            allow_retries=False,
        )


def config_failure(error: ConfigError) -> Failure:
    """Bad configuration fails the step without retries (a person must fix it), its class
    in the metadata for the run-failure alert."""
    return Failure(
        description=str(error),
        metadata={"error_class": type(error).__name__},
        allow_retries=False,
    )


@contextmanager
def platform_errors(context: OpExecutionContext, policy: PlatformPolicy) -> Iterator[None]:
    """Turn a platform error escaping an op into the right Dagster outcome.

    Transient trouble that outlived tenacity is retried by Dagster with the platform's own
    backoff; everything else (refused credentials, a rejected request, an open circuit)
    fails the step at once with the platform's reason, since repeating cannot help.
    """
    try:
        yield
    except ConfigError as error:
        # A missing token or a bad account entry: a person must fix it, retrying cannot.
        raise config_failure(error) from None
    except SocialError as error:
        if error.retryable and context.retry_number < policy.op_retries:
            wait = _retry_delay(policy, context.retry_number)
            context.log.warning(f"{error}; retrying the step in {wait} s")
            raise RetryRequested(max_retries=policy.op_retries, seconds_to_wait=wait) from error
        raise Failure(
            description=str(error),
            metadata={
                "error_kind": error.kind,
                "error_class": type(error).__name__,
                "status_code": error.status_code or 0,
            },
            allow_retries=False,
        ) from None


Body = TypeVar("Body", bound=Callable[..., Any])


def retried_unless_interrupted(policy: RetryPolicy) -> Callable[[Body], Body]:
    """What `@op(retry_policy=policy)` does for the unexpected errors of an op whose first
    parameter is its context, without retrying an interrupt.

    Dagster's in-process executor (these jobs' executor) turns an interrupt into a retry
    of any step with a RetryPolicy (dagster#15026): a run told to stop (SIGTERM from a run
    launcher or `make dev`, Terminate in the UI) would wait out the delay and post again.
    Raised by the op itself, the retry leaves interrupts alone: the step ends interrupted,
    the run stops, and the deliverer has recorded the delivery it had in hand.
    """

    def decorate(body: Body) -> Body:
        @functools.wraps(body)
        def op_body(context: OpExecutionContext, *args: Any, **kwargs: Any) -> Any:
            try:
                return body(context, *args, **kwargs)
            except (RetryRequested, DagsterError):
                raise
            except Failure as failure:
                if not failure.allow_retries:
                    raise
                _retry_or_raise(context, policy, failure)
            except Exception as error:
                _retry_or_raise(context, policy, error)

        return cast(Body, op_body)

    return decorate


def _retry_or_raise(context: OpExecutionContext, policy: RetryPolicy, error: Exception) -> None:
    if context.retry_number >= policy.max_retries:
        raise error
    raise RetryRequested(
        max_retries=policy.max_retries,
        seconds_to_wait=policy.calculate_delay(context.retry_number + 1),
    ) from error
