"""The LLM reply writer on the OpenAI chat-completions shapes (platforms.md §8), through
its real breaker, rate limits and door on a real state store; the model's host mocked with
respx. One test asks a real OpenAI-compatible server when SOCIAL_TEST_LLM_URL is set."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
import respx
from pydantic import SecretStr

from social_pipelines.campaigns import Campaign
from social_pipelines.errors import (
    AuthExpired,
    QuotaExhausted,
    RateLimited,
    Rejected,
    Transient,
)
from social_pipelines.models import SocialPost
from social_pipelines.platforms.text import counted_length
from social_pipelines.replies.drafting import Drafter
from social_pipelines.replies.llm import (
    NAME,
    POLICY,
    ChatClient,
    LLMReplyWriter,
    LLMSettings,
    cut_at_sentence,
)
from social_pipelines.replies.template import TemplateReplyWriter
from social_pipelines.resilience.connector import Connector
from social_pipelines.resilience.door import AccountDoor
from social_pipelines.store import StateStore

BASE = "https://llm.test/v1"
KEY = "sk-test-very-secret-key-5521"
POST = SocialPost(
    platform="mastodon",
    id="109",
    author_id="7",
    author_handle="etl_ed",
    text="Our dagster sensor keeps firing twice after a deploy, any idea why?",
    url="https://social.example/@etl_ed/109",
    created_at=datetime(2026, 12, 1, 9, tzinfo=UTC),
)


def _campaign(**changes: object) -> Campaign:
    fields: dict[str, object] = {
        "name": "dagster_help",
        "account": "brand",
        "query": "dagster",
        "writer": "llm",
        "blocklist": ("crypto",),
    }
    return Campaign.model_validate(fields | changes)


def _answer(text: str) -> httpx.Response:
    return httpx.Response(
        200,
        json={
            "id": "chatcmpl-1",
            "object": "chat.completion",
            "created": 1764580000,
            "model": "test-model",
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": text},
                    "finish_reason": "stop",
                }
            ],
            "usage": {"prompt_tokens": 50, "completion_tokens": 20, "total_tokens": 70},
        },
    )


@pytest.fixture
def store(tmp_path: Path) -> Iterator[StateStore]:
    opened = StateStore(f"sqlite:///{tmp_path / 'state.db'}")
    yield opened
    opened.dispose()


@pytest.fixture
def connector(store: StateStore, tmp_path: Path) -> Connector:
    return Connector(store, bucket_path=tmp_path / "buckets.db")


def _drafter(store: StateStore, connector: Connector, *, limit_length: bool = True) -> Drafter:
    settings = LLMSettings(base_url=BASE, model="test-model", api_key=SecretStr(KEY))
    breaker = connector.breaker(NAME, settings.model, POLICY)
    door = AccountDoor(
        connector.rate_limits, breaker, platform=NAME, account=settings.model, policy=POLICY
    )
    writer = LLMReplyWriter(
        ChatClient(settings, door=door), length=counted_length, platform="mastodon"
    )
    return Drafter(
        store.drafts, TemplateReplyWriter(length=counted_length), writer, breaker=breaker
    )


def test_a_reply_is_asked_once_per_delivery_and_reused(
    store: StateStore, connector: Connector, respx_mock: respx.MockRouter
) -> None:
    route = respx_mock.post(f"{BASE}/chat/completions").mock(
        return_value=_answer(
            "@etl_ed A sensor run twice usually means two cursors; check the tick history."
        )
    )
    drafter = _drafter(store, connector)
    first = drafter.write(_campaign(), [("d-1", POST)], max_length=500)
    [draft] = first.drafts
    assert (draft.writer, draft.status) == ("llm", "written")
    assert draft.text.startswith("@etl_ed A sensor")
    request = route.calls.last.request
    assert request.headers["authorization"] == f"Bearer {KEY}"
    body = json.loads(request.content)
    assert body["model"] == "test-model" and body["messages"][0]["role"] == "user"
    prompt = body["messages"][0]["content"]
    assert POST.text in prompt and "etl_ed" in prompt and "500 characters" in prompt
    assert "never include a link" in prompt
    again = _drafter(store, connector).write(_campaign(), [("d-1", POST)], max_length=500)
    assert again.counts["reused"] == 1 and again.drafts[0].text == draft.text
    assert route.call_count == 1  # the retried run never asked again


def test_too_long_is_asked_again_once_then_cut_at_a_sentence(
    store: StateStore, connector: Connector, respx_mock: respx.MockRouter
) -> None:
    long = "First sentence here. " + "Another quite long sentence follows it. " * 5
    route = respx_mock.post(f"{BASE}/chat/completions").mock(
        side_effect=[_answer(long), _answer(long)]
    )
    report = _drafter(store, connector).write(_campaign(), [("d-2", POST)], max_length=80)
    [draft] = report.drafts
    assert route.call_count == 2  # one regeneration, no more
    assert counted_length(draft.text) <= 80
    assert draft.text.endswith(".") and draft.text.startswith("@etl_ed First sentence here.")
    second = json.loads(route.calls.last.request.content)["messages"]
    assert "the limit is 80" in second[-1]["content"]


def test_cut_at_sentence_never_returns_nothing() -> None:
    assert cut_at_sentence("One. Two. Three.", 9, len) == "One. Two."
    assert cut_at_sentence("Averyveryverylongword and more", 12, len).endswith("…")


@pytest.mark.parametrize(
    ("written", "why"),
    [
        ("@etl_ed see https://example.com/fix for the answer", "contains a link"),
        ("@etl_ed read example.com/fix for the answer", "contains a link"),
        ("@etl_ed buy crypto to fix sensors", "blocklisted 'crypto'"),
        ("@etl_ed cc @a @b @c this one", "mass mention"),
        ("@etl_ed " + POST.text, "repeats the post"),
        ("   ", "empty reply"),
    ],
)
def test_a_refused_draft_is_kept_with_its_reason_and_the_template_answers(
    store: StateStore,
    connector: Connector,
    respx_mock: respx.MockRouter,
    written: str,
    why: str,
) -> None:
    respx_mock.post(f"{BASE}/chat/completions").mock(return_value=_answer(written))
    report = _drafter(store, connector).write(_campaign(), [("d-3", POST)], max_length=500)
    [draft] = report.drafts
    assert (draft.writer, draft.status) == ("template", "fallback")
    assert why in (draft.reason or "") and report.counts["llm_refused"] == 1
    assert "template instead of llm" in report.writer
    stored = store.drafts.get_many(["d-3"])["d-3"]
    assert stored.refused_text is not None and stored.reason == draft.reason


def test_links_pass_when_the_campaign_allows_them(
    store: StateStore, connector: Connector, respx_mock: respx.MockRouter
) -> None:
    respx_mock.post(f"{BASE}/chat/completions").mock(
        return_value=_answer("@etl_ed the docs explain it: https://docs.dagster.io/sensors")
    )
    report = _drafter(store, connector).write(
        _campaign(allow_links=True), [("d-4", POST)], max_length=500
    )
    assert report.drafts[0].writer == "llm"


@pytest.mark.parametrize(
    ("answer", "error"),
    [
        (
            httpx.Response(
                401, json={"error": {"message": "Incorrect API key", "code": "invalid_api_key"}}
            ),
            AuthExpired,
        ),
        (
            httpx.Response(
                429,
                headers={"Retry-After": "120"},
                json={"error": {"message": "Rate limit reached for requests"}},
            ),
            RateLimited,
        ),
        (
            httpx.Response(
                429,
                json={
                    "error": {
                        "message": "You exceeded your current quota",
                        "type": "insufficient_quota",
                        "code": "insufficient_quota",
                    }
                },
            ),
            QuotaExhausted,
        ),
        (httpx.Response(500, text="upstream failed"), Transient),
        (httpx.Response(200, json={"choices": []}), Transient),
        (httpx.Response(400, json={"error": {"message": "model not found"}}), Rejected),
    ],
)
def test_answers_are_classified(
    connector: Connector, respx_mock: respx.MockRouter, answer: httpx.Response, error: type
) -> None:
    respx_mock.post(f"{BASE}/chat/completions").mock(return_value=answer)
    settings = LLMSettings(base_url=BASE, model="m", api_key=SecretStr(KEY))
    door = AccountDoor(
        connector.rate_limits,
        connector.breaker(NAME, "m", POLICY),
        platform=NAME,
        account="m",
        policy=POLICY,
    )
    with pytest.raises(error) as raised:
        ChatClient(settings, door=door).complete([{"role": "user", "content": "hi"}])
    assert KEY not in str(raised.value) and KEY not in raised.value.full_text
    if isinstance(raised.value, RateLimited):
        assert raised.value.retry_after == 120


def test_a_failing_model_opens_its_circuit_and_the_template_answers_saying_so(
    store: StateStore,
    connector: Connector,
    respx_mock: respx.MockRouter,
    caplog: pytest.LogCaptureFixture,
) -> None:
    route = respx_mock.post(f"{BASE}/chat/completions").mock(side_effect=httpx.ReadTimeout("slow"))
    caplog.set_level(logging.INFO)
    drafter = _drafter(store, connector)
    items = [(f"d-{n}", POST.model_copy(update={"id": str(n)})) for n in range(5)]
    report = drafter.write(_campaign(), items, max_length=500)
    assert all(d.writer == "template" and d.status == "fallback" for d in report.drafts)
    assert report.counts["llm_failed"] == 5
    assert any("open until" in reason for reason in report.fallback_reasons)
    calls = route.call_count
    assert calls <= POLICY.breaker_fail_max * POLICY.retry_attempts  # then it stopped asking
    assert KEY not in caplog.text


def test_without_a_model_configured_the_template_answers_and_says_why(
    store: StateStore,
) -> None:
    drafter = Drafter(store.drafts, TemplateReplyWriter(length=counted_length), None)
    report = drafter.write(_campaign(), [("d-9", POST)], max_length=500)
    assert report.drafts[0].writer == "template"
    assert "no language model is configured" in report.writer


def test_a_dry_run_stores_no_draft(
    store: StateStore, connector: Connector, respx_mock: respx.MockRouter
) -> None:
    respx_mock.post(f"{BASE}/chat/completions").mock(return_value=_answer("@etl_ed Try this."))
    _drafter(store, connector).write(_campaign(), [("d-10", POST)], max_length=500, dry_run=True)
    assert store.drafts.get_many(["d-10"]) == {}


def test_a_real_openai_compatible_server(store: StateStore, connector: Connector) -> None:
    url = os.environ.get("SOCIAL_TEST_LLM_URL")
    if not url:
        pytest.skip(
            "SOCIAL_TEST_LLM_URL is not set: give an OpenAI-compatible base URL (e.g. "
            "http://127.0.0.1:11434/v1 for Ollama), SOCIAL_TEST_LLM_MODEL and, if it needs "
            "one, SOCIAL_TEST_LLM_KEY, to run the writer against a real model"
        )
    settings = LLMSettings(
        base_url=url,
        model=os.environ.get("SOCIAL_TEST_LLM_MODEL", "llama3.2"),
        api_key=SecretStr(os.environ.get("SOCIAL_TEST_LLM_KEY", "")) or None,
    )
    breaker = connector.breaker(NAME, settings.model, POLICY)
    door = AccountDoor(
        connector.rate_limits, breaker, platform=NAME, account=settings.model, policy=POLICY
    )
    writer = LLMReplyWriter(
        ChatClient(settings, door=door), length=counted_length, platform="mastodon"
    )
    drafter = Drafter(
        store.drafts, TemplateReplyWriter(length=counted_length), writer, breaker=breaker
    )
    report = drafter.write(_campaign(), [("d-real", POST)], max_length=300)
    [draft] = report.drafts
    assert draft.text and counted_length(draft.text) <= 300
    assert draft.writer == "llm" or draft.status == "fallback"
