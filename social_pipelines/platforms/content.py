"""What each platform accepts in a post, and why a post cannot go to a target.

A post is checked per target when it is scheduled or synced: a target it cannot fit is
refused with every reason at once (text length as that platform counts it, image count,
alt text, a required image), and the other targets go on. Plain Python, no request: the
static rules below are the documented figures of `../shared/reference/platforms.md`
(section in each comment); an adapter that can read live limits (Mastodon's
`/api/v2/instance`) starts from them and overrides what the platform says.

Lengths are counted here, in one place (`text_length`), the way each platform counts them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import Any

from social_pipelines.errors import ConfigError
from social_pipelines.models import ContentRules, Post
from social_pipelines.platforms.text import counted_length

# Mastodon's media types for images (§3.4 `supported_mime_types`, images only).
_MASTODON_IMAGES = (
    "image/jpeg",
    "image/png",
    "image/gif",
    "image/heic",
    "image/heif",
    "image/webp",
    "image/avif",
)

STATIC_RULES: dict[str, ContentRules] = {
    # §3.4: the defaults of an instance; the live values come from
    # `MastodonPlatform.content_rules()`. URLs count 23, remote mentions as `@user`,
    # grapheme clusters; description_limit 1500.
    "mastodon": ContentRules(
        platform="mastodon",
        max_characters=500,
        characters_per_url=23,
        counting="graphemes",
        remote_mentions_as_local=True,
        max_media=4,
        max_alt_text=1500,
        max_image_bytes=16_777_216,
        max_image_pixels=33_177_600,
        image_mime_types=_MASTODON_IMAGES,
    ),
    # §2.4: `maxGraphemes: 300` and `maxLength: 3000` (UTF-8 bytes) over the text as sent
    # (links are not shortened in the text; facets point into it). Four images of at most
    # 1,000,000 bytes. `alt` is a required field that may be empty: we refuse an image
    # without alt text rather than send "" (accessibility; our users asked for it).
    "bluesky": ContentRules(
        platform="bluesky",
        max_characters=300,
        characters_per_url=None,
        counting="graphemes",
        remote_mentions_as_local=False,
        max_bytes=3000,
        max_media=4,
        max_image_bytes=1_000_000,
        image_mime_types=("image/jpeg", "image/png", "image/webp"),
        alt_text_required=True,
    ),
    # §1.4: 280 weighted (twitter-text: URLs 23 via t.co, emoji and CJK 2, NFC); 4 photos
    # of at most 5 MB; alt text up to 1000 characters (/2/media/metadata).
    "x": ContentRules(
        platform="x",
        max_characters=280,
        characters_per_url=23,
        counting="weighted",
        max_media=4,
        max_alt_text=1000,
        max_image_bytes=5 * 1024 * 1024,
        image_mime_types=("image/jpeg", "image/png", "image/gif", "image/webp"),
    ),
    # §4.4: 3,000 characters (third-party figure, unconfirmed): counted as UTF-16 units,
    # the strictest reading. Multi-image posts take 2-20 (unconfirmed), so our 1-4 fit;
    # alt text is supported, its limit unconfirmed (none enforced).
    "linkedin": ContentRules(
        platform="linkedin",
        max_characters=3000,
        characters_per_url=None,
        counting="utf16",
        max_media=4,
        max_image_bytes=5 * 1024 * 1024,
        image_mime_types=("image/jpeg", "image/png", "image/gif"),
        confirmed=False,
    ),
    # §5.4: nothing confirmed. Conservative picks: 5,000 UTF-16 units (Buffer's own limit;
    # Page posts are said to take far more), at most 4 images (all our posts have), no
    # alt text limit (whether Page photos take alt text is unconfirmed).
    "facebook": ContentRules(
        platform="facebook",
        max_characters=5000,
        characters_per_url=None,
        counting="utf16",
        max_media=4,
        image_mime_types=("image/jpeg", "image/png"),
        confirmed=False,
    ),
    # §6.4: a caption of 2,200 characters (Meta's ads caption limit; unconfirmed for
    # publishing), an image REQUIRED (a container is an image), carousels up to 10 items
    # (unconfirmed), `alt_text` supported with an unconfirmed limit. JPEG is the format
    # widely cited as the only one published.
    "instagram": ContentRules(
        platform="instagram",
        max_characters=2200,
        characters_per_url=None,
        counting="utf16",
        max_media=10,
        max_image_bytes=8 * 1024 * 1024,
        image_mime_types=("image/jpeg",),
        requires_image=True,
        confirmed=False,
    ),
}

# What each counting is called in a reason, so the author knows how it was counted.
_COUNTING_WORDS = {
    "graphemes": "grapheme clusters",
    "weighted": "weighted: URLs 23, emoji and CJK 2",
    "utf16": "UTF-16 units: an emoji counts 2",
}


def known_platforms() -> list[str]:
    return sorted(STATIC_RULES)


def static_rules(platform: str) -> ContentRules:
    """The documented rules of `platform`, without a network call."""
    try:
        return STATIC_RULES[platform]
    except KeyError:
        raise ConfigError(
            f"no content rules for platform {platform!r}; known: {', '.join(known_platforms())}"
        ) from None


@cache
def _tweet_parser() -> tuple[Callable[..., Any], dict[str, Any]]:
    """twitter-text's `parse_tweet` and its default options, imported when an X length is
    first asked for (its emoji and URL tables take a quarter of a second to load)."""
    from twitter_text import parse_tweet
    from twitter_text.config import config

    return parse_tweet, dict(config["defaults"])


def _weighted_length(text: str, characters_per_url: int | None) -> int:
    parse_tweet, defaults = _tweet_parser()
    options = dict(defaults)
    if characters_per_url is not None:
        options["transformed_url_length"] = characters_per_url
    return int(parse_tweet(text, options).weightedLength)


def text_length(text: str, rules: ContentRules) -> int:
    """Length of `text` as the platform of `rules` counts it against `max_characters`."""
    if rules.counting == "weighted":
        return _weighted_length(text, rules.characters_per_url)
    if rules.counting == "utf16":
        return len(text.encode("utf-16-le")) // 2
    return counted_length(
        text,
        characters_per_url=rules.characters_per_url,
        remote_mentions_as_local=rules.remote_mentions_as_local,
    )


@dataclass(frozen=True)
class Problem:
    """One reason a post cannot go to a target: `field` is what is wrong (`text`,
    `images`, `images[2].alt`), `message` the sentence for the author."""

    target: str
    field: str
    message: str

    def __str__(self) -> str:
        return self.message


def check_target(post: Post, target: str, rules: ContentRules) -> list[Problem]:
    """Every reason `post` cannot go to `target` under `rules` (empty: it fits).

    The text checked is `post.body_for(target)`: the target's own text or the post's, with
    the link appended.
    """
    platform = rules.platform or "the platform"
    unconfirmed = "" if rules.confirmed else " (a limit not confirmed by the platform)"
    problems: list[Problem] = []

    def refuse(field: str, message: str) -> None:
        problems.append(Problem(target, field, f"{target}: {message}"))

    body = post.body_for(target)
    length = text_length(body, rules)
    if length > rules.max_characters:
        refuse(
            "text",
            f"text is {length} characters as {platform} counts them "
            f"({_COUNTING_WORDS[rules.counting]}); at most {rules.max_characters}{unconfirmed}",
        )
    if rules.max_bytes is not None and (size := len(body.encode("utf-8"))) > rules.max_bytes:
        refuse("text", f"text is {size} bytes in UTF-8; {platform} takes at most {rules.max_bytes}")
    images = post.images
    if not body.strip() and not images:
        refuse("text", f"the post has neither text nor an image for {platform}")
    if rules.requires_image and not images:
        refuse("images", f"{platform} needs at least one image; the post has none")
    if len(images) > rules.max_media:
        refuse(
            "images",
            f"{len(images)} images; {platform} takes at most {rules.max_media}{unconfirmed}",
        )
    for number, image in enumerate(images, start=1):
        field = f"images[{number}].alt"
        if rules.alt_text_required and not image.alt.strip():
            refuse(
                field,
                f"image {number} ({image.source}) has no alt text; {platform} posts require "
                "a description of every image (we refuse an empty one, for accessibility)",
            )
        elif rules.max_alt_text is not None and len(image.alt) > rules.max_alt_text:
            refuse(
                field,
                f"alt text of image {number} is {len(image.alt)} characters; {platform} "
                f"takes at most {rules.max_alt_text}{unconfirmed}",
            )
    return problems


def check_post(post: Post, rules_for: Callable[[str], ContentRules]) -> dict[str, list[Problem]]:
    """`check_target` for every target of `post`, `rules_for(target)` giving its rules:
    the targets it cannot go to, each with its reasons (the rest go on)."""
    found = {target: check_target(post, target, rules_for(target)) for target in post.targets}
    return {target: problems for target, problems in found.items() if problems}
