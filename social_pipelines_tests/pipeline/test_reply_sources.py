"""The reply job with campaigns that read a hashtag timeline or the account's mentions,
against the demo sandbox: they answer what their source holds (and nothing else), with the
same blocklist, own-post and exactly-once rules as a search, and say which source they read.
"""

from __future__ import annotations

from pathlib import Path

from dagster import DagsterInstance, ExecuteInProcessResult

from social_pipelines.sandbox.demo_posts import demo_posts
from social_pipelines.sandbox.process import SandboxProcess
from social_pipelines_tests.pipeline.conftest import MakeSettings
from social_pipelines_tests.pipeline.helpers import reports, run_reply_job, write_files

CAMPAIGNS = """
[[campaigns]]
name = "dagster_tag"
account = "brand"
source = "hashtag"
query = "#dagster"
blocklist = ["giveaway", "crypto"]
template = "Hi @{author}, thanks for tagging {query}!"

[[campaigns]]
name = "brand_mentions"
account = "brand"
source = "mentions"
query = "*"
template = "Hi @{author}, thanks for reaching out!"

[[campaigns]]
name = "quiet_tag"
account = "brand"
source = "hashtag"
query = "nobodyusesthis"
"""


def _metadata(result: ExecuteInProcessResult, step: str) -> dict:
    [metadata] = [
        event.event_specific_data.metadata
        for event in result.all_events
        if event.step_key == step and event.event_type_value == "STEP_OUTPUT"
    ]
    return {key: value.value for key, value in metadata.items()}


def _run(instance: DagsterInstance, env: Path, make_settings: MakeSettings, campaign: str):
    settings = make_settings(**write_files(env, campaigns=CAMPAIGNS))
    return run_reply_job(instance, settings, campaigns=[campaign])


def _demo_ids(sandbox: SandboxProcess) -> dict[str, str]:
    return sandbox.seed(demo_posts())["by_key"]  # already there: only their ids


def test_a_hashtag_campaign_answers_the_tag_timeline(
    demo_sandbox: SandboxProcess, instance: DagsterInstance, env: Path, make_settings: MakeSettings
) -> None:
    ids = _demo_ids(demo_sandbox)
    result = _run(instance, env, make_settings, "dagster_tag")

    answered = sorted(status["in_reply_to_id"] for status in demo_sandbox.posted())
    # The #dagster posts of other accounts; not the spam one (blocklisted), not ours, and
    # none of the many posts that say "dagster" without the tag.
    assert answered == sorted([ids["demo-42"], ids["demo-43"]])
    assert reports(result)["dagster_tag"].new == 2
    searched = _metadata(result, "search_posts[dagster_tag]")
    assert searched["source"] == "hashtag" and searched["search_complete"] is True
    assert searched["found"] == 3 and searched["own_posts_skipped"] == 1
    assert _metadata(result, "select_candidates[dagster_tag]")["skipped_blocklisted"] == 1
    # Run again: every one of them is answered already, none twice.
    again = _run(instance, env, make_settings, "dagster_tag")
    assert reports(again)["dagster_tag"].new == 0
    assert len(demo_sandbox.posted()) == 2


def test_a_mentions_campaign_answers_the_accounts_mentions(
    demo_sandbox: SandboxProcess, instance: DagsterInstance, env: Path, make_settings: MakeSettings
) -> None:
    ids = _demo_ids(demo_sandbox)
    result = _run(instance, env, make_settings, "brand_mentions")

    posted = demo_sandbox.posted()
    assert sorted(status["in_reply_to_id"] for status in posted) == sorted(
        [ids["demo-44"], ids["demo-45"], ids["demo-46"]]
    )
    assert reports(result)["brand_mentions"].new == 3
    searched = _metadata(result, "search_posts[brand_mentions]")
    assert searched["source"] == "mentions" and searched["found"] == 3
    # Our replies mention their authors, never the brand: they notify nobody here.
    assert all(status["text"].startswith("Hi @") for status in posted)


def test_a_source_that_finds_nothing_says_which_it_read(
    demo_sandbox: SandboxProcess, instance: DagsterInstance, env: Path, make_settings: MakeSettings
) -> None:
    result = _run(instance, env, make_settings, "quiet_tag")
    assert reports(result)["quiet_tag"].new == 0
    warnings = [e.message for e in instance.all_logs(result.run_id) if e.level >= 30]
    [warning] = [w for w in warnings if "found no posts" in w]
    assert "quiet_tag: the #nobodyusesthis timeline found no posts" in warning
    assert "Elasticsearch" not in warning  # that hint is for Mastodon's full-text search
