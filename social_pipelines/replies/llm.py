"""Replies written by a language model behind any OpenAI-compatible chat completions API
(OpenAI, Ollama, vLLM, llama.cpp's server): `SOCIAL_LLM_BASE_URL`, `SOCIAL_LLM_MODEL`,
`SOCIAL_LLM_API_KEY`.

The model is reached like a platform: through its own breaker, rate limiter and door
(`http.build_client` with an `AccountDoor` named `llm:<model>`), so a slow or failing model
opens its circuit and the template answers meanwhile, and `x-ratelimit-*` / `Retry-After`
slow every process down together. A call gives up after 60 s (`SOCIAL_LLM_TIMEOUT`).

What it writes is held to the platform's text limit as the platform counts it: one
regeneration asking for less, then a cut at the last sentence that fits; and it must pass
the filters (`filters.py`) or it is refused with the reason.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

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
from social_pipelines.platforms.http import Door, build_client, route, status_error
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
COMPLETION_TOKENS = 300


class DraftRefused(SocialError):
    """The model wrote something the filters refuse (the reason is the message); `text`
    is what it wrote, kept for the drafts table."""

    def __init__(self, reason: str, *, text: str) -> None:
        super().__init__(reason, platform=NAME)
        self.text = text


@dataclass(frozen=True)
class LLMSettings:
    base_url: str
    model: str
    api_key: SecretStr | None = field(default=None, repr=False)
    timeout: float = DEFAULT_TIMEOUT


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
        self._client = build_client(
            settings.base_url.rstrip("/"),
            door=door,
            platform=NAME,
            timeout=settings.timeout,
            headers=headers,
            transport=transport,
        )

    def complete(self, messages: list[dict[str, str]]) -> str:
        # `max_tokens` too: vLLM, llama.cpp and Ollama know it; OpenAI takes both.
        body: dict[str, Any] = {
            "model": self.model,
            "messages": messages,
            "max_completion_tokens": COMPLETION_TOKENS,
            "max_tokens": COMPLETION_TOKENS,
            "temperature": 0.7,
        }
        response = self._client.post("/chat/completions", json=body, extensions=route("chat"))
        if not response.is_success:
            raise _error(response)
        try:
            return str(response.json()["choices"][0]["message"]["content"] or "").strip()
        except (ValueError, KeyError, IndexError, TypeError):
            raise Transient(
                "chat completion answer without choices[0].message.content",
                platform=NAME,
                status_code=response.status_code,
                detail=response.text,
            ) from None

    def close(self) -> None:
        self._client.close()


def _error(response: httpx.Response) -> SocialError:
    status = response.status_code
    try:
        error = response.json().get("error") or {}
    except ValueError:
        error = {}
    message = str(error.get("message") or "") if isinstance(error, dict) else str(error)
    code = str(error.get("code") or error.get("type") or "") if isinstance(error, dict) else ""
    if status in (401, 403):
        return AuthExpired(message or "API key refused", platform=NAME, status_code=status)
    if status == 429 and "insufficient_quota" in code + message:
        # Credits or billing: waiting does not help (platforms.md §8).
        return QuotaExhausted(message or "quota used up", platform=NAME, status_code=status)
    if status == 429:
        error_429 = status_error(response, platform=NAME, create=False)
        assert isinstance(error_429, RateLimited)
        return error_429
    if status in (400, 404, 422):
        return Rejected(message or "request refused", platform=NAME, status_code=status)
    return status_error(response, platform=NAME, create=False)


def cut_at_sentence(text: str, limit: int, length: Callable[[str], int]) -> str:
    """The longest run of whole sentences that fits `limit`; never empty (when not even
    the first sentence fits, words are cut with an ellipsis)."""
    if length(text) <= limit:
        return text
    ends = [match.end() for match in SENTENCE_END.finditer(text)]
    for end in reversed(ends):
        candidate = text[:end].strip()
        if candidate and length(candidate) <= limit:
            return candidate
    return fit_text(text, limit, length)


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
    the model left them out (as the template writer does)."""
    mention = f"@{author}"
    if re.search(rf"(?<!\S){re.escape(mention)}\b", text):
        return text
    return f"{mention} " + cut_at_sentence(text, limit - length(mention + " "), length)
