"""How a failed run is named in its alert: the taxonomy's class where the failure carries
it, the user's exception or Dagster's class otherwise, and the reason in one line."""

from __future__ import annotations

from datetime import UTC, datetime

from social_pipelines.alerts import ErrorFacts, ErrorLink, RunFailure, run_failed_alert

FAILURE = ErrorLink("Failure", "dagster._core.definitions.events.Failure: plan failed\n")
WRAPPER = ErrorLink(
    "DagsterExecutionStepExecutionError",
    "dagster._core.errors.DagsterExecutionStepExecutionError: Error occurred while executing",
)
WHEN = datetime(2026, 11, 23, 6, tzinfo=UTC)


def test_the_class_our_ops_put_in_the_metadata_wins() -> None:
    facts = ErrorFacts(chain=(FAILURE,), description="mastodon: down", error_class="Transient")
    assert facts.class_name() == "Transient"
    assert facts.reason() == "mastodon: down"


def test_a_stored_error_kind_names_its_class() -> None:
    assert ErrorFacts(chain=(FAILURE,), error_kind="rate_limited").class_name() == "RateLimited"


def test_a_taxonomy_class_in_the_chain_is_found() -> None:
    facts = ErrorFacts(chain=(WRAPPER, ErrorLink("Rejected", "Rejected: mastodon: 422\n")))
    assert facts.class_name() == "Rejected"
    assert facts.reason() == "mastodon: 422"


def test_user_code_errors_are_named_by_their_own_class_not_the_wrapper() -> None:
    facts = ErrorFacts(chain=(WRAPPER, ErrorLink("KeyError", "KeyError: 'campaign'\n")))
    assert facts.class_name() == "KeyError"
    assert facts.reason() == "'campaign'"


def test_dagster_errors_keep_dagster_class() -> None:
    facts = ErrorFacts(chain=(ErrorLink("DagsterExecutionInterruptedError", "interrupted"),))
    assert facts.class_name() == "DagsterExecutionInterruptedError"


def test_the_alert_names_job_partition_steps_and_first_error() -> None:
    alert = run_failed_alert(
        RunFailure(
            job="publish_job",
            run_id="abc",
            occurred_at=WHEN,
            partition="2026-11-23-04:00",
            steps=[
                ("publish_mastodon[brand]", ErrorFacts((FAILURE,), "1 dead", "Rejected")),
                ("publish_bluesky[brand_bsky]", ErrorFacts((FAILURE,), "down", "Transient")),
            ],
        )
    )
    assert alert.key == "run_failed:abc"
    assert alert.title == (
        "publish_job [2026-11-23-04:00] failed at publish_mastodon[brand] (+1 more): Rejected"
    )
    assert (alert.error_class, alert.reason) == ("Rejected", "1 dead")
    assert [s.step for s in alert.failed_steps] == [
        "publish_mastodon[brand]",
        "publish_bluesky[brand_bsky]",
    ]


def test_a_run_that_failed_before_any_step_says_so() -> None:
    alert = run_failed_alert(
        RunFailure(
            job="reply_job",
            run_id="r",
            occurred_at=WHEN,
            run_message="This run has been marked as failed from outside the execution context.",
        )
    )
    assert alert.title == "reply_job failed before any step failed: RunFailure"
    assert alert.reason.startswith("This run has been marked as failed")
    assert alert.failed_steps == ()


def test_a_posting_step_s_first_reason_is_told() -> None:
    facts = ErrorFacts(
        chain=(FAILURE,),
        description="publishes of brand: 2 dead",
        reasons=("dead: post a/brand: refused", "dead: post b/brand: refused"),
    )
    assert facts.reason() == "publishes of brand: 2 dead; dead: post a/brand: refused (+1 more)"
