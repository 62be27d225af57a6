"""A `writer = "llm"` campaign through the real reply job on the sandbox: the model (its
host mocked with respx on the chat-completions shape) writes each reply once; a run whose
posting failed leaves the drafts, and the next run posts them without asking again."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import respx
from dagster import DagsterInstance
from pydantic import SecretStr

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
