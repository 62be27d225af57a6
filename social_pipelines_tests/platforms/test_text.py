"""Text as platforms render and count it."""

from __future__ import annotations

import pytest

from social_pipelines.platforms.text import (
    counted_length,
    fit_text,
    hashtag_name,
    html_to_text,
    matches_query,
)
from social_pipelines_tests.clusters import CLUSTERS


@pytest.mark.parametrize(
    ("html", "text"),
    [
        ("<p>Hello world</p>", "Hello world"),
        ("<p>First</p><p>Second</p>", "First\n\nSecond"),
        ("<p>one<br />two<br>three</p>", "one\ntwo\nthree"),
        (
            "<p>a &amp; b &lt;c&gt; &quot;d&quot; &#39;e&#39; caf&eacute; &#x1F600;</p>",
            "a & b <c> \"d\" 'e' café \U0001f600",
        ),
        (
            '<p><span class="h-card"><a href="https://m.example/@bob" class="u-url mention">'
            "@<span>bob</span></a></span> see "
            '<a href="https://example.com/a/long/path"><span class="invisible">https://</span>'
            '<span class="ellipsis">example.com/a/lo</span><span class="invisible">ng/path'
            "</span></a></p>",
            "@bob see https://example.com/a/long/path",
        ),
        ("  <p> padded </p>  ", "padded"),
        ("plain text, no markup", "plain text, no markup"),
        ("", ""),
    ],
)
def test_html_to_text(html: str, text: str) -> None:
    assert html_to_text(html) == text


@pytest.mark.parametrize(
    ("text", "length"),
    [
        ("hello", 5),
        ("", 0),
        ("see https://example.com/a/very/long/path?with=query&and=more", 4 + 23),
        ("http://a.b and https://c.d/e", 23 + 5 + 23),
        ("short http://x.y", 6 + 23),  # a short URL still weighs 23
        ("@alice@mastodon.social hi", len("@alice hi")),
        ("cc @bob", 7),  # a local mention counts as written
        ("mail bob@example.com", 20),  # an address is not a mention
        ("cafe\u0301", 4),  # e and its combining accent are one character
        ("\U0001f600\U0001f600", 2),
    ],
)
def test_counted_length(text: str, length: int) -> None:
    assert counted_length(text) == length


@pytest.mark.parametrize("cluster", CLUSTERS.values(), ids=CLUSTERS.keys())
def test_counted_length_counts_grapheme_clusters(cluster: str) -> None:
    assert len(cluster) > 1
    assert counted_length(cluster) == 1
    assert counted_length(f"{cluster} and {cluster}{cluster}") == 8


def test_counted_length_weighs_a_url_beside_clusters() -> None:
    flag = CLUSTERS["flag"]
    assert counted_length(f"{flag} https://example.com/{flag}") == 2 + 23


def test_counted_length_takes_the_platform_url_weight() -> None:
    assert counted_length("go https://example.com", characters_per_url=30) == 3 + 30


def test_fit_text_leaves_fitting_text_alone() -> None:
    assert fit_text("exactly ten", 11) == "exactly ten"


def test_fit_text_cuts_at_a_word_with_an_ellipsis() -> None:
    text = "one two three four five"
    fitted = fit_text(text, 14)
    assert fitted == "one two three…"
    assert len(fitted) <= 14


def test_fit_text_drops_dangling_punctuation() -> None:
    assert fit_text("first, second; third", 15) == "first, second…"
    assert fit_text("first, second; third", 13) == "first…"


def test_fit_text_with_url_weighted_length() -> None:
    url = "https://example.com/" + "x" * 200
    text = f"read {url} today please"

    def length(value: str) -> int:
        return counted_length(value)

    assert len(text) > 200
    assert length(text) == 5 + 23 + 13
    assert fit_text(text, 41, length) == text  # long in code points, fits as counted
    shorter = fit_text(text, 40, length)
    assert shorter == f"read {url} today…"
    assert length(shorter) == 35


def test_fit_text_refuses_when_nothing_fits() -> None:
    with pytest.raises(ValueError, match="cannot fit"):
        fit_text("unbreakable", 0)


@pytest.mark.parametrize(
    ("query", "tag"),
    [
        ("dagster", "dagster"),
        ("#Dagster", "Dagster"),
        ("  #data_eng ", "data_eng"),
        ("web3", "web3"),
        ("café", "café"),
        ("#2024", None),
        ("data pipeline", None),
        ("#a #b", None),
        ("##x", None),
        ("#", None),
        ("dag-ster", None),
    ],
)
def test_hashtag_name_is_one_tag_or_none(query: str, tag: str | None) -> None:
    assert hashtag_name(query) == tag


def test_matches_query_wants_every_word_and_star_matches_all() -> None:
    assert matches_query("@brand Is Dagster worth it?", "dagster worth")
    assert not matches_query("@brand Is Dagster worth it?", "dagster airflow")
    assert matches_query("anything at all", "*")
