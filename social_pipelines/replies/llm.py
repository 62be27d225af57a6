"""Replies written by a language model behind any OpenAI-compatible chat completions API
(OpenAI, Ollama, vLLM, llama.cpp's server): `SOCIAL_LLM_BASE_URL`, `SOCIAL_LLM_MODEL`,
`SOCIAL_LLM_API_KEY`.

The model is reached like a platform: through its own breaker, rate limiter and door
(`http.build_client` with an `AccountDoor` named `llm:<model>`), so a slow or failing model
opens its circuit and the template answers meanwhile, and OpenAI's `x-ratelimit-*` headers
and a 429's `Retry-After` slow every process down together. A call gives up after 60 s
(`SOCIAL_LLM_TIMEOUT`).

What it writes is held to the platform's text limit as the platform counts it: one
regeneration asking for less, then a cut at the last sentence that fits; and it must pass
the filters (`filters.py`) or it is refused with the reason.

The token cap is sent as `max_completion_tokens` only: OpenAI refuses `max_tokens` on its
reasoning models and refuses the two together (400 `invalid_parameter_combination`); vLLM
(since 0.6.4) and llama.cpp's server (since early 2026) read it. Ollama reads only
`max_tokens` and ignores the other in silence (an uncapped answer, still bounded by the
timeout): `SOCIAL_LLM_MAX_TOKENS_FIELD=max_tokens` there. A server that answers 400/422
naming the field it does not know gets the other one, once, for the client's life.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import httpx
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
from social_pipelines.platforms.http import (
    Door,
    RateLimitInfo,
    build_client,
    rate_limit_info,
    route,
    status_error,
)
from social_pipelines.platforms.policy import MINUTE, PlatformPolicy, rates
from social_pipelines.platforms.text import fit_text
from social_pipelines.replies.filters import refusal

NAME = "llm"
DEFAULT_TIMEOUT = 60.0
# Our own ceiling (the server's `x-ratelimit-*` answers lower it): replies are few.
POLICY = PlatformPolicy(
    breaker_fail_max=3,
    breaker_reset_seconds=120,
    call_timeout=DEFAULT_TIMEOUT,
    buckets={"completions": rates((30, MINUTE))},
    endpoints={"*": ["completions"]},
    retry_attempts=2,
    retry_max_seconds=30,
)
DEFAULT_PROMPT = (
    "You write one short reply on {platform} for the brand behind the campaign "
    '"{campaign}" (it looks for posts about: {query}). Be friendly, specific and helpful; '
    "answer in the language of the post; no hashtags; mention nobody except @{author}; do "
    "not repeat or quote the post; {links}. The reply must be at most {max_characters} "
    "characters. Write the reply text only.\n\nPost by @{author}:\n{post}"
)
SENTENCE_END = re.compile(r"[.!?…](?=\s|$)")
# Room for a short reply, and for a reasoning model's thinking before it (which counts).
COMPLETION_TOKENS = 1024
TokenField = Literal["max_completion_tokens", "max_tokens"]
TOKEN_FIELDS: tuple[TokenField, TokenField] = ("max_completion_tokens", "max_tokens")
# A local reasoning model (DeepSeek-R1, Qwen3 without a reasoning parser) may think aloud.
_THINKING = re.compile(r"^\s*<think>.*?</think>", re.DOTALL)


class DraftRefused(SocialError):
    """The model wrote something the filters refuse (the reason is the message); `text`
    is what it wrote, kept with the draft."""

    def __init__(self, reason: str, *, text: str) -> None:
        super().__init__(reason, platform=NAME)
        self.text = text


@dataclass(frozen=True)
class LLMSettings:
    base_url: str
    model: str
    api_key: SecretStr | None = field(default=None, repr=False)
    timeout: float = DEFAULT_TIMEOUT
    max_tokens_field: TokenField = "max_completion_tokens"


class ChatClient:
    """`POST {base_url}/chat/completions`, every request through `door`."""

    def __init__(
        self,
        settings: LLMSettings,
        *,
        door: Door,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        headers = {}
        if settings.api_key is not None and settings.api_key.get_secret_value():
            headers["Authorization"] = f"Bearer {settings.api_key.get_secret_value()}"
        self.model = settings.model
        self.max_tokens_field: TokenField = settings.max_tokens_field
        self._switched_field = False
        self._client = build_client(
            settings.base_url.rstrip("/"),
            door=door,
            platform=NAME,
            timeout=settings.timeout,
            headers=headers,
            transport=transport,
        )

    def complete(self, messages: list[dict[str, str]]) -> str:
        """The first choice's text (a reasoning model's `<think>` part removed)."""
        response = self._post(messages)
        if self._unknown_field(response):
            # The server names the cap's field as one it does not take: the other, once.
            self.max_tokens_field = next(f for f in TOKEN_FIELDS if f != self.max_tokens_field)
            self._switched_field = True
            response = self._post(messages)
        if not response.is_success:
            raise _error(response)
        try:
            choice = response.json()["choices"][0]
            text = str(choice["message"].get("content") or "")
        except (ValueError, KeyError, IndexError, TypeError, AttributeError):
            raise Transient(
                "chat completion answer without choices[0].message.content",
                platform=NAME,
                status_code=response.status_code,
                detail=response.text,
            ) from None
        text = _THINKING.sub("", text).strip()
        if not text and choice.get("finish_reason") == "length":
            raise Rejected(
                f"the model used all {COMPLETION_TOKENS} tokens of {self.max_tokens_field} "
                "before writing a reply (a reasoning model thinking at length?)",
                platform=NAME,
                status_code=response.status_code,
            )
        return text

    def _post(self, messages: list[dict[str, str]]) -> httpx.Response:
        body: dict[str, Any] = {
            "model": self.model,
            "messages": messages,
            self.max_tokens_field: COMPLETION_TOKENS,
        }
        return self._client.post("/chat/completions", json=body, extensions=route("chat"))

    def _unknown_field(self, response: httpx.Response) -> bool:
        return (
            not self._switched_field
            and response.status_code in (400, 422)
            and self.max_tokens_field in response.text
        )

    def close(self) -> None:
        self._client.close()


def _error(response: httpx.Response) -> SocialError:
    """An error answer in `errors.py` terms; the body is OpenAI's `{"error": {...}}`."""
    status = response.status_code
    try:
        error = response.json().get("error") or {}
    except (ValueError, AttributeError):
        error = {}
    message = str(error.get("message") or "") if isinstance(error, dict) else str(error)
    code = str(error.get("code") or error.get("type") or "") if isinstance(error, dict) else ""
    if status in (401, 403):
        return AuthExpired(message or "API key refused", platform=NAME, status_code=status)
    if status == 429 and ("insufficient_quota" in code or "exceeded your current quota" in message):
        # Credits or billing: waiting does not help (platforms.md §8).
        return QuotaExhausted(message or "quota used up", platform=NAME, status_code=status)
    if status == 429:
        limited = status_error(response, platform=NAME, create=False)
        assert isinstance(limited, RateLimited)
        return limited
    if status in (400, 404, 422):
        return Rejected(message or "request refused", platform=NAME, status_code=status)
    return status_error(response, platform=NAME, create=False)


# Go's durations, as OpenAI writes its resets: `1s`, `6m0s`, `12ms`, `1h2m3.5s`.
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|us|µs|ns|h|m|s)")
_UNIT_SECONDS = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 1e-3, "us": 1e-6, "µs": 1e-6, "ns": 1e-9}


def duration_seconds(value: str | None) -> float | None:
    """`6m0s` -> 360.0; a bare number is seconds; None for anything else."""
    if not value or not value.strip():
        return None
    value = value.strip()
    try:
        return float(value)
    except ValueError:
        pass
    parts = _DURATION_PART.findall(value)
    if not parts or "".join(number + unit for number, unit in parts) != value:
        return None
    return sum(float(number) * _UNIT_SECONDS[unit] for number, unit in parts)


def _int(value: str | None) -> int | None:
    try:
        return int(float(value)) if value is not None else None
    except ValueError:
        return None


def openai_rate_limits(
    headers: httpx.Headers, *, now: datetime | None = None
) -> RateLimitInfo | None:
    """The request budget OpenAI announces (`x-ratelimit-{limit,remaining,reset}-requests`,
    resets as durations); a token budget used up counts as no request left until it resets.
    Any other server: the platforms' header families (`rate_limit_info`)."""
    remaining = _int(headers.get("x-ratelimit-remaining-requests"))
    if remaining is None:
        return rate_limit_info(headers)
    now = now or datetime.now(UTC)
    wait = duration_seconds(headers.get("x-ratelimit-reset-requests"))
    tokens_left = _int(headers.get("x-ratelimit-remaining-tokens"))
    tokens_wait = duration_seconds(headers.get("x-ratelimit-reset-tokens"))
    if tokens_left is not None and tokens_left <= 0 and tokens_wait is not None:
        remaining, wait = 0, max(wait or 0.0, tokens_wait)
    return RateLimitInfo(
        limit=_int(headers.get("x-ratelimit-limit-requests")),
        remaining=remaining,
        reset_at=now + timedelta(seconds=wait) if wait is not None else None,
    )


def cut_at_sentence(text: str, limit: int, length: Callable[[str], int]) -> str:
    """The longest run of whole sentences of `text` that fits `limit`.

    Never empty for a text with something in it: when not even the first sentence fits,
    words are cut with an ellipsis (`fit_text`), and when not even the first word fits,
    its characters are.
    """
    text = text.strip()
    if length(text) <= limit:
        return text
    ends = [match.end() for match in SENTENCE_END.finditer(text)]
    for end in reversed(ends):
        candidate = text[:end].strip()
        if candidate and length(candidate) <= limit:
            return candidate
    fitted = fit_text(text, limit, length)
    if fitted.strip(" …"):
        return fitted
    for cut in range(min(len(text), limit), 0, -1):
        candidate = text[:cut].rstrip() + "…"
        if candidate != "…" and length(candidate) <= limit:
            return candidate
    return fitted


class LLMReplyWriter:
    """A reply from the model: prompted, held to the limit, filtered."""

    name = NAME

    def __init__(self, chat: ChatClient, *, length: Callable[[str], int], platform: str) -> None:
        self.chat = chat
        self.length = length
        self.platform = platform

    def prompt(self, post: SocialPost, campaign: Campaign, *, max_length: int) -> str:
        template = campaign.prompt or DEFAULT_PROMPT
        return template.format(
            post=post.text,
            author=post.author_handle.lstrip("@"),
            campaign=campaign.name,
            query=campaign.query,
            platform=self.platform,
            max_characters=max_length,
            links="links are allowed" if campaign.allow_links else "never include a link",
        )

    def write(self, post: SocialPost, campaign: Campaign, *, max_length: int) -> str:
        messages = [{"role": "user", "content": self.prompt(post, campaign, max_length=max_length)}]
        text = _one_line(self.chat.complete(messages))
        if self.length(text) > max_length:
            # Once more, asking for less; then the last whole sentence that fits.
            messages += [
                {"role": "assistant", "content": text},
                {
                    "role": "user",
                    "content": f"That is {self.length(text)} characters; the limit is "
                    f"{max_length}. Write a shorter reply, the text only.",
                },
            ]
            text = cut_at_sentence(_one_line(self.chat.complete(messages)), max_length, self.length)
        text = _mentioning(text, post.author_handle.lstrip("@"), max_length, self.length)
        if (why := refusal(text, post, campaign)) is not None:
            raise DraftRefused(why, text=text)
        return text


def _one_line(text: str) -> str:
    return " ".join(text.strip().strip('"').split())


def _mentioning(text: str, author: str, limit: int, length: Callable[[str], int]) -> str:
    """Mastodon threads a reply only to the people it mentions: the author leads it when
    the model left them out (as the template writer does). Nothing is added to nothing:
    an empty answer stays empty, for the filters to refuse."""
    mention = f"@{author}"
    if not text or re.search(rf"(?<!\S){re.escape(mention)}\b", text):
        return text
    return f"{mention} " + cut_at_sentence(text, limit - length(mention + " "), length)
