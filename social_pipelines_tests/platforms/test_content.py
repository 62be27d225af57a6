"""Platform content rules: lengths counted each platform's way, and why a target refuses a post."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from social_pipelines.errors import ConfigError
from social_pipelines.models import ContentRules, Post, PostImage
from social_pipelines.platforms.content import (
    STATIC_RULES,
    check_post,
    check_target,
    static_rules,
    text_length,
)
from social_pipelines_tests.clusters import CLUSTERS

FAMILY = CLUSTERS["zwj-family"]  # one grapheme, 7 code points, 25 UTF-8 bytes
URL = "https://example.com/a/rather/long/path/that/is/not/23/characters?at=all"


def _post(text: str = "Hello", **fields: object) -> Post:
    values: dict[str, object] = {
        "id": "p1",
        "text": text,
        "targets": ("brand_x", "brand_bsky", "brand_masto", "brand_ig"),
        "at": datetime(2026, 5, 1, 9, tzinfo=UTC),
    } | fields
    return Post.model_validate(values)


def _image(alt: str = "A chart of the week") -> PostImage:
    return PostImage(source="chart.png", alt=alt)


# -- counting ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "length"),
    [
        ("hello", 5),
        (URL, 23),  # every URL is 23 (t.co)
        (f"see {URL}", 4 + 23),
        ("example.com", 23),  # twitter-text links a bare domain too
        ("\U0001f600", 2),  # an emoji weighs 2
        (FAMILY, 2),  # a whole emoji sequence too
        ("日本語", 6),  # CJK weighs 2
        ("e\u0301", 1),  # NFC first: e + combining acute is one é
    ],
)
def test_x_counts_weighted_length(text: str, length: int) -> None:
    assert text_length(text, static_rules("x")) == length


def test_x_refuses_281_and_takes_280() -> None:
    rules = static_rules("x")
    assert check_target(_post("a" * 280), "brand_x", rules) == []
    (problem,) = check_target(_post("日" * 141), "brand_x", rules)
    assert problem.field == "text"
    assert str(problem) == (
        "brand_x: text is 282 characters as x counts them "
        "(weighted: URLs 23, emoji and CJK 2); at most 280"
    )


def test_bluesky_counts_graphemes_and_urls_as_written() -> None:
    rules = static_rules("bluesky")
    assert text_length(FAMILY, rules) == 1
    assert text_length(URL, rules) == len(URL)  # no t.co: the link is in the text
    assert text_length("@alice@example.social", rules) == len("@alice@example.social")


def test_bluesky_family_emoji_is_one_grapheme_but_hits_the_byte_limit() -> None:
    rules = static_rules("bluesky")
    # 120 families: 120 graphemes (well under 300) but 3000 bytes: exactly the limit.
    assert len(FAMILY.encode("utf-8")) == 25
    assert check_target(_post(FAMILY * 120), "brand_bsky", rules) == []
    problems = check_target(_post(FAMILY * 121), "brand_bsky", rules)
    assert [(p.field, str(p)) for p in problems] == [
        ("text", "brand_bsky: text is 3025 bytes in UTF-8; bluesky takes at most 3000")
    ]


def test_bluesky_refuses_301_graphemes() -> None:
    (problem,) = check_target(_post("é" * 301), "brand_bsky", static_rules("bluesky"))
    assert str(problem) == (
        "brand_bsky: text is 301 characters as bluesky counts them (grapheme clusters); at most 300"
    )


def test_mastodon_counts_a_url_as_23_and_a_remote_mention_as_its_user() -> None:
    rules = static_rules("mastodon")
    assert text_length(URL, rules) == 23
    assert text_length("hi @alice@example.social", rules) == len("hi @alice")
    assert text_length(FAMILY, rules) == 1
    # The live rules of an instance may weigh URLs differently.
    assert text_length(URL, rules.model_copy(update={"characters_per_url": 30})) == 30


def test_utf16_counting_is_the_strict_reading_for_unconfirmed_platforms() -> None:
    rules = static_rules("linkedin")
    assert not rules.confirmed
    assert text_length("abc", rules) == 3
    assert text_length("\U0001f600", rules) == 2
    (problem,) = check_target(_post("a" * 3001), "brand_li", rules)
    assert "a limit not confirmed by the platform" in str(problem)


def test_existing_rules_keep_their_mastodon_meaning() -> None:
    rules = ContentRules(max_characters=500)
    assert (rules.counting, rules.characters_per_url, rules.max_media) == ("graphemes", 23, 4)
    assert text_length(f"{URL} @bob@elsewhere.example", rules) == 23 + 1 + 4


# -- the body, images and alt text -------------------------------------------------------


def test_the_link_is_counted_with_the_text() -> None:
    rules = static_rules("bluesky")
    text = "x" * (300 - len(URL) - 2)
    assert check_target(_post(text), "brand_bsky", rules) == []
    (problem,) = check_target(_post(text, link=URL + "/more"), "brand_bsky", rules)
    assert "text is 305 characters" in str(problem)


def test_a_targets_own_text_is_what_is_checked() -> None:
    post = _post("a" * 400, texts={"brand_x": "short for X"})
    assert check_target(post, "brand_x", static_rules("x")) == []
    assert [p.field for p in check_target(post, "brand_bsky", static_rules("bluesky"))] == ["text"]


def test_too_many_images_for_the_platform() -> None:
    post = _post(images=(_image(),) * 4)
    assert check_target(post, "brand_masto", static_rules("mastodon")) == []
    rules = static_rules("mastodon").model_copy(update={"max_media": 2})
    (problem,) = check_target(post, "brand_masto", rules)
    assert (problem.field, str(problem)) == (
        "images",
        "brand_masto: 4 images; mastodon takes at most 2",
    )


def test_bluesky_refuses_an_image_without_alt_text() -> None:
    post = _post(images=(_image(), PostImage(source="photo.jpg", alt="  ")))
    (problem,) = check_target(post, "brand_bsky", static_rules("bluesky"))
    assert problem.field == "images[2].alt"
    assert str(problem).startswith("brand_bsky: image 2 (photo.jpg) has no alt text;")
    # Mastodon takes an image without a description.
    assert check_target(post, "brand_masto", static_rules("mastodon")) == []


def test_alt_text_over_the_limit() -> None:
    post = _post(images=(_image("d" * 1001),))
    assert check_target(post, "brand_masto", static_rules("mastodon")) == []
    (problem,) = check_target(post, "brand_x", static_rules("x"))
    assert str(problem) == "brand_x: alt text of image 1 is 1001 characters; x takes at most 1000"


def test_instagram_without_an_image_is_refused() -> None:
    (problem,) = check_target(_post(), "brand_ig", static_rules("instagram"))
    assert (problem.field, str(problem)) == (
        "images",
        "brand_ig: instagram needs at least one image; the post has none",
    )
    assert check_target(_post(images=(_image(),)), "brand_ig", static_rules("instagram")) == []


def test_every_reason_is_given_at_once() -> None:
    post = _post("日" * 200, images=(PostImage(source="a.png"),))
    rules = static_rules("bluesky").model_copy(update={"max_media": 0})
    assert [p.field for p in check_target(post, "brand_bsky", rules)] == [
        "images",
        "images[1].alt",
    ]
    post = _post("x" * 3000, images=(PostImage(source="a.png"),))
    assert [p.field for p in check_target(post, "brand_bsky", static_rules("bluesky"))] == [
        "text",
        "images[1].alt",
    ]


def test_check_post_refuses_only_the_targets_that_cannot_take_it() -> None:
    platforms = {
        "brand_x": "x",
        "brand_bsky": "bluesky",
        "brand_masto": "mastodon",
        "brand_ig": "instagram",
    }
    refused = check_post(_post("a" * 290), lambda target: static_rules(platforms[target]))
    assert sorted(refused) == ["brand_ig", "brand_x"]
    assert [p.field for p in refused["brand_x"]] == ["text"]


def test_a_post_with_neither_text_nor_image() -> None:
    post = _post("", texts={})
    (problem,) = check_target(post, "brand_masto", static_rules("mastodon"))
    assert str(problem) == "brand_masto: the post has neither text nor an image for mastodon"


# -- the table ---------------------------------------------------------------------------


def test_every_platform_has_rules_and_an_unknown_one_is_named() -> None:
    assert sorted(STATIC_RULES) == ["bluesky", "facebook", "instagram", "linkedin", "mastodon", "x"]
    for name, rules in STATIC_RULES.items():
        assert rules.platform == name
    with pytest.raises(ConfigError, match=r"'myspace'; known: bluesky, facebook, instagram"):
        static_rules("myspace")
