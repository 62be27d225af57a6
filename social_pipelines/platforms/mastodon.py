"""Mastodon (and the sandbox, which speaks the same API): account, policy, adapter.

Works against any Mastodon server given its instance URL and an access token. Limits are
read from the instance (`/api/v2/instance`), never assumed; the account's identity is its
id plus the instance's own domain, so the same account reached through another address
(or the sandbox on another port) keeps its delivery ids.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal
from urllib.parse import quote

import httpx
from pydantic import Field, SecretStr, field_validator

from social_pipelines.errors import (
    AuthExpired,
    ConfigError,
    Inconclusive,
    NotReady,
    OutcomeUnknown,
    Rejected,
    SocialError,
    Transient,
)
from social_pipelines.models import (
    ContentRules,
    CreatePost,
    Delivery,
    DeliveryKind,
    Identity,
    MediaRef,
    MediaUpload,
    Published,
    SearchResult,
    SocialPost,
    content_hash,
)
from social_pipelines.platforms.account import ENV_NAME_PATTERN, AccountBase, expand_url
from social_pipelines.platforms.auth import Session
from social_pipelines.platforms.capabilities import (
    Capability,
    ClosedOnExit,
    PlatformSpec,
    Source,
)
from social_pipelines.platforms.content import static_rules, text_length
from social_pipelines.platforms.http import Door, build_client, route, status_error
from social_pipelines.platforms.paging import Pages, collect
from social_pipelines.platforms.policy import MINUTE, PlatformPolicy, rates
from social_pipelines.platforms.text import hashtag_name, html_to_text, matches_query

NAME = "mastodon"
SEARCH_PAGE_LIMIT = 40  # Mastodon's maximum for /api/v2/search and account statuses
TIMELINE_PAGE_LIMIT = 40  # and for a hashtag timeline
# Notifications: at most 80 a page since 4.1 (30 before; a server clamps what it allows,
# and the end of the list is an empty page, so a smaller page never ends a read early).
NOTIFICATIONS_PAGE_LIMIT = 80
# A search stops after this many pages whatever it found (own posts can fill pages): the
# result says so, so the run can warn; 25 pages are 1,000 statuses (2,000 mentions).
MAX_SEARCH_PAGES = 25
# A mention is answered in public: one in a followers-only or direct post never is.
ANSWERABLE_VISIBILITY = frozenset({"public", "unlisted"})
# Reconciliation looks through at most this many of the account's own posts.
RECONCILE_LIMIT = 5000
# An upload still processing (202, `url: null`) is polled at `GET /api/v1/media/:id` until it
# answers 200 with a URL: pauses from half a second, doubling to 5 s, 60 s in all.
MEDIA_WAIT_SECONDS = 60.0
MEDIA_POLL_FIRST = 0.5
MEDIA_POLL_MAX = 5.0
# Mastodon's 422 for a status naming media still processing: nothing was created.
UNFINISHED_MEDIA = "not finished processing"
UNFINISHED_MEDIA_PAUSE = 1.0  # "Try again in a moment!"


class MastodonAccount(AccountBase):
    """`[accounts.NAME]` with `platform = "mastodon"`."""

    # Frozen, so never reassigned: the literal narrows the base's `str` to this platform.
    platform: Literal["mastodon"]  # pyright: ignore[reportIncompatibleVariableOverride]
    instance_url: str = Field(description="the server's base URL; ${VARIABLE} references allowed")
    token_env: str = Field(
        pattern=ENV_NAME_PATTERN, description="environment variable holding the access token"
    )

    _expand_url = field_validator("instance_url")(expand_url)

    def token(self, variables: Mapping[str, str] | None = None) -> SecretStr:
        return self.secret(self.token_env, variables, what="its access token")


# 300 requests per 5 minutes per account over every endpoint; media 30 per 30 min. No
# posting cap is documented: the quota is what the rate limit allows.
POLICY = PlatformPolicy(
    buckets={"account": rates((300, 5 * MINUTE)), "media": rates((30, 30 * MINUTE))},
    # `media_status` (polling an upload still processing) draws from the account bucket only.
    endpoints={"*": ["account"], "media": ["account", "media"]},
    quota_per_hour=3600,
    quota_per_day=86400,
)


@dataclass(frozen=True)
class _Page:
    """One page read from a reply source: the posts on it that the source offers (a
    mention's status, a hashtag's status, a search hit), when each of its items arrived
    (all of them, offered or not: a page counts as past `since` only when every item is
    older), whether the source ends here, and the cursor of the next page."""

    posts: list[SocialPost]
    arrived: list[datetime]
    last: bool
    cursor: str | None = None


# Reads page `index` (from 0) of a source, at `cursor` (None: the newest).
PageReader = Callable[[int, str | None], _Page]


class MastodonPlatform(ClosedOnExit):
    """One account on one Mastodon instance."""

    name = NAME

    def __init__(
        self,
        base_url: str,
        access_token: str,
        *,
        door: Door,
        timeout: float = 10.0,
        transport: httpx.BaseTransport | None = None,
        media_wait: float = MEDIA_WAIT_SECONDS,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        max_pages: int = MAX_SEARCH_PAGES,
    ) -> None:
        """`media_wait` bounds the wait for an upload to finish processing; `sleep` and
        `clock` are what that wait uses (tests pass their own). `max_pages` bounds one
        search of any source (tests lower it to reach the cap with few posts)."""
        self.base_url = base_url.rstrip("/")
        self.media_wait = media_wait
        self.max_pages = max_pages
        self._sleep = sleep
        self._clock = clock
        self._client = build_client(
            self.base_url,
            door=door,
            platform=NAME,
            timeout=timeout,
            headers={"Authorization": f"Bearer {access_token}"},
            transport=transport,
        )
        self._identity: Identity | None = None
        self._rules: ContentRules | None = None
        self._instance: dict[str, Any] | None = None

    # -- requests --------------------------------------------------------------------------

    def _request(
        self,
        method: str,
        path: str,
        *,
        endpoint: str,
        create: bool = False,
        **kwargs: Any,
    ) -> Any:
        response = self._client.request(
            method, path, extensions=route(endpoint, create=create), **kwargs
        )
        return self._read(response, create=create)

    def _read(self, response: httpx.Response, *, create: bool) -> Any:
        """The JSON of a success, else the error the answer means."""
        if response.is_success:
            try:
                return response.json()
            except ValueError:
                # Accepted, but unreadable (a proxy's page?): a create may well be out.
                error_class = OutcomeUnknown if create else Transient
                raise error_class(
                    "success status with a body that is not JSON",
                    platform=NAME,
                    status_code=response.status_code,
                    detail=response.text,
                ) from None
        raise self._error(response, create=create)

    def _error(self, response: httpx.Response, *, create: bool) -> SocialError:
        if response.status_code == 401:
            return AuthExpired(
                "access token refused",
                platform=NAME,
                status_code=401,
                detail=response.text,
            )
        if response.status_code in (403, 404, 410, 422):
            message, detail = _error_message(response)
            if response.status_code == 422 and UNFINISHED_MEDIA in message:
                # An answer, and nothing was created: repeat it after a moment, never a
                # rejection (the media was uploaded and is being processed).
                return NotReady(
                    message,
                    retry_after=UNFINISHED_MEDIA_PAUSE,
                    platform=NAME,
                    status_code=422,
                    detail=detail,
                )
            return Rejected(message, platform=NAME, status_code=response.status_code, detail=detail)
        return status_error(response, platform=NAME, create=create)

    # -- capabilities ----------------------------------------------------------------------

    def _instance_info(self) -> dict[str, Any]:
        if self._instance is None:
            instance: dict[str, Any] = self._request("GET", "/api/v2/instance", endpoint="read")
            self._instance = instance
        return self._instance

    def whoami(self) -> Identity:
        if self._identity is None:
            account = self._request("GET", "/api/v1/accounts/verify_credentials", endpoint="read")
            self._identity = Identity(
                platform=NAME,
                account_id=str(account["id"]),
                handle=account.get("acct") or account["username"],
                domain=str(self._instance_info().get("domain") or ""),
            )
        return self._identity

    def content_rules(self) -> ContentRules:
        if self._rules is None:
            config = self._instance_info().get("configuration") or {}
            statuses = config.get("statuses") or {}
            media = config.get("media_attachments") or {}
            # The documented defaults (`content.py`), with what this instance announces.
            base = static_rules(NAME)
            self._rules = ContentRules.model_validate(
                base.model_dump()
                | {
                    "max_characters": statuses.get("max_characters", base.max_characters),
                    "characters_per_url": statuses.get(
                        "characters_reserved_per_url", base.characters_per_url
                    ),
                    "max_media": statuses.get("max_media_attachments", base.max_media),
                    "max_image_bytes": media.get("image_size_limit", base.max_image_bytes),
                    "max_image_pixels": media.get("image_matrix_limit", base.max_image_pixels),
                    "image_mime_types": tuple(
                        m for m in media.get("supported_mime_types", ()) if m.startswith("image/")
                    )
                    or base.image_mime_types,
                    # Instances before 4.4 do not announce it; Mastodon's own limit is 1500.
                    "max_alt_text": media.get("description_limit", base.max_alt_text),
                }
            )
        return self._rules

    def text_length(self, text: str, rules: ContentRules) -> int:
        return text_length(text, rules)

    def search(
        self,
        query: str,
        *,
        limit: int,
        since: datetime,
        until: datetime | None = None,
        source: Source = Source.SEARCH,
    ) -> SearchResult:
        """Other accounts' posts from `source`, newest first, written in [`since`, `until`).

        SEARCH is `/api/v2/search` for `query`; HASHTAG the tag timeline of `query` (one
        tag, `#` optional); MENTIONS the account's mention notifications, whose statuses
        `query` filters (`matches_query`; followers-only and direct mentions are left out:
        the answer would be public). Posts at or after `until` belong to a later window:
        skipped, never counted against `limit`; so are the account's own posts (counted in
        `own_skipped`).
        """
        if source == Source.SEARCH:
            reader = self._search_pages(query)
        elif source == Source.HASHTAG:
            tag = hashtag_name(query)
            if tag is None:
                raise ConfigError(
                    f"{NAME}: reply source 'hashtag' reads one hashtag; {query!r} is not one"
                )
            reader = self._tag_pages(tag)
        elif source == Source.MENTIONS:
            reader = self._mention_pages(query)
        else:
            raise ConfigError(f"{NAME} cannot read reply source '{source}'")
        return self._gather(reader, limit=limit, since=since, until=until)

    def _gather(
        self, read: PageReader, *, limit: int, since: datetime, until: datetime | None
    ) -> SearchResult:
        """Page back through a source until `since`, `limit`, its end or `max_pages`, and
        say which stopped it (`paging.collect`: the same accounting for every platform)."""

        def pages() -> Pages:
            cursor: str | None = None
            index = 0
            while True:
                page = read(index, cursor)
                index += 1
                in_window = [
                    post
                    for post in page.posts
                    if post.created_at >= since and (until is None or post.created_at < until)
                ]
                at_end = page.last or all(arrived < since for arrived in page.arrived)
                yield in_window, not at_end
                cursor = page.cursor

        return collect(
            pages(), limit=limit, own_id=self.whoami().account_id, max_pages=self.max_pages
        )

    def _search_pages(self, query: str) -> PageReader:
        """`/api/v2/search` paged by `offset`: a post arriving meanwhile pushes the rest
        down, so at worst a hit is seen twice (callers dedupe by id), never missed. Its end
        is a short page: search has no `Link` header."""

        def read(index: int, cursor: str | None) -> _Page:
            statuses = self._request(
                "GET",
                "/api/v2/search",
                endpoint="search",
                params={
                    "q": query,
                    "type": "statuses",
                    "limit": SEARCH_PAGE_LIMIT,
                    "offset": index * SEARCH_PAGE_LIMIT,
                },
            )["statuses"]
            posts = [self._post(status) for status in statuses]
            return _Page(
                posts=posts,
                arrived=[post.created_at for post in posts],
                last=len(statuses) < SEARCH_PAGE_LIMIT,
            )

        return read

    def _tag_pages(self, tag: str) -> PageReader:
        """`/api/v1/timelines/tag/:hashtag` paged by `max_id`. Its end is an empty page:
        Mastodon links a next page whenever one has anything, and a page may come back
        short before the end (statuses filtered out after paging)."""
        path = f"/api/v1/timelines/tag/{quote(tag, safe='')}"

        def read(index: int, cursor: str | None) -> _Page:
            params: dict[str, Any] = {"limit": TIMELINE_PAGE_LIMIT}
            if cursor:
                params["max_id"] = cursor
            statuses = self._request("GET", path, endpoint="read", params=params)
            posts = [self._post(status) for status in statuses]
            return _Page(
                posts=posts,
                arrived=[post.created_at for post in posts],
                last=not statuses,
                cursor=str(statuses[-1]["id"]) if statuses else None,
            )

        return read

    def _mention_pages(self, query: str) -> PageReader:
        """`/api/v1/notifications?types[]=mention` paged by `max_id`, the notification's
        id (never its status's). A page is past `since` when every notification on it
        arrived before: a mention never arrives before its status was written. Other types
        are dropped here too, for a server older than 3.5 that ignores `types[]`."""

        def read(index: int, cursor: str | None) -> _Page:
            params: dict[str, Any] = {"types[]": "mention", "limit": NOTIFICATIONS_PAGE_LIMIT}
            if cursor:
                params["max_id"] = cursor
            items = self._request("GET", "/api/v1/notifications", endpoint="read", params=params)
            posts: list[SocialPost] = []
            arrived: list[datetime] = []
            for item in items:
                status = item.get("status") if item.get("type") == "mention" else None
                post = self._post(status) if isinstance(status, dict) else None
                arrived.append(
                    _timestamp(item.get("created_at"))
                    or (post.created_at if post else datetime.min.replace(tzinfo=UTC))
                )
                if (
                    post is not None
                    and isinstance(status, dict)
                    and status.get("visibility", "public") in ANSWERABLE_VISIBILITY
                    and matches_query(post.text, query)
                ):
                    posts.append(post)
            return _Page(
                posts=posts,
                arrived=arrived,
                last=not items,
                cursor=str(items[-1]["id"]) if items else None,
            )

        return read

    def create_post(self, post: CreatePost, *, idempotency_key: str) -> Published:
        body: dict[str, Any] = {"status": post.text}
        if post.in_reply_to_id:
            body["in_reply_to_id"] = post.in_reply_to_id
        if post.media_ids:
            body["media_ids"] = list(post.media_ids)
        if post.language:
            body["language"] = post.language
        status = self._request(
            "POST",
            "/api/v1/statuses",
            endpoint="write",
            create=True,
            json=body,
            headers={"Idempotency-Key": idempotency_key},
        )
        return Published(
            remote_id=str(status["id"]),
            url=status.get("url") or status.get("uri") or "",
            created_at=_timestamp(status.get("created_at")),
        )

    def upload_media(self, media: MediaUpload) -> MediaRef:
        attachment = self._request(
            "POST",
            "/api/v2/media",
            endpoint="media",
            create=True,
            files={"file": (media.filename, media.data, media.mime_type)},
            data={"description": media.alt_text} if media.alt_text else None,
        )
        media_id = str(attachment["id"])
        if not attachment.get("url"):
            # 202 (or a 200 without a URL): processing goes on; a status naming it now
            # would be refused, so wait here until it is done.
            attachment = self._processed(media_id)
        return MediaRef(platform=NAME, id=media_id, url=attachment.get("url") or "")

    def _processed(self, media_id: str) -> dict[str, Any]:
        """Poll `GET /api/v1/media/:id` (206 while processing) until it answers 200 with a
        URL, at most `media_wait` seconds: waiting for the upload to finish is part of the
        upload, not a retry. Each poll is a read through the door (`media_status`)."""
        deadline = self._clock() + self.media_wait
        pause = MEDIA_POLL_FIRST
        polls = 0
        while (left := deadline - self._clock()) > 0:
            self._sleep(min(pause, left))
            pause = min(pause * 2, MEDIA_POLL_MAX)
            polls += 1
            response = self._client.request(
                "GET", f"/api/v1/media/{media_id}", extensions=route("media_status")
            )
            if response.status_code == 206:
                continue
            attachment: dict[str, Any] = self._read(response, create=False)
            if attachment.get("url"):
                return attachment
        raise Transient(
            f"media {media_id} was still processing after {self.media_wait:g} s "
            f"({polls} polls); it cannot be attached yet",
            platform=NAME,
        )

    def recent_own_posts(self, *, since: datetime, limit: int = 1000) -> list[SocialPost]:
        account_id = self.whoami().account_id
        posts: list[SocialPost] = []
        max_id: str | None = None
        while len(posts) < limit:
            params = {"limit": SEARCH_PAGE_LIMIT} | ({"max_id": max_id} if max_id else {})
            page = [
                self._post(status)
                for status in self._request(
                    "GET",
                    f"/api/v1/accounts/{account_id}/statuses",
                    endpoint="read",
                    params=params,
                )
            ]
            posts.extend(post for post in page if post.created_at >= since)
            if len(page) < SEARCH_PAGE_LIMIT or page[-1].created_at < since:
                break
            max_id = page[-1].id
        return posts[:limit]

    def find_delivery(self, delivery: Delivery) -> Published | None:
        """A reply is found by the post it answers (we answer a post at most once), a
        publish by its content (text and the uploads it staged), among our own posts since
        the plan."""
        # Nothing of ours can predate the plan; a minute of slack covers clock skew.
        since = delivery.planned_at - timedelta(minutes=1)
        posts = self.recent_own_posts(since=since, limit=RECONCILE_LIMIT)
        for post in posts:
            if post.id in delivery.taken_ids:
                continue  # another delivery's post
            if delivery.kind == DeliveryKind.REPLY:
                matches = post.in_reply_to_id == delivery.subject
            else:
                # A post of the same text with other attachments is another delivery's (two
                # publishes of one text, one with images): ours carries what it staged.
                matches = content_hash(post.text) == content_hash(delivery.text) and set(
                    post.media_ids
                ) == set(delivery.media_ids)
            if matches:
                return Published(remote_id=post.id, url=post.url, created_at=post.created_at)
        if len(posts) >= RECONCILE_LIMIT:
            # Older posts since the plan were never looked at: not finding it proves nothing.
            raise Inconclusive(
                f"looked through the newest {RECONCILE_LIMIT} own posts without reaching "
                f"{since:%Y-%m-%d %H:%M:%S} UTC; cannot tell whether it is out",
                platform=NAME,
            )
        return None

    def close(self) -> None:
        self._client.close()

    # -- mapping ---------------------------------------------------------------------------

    def _post(self, status: dict[str, Any]) -> SocialPost:
        account = status.get("account") or {}
        return SocialPost(
            platform=NAME,
            id=str(status["id"]),
            author_id=str(account.get("id", "")),
            author_handle=account.get("acct") or account.get("username") or "",
            text=html_to_text(status.get("content") or ""),
            url=status.get("url") or status.get("uri") or "",
            created_at=_timestamp(status.get("created_at")) or datetime.min.replace(tzinfo=UTC),
            in_reply_to_id=(
                str(status["in_reply_to_id"]) if status.get("in_reply_to_id") else None
            ),
            language=status.get("language"),
            media_ids=tuple(
                str(media["id"]) for media in status.get("media_attachments") or () if "id" in media
            ),
        )


def _timestamp(value: str | None) -> datetime | None:
    if not value:
        return None
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def connect(
    account: MastodonAccount,
    *,
    variables: Mapping[str, str],
    door: Door,
    timeout: float,
    transport: httpx.BaseTransport | None = None,
    session: Session | None = None,
) -> MastodonPlatform:
    """Mastodon tokens do not expire and have no refresh grant: no session."""
    return MastodonPlatform(
        account.instance_url,
        account.token(variables).get_secret_value(),
        door=door,
        timeout=timeout,
        transport=transport,
    )


SPEC = PlatformSpec(
    name=NAME,
    account_model=MastodonAccount,
    connect=connect,
    policy=POLICY,
    capabilities=frozenset(Capability),
    # Search first (the default): what campaigns written before sources existed meant.
    sources=(Source.SEARCH, Source.HASHTAG, Source.MENTIONS),
)


def _error_message(response: httpx.Response) -> tuple[str, str]:
    """Mastodon's own `{"error": ...}` as the message; any other body (a proxy's HTML
    page) as the detail, which messages summarise to its title."""
    try:
        body = response.json()
    except ValueError:
        return "request rejected", response.text
    if isinstance(body, dict) and body.get("error"):
        return str(body["error"]), ""
    return "request rejected", response.text
