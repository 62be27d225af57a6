"""Replaying missed reply windows with `dagster job backfill`, as the README shows it.

An outage left three windows unrun. The backfill (the real CLI, on a real `DAGSTER_HOME`
with the embedded profile, its runs queued and started by the queue daemon's own
iterations) answers only the posts still inside the campaign's age cutoff, counted from
now; the older ones stay unanswered and every run that lost some says so in its log and
metadata. The same backfill again, over windows now processed, posts nothing.

The sandbox holds, relative to the start `E` of the current window (posts matching the
query; the cutoff is set to fall at E-5h when the test starts):

    window W1 [E-8h, E-6h)  post at E-7h        wholly past the cutoff: not even searched
    window W2 [E-6h, E-4h)  posts at E-5h30 (past the cutoff) and E-4h30 (inside)
    window W3 [E-4h, E-2h)  post at E-3h
    window W4 [E-2h, E)     post at E-1h        not in the backfill: a later window's
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from dagster import DagsterRun, DagsterRunStatus

from social_pipelines.models import DeliveryState
from social_pipelines.partitions import reply_windows
from social_pipelines.sandbox.process import SandboxProcess
from social_pipelines.store import DeliveryRecord, StateStore
from social_pipelines_tests.deploy.helpers import REPO, clean_env
from social_pipelines_tests.pipeline.backfills import (
    RunQueue,
    backfill,
    backfill_id,
    run_queue,
    step_metadata,
    warnings,
)

# Dagster's own, raised when the code location loads in this process (the CLI's and the
# daemon's code servers raise them too; `social-pipelines demo` filters the first).
pytestmark = [
    pytest.mark.filterwarnings("ignore:Parameter `owners`:dagster.BetaWarning"),
    pytest.mark.filterwarnings("ignore:Property `ScheduleDefinition.environment_vars`"),
]

CAMPAIGN = "zebras"
SEARCH = f"search_posts[{CAMPAIGN}]"


def _key(start: datetime) -> str:
    return start.strftime(reply_windows.fmt)


@dataclass
class Outage:
    """The world of this module: the home, the windows, the seeded posts, the first replay."""

    home: Path
    env: dict[str, str]
    queue: RunQueue
    windows: list[str]
    posts: dict[str, str]
    cli_output: str
    runs: list[DagsterRun]
    posted: list[dict]

    def ledger(self) -> list[DeliveryRecord]:
        return StateStore.open(f"sqlite:///{self.home / 'social_state.db'}").ledger.list()

    def replied_to(self) -> set[str]:
        return {status["in_reply_to_id"] for status in self.posted}


@pytest.fixture(scope="module")
def outage(
    demo_sandbox: SandboxProcess, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Outage]:
    now = datetime.now(UTC)
    current = reply_windows.time_window_for_partition_key(
        reply_windows.get_partition_key_for_timestamp(now.timestamp())
    ).start.astimezone(UTC)
    cutoff = current - timedelta(hours=5)
    windows = [_key(current - timedelta(hours=hours)) for hours in (8, 6, 4)]
    demo_sandbox.reset()
    seeded = demo_sandbox.seed(
        [
            {"key": key, "author": author, "text": f"a zebra question ({key})", "created_at": at}
            for key, author, at in [
                ("w1", "datadiana", current - timedelta(hours=7)),
                ("w2_old", "etl_ed", current - timedelta(hours=5, minutes=30)),
                ("w2_young", "sql_sara", current - timedelta(hours=4, minutes=30)),
                ("w3", "cloudkev", current - timedelta(hours=3)),
                ("w4", "mlops_maya", current - timedelta(hours=1)),
            ]
            for at in [at.isoformat()]
        ]
    )["by_key"]

    root = tmp_path_factory.mktemp("backfill")
    home = root / "home"
    campaigns = root / "campaigns.toml"
    campaigns.write_text(
        f"""
[[campaigns]]
name = "{CAMPAIGN}"
account = "brand"
query = "zebra"
max_age_hours = {(now - cutoff).total_seconds() / 3600:.4f}
template = "Thanks @{{author}}, happy to help with {{query}}!"
""",
        encoding="utf-8",
    )
    settings = {
        "DAGSTER_HOME": str(home),
        "SOCIAL_SANDBOX_URL": demo_sandbox.url,
        "SOCIAL_CAMPAIGNS_FILE": str(campaigns),
    }
    env = clean_env(**settings)
    home.mkdir()
    shutil.copyfile(REPO / "dagster.yaml", home / "dagster.yaml")  # the embedded profile

    with pytest.MonkeyPatch.context() as patch:
        for name, value in settings.items():
            patch.setenv(name, value)
        with run_queue(home) as queue:
            done = backfill(["--from", windows[0], "--to", windows[-1]], env)
            queue.drain()
            yield Outage(
                home=home,
                env=env,
                queue=queue,
                windows=windows,
                posts=seeded,
                cli_output=done.stdout,
                runs=queue.runs_of_backfill(backfill_id(done.stdout)),
                posted=demo_sandbox.posted(),
            )


def test_a_backfill_of_missed_windows_answers_only_posts_inside_the_age_cutoff(
    outage: Outage,
) -> None:
    instance = outage.queue.instance
    w1, w2, w3 = outage.runs
    # --to is inclusive: the last window named has its run.
    assert [run.tags["dagster/partition"] for run in outage.runs] == outage.windows
    assert [run.status for run in outage.runs] == [DagsterRunStatus.SUCCESS] * 3

    posts = outage.posts
    # Answered: the posts still younger than the cutoff, in the windows replayed.
    assert outage.replied_to() == {posts["w2_young"], posts["w3"]}
    assert [status["account"] for status in outage.posted] == ["brand", "brand"]
    ledger = outage.ledger()
    assert {(row.subject, row.state) for row in ledger} == {
        (posts["w2_young"], DeliveryState.SENT),
        (posts["w3"], DeliveryState.SENT),
    }

    # W1 ended before the cutoff: not searched, and its run says so.
    past = step_metadata(instance, w1.run_id, SEARCH)
    assert (past["window_past_age_cutoff"], past["found"], past["pages"]) == ("whole", 0, 0)
    assert past["window_minutes_past_age_cutoff"] == 120
    assert any(
        "ended before the age cutoff" in message and "not searched" in message
        for message in warnings(instance, w1.run_id)
    )
    # W2 lost its first hour (E-6h to E-5h, counted from now): its old post is not
    # answered, and that is in its log and metadata; its young post is.
    cut = step_metadata(instance, w2.run_id, SEARCH)
    assert cut["window_past_age_cutoff"] == "part"
    # An hour, and the minutes the test has taken since it set the cutoff.
    assert 60 <= cut["window_minutes_past_age_cutoff"] < 70
    assert cut["found"] == 1
    assert any(
        "are not answered and were not searched" in message
        for message in warnings(instance, w2.run_id)
    )
    assert step_metadata(instance, w2.run_id, "summarize")["replies_new"] == 1
    # W3 is inside the cutoff; it reaches back to it, so it sees W2's young post again
    # (answered by W2's run just before: the ledger counts it, nothing is posted twice).
    whole = step_metadata(instance, w3.run_id, SEARCH)
    assert (whole["window_past_age_cutoff"], whole["found"]) == ("none", 2)
    assert not warnings(instance, w3.run_id)
    summary = step_metadata(instance, w3.run_id, "summarize")
    assert (summary["replies_new"], summary["already_answered"]) == (1, 1)


def test_a_backfill_of_windows_already_processed_posts_nothing(
    outage: Outage, demo_sandbox: SandboxProcess
) -> None:
    ledger_before = outage.ledger()
    done = backfill(["--partitions", ",".join(outage.windows)], outage.env)
    outage.queue.drain()
    runs = outage.queue.runs_of_backfill(backfill_id(done.stdout))
    assert [run.tags["dagster/partition"] for run in runs] == outage.windows
    assert [run.status for run in runs] == [DagsterRunStatus.SUCCESS] * 3

    assert demo_sandbox.posted() == outage.posted
    assert outage.ledger() == ledger_before
    summaries = [step_metadata(outage.queue.instance, run.run_id, "summarize") for run in runs]
    assert [(s["replies_new"], s["already_answered"]) for s in summaries] == [
        (0, 0),
        (0, 1),
        (0, 2),
    ]
