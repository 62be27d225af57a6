"""A `writer = "llm"` campaign through the real reply job on the sandbox: the model (its
host mocked with respx on the chat-completions shape, the sandbox passed through) writes
each reply once; a run whose posting failed leaves the drafts, and the next run, or the
same run re-executed, posts them without asking again."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import httpx
import pytest
import respx
from dagster import DagsterInstance, ReexecutionOptions, execute_job, reconstructable
from dagster._core.events import DagsterEventType
from pydantic import SecretStr

from social_pipelines.partitions import last_complete_window
from social_pipelines.sandbox.process import SandboxProcess
from social_pipelines.wiring import wire_settings
from social_pipelines_tests.pipeline.conftest import MakeSettings
from social_pipelines_tests.pipeline.helpers import reports, run_reply_job, write_files

BASE = "https://llm.test/v1"
CAMPAIGNS = """
[[campaigns]]
name = "dagster_help"
account = "brand"
query = "dagster"
max_replies = 2
writer = "llm"
"""


def _chat(request: httpx.Request) -> httpx.Response:
    prompt = json.loads(request.content)["messages"][0]["content"]
    author = prompt.split("Post by @", 1)[1].split(":", 1)[0]
    return httpx.Response(
        200,
        json={
            "id": "chatcmpl-1",
            "object": "chat.completion",
            "model": "m",
            "choices": [
                {
                    "index": 0,
                    "message": {
                        "role": "assistant",
                        "content": f"@{author} Sensors tick on the daemon; check its heartbeat.",
                    },
                    "finish_reason": "stop",
                }
            ],
        },
    )


def test_llm_drafts_are_written_once_and_posted_by_the_next_run_after_a_failure(
    make_settings: MakeSettings,
    env: Path,
    instance: DagsterInstance,
    demo_sandbox: SandboxProcess,
) -> None:
    settings = make_settings(
        **write_files(env, campaigns=CAMPAIGNS),
        llm_base_url=BASE,
        llm_model="m",
        llm_api_key=SecretStr("sk-pipeline-test-key"),
        # Posting fails at once (no retries), as a run that died while posting would.
        policies={"mastodon": {"op_retries": 0, "retry_attempts": 1}},
    )
    with respx.mock(assert_all_called=False) as router:
        router.route(host="127.0.0.1").pass_through()
        chat = router.post(f"{BASE}/chat/completions").mock(side_effect=_chat)
        demo_sandbox.set_faults(error_503=1.0, endpoints=["POST /api/v1/statuses"])
        try:
            failed = run_reply_job(instance, settings, raise_on_error=False)
        finally:
            demo_sandbox.clear_faults()
        assert not failed.success
        assert chat.call_count == 2
        drafts = wire_settings(settings).store.drafts
        posted = reports(run_reply_job(instance, settings))["dagster_help"]
        assert posted.new == 2
        assert chat.call_count == 2  # the drafts were reused: the model was not asked again
    texts = {reply.text for reply in posted.replies}
    assert all("Sensors tick on the daemon" in text for text in texts)
    stored = drafts.get_many(reply.delivery_id for reply in posted.replies)
    assert {draft.writer for draft in stored.values()} == {"llm"}


KEY = "sk-reexecution-key-8841"
ASKED: Counter[str] = Counter()  # posts the model was asked about, by their text


def _counting_chat(request: httpx.Request) -> httpx.Response:
    if request.headers.get("authorization") != f"Bearer {KEY}":
        return httpx.Response(401, json={"error": {"message": "Incorrect API key provided"}})
    ASKED[json.loads(request.content)["messages"][0]["content"].rsplit("\n", 1)[-1]] += 1
    return _chat(request)


def test_a_re_executed_run_reuses_every_draft_the_model_wrote(
    settings_env: dict[str, str],
    instance: DagsterInstance,
    demo_sandbox: SandboxProcess,
) -> None:
    from social_pipelines_tests.pipeline.jobs_from_env import reply_job_from_env

    job = reconstructable(reply_job_from_env)
    ASKED.clear()
    with respx.mock(assert_all_called=False) as router:
        router.route(host="127.0.0.1").pass_through()
        router.post(f"{BASE}/chat/completions").mock(side_effect=_counting_chat)
        demo_sandbox.set_faults(error_503=1.0, endpoints=["POST /api/v1/statuses"])
        try:
            with execute_job(
                job, instance=instance, tags={"dagster/partition": last_complete_window()}
            ) as first:
                assert not first.success
                parent = first.run_id
                assert _written_by(first) == ["llm (2)"]
        finally:
            demo_sandbox.clear_faults()
        assert len(ASKED) == 2
        # Every step again (an empty selection), the model's drafts reused, then posted.
        options = ReexecutionOptions(parent_run_id=parent)
        with execute_job(job, instance=instance, reexecution_options=options) as second:
            assert second.success
            assert _written_by(second) == ["reused (2)"]
            [report] = second.output_for_node("summarize")
    assert report.new == 2
    assert all("Sensors tick on the daemon" in reply.text for reply in report.replies)
    assert list(ASKED.values()) == [1, 1]  # once per delivery over both runs
    logged = [str(record) for run in (parent, second.run_id) for record in instance.all_logs(run)]
    assert not any(KEY in line for line in logged)


def _written_by(result: object) -> list[str]:
    """The `writer` metadata of every write_replies step of the run."""
    return [
        str(event.step_output_data.metadata["writer"].value)
        for event in result.all_events  # pyright: ignore[reportAttributeAccessIssue]
        if event.event_type == DagsterEventType.STEP_OUTPUT
        and (event.step_key or "").startswith("write_replies")
    ]


@pytest.fixture
def settings_env(
    make_settings: MakeSettings, env: Path, monkeypatch: pytest.MonkeyPatch
) -> dict[str, str]:
    """The environment the re-executed job loads its settings from, as a shell would set
    it: the key comes to Dagster by EnvVar, by name."""
    settings = make_settings(**write_files(env, campaigns=CAMPAIGNS))
    variables = {
        "DAGSTER_HOME": str(settings.dagster_home),
        "SOCIAL_SANDBOX_URL": settings.sandbox_url,
        "SOCIAL_DATABASE_URL": settings.state_store_url,
        "SOCIAL_ACCOUNTS_FILE": str(settings.accounts_file),
        "SOCIAL_CAMPAIGNS_FILE": str(settings.campaigns_file),
        "SOCIAL_LLM_BASE_URL": BASE,
        "SOCIAL_LLM_MODEL": "m",
        "SOCIAL_LLM_API_KEY": KEY,
        # Posting fails at once (no retries), as a run that died while posting would.
        "SOCIAL_POLICIES": json.dumps({"mastodon": {"op_retries": 0, "retry_attempts": 1}}),
    }
    for name, value in variables.items():
        monkeypatch.setenv(name, value)
    return variables
