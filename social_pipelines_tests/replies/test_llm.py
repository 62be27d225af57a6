"""The LLM reply writer on the OpenAI chat-completions shapes (platforms.md §8), through
its real breaker, rate limits and door on a real state store; the model's host mocked with
respx. One test asks a real OpenAI-compatible server when SOCIAL_TEST_LLM_URL is set."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
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
    SocialError,
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
    TokenField,
    cut_at_sentence,
    duration_seconds,
    openai_rate_limits,
)
from social_pipelines.replies.template import TemplateReplyWriter
from social_pipelines.resilience.connector import Connector
from social_pipelines.resilience.door import AccountDoor
from social_pipelines.store import StateStore

BASE = "https://llm.test/v1"
MODEL = "test-model"
KEY = "sk-test-very-secret-key-5521"
BUCKET = f"{NAME}:{MODEL}:completions"
POST = SocialPost(
    platform="mastodon",
    id="109",
    author_id="7",
    author_handle="etl_ed",
    text="Our dagster sensor keeps firing twice after a deploy, any idea why?",
    url="https://social.example/@etl_ed/109",
    created_at=datetime(2026, 12, 1, 9, tzinfo=UTC),
)
GOOD = "@etl_ed A sensor run twice usually means two cursors; check the tick history."


def _campaign(**changes: object) -> Campaign:
    fields: dict[str, object] = {
        "name": "dagster_help",
        "account": "brand",
        "query": "dagster",
        "writer": "llm",
        "blocklist": ("crypto",),
    }
    return Campaign.model_validate(fields | changes)


def _posts(n: int) -> list[tuple[str, SocialPost]]:
    return [(f"d-{i}", POST.model_copy(update={"id": str(i)})) for i in range(n)]


def _answer(
    text: str | None, *, finish: str = "stop", headers: dict[str, str] | None = None
) -> httpx.Response:
    return httpx.Response(
        200,
        headers=headers,
        json={
            "id": "chatcmpl-1",
            "object": "chat.completion",
            "created": 1764580000,
            "model": MODEL,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": text},
                    "finish_reason": finish,
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


def _client(
    connector: Connector,
    *,
    base: str = BASE,
    model: str = MODEL,
    key: str | None = KEY,
    field: TokenField = "max_completion_tokens",
) -> ChatClient:
    settings = LLMSettings(
        base_url=base,
        model=model,
        api_key=SecretStr(key) if key else None,
        max_tokens_field=field,
    )
    door = AccountDoor(
        connector.rate_limits,
        connector.breaker(NAME, model, POLICY),
        platform=NAME,
        account=model,
        policy=POLICY,
        read_limits=openai_rate_limits,
    )
    return ChatClient(settings, door=door)


def _drafter(store: StateStore, connector: Connector, **client: object) -> Drafter:
    chat = _client(connector, **client)  # pyright: ignore[reportArgumentType]
    writer = LLMReplyWriter(chat, length=counted_length, platform="mastodon")
    return Drafter(
        store.drafts,
        TemplateReplyWriter(length=counted_length),
        writer,
        breaker=connector.breaker(NAME, chat.model, POLICY),
    )


def _body(call: respx.models.Call) -> dict:
    return json.loads(call.request.content)


# -- writing -------------------------------------------------------------------------------


def test_a_reply_is_asked_once_per_delivery_and_reused(
    store: StateStore, connector: Connector, respx_mock: respx.MockRouter
) -> None:
    route = respx_mock.post(f"{BASE}/chat/completions").mock(return_value=_answer(GOOD))
    first = _drafter(store, connector).write(_campaign(), [("d-1", POST)], max_length=500)
    [draft] = first.drafts
    assert (draft.writer, draft.status, draft.reason) == ("llm", "accepted", None)
    assert draft.text == GOOD and first.writer == "llm (1)"
    again = _drafter(store, connector).write(_campaign(), [("d-1", POST)], max_length=500)
    assert again.counts["reused"] == 1 and again.drafts[0].text == draft.text
    assert again.writer == "reused (1)"
    assert route.call_count == 1  # the retried run never asked again
    assert store.drafts.get_many(["d-1"])["d-1"] == draft


def test_the_request_is_openais_shape(connector: Connector, respx_mock: respx.MockRouter) -> None:
    route = respx_mock.post(f"{BASE}/chat/completions").mock(return_value=_answer(GOOD))
    writer = LLMReplyWriter(_client(connector), length=counted_length, platform="mastodon")
    writer.write(POST, _campaign(), max_length=500)
    request = route.calls.last.request
    assert request.headers["authorization"] == f"Bearer {KEY}"
    assert request.headers["content-type"] == "application/json"
    body = _body(route.calls.last)
    # One cap only: OpenAI refuses max_tokens beside max_completion_tokens, and reasoning
    # models refuse max_tokens and any temperature but the default.
    assert set(body) == {"model", "messages", "max_completion_tokens"}
    assert body["model"] == MODEL and body["max_completion_tokens"] > 0
    [message] = body["messages"]
    assert message["role"] == "user"
    prompt = message["content"]
    assert POST.text in prompt and "@etl_ed" in prompt and "dagster_help" in prompt
    assert "at most 500 characters" in prompt and "never include a link" in prompt
    assert "mastodon" in prompt


def test_a_local_server_needs_no_key_and_may_take_max_tokens(
    connector: Connector, respx_mock: respx.MockRouter
) -> None:
    local = "http://127.0.0.1:11434/v1"
    route = respx_mock.post(f"{local}/chat/completions").mock(return_value=_answer("Hi."))
    _client(connector, base=local, key=None, field="max_tokens").complete([])
    request = route.calls.last.request
    assert "authorization" not in request.headers
    assert "max_tokens" in _body(route.calls.last)
    assert "max_completion_tokens" not in _body(route.calls.last)


def test_a_server_that_does_not_know_the_cap_field_gets_the_other_once(
    connector: Connector, respx_mock: respx.MockRouter
) -> None:
    unknown = httpx.Response(
        400,
        json={
            "error": {
                "message": "Unrecognized request argument supplied: max_completion_tokens",
                "type": "invalid_request_error",
            }
        },
    )
    route = respx_mock.post(f"{BASE}/chat/completions").mock(
        side_effect=[unknown, _answer("One."), _answer("Two.")]
    )
    client = _client(connector)
    assert client.complete([]) == "One."
    assert client.complete([]) == "Two."
    fields = [("max_tokens" in _body(c), "max_completion_tokens" in _body(c)) for c in route.calls]
    assert fields == [(False, True), (True, False), (True, False)]


def test_a_reasoning_models_thinking_is_not_the_reply(
    connector: Connector, respx_mock: respx.MockRouter
) -> None:
    respx_mock.post(f"{BASE}/chat/completions").mock(
        return_value=_answer("<think>\nThe user asks about sensors.\n</think>\n\nCheck cursors.")
    )
    assert _client(connector).complete([]) == "Check cursors."


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
    assert counted_length(draft.text) <= 80 and draft.writer == "llm"
    assert draft.text == "@etl_ed First sentence here. Another quite long sentence follows it."
    second = _body(route.calls.last)["messages"]
    assert [m["role"] for m in second] == ["user", "assistant", "user"]
    assert second[1]["content"] == long.strip()
    assert "the limit is 80" in second[-1]["content"]


def test_a_shorter_second_answer_is_taken_whole(
    store: StateStore, connector: Connector, respx_mock: respx.MockRouter
) -> None:
    route = respx_mock.post(f"{BASE}/chat/completions").mock(
        side_effect=[_answer(GOOD * 3), _answer(GOOD)]
    )
    report = _drafter(store, connector).write(_campaign(), [("d-2", POST)], max_length=100)
    assert report.drafts[0].text == GOOD and route.call_count == 2


def test_the_limit_is_the_platforms_count() -> None:
    # X counts a link as 23 whatever its length: a long link fits where `len` would cut it.
    text = "Read it. https://example.com/" + "a" * 100 + " Done."
    assert cut_at_sentence(text, 40, counted_length) == text
    assert cut_at_sentence(text, 40, len) == "Read it."


def test_cut_at_sentence_never_returns_nothing() -> None:
    assert cut_at_sentence("One. Two. Three.", 9, len) == "One. Two."
    assert cut_at_sentence("  One.  ", 9, len) == "One."
    assert cut_at_sentence("No sentence end at all in this text", 20, len) == "No sentence end at…"
    # Not even the first word fits: its characters are cut, never just an ellipsis.
    assert cut_at_sentence("Averyveryverylongword and more", 12, len) == "Averyveryve…"
    assert cut_at_sentence("Averyveryverylongword", 2, len) == "A…"


def test_go_durations() -> None:
    assert duration_seconds("6m0s") == 360
    assert duration_seconds("12ms") == pytest.approx(0.012)
    assert duration_seconds("1h2m3.5s") == pytest.approx(3723.5)
    assert duration_seconds("7") == 7
    assert duration_seconds("soon") is None and duration_seconds("") is None


# -- filters -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("written", "why"),
    [
        ("@etl_ed see https://example.com/fix for the answer", "contains a link"),
        ("@etl_ed read example.com/fix for the answer", "contains a link"),
        ("@etl_ed buy crypto to fix sensors", "blocklisted 'crypto'"),
        ("@etl_ed cc @a @b @c this one", "mass mention"),
        ("@etl_ed " + POST.text, "repeats the post"),
        ("@etl_ed Our dagster sensor keeps firing twice after deploys, any idea?", "repeats"),
        ("   ", "empty reply"),
        ("@etl_ed !!", "empty reply"),
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
    campaign = _campaign()
    report = _drafter(store, connector).write(campaign, [("d-3", POST)], max_length=500)
    [draft] = report.drafts
    assert (draft.writer, draft.status) == ("template", "refused")
    assert draft.text == TemplateReplyWriter(counted_length).write(POST, campaign, max_length=500)
    assert why in (draft.reason or "") and "it wrote" in (draft.reason or "")
    assert report.counts["llm_refused"] == 1 and report.counts["template"] == 1
    assert report.writer.startswith("template (1) (llm: its reply was refused: ")
    assert store.drafts.get_many(["d-3"])["d-3"] == draft


def test_one_mention_besides_the_author_passes(
    store: StateStore, connector: Connector, respx_mock: respx.MockRouter
) -> None:
    respx_mock.post(f"{BASE}/chat/completions").mock(
        return_value=_answer("@etl_ed @dagster_team knows the sensor daemon best.")
    )
    report = _drafter(store, connector).write(_campaign(), [("d-4", POST)], max_length=500)
    assert report.drafts[0].writer == "llm"


def test_links_pass_when_the_campaign_allows_them(
    store: StateStore, connector: Connector, respx_mock: respx.MockRouter
) -> None:
    route = respx_mock.post(f"{BASE}/chat/completions").mock(
        return_value=_answer("@etl_ed the docs explain it: https://docs.dagster.io/sensors")
    )
    report = _drafter(store, connector).write(
        _campaign(allow_links=True), [("d-4", POST)], max_length=500
    )
    assert report.drafts[0].writer == "llm"
    assert "links are allowed" in _body(route.calls.last)["messages"][0]["content"]


def test_a_campaigns_own_prompt(
    store: StateStore, connector: Connector, respx_mock: respx.MockRouter
) -> None:
    route = respx_mock.post(f"{BASE}/chat/completions").mock(return_value=_answer(GOOD))
    campaign = _campaign(prompt="Answer {author} in {max_characters} chars: {post}")
    _drafter(store, connector).write(campaign, [("d-5", POST)], max_length=300)
    prompt = _body(route.calls.last)["messages"][0]["content"]
    assert prompt == f"Answer etl_ed in 300 chars: {POST.text}"


def test_a_prompt_with_an_unknown_placeholder_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown placeholder 'api_key'"):
        _campaign(prompt="Use {api_key}")


# -- answers and failures ------------------------------------------------------------------


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
        (httpx.Response(503, json={"error": {"message": "overloaded"}}), Transient),
        (httpx.Response(200, json={"choices": []}), Transient),
        (httpx.Response(200, text="<html><title>Welcome</title></html>"), Transient),
        (httpx.Response(400, json={"error": {"message": "model not found"}}), Rejected),
        (httpx.Response(404, text="404 page not found"), Rejected),
        (_answer("", finish="length"), Rejected),
        (httpx.ReadTimeout("timed out"), Transient),
        (httpx.ConnectError("refused"), Transient),
    ],
)
def test_answers_are_classified(
    connector: Connector,
    respx_mock: respx.MockRouter,
    answer: httpx.Response | Exception,
    error: type[SocialError],
) -> None:
    respx_mock.post(f"{BASE}/chat/completions").mock(
        **({"side_effect": answer} if isinstance(answer, Exception) else {"return_value": answer})
    )
    with pytest.raises(error) as raised:
        _client(connector).complete([{"role": "user", "content": "hi"}])
    assert type(raised.value) is error
    assert KEY not in str(raised.value) and KEY not in raised.value.full_text
    assert KEY not in repr(raised.value)


def test_a_429_blocks_the_models_bucket_for_its_retry_after(
    connector: Connector, respx_mock: respx.MockRouter
) -> None:
    respx_mock.post(f"{BASE}/chat/completions").mock(
        return_value=httpx.Response(
            429,
            headers={"Retry-After": "120"},
            json={"error": {"message": "Rate limit reached for requests"}},
        )
    )
    with pytest.raises(RateLimited) as raised:
        _client(connector).complete([])
    assert raised.value.retry_after == 120
    blocked = connector.rate_limits.blocked_until([BUCKET])
    assert blocked is not None
    assert blocked - datetime.now(UTC) > timedelta(seconds=110)
    # Every process's next call waits for the block instead of asking.
    with pytest.raises(RateLimited, match="blocked until"):
        _client(connector).complete([])
    assert respx_mock.calls.call_count == 1


def test_openais_rate_limit_headers_become_the_shared_budget(
    connector: Connector, respx_mock: respx.MockRouter
) -> None:
    headers = {
        "x-ratelimit-limit-requests": "500",
        "x-ratelimit-remaining-requests": "0",
        "x-ratelimit-reset-requests": "6m0s",
        "x-ratelimit-limit-tokens": "30000",
        "x-ratelimit-remaining-tokens": "29000",
        "x-ratelimit-reset-tokens": "2ms",
    }
    respx_mock.post(f"{BASE}/chat/completions").mock(return_value=_answer("Hi.", headers=headers))
    _client(connector).complete([])
    known = connector.rate_limits.budget.known(BUCKET)
    assert known is not None
    remaining, reset_at = known
    assert remaining == 0
    assert timedelta(minutes=5) < reset_at - datetime.now(UTC) <= timedelta(minutes=6)


def test_a_used_up_token_budget_counts_as_no_request_left() -> None:
    now = datetime(2026, 12, 1, tzinfo=UTC)
    info = openai_rate_limits(
        httpx.Headers(
            {
                "x-ratelimit-limit-requests": "500",
                "x-ratelimit-remaining-requests": "499",
                "x-ratelimit-reset-requests": "120ms",
                "x-ratelimit-remaining-tokens": "0",
                "x-ratelimit-reset-tokens": "20s",
            }
        ),
        now=now,
    )
    assert info is not None and info.remaining == 0
    assert info.reset_at == now + timedelta(seconds=20)
    assert openai_rate_limits(httpx.Headers({"content-type": "application/json"})) is None


def test_a_failing_model_opens_its_circuit_and_the_template_answers_saying_so(
    store: StateStore,
    connector: Connector,
    respx_mock: respx.MockRouter,
    caplog: pytest.LogCaptureFixture,
) -> None:
    route = respx_mock.post(f"{BASE}/chat/completions").mock(side_effect=httpx.ReadTimeout("slow"))
    caplog.set_level(logging.INFO)
    report = _drafter(store, connector).write(_campaign(), _posts(5), max_length=500)
    assert all(d.writer == "template" and d.status == "accepted" for d in report.drafts)
    assert report.counts["llm_failed"] + report.counts["llm_unavailable"] == 5
    assert report.counts["llm_unavailable"] >= 1  # the circuit opened: not asked any more
    assert any("is open until" in reason for reason in report.fallback_reasons)
    assert route.call_count == POLICY.breaker_fail_max  # then it stopped asking
    assert "ReadTimeout" in (report.drafts[0].reason or "")
    assert KEY not in caplog.text


def test_an_open_circuit_asks_nothing_and_says_until_when(
    store: StateStore, connector: Connector, respx_mock: respx.MockRouter
) -> None:
    route = respx_mock.post(f"{BASE}/chat/completions").mock(return_value=_answer(GOOD))
    connector.breaker(NAME, MODEL, POLICY).breaker.open()
    report = _drafter(store, connector).write(_campaign(), _posts(2), max_length=500)
    assert route.call_count == 0
    assert report.counts["llm_unavailable"] == 2 and report.counts["template"] == 2
    assert report.writer.startswith(f"template (2) (llm: circuit {NAME}:{MODEL} is open until ")
    assert all("is open until" in (d.reason or "") for d in report.drafts)


@pytest.mark.parametrize(
    "answer",
    [
        httpx.Response(401, json={"error": {"message": "Incorrect API key provided"}}),
        httpx.Response(429, json={"error": {"code": "insufficient_quota", "message": "quota"}}),
    ],
)
def test_a_refused_key_or_quota_is_asked_once_per_step_not_once_per_post(
    store: StateStore,
    connector: Connector,
    respx_mock: respx.MockRouter,
    caplog: pytest.LogCaptureFixture,
    answer: httpx.Response,
) -> None:
    route = respx_mock.post(f"{BASE}/chat/completions").mock(return_value=answer)
    caplog.set_level(logging.DEBUG)
    report = _drafter(store, connector).write(_campaign(), _posts(3), max_length=500)
    assert route.call_count == 1  # neither waited for nor repeated
    assert [d.writer for d in report.drafts] == ["template"] * 3
    assert report.counts["llm_failed"] == 1 and report.counts["llm_unavailable"] == 2
    assert "not asked again in this step" in report.writer
    assert not connector.breaker(NAME, MODEL, POLICY).snapshot().is_open  # not unwell
    stored = store.drafts.get_many(d for d, _ in _posts(3))
    for text in [caplog.text, report.writer, *(d.reason or "" for d in stored.values())]:
        assert KEY not in text


def test_without_a_model_configured_the_template_answers_and_says_why(
    store: StateStore,
) -> None:
    drafter = Drafter(store.drafts, TemplateReplyWriter(length=counted_length), None)
    report = drafter.write(_campaign(), [("d-9", POST)], max_length=500)
    assert report.drafts[0].writer == "template" and report.drafts[0].status == "accepted"
    assert report.writer == (
        "template (1) (llm: not configured (SOCIAL_LLM_BASE_URL, SOCIAL_LLM_MODEL))"
    )


def test_a_template_campaign_never_asks_the_model(
    store: StateStore, connector: Connector, respx_mock: respx.MockRouter
) -> None:
    route = respx_mock.post(f"{BASE}/chat/completions").mock(return_value=_answer(GOOD))
    report = _drafter(store, connector).write(
        _campaign(writer="template"), [("d-11", POST)], max_length=500
    )
    assert route.call_count == 0 and report.writer == "template (1)"
    assert report.drafts[0].reason is None


def test_a_dry_run_stores_no_draft(
    store: StateStore, connector: Connector, respx_mock: respx.MockRouter
) -> None:
    respx_mock.post(f"{BASE}/chat/completions").mock(return_value=_answer("@etl_ed Try this."))
    _drafter(store, connector).write(_campaign(), [("d-10", POST)], max_length=500, dry_run=True)
    assert store.drafts.get_many(["d-10"]) == {}


def test_the_first_stored_draft_wins(store: StateStore) -> None:
    from social_pipelines.store.drafts import ACCEPTED, StoredDraft

    first = StoredDraft("d-12", "c", "llm", "first", ACCEPTED)
    assert store.drafts.keep(first) == first
    assert store.drafts.keep(StoredDraft("d-12", "c", "template", "second", ACCEPTED)) == first


def test_the_key_is_in_no_repr() -> None:
    settings = LLMSettings(base_url=BASE, model=MODEL, api_key=SecretStr(KEY))
    assert KEY not in repr(settings) and KEY not in str(settings)


# -- a real server -------------------------------------------------------------------------


def test_a_real_openai_compatible_server(store: StateStore, connector: Connector) -> None:
    url = os.environ.get("SOCIAL_TEST_LLM_URL")
    if not url:
        pytest.skip(
            "SOCIAL_TEST_LLM_URL is not set: give an OpenAI-compatible base URL (e.g. "
            "http://127.0.0.1:11434/v1 for Ollama), SOCIAL_TEST_LLM_MODEL and, if it needs "
            "one, SOCIAL_TEST_LLM_KEY, to run the writer against a real model"
        )
    field: TokenField = (
        "max_tokens"
        if os.environ.get("SOCIAL_TEST_LLM_MAX_TOKENS_FIELD") == "max_tokens"
        else "max_completion_tokens"
    )
    drafter = _drafter(
        store,
        connector,
        base=url,
        model=os.environ.get("SOCIAL_TEST_LLM_MODEL", "llama3.2"),
        key=os.environ.get("SOCIAL_TEST_LLM_KEY") or None,
        field=field,
    )
    report = drafter.write(_campaign(), [("d-real", POST)], max_length=300)
    [draft] = report.drafts
    # The model answered: with a reply that passed, or one the filters refused (said why).
    assert report.counts["llm_failed"] == 0, report.writer
    assert report.counts["llm"] == 1 or draft.status == "refused", report.writer
    assert draft.text.strip() and counted_length(draft.text) <= 300
