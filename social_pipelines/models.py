"""Domain types shared by every layer: what a post, an account, a draft and a delivery are.

They are plain pydantic models (frozen where they are values) so that they cross Dagster's
IO managers, the store and the platforms without adapters of their own.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from datetime import datetime
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator


class Value(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Identity(Value):
    """Who an account is, as the platform itself says (never a URL or a port).

    `stable_key` goes into delivery ids: it must not change when the same account is
    reached through another address.
    """

    platform: str
    account_id: str
    handle: str
    domain: str = ""

    @property
    def stable_key(self) -> str:
        return f"{self.account_id}@{self.domain}" if self.domain else self.account_id


class SocialPost(Value):
    """A post seen on a platform: a search hit, or one of our own."""

    platform: str
    id: str
    author_id: str
    author_handle: str
    text: str
    url: str = ""
    created_at: datetime
    in_reply_to_id: str | None = None
    language: str | None = None
    # The ids of its attachments, where the platform lists them with the post.
    media_ids: tuple[str, ...] = ()


class SearchResult(Value):
    """What a search examined, and where and why it stopped: nothing is dropped in silence.

    `posts` are other accounts' matches, newest first, at most the limit asked for; the
    account's own posts never count against it (they are only counted, in `own_skipped`).
    `complete` is true when the search reached the oldest post asked for or the end of the
    results; otherwise `stopped_by` says which limit stopped it, `not_examined` how many
    matches already fetched were left, and `more_beyond` whether the platform had more.
    """

    posts: list[SocialPost]
    pages: int = 0
    own_skipped: int = 0
    complete: bool = True
    stopped_by: str = ""
    not_examined: int = 0
    more_beyond: bool = False


# How a platform counts the length of a post's text (`platforms/content.py` does it):
# - graphemes: extended grapheme clusters (what a reader sees as one character; Mastodon,
#   Bluesky), URLs as `characters_per_url` when that is set;
# - weighted: X's weighted length (twitter-text: URLs 23, emoji and CJK 2, NFC);
# - utf16: UTF-16 code units (JavaScript's `length`: an emoji counts 2), the strictest
#   reading of "characters", for platforms whose counting is not documented.
Counting = Literal["graphemes", "weighted", "utf16"]


class ContentRules(Value):
    """What a platform (or instance) accepts, read from it at run time where it can.

    `platforms/content.py` holds each platform's static rules and checks a post against
    them; the defaults here are Mastodon's, so existing callers keep their meaning.
    """

    max_characters: int
    characters_per_url: int | None = 23  # None: a URL counts as it is written
    max_media: int = 4
    max_image_bytes: int | None = None
    max_image_pixels: int | None = None
    image_mime_types: tuple[str, ...] = ("image/jpeg", "image/png")
    max_alt_text: int | None = None
    platform: str = ""
    counting: Counting = "graphemes"
    # Mastodon counts a remote mention `@user@domain` as its `@user` only.
    remote_mentions_as_local: bool = True
    max_bytes: int | None = None  # UTF-8 bytes of the text (Bluesky's `maxLength`)
    requires_image: bool = False  # Instagram publishes nothing without one
    alt_text_required: bool = False  # an image without alt text is refused
    # False where the figures come from third parties, not the platform's own documentation.
    confirmed: bool = True


class MediaUpload(Value):
    """An image ready to attach: bytes already rendered to the platform's spec."""

    data: bytes
    mime_type: str
    alt_text: str = ""
    filename: str = "image"
    # Pixel size, when known (rendered images): Bluesky's `aspectRatio` is made of it.
    width: int | None = Field(default=None, ge=1)
    height: int | None = Field(default=None, ge=1)


class MediaRef(Value):
    platform: str
    id: str
    url: str = ""


class CreatePost(Value):
    """Everything a create call needs: a post, or a reply when `in_reply_to_id` is set."""

    text: str
    in_reply_to_id: str | None = None
    media_ids: tuple[str, ...] = ()
    language: str | None = None
    planned_at: datetime | None = Field(
        default=None,
        description="when its delivery was planned (the ledger's, set by the deliverer): "
        "with the delivery id, what a record key fixed before the create is derived from",
    )


class Published(Value):
    """What a successful create returned: enough to link to it and to find it again."""

    remote_id: str
    url: str = ""
    created_at: datetime | None = None


class DeliveryKind(StrEnum):
    REPLY = "reply"
    PUBLISH = "publish"


class DeliveryState(StrEnum):
    PLANNED = "planned"
    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"  # retryable, with the error class; may carry a not-before time
    DEAD = "dead"  # permanent or out of attempts; stays visible with its reason
    UNKNOWN = "unknown"  # may have reached the platform: reconcile before any resend
    CANCELLED = "cancelled"  # what it delivers was withdrawn before it went out; never sent


def delivery_id(platform: str, account_key: str, kind: DeliveryKind, subject: str) -> str:
    """The deterministic id of one delivery: what it is for, never its text.

    A changed template or model must not answer a post twice, and an edit made after a post
    went out must not publish it again, so the text never enters the hash.
    """
    parts = "\x1f".join((platform, account_key, str(kind), subject))
    return hashlib.sha256(parts.encode("utf-8")).hexdigest()[:32]


class Draft(Value):
    """A reply (or post) written and ready to send, tied to its delivery id."""

    delivery_id: str
    campaign: str
    account: str
    platform: str
    account_key: str
    kind: DeliveryKind = DeliveryKind.REPLY
    subject: str = Field(description="the id of the post answered, or outbox id and target")
    text: str
    reference: str | None = Field(
        default=None,
        max_length=200,
        description="what the delivery delivers (an outbox target, post_id/target), kept in "
        "the ledger from plan time",
    )
    in_reply_to: SocialPost | None = None


def content_hash(text: str) -> str:
    """What a publish is recognised by among the account's own posts: its text, trimmed."""
    return hashlib.sha256(text.strip().encode("utf-8")).hexdigest()


class Delivery(Value):
    """What an adapter needs to find a delivery that may already be out (`find_delivery`)."""

    delivery_id: str
    kind: DeliveryKind
    subject: str = Field(description="the id of the post answered, or outbox id and target")
    text: str
    planned_at: datetime = Field(description="nothing of it can be older than this")
    reference: str | None = None
    staged_id: str | None = Field(
        default=None, description="a remote id fixed before the create (a record key, ...)"
    )
    taken_ids: frozenset[str] = Field(
        default=frozenset(),
        description="remote ids the account's other deliveries were recorded with: never "
        "this one (two publishes of one text are two posts)",
    )

    @property
    def media_ids(self) -> tuple[str, ...]:
        """The uploads a publish staged for its create (none: it attaches nothing). A
        create attaches every staged upload or is never made, and an upload can be attached
        to one post only: a post of the same text with other attachments is another's."""
        staged = staged_media(self.staged_id)
        return staged[1] if staged is not None else ()


_STAGED_MEDIA = re.compile(r"^r(\d+):([^:]*)$")


def stage_media(revision: int, media_ids: Iterable[str]) -> str:
    """The staged id of a publish's uploads: `r<revision>:id,id` (in the images' order)."""
    return f"r{revision}:{','.join(media_ids)}"


def staged_media(staged_id: str | None) -> tuple[int, tuple[str, ...]] | None:
    """The revision and the media ids of a staged id `stage_media` made; None for any other
    (nothing staged, or another kind of staged id)."""
    found = _STAGED_MEDIA.match(staged_id or "")
    if found is None:
        return None
    ids = found.group(2)
    return int(found.group(1)), tuple(ids.split(",")) if ids else ()


# A post's id is chosen by its author and goes into delivery subjects and Dagster mapping
# keys (after `_` for `-`), so it is kept to what every one of them takes.
POST_ID_PATTERN = r"^[A-Za-z0-9_-]{1,100}$"
MAX_POST_IMAGES = 4


class PostImage(Value):
    """One image of a post: a local path or an `https://` URL, with its alt text."""

    source: str = Field(min_length=1, max_length=2048)
    alt: str = Field(default="", max_length=5000)

    @field_validator("source")
    @classmethod
    def _path_or_https(cls, value: str) -> str:
        if "://" in value and not value.startswith("https://"):
            raise ValueError(f"{value!r}: an image is a local file or an https:// URL")
        return value


class Post(Value):
    """A post in the outbox, as its author wrote it (one revision).

    `texts` holds per-target text that replaces `text` for that account. The link, when
    set, is appended to the text unless the text already holds it.
    """

    id: str = Field(pattern=POST_ID_PATTERN)
    text: str = Field(max_length=20_000)
    link: str | None = Field(default=None, max_length=2048)
    images: tuple[PostImage, ...] = Field(default=(), max_length=MAX_POST_IMAGES)
    targets: tuple[str, ...] = Field(min_length=1)
    at: datetime
    texts: dict[str, str] = Field(default_factory=dict)

    @field_validator("link")
    @classmethod
    def _web_link(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("https://", "http://")):
            raise ValueError(f"{value!r}: a link is an http:// or https:// URL")
        return value

    @model_validator(mode="after")
    def _texts_for_targets(self) -> Post:
        if len(set(self.targets)) != len(self.targets):
            raise ValueError(f"targets {list(self.targets)} name an account twice")
        stray = sorted(set(self.texts) - set(self.targets))
        if stray:
            raise ValueError(f"per-target text for {stray}, which are not targets of the post")
        if self.at.tzinfo is None or self.at.utcoffset() is None:
            raise ValueError("at has no time zone: a post's time must be aware")
        return self

    def body_for(self, target: str) -> str:
        """The text that target gets: its own text or the post's, with the link."""
        text = self.texts.get(target, self.text)
        if self.link and self.link not in text:
            text = f"{text.rstrip()}\n\n{self.link}" if text.strip() else self.link
        return text

    def content_hash(self) -> str:
        """What a revision is recognised by: every field the author wrote."""
        return hashlib.sha256(self.model_dump_json().encode("utf-8")).hexdigest()


class PostState(StrEnum):
    """A post's state, derived from its deliveries where they exist (README "States")."""

    SCHEDULED = "scheduled"  # waiting for its time
    PUBLISHING = "publishing"  # due and some targets not settled yet
    PUBLISHED = "published"  # every target out
    PARTIAL = "partial"  # some targets out, some dead
    FAILED = "failed"  # no target out, some dead
    MISSED = "missed"  # found too late, never sent (unless forced)
    CANCELLED = "cancelled"  # withdrawn before anything went out


def publish_subject(post_id: str, target: str) -> str:
    """The ledger subject of one target of a post: the post id and the target, no text."""
    return f"{post_id}/{target}"
