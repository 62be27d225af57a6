"""The offline template reply writer."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from social_pipelines.campaigns import Campaign
from social_pipelines.models import SocialPost
from social_pipelines.platforms.text import counted_length
from social_pipelines.replies.template import TemplateReplyWriter

URL = "https://example.com/guides/" + "a-very-long-path-segment/" * 6


def _post(handle: str = "bob") -> SocialPost:
    return SocialPost(
        platform="mastodon",
        id="1",
        author_id="42",
        author_handle=handle,
        text="hello",
        created_at=datetime(2025, 3, 1, tzinfo=UTC),
    )


def _campaign(template: str, query: str = "dagster") -> Campaign:
    return Campaign(name="mentions", account="brand", query=query, template=template)


def _weighted(text: str) -> int:
    return counted_length(text)


def test_fills_in_the_template() -> None:
    text = TemplateReplyWriter().write(
        _post(), _campaign("Hi @{author}, {query} ({campaign})"), max_length=500
    )
    assert text == "Hi @bob, dagster (mentions)"


def test_is_deterministic() -> None:
    writer = TemplateReplyWriter()
    campaign = _campaign("Thanks @{author} for asking about {query}!")
    first = writer.write(_post("carol"), campaign, max_length=500)
    assert writer.write(_post("carol"), campaign, max_length=500) == first
    assert TemplateReplyWriter().write(_post("carol"), campaign, max_length=500) == first
    assert writer.write(_post("dave"), campaign, max_length=500) != first


def test_mentions_the_author_when_the_template_does_not() -> None:
    text = TemplateReplyWriter().write(_post(), _campaign("Thanks for asking!"), max_length=500)
    assert text == "@bob Thanks for asking!"


@pytest.mark.parametrize("handle", ["bob", "@bob"])
def test_mentions_the_author_once(handle: str) -> None:
    text = TemplateReplyWriter().write(_post(handle), _campaign("Hi @{author}!"), max_length=500)
    assert text == "Hi @bob!"


def test_a_remote_author_is_mentioned_with_their_domain() -> None:
    text = TemplateReplyWriter().write(
        _post("bob@other.example"), _campaign("Thanks!"), max_length=500
    )
    assert text.startswith("@bob@other.example ")


def test_collapses_whitespace() -> None:
    text = TemplateReplyWriter().write(
        _post(), _campaign("Hi  @{author},\n\nthanks\t!"), max_length=500
    )
    assert text == "Hi @bob, thanks !"


def test_respects_max_length_as_the_platform_counts_it() -> None:
    campaign = _campaign(f"Hi @{{author}}, our {{query}} guides are at {URL} and more")
    writer = TemplateReplyWriter(length=_weighted)
    full = writer.write(_post(), campaign, max_length=500)
    assert len(full) > 200  # long in code points...
    assert _weighted(full) == 35 + 23 + 9  # ...short as counted: the URL weighs 23
    assert writer.write(_post(), campaign, max_length=67) == full

    cut = writer.write(_post(), campaign, max_length=66)
    assert cut == f"Hi @bob, our dagster guides are at {URL} and…"
    assert _weighted(cut) <= 66

    # Measured in code points, the same budget leaves no room for the URL.
    plain = TemplateReplyWriter().write(_post(), campaign, max_length=66)
    assert plain == "Hi @bob, our dagster guides are at…"


def test_a_shortened_reply_still_mentions_the_author() -> None:
    campaign = _campaign(
        "Thanks so much for all your kind words about {query}, we love it @{author}",
        query="data pipelines and orchestration",
    )
    text = TemplateReplyWriter().write(_post(), campaign, max_length=60)
    assert len(text) <= 60
    assert "@bob" in text
