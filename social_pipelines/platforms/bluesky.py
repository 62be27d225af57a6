"""Bluesky (AT Protocol, XRPC over HTTP): account, policy, app-password sessions, adapter.

Facts and their sources are in `../shared/reference/platforms.md` §2; the comments name the
section. Raw httpx through the door (`http.build_client`), not the `atproto` SDK, whose
client is an `httpx.Client` of its own (it would bypass the door) and which brings a
generated model for every lexicon; the few lexicon shapes used here are small.

- Sessions: `com.atproto.server.createSession` with the account's app password, refreshed
  with `refreshSession` (the refresh JWT rotates); an expired access token is refused with
  HTTP **400** `ExpiredToken` (§2.5), which `SessionAuth` refreshes once and repeats once.
  Session requests go to `pds_url` (the entryway `bsky.social` handles sessions); every
  other request goes to the account's own PDS, named in the session's DID document.
- Exactly once: a post is created under a record key fixed before the first attempt,
  `tid.tid_for(delivery id, plan time)` (§2.5: a client-chosen `rkey` collides instead of
  duplicating). The reference PDS answers a repeated key with **500**, so a 500 on a create
  is `OutcomeUnknown`, and `find_delivery` first asks for that very record.
- Images are blobs (`uploadBlob`) referenced by the post; what the post needs of each
  upload travels in the `MediaRef.id` (`encode_media_id`).
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal
from urllib.parse import urlsplit

import httpx
from pydantic import Field, SecretStr, ValidationInfo, field_validator

from social_pipelines.errors import (
    AuthExpired,
    ConfigError,
    Inconclusive,
    OutcomeUnknown,
    RateLimited,
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
from social_pipelines.platforms.auth import Session, SessionAuth, TokenSet, jwt_expiry
from social_pipelines.platforms.capabilities import (
    Capability,
    ClosedOnExit,
    PlatformSpec,
    Source,
)
from social_pipelines.platforms.content import static_rules, text_length
from social_pipelines.platforms.facets import facets
from social_pipelines.platforms.http import (
    Door,
    build_client,
    retry_after_seconds,
    route,
    status_error,
)
from social_pipelines.platforms.paging import collect
from social_pipelines.platforms.policy import DAY, HOUR, MINUTE, PlatformPolicy, rates
from social_pipelines.platforms.tid import is_tid, tid_for, timestamp

__all__ = [
    "AUTHENTICATOR",
    "NAME",
    "POLICY",
    "SPEC",
    "BlobRef",
    "BlueskyAccount",
    "BlueskyAuthenticator",
    "BlueskyPlatform",
    "connect",
    "decode_media_id",
    "encode_media_id",
]

NAME = "bluesky"
DEFAULT_PDS = "https://bsky.social"  # §2.1: the entryway
POST = "app.bsky.feed.post"
POST_URL = "https://bsky.app/profile/{actor}/post/{rkey}"
# XRPC methods (§2.1, §2.2).
CREATE_SESSION = "com.atproto.server.createSession"
REFRESH_SESSION = "com.atproto.server.refreshSession"
GET_SESSION = "com.atproto.server.getSession"
GET_SERVICE_AUTH = "com.atproto.server.getServiceAuth"
SEARCH_POSTS = "app.bsky.feed.searchPosts"
CREATE_RECORD = "com.atproto.repo.createRecord"
GET_RECORD = "com.atproto.repo.getRecord"
LIST_RECORDS = "com.atproto.repo.listRecords"
UPLOAD_BLOB = "com.atproto.repo.uploadBlob"
RESOLVE_HANDLE = "com.atproto.identity.resolveHandle"

SEARCH_PAGE_LIMIT = 100  # §2.2 searchPosts `limit` 1..100
LIST_PAGE_LIMIT = 100  # listRecords `limit` 1..100
# A search stops after this many pages whatever it found; the result says so.
MAX_SEARCH_PAGES = 25
# Reconciliation looks through at most this many of the account's own posts.
RECONCILE_LIMIT = 5000
# Nothing of a delivery predates its plan; a minute of slack covers clock skew.
RECONCILE_SLACK = timedelta(minutes=1)
MAX_IMAGES = 4  # §2.4, lexicon app/bsky/embed/images.json maxLength
# §2.5 and the PDS's auth verifier: an access token past its `exp` is 400 `ExpiredToken`;
# one it could not verify (signature, scope, a revoked session) 400 `InvalidToken`.
EXPIRED = frozenset({"ExpiredToken", "InvalidToken"})
# What the adapter reads as the account refused (`AuthExpired`), wherever it is answered.
REFUSED = EXPIRED | {"AccountTakedown"}
# Session refusals that only a new login (or a person) can answer (§2.1's lexicons:
# createSession `AccountTakedown`, `AuthFactorTokenRequired`; refreshSession
# `AccountTakedown`, `InvalidToken`, `ExpiredToken`; xrpc-server `AuthenticationRequired`
# for a wrong identifier or password, `AuthMissing` for no token).
DEAD_SESSION = frozenset(
    {
        "AuthenticationRequired",
        "AuthMissing",
        "AccountTakedown",
        "AuthFactorTokenRequired",
        "ExpiredToken",
        "InvalidToken",
    }
)
# getRecord's miss: `RecordNotFound` (lexicon; newer PDS), or the older reference PDS's
# 400 `InvalidRequest` "Could not locate record: at://..." (its getRecord.ts).
RECORD_NOT_FOUND = "RecordNotFound"
COULD_NOT_LOCATE = "Could not locate record"
# The PDS service of a DID document (§2.1; entryway.md: "the user's PDS is the hostname
# listed in the DID doc").
PDS_SERVICE = "#atproto_pds"
# A handle as atproto.com/specs/handle writes its syntax.
HANDLE_PATTERN = (
    r"^([a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?\.)+[a-zA-Z]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?$"
)


def _utc_now() -> datetime:
    return datetime.now(UTC)


def _expand_optional_url(value: str | None, info: ValidationInfo) -> str | None:
    return None if value is None else expand_url(value, info)


class BlueskyAccount(AccountBase):
    """`[accounts.NAME]` with `platform = "bluesky"`: an account and its app password."""

    # Frozen, so never reassigned: the literal narrows the base's `str` to this platform.
    platform: Literal["bluesky"]  # pyright: ignore[reportIncompatibleVariableOverride]
    handle: str = Field(
        pattern=HANDLE_PATTERN,
        description="the account's handle (brand.bsky.social), what createSession logs in as",
    )
    app_password_env: str = Field(
        pattern=ENV_NAME_PATTERN,
        description="environment variable holding an app password (Settings > App Passwords)",
    )
    pds_url: str = Field(
        default=DEFAULT_PDS,
        description="where sessions are made (the entryway, or a self-hosted PDS); "
        "${VARIABLE} references allowed",
    )
    appview_url: str | None = Field(
        default=None,
        description="an AppView searched directly (with a service token); none: searches "
        "go through the PDS, which proxies them to its AppView",
    )

    _expand_pds = field_validator("pds_url")(expand_url)
    _expand_appview = field_validator("appview_url")(_expand_optional_url)

    @field_validator("handle", mode="before")
    @classmethod
    def _without_at(cls, value: object) -> object:
        """`@brand.bsky.social` as people write it is the handle `brand.bsky.social`."""
        return value.removeprefix("@") if isinstance(value, str) else value

    def app_password(self, variables: Mapping[str, str] | None = None) -> SecretStr:
        return self.secret(self.app_password_env, variables, what="its app password")


# §2.3, per account unless said otherwise. Record creates cost 3 points of 5,000 an hour and
# 35,000 a day (repo-write-hour / repo-write-day, createRecord's `calcPoints: () => 3`):
# 1,666 creates an hour, 11,666 a day. Every PDS request counts against 3,000 per 5 minutes
# (per IP: accounts sharing an address share it; budgeted here per account). createSession
# is limited to 30 per 5 minutes and 300 a day per account: logins are rare on purpose (the
# session is kept and refreshed). refreshSession documents no limit of its own: a ceiling
# of ours that a runaway loop hits long before Bluesky minds. The AppView's limits are
# "generous", not numeric: a ceiling of ours too.
POLICY = PlatformPolicy(
    buckets={
        "pds": rates((3000, 5 * MINUTE)),
        "repo_write": rates((1666, HOUR), (11666, DAY)),
        "login": rates((30, 5 * MINUTE), (300, DAY)),
        "refresh": rates((30, 15 * MINUTE)),
        "appview": rates((3000, 5 * MINUTE)),
    },
    endpoints={
        "read": ["pds"],  # getSession, getRecord, listRecords, resolveHandle, getServiceAuth
        "search": ["pds"],  # searchPosts through the PDS (proxied to its AppView)
        "write": ["pds", "repo_write"],  # createRecord
        "media": ["pds"],  # uploadBlob: a blob, not a record write
        "login": ["pds", "login"],  # createSession
        "auth": ["pds", "refresh"],  # refreshSession
        "appview": ["appview"],  # searchPosts sent to `appview_url` itself
    },
    quota_per_hour=1666,
    quota_per_day=11666,
)


# -- XRPC answers ---------------------------------------------------------------------------


def _json(response: httpx.Response) -> dict[str, Any] | None:
    try:
        body = response.json()
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


def _xrpc_error(response: httpx.Response) -> tuple[str, str]:
    """`error` and `message` of an XRPC error body (§2.5); empty for any other body (a
    proxy's page: "clients must tolerate non-JSON proxy error pages")."""
    body = _json(response)
    if body is None:
        return "", ""
    return str(body.get("error") or ""), str(body.get("message") or "")


def _words(response: httpx.Response, default: str) -> tuple[str, str]:
    """Bluesky's own words for an error answer (`Name: message`), and the detail to keep:
    the body itself only when it was not an XRPC error (its summary is its title)."""
    error, message = _xrpc_error(response)
    said = ": ".join(part for part in (error, message) if part)
    return (said or default), ("" if error else response.text)


def _record_missing(response: httpx.Response) -> bool:
    """Whether a getRecord answer says there is no such record (and nothing else)."""
    if response.status_code not in (400, 404):
        return False
    error, message = _xrpc_error(response)
    return error == RECORD_NOT_FOUND or (error == "InvalidRequest" and COULD_NOT_LOCATE in message)


# -- sessions -------------------------------------------------------------------------------


class BlueskyAuthenticator:
    """Bluesky's session requests (`platforms/auth.Authenticator`)."""

    def client(
        self,
        account: BlueskyAccount,
        *,
        door: Door,
        timeout: float,
        transport: httpx.BaseTransport | None = None,
    ) -> httpx.Client:
        """Session requests go to `pds_url`: the entryway signs Bluesky's tokens, and a PDS
        forwards a refresh there itself (entryway.md)."""
        return build_client(
            account.pds_url, door=door, platform=NAME, timeout=timeout, transport=transport
        )

    def login(
        self, account: BlueskyAccount, *, variables: Mapping[str, str], http: httpx.Client
    ) -> TokenSet:
        """`createSession` with the handle and the app password (§2.1). Limited to 30 per
        5 minutes and 300 a day, so the session keeps what it gets and refreshes it."""
        password = account.app_password(variables)
        response = http.post(
            f"/xrpc/{CREATE_SESSION}",
            json={"identifier": account.handle, "password": password.get_secret_value()},
            extensions=route("login"),
        )
        return _session_answer(response, what="login", account=account, fallback=account.pds_url)

    def refresh(
        self,
        account: BlueskyAccount,
        tokens: TokenSet,
        *,
        variables: Mapping[str, str],
        http: httpx.Client,
    ) -> TokenSet:
        """`refreshSession`: no body, the refresh JWT as the bearer (§2.1). The answer's new
        refresh JWT replaces the used one (it rotates; the old one keeps a 2-hour grace, so
        a refresh whose answer was lost may be repeated); an answer without one keeps the
        stored one (the session merges), and so does one without a DID document for the
        endpoint."""
        if not tokens.refresh_token:
            raise AuthExpired(
                f"account {account.name!r}: the stored Bluesky session holds no refresh "
                "token; a new login is needed",
                platform=NAME,
            )
        response = http.post(
            f"/xrpc/{REFRESH_SESSION}",
            headers={"Authorization": f"Bearer {tokens.refresh_token}"},
            extensions=route("auth"),
        )
        return _session_answer(response, what="token refresh", account=account, fallback="")

    def expired(self, response: httpx.Response) -> bool:
        """400 `ExpiredToken` (§2.5) is an access token past its time. 400 `InvalidToken`
        is refreshed once too: a token the PDS can no longer verify (a revoked session, a
        rotated key) is what a refresh, or the new login the session falls back to with
        the app password, cures without a person; an expired token is refused before
        anything is processed, so the one repeat is safe for a create. A bare 401
        (`AuthMissing`, `AuthenticationRequired`) is not refreshed: a new token cannot
        answer it, and the adapter reports it as `AuthExpired` at once."""
        if response.status_code not in (400, 401):
            return False
        error, _ = _xrpc_error(response)
        return error in EXPIRED


def _session_answer(
    response: httpx.Response, *, what: str, account: BlueskyAccount, fallback: str
) -> TokenSet:
    """createSession's (or refreshSession's) answer as tokens, or the error it means."""
    if not response.is_success:
        raise _session_refusal(response, what=what)
    body = _json(response)
    if body is None or not isinstance(body.get("accessJwt"), str) or not body["accessJwt"]:
        # A proxy's page, or an answer we do not know: a failure on the way, never a dead
        # session.
        raise Transient(
            f"{what}: Bluesky answered without an access token",
            platform=NAME,
            status_code=response.status_code,
            detail="" if body is not None else response.text,
        )
    status = body.get("status")
    if status not in (None, "active"):
        raise AuthExpired(
            f"{what}: the account's hosting status is {status!r}, not active", platform=NAME
        )
    access = body["accessJwt"]
    refresh = body.get("refreshJwt") if isinstance(body.get("refreshJwt"), str) else ""
    return TokenSet(
        access_token=access,
        refresh_token=refresh or "",
        expires_at=jwt_expiry(access),
        refresh_expires_at=jwt_expiry(refresh) if refresh else None,
        subject=str(body.get("did") or ""),
        handle=str(body.get("handle") or ""),
        endpoint=_pds_endpoint(body.get("didDoc"), pds_url=account.pds_url) or fallback,
    )


def _session_refusal(response: httpx.Response, *, what: str) -> SocialError:
    """A refused session request: a dead one (401, or a 400 naming a dead session) is
    `AuthExpired` in Bluesky's words; 429, 408 and 5xx keep their generic, retryable
    reading (never a dead token); any other refusal is `Rejected`."""
    status = response.status_code
    error, _ = _xrpc_error(response)
    said, detail = _words(response, "no reason given")
    if status == 401 or (status == 400 and error in DEAD_SESSION):
        return AuthExpired(
            f"{what} refused: {said}", platform=NAME, status_code=status, detail=detail
        )
    if status in (408, 429) or status >= 500:
        return status_error(response, platform=NAME, create=False)
    return Rejected(f"{what} refused: {said}", platform=NAME, status_code=status, detail=detail)


def _pds_endpoint(did_doc: object, *, pds_url: str) -> str:
    """The PDS a DID document names (`service` `#atproto_pds`), or "" when it names none
    we would send a token to: https, or http only when `pds_url` itself is (a local PDS)."""
    services = did_doc.get("service") if isinstance(did_doc, dict) else None
    for service in services if isinstance(services, list) else ():
        if not isinstance(service, dict) or not str(service.get("id", "")).endswith(PDS_SERVICE):
            continue
        endpoint = service.get("serviceEndpoint")
        if not isinstance(endpoint, str):
            continue
        scheme = urlsplit(endpoint).scheme
        if scheme == "https" or (scheme == "http" and pds_url.startswith("http://")):
            return endpoint.rstrip("/")
    return ""


AUTHENTICATOR = BlueskyAuthenticator()


# -- media ids ------------------------------------------------------------------------------


@dataclass(frozen=True)
class BlobRef:
    """An uploaded image as a post embeds it: the blob (`ref.$link`, MIME type, size) and
    what the embed says of it (alt text, pixel size for `aspectRatio`)."""

    link: str
    mime_type: str
    size: int
    alt: str = ""
    width: int | None = None
    height: int | None = None

    def blob(self) -> dict[str, Any]:
        """The blob object as uploadBlob answered it (§2.2)."""
        return {
            "$type": "blob",
            "ref": {"$link": self.link},
            "mimeType": self.mime_type,
            "size": self.size,
        }

    def image(self) -> dict[str, Any]:
        """One item of `app.bsky.embed.images` (§2.2: `alt` required, `aspectRatio`
        recommended and only when known)."""
        item: dict[str, Any] = {"alt": self.alt, "image": self.blob()}
        if self.width and self.height:
            item["aspectRatio"] = {"width": self.width, "height": self.height}
        return item


def encode_media_id(ref: BlobRef) -> str:
    """Everything a create needs of an upload, as one media id: unpadded urlsafe base64 of
    compact JSON. No `,` or `:`: the ledger joins a publish's media ids as `r<rev>:id,id`."""
    data: dict[str, Any] = {"l": ref.link, "m": ref.mime_type, "s": ref.size, "a": ref.alt}
    if ref.width and ref.height:
        data |= {"w": ref.width, "h": ref.height}
    raw = json.dumps(data, separators=(",", ":"), sort_keys=True, ensure_ascii=False)
    return base64.urlsafe_b64encode(raw.encode("utf-8")).decode("ascii").rstrip("=")


def decode_media_id(media_id: str) -> BlobRef:
    """The upload `encode_media_id` made `media_id` of (`ValueError` for any other id)."""
    try:
        raw = base64.urlsafe_b64decode(media_id + "=" * (-len(media_id) % 4))
        data = json.loads(raw.decode("utf-8"))
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise ValueError(f"{media_id[:40]!r} is not a Bluesky media id") from None
    if not (
        isinstance(data, dict)
        and isinstance(data.get("l"), str)
        and isinstance(data.get("m"), str)
        and isinstance(data.get("s"), int)
        and isinstance(data.get("a", ""), str)
    ):
        raise ValueError(f"{media_id[:40]!r} is not a Bluesky media id")
    width, height = data.get("w"), data.get("h")
    return BlobRef(
        link=data["l"],
        mime_type=data["m"],
        size=data["s"],
        alt=data.get("a", ""),
        width=width if isinstance(width, int) else None,
        height=height if isinstance(height, int) else None,
    )


# -- the adapter ----------------------------------------------------------------------------


class BlueskyPlatform(ClosedOnExit):
    """One Bluesky account, its requests signed by its session's current access token and
    sent to its own PDS."""

    name = NAME

    def __init__(
        self,
        account: BlueskyAccount,
        *,
        session: Session,
        door: Door,
        timeout: float = 10.0,
        transport: httpx.BaseTransport | None = None,
        clock: Callable[[], datetime] = _utc_now,
        max_pages: int = MAX_SEARCH_PAGES,
    ) -> None:
        """`clock` dates a record's `createdAt` (tests pass their own); `max_pages` bounds
        one search. Nothing is sent here: the PDS is learnt from the session on the first
        request."""
        self.account = account
        self.max_pages = max_pages
        self._session = session
        self._clock = clock
        self._client = build_client(
            account.pds_url,
            door=door,
            platform=NAME,
            timeout=timeout,
            transport=transport,
            auth=SessionAuth(session, AUTHENTICATOR.expired),
        )
        # Requests to an AppView carry a service token of their own, not the session's.
        self._appview = (
            build_client(
                account.appview_url, door=door, platform=NAME, timeout=timeout, transport=transport
            )
            if account.appview_url
            else None
        )
        self._endpoint: str | None = None
        self._identity: Identity | None = None
        # Posts created here that the PDS keyed itself, ignoring ours: on such a PDS a
        # repeated create would not collide, and reconciliation rests on listRecords alone.
        self.keyed_elsewhere: list[str] = []

    # -- requests --------------------------------------------------------------------------

    def _base(self) -> str:
        """The account's PDS, as its session says (the DID document's), else `pds_url`."""
        if self._endpoint is None:
            self._endpoint = self._session.current().endpoint or self.account.pds_url
        return self._endpoint

    def _send(
        self, method: str, nsid: str, *, endpoint: str, create: bool = False, **kwargs: Any
    ) -> httpx.Response:
        return self._client.request(
            method,
            f"{self._base()}/xrpc/{nsid}",
            extensions=route(endpoint, create=create),
            **kwargs,
        )

    def _call(
        self, method: str, nsid: str, *, endpoint: str, create: bool = False, **kwargs: Any
    ) -> dict[str, Any]:
        response = self._send(method, nsid, endpoint=endpoint, create=create, **kwargs)
        return _read(response, create=create)

    def _did(self) -> str:
        """The account's DID: the session's subject (createSession says it), else asked."""
        return self._session.current().subject or self.whoami().account_id

    def _url(self, uri: str) -> str:
        """bsky.app's address of one of our posts, under the session's handle."""
        repo, _, rkey = _at_uri(uri) or ("", "", "")
        handle = self._session.current().handle
        actor = handle if handle and handle != "handle.invalid" else repo
        return POST_URL.format(actor=actor, rkey=rkey) if actor and rkey else ""

    # -- capabilities ----------------------------------------------------------------------

    def whoami(self) -> Identity:
        """`getSession` (cheap, authenticated): the DID is the stable identity (a handle may
        change), the same on every PDS the account moves to."""
        if self._identity is None:
            body = self._call("GET", GET_SESSION, endpoint="read")
            did = body.get("did")
            if not isinstance(did, str) or not did.startswith("did:"):
                raise Transient("getSession answered without the account's DID", platform=NAME)
            self._identity = Identity(
                platform=NAME, account_id=did, handle=str(body.get("handle") or "")
            )
        return self._identity

    def content_rules(self) -> ContentRules:
        """Bluesky publishes no limits to read: the lexicon's (§2.4)."""
        return static_rules(NAME)

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
        """Other accounts' posts for `query`, newest first (`sort=latest`), in [`since`,
        `until`) as Bluesky sorts them (`sortAt`, the earlier of `createdAt` and when it was
        indexed: §2.2, `since` inclusive, `until` exclusive, also filtered here), paged by
        `cursor`. Authenticated: unauthenticated search is refused (§2.2). Through the PDS,
        or with `appview_url` the AppView itself, with a service token per page.
        """
        if source != Source.SEARCH:
            raise ConfigError(f"{NAME} cannot read reply source {source!r}; it reads search")
        own_id = self._did()

        def wanted(post: SocialPost) -> bool:
            return since <= post.created_at and (until is None or post.created_at < until)

        pages = self._search_pages(query, since=since, until=until, limit=limit)
        return collect(pages, limit=limit, own_id=own_id, keep=wanted, max_pages=self.max_pages)

    def _search_pages(
        self, query: str, *, since: datetime, until: datetime | None, limit: int
    ) -> Iterator[tuple[list[SocialPost], bool]]:
        """searchPosts' pages, each with whether another follows (a cursor, and posts)."""
        params: dict[str, Any] = {
            "q": query,
            "sort": "latest",
            "since": _datetime(since),
            "limit": max(1, min(SEARCH_PAGE_LIMIT, limit)),
        }
        if until is not None:
            params["until"] = _datetime(until)
        cursor: str | None = None
        while True:
            body = self._search_page(params | ({"cursor": cursor} if cursor else {}))
            views = body.get("posts")
            if not isinstance(views, list):
                raise Transient("searchPosts answered without `posts`", platform=NAME)
            found = body.get("cursor")
            cursor = found if isinstance(found, str) and found else None
            more = cursor is not None and bool(views)
            yield [_post(view) for view in views if isinstance(view, dict)], more
            if not more:
                return

    def _search_page(self, params: Mapping[str, Any]) -> dict[str, Any]:
        if self._appview is None:
            return self._call("GET", SEARCH_POSTS, endpoint="search", params=params)
        response = self._appview.get(
            f"/xrpc/{SEARCH_POSTS}",
            params=params,
            headers={"Authorization": f"Bearer {self._service_token(SEARCH_POSTS)}"},
            extensions=route("appview"),
        )
        if not response.is_success:
            raise _appview_error(response, appview=self.account.appview_url or "")
        return _read(response, create=False)

    def _service_token(self, method: str) -> str:
        """A service token for the AppView: `getServiceAuth` (lexicon: `aud`, `exp` default
        60 s, `lxm`), the XRPC spec's inter-service JWT, which Bluesky's video guide also
        fetches to call a service directly. `aud` is the AppView's DID taken as
        `did:web:<host>`: api.bsky.app's is did:web:api.bsky.app (api-directory.mdx); for
        any other AppView that is a guess (unconfirmed), and one with another DID refuses
        the token in its own words (`_appview_error`). That an AppView answers searchPosts
        to such a token sent by a client rather than by a PDS is unconfirmed too. One token
        per request: a service may refuse a token used twice (`jti`, the XRPC spec)."""
        body = self._call(
            "GET",
            GET_SERVICE_AUTH,
            endpoint="read",
            params={"aud": _did_web(self.account.appview_url or ""), "lxm": method},
        )
        token = body.get("token")
        if not isinstance(token, str) or not token:
            raise Transient("getServiceAuth answered without a token", platform=NAME)
        return token

    def create_post(self, post: CreatePost, *, idempotency_key: str) -> Published:
        """`createRecord` under the record key `tid_for(idempotency_key, post.planned_at)`
        (§2.5), with facets (links, mentions, tags), the reply's strong refs and the images.

        A create without `planned_at` is refused: a key invented now would differ on the
        next attempt, and the collision that makes a repeat harmless would be lost. The
        answer is `Published` (the post is out) even if its URI carries another key than
        ours (a PDS that ignores client keys); such a URI is kept in `keyed_elsewhere`: on
        that PDS no repeat collides, and `find_delivery` finds a post only through
        `listRecords` (what it answers, its text and blobs), never by its key.
        """
        if post.planned_at is None:
            raise Rejected(
                "a Bluesky create needs the delivery's plan time (CreatePost.planned_at) to "
                "derive its record key; refusing to invent one",
                platform=NAME,
            )
        rkey = tid_for(idempotency_key, post.planned_at)
        created_at = self._clock()
        record = self._record(post, created_at=created_at)
        answer = self._call(
            "POST",
            CREATE_RECORD,
            endpoint="write",
            create=True,
            json={"repo": self._did(), "collection": POST, "rkey": rkey, "record": record},
        )
        uri = answer.get("uri")
        parts = _at_uri(uri) if isinstance(uri, str) else None
        if not isinstance(uri, str) or parts is None:
            # A success without the new record's URI: whether it is out, only we can tell.
            raise OutcomeUnknown(
                "createRecord answered without the record's at:// URI", platform=NAME
            )
        if parts[2] != rkey:
            self.keyed_elsewhere.append(uri)
        return Published(remote_id=uri, url=self._url(uri), created_at=created_at)

    def _record(self, post: CreatePost, *, created_at: datetime) -> dict[str, Any]:
        """The `app.bsky.feed.post` record of `post` (§2.2). The images are read first
        (no request); the reply's parent and the mentions are asked for."""
        embed = _images_embed(post.media_ids) if post.media_ids else None
        record: dict[str, Any] = {
            "$type": POST,
            "text": post.text,
            "createdAt": _datetime(created_at),
        }
        resolved: dict[str, str | None] = {}

        def resolve(handle: str) -> str | None:
            if handle not in resolved:
                resolved[handle] = self._resolve_handle(handle)
            return resolved[handle]

        if found := facets(post.text, resolve=resolve):
            record["facets"] = found
        if post.language:
            record["langs"] = [post.language]
        if post.in_reply_to_id:
            record["reply"] = self._reply_refs(post.in_reply_to_id)
        if embed is not None:
            record["embed"] = embed
        return record

    def _resolve_handle(self, handle: str) -> str | None:
        """The DID of a mentioned handle; None when Bluesky says it resolves to no one (400:
        the mention stays plain text, as the posts guide does). Any other failure is raised:
        nothing is created meanwhile, so the create may be tried again."""
        response = self._send("GET", RESOLVE_HANDLE, endpoint="read", params={"handle": handle})
        if response.status_code == 400 and _xrpc_error(response)[0] not in REFUSED:
            return None
        did = _read(response, create=False).get("did")
        if not isinstance(did, str) or not did.startswith("did:"):
            raise Transient(f"resolveHandle answered no DID for {handle!r}", platform=NAME)
        return did

    def _reply_refs(self, parent_uri: str) -> dict[str, Any]:
        """`reply.root` and `reply.parent` (§2.2): the parent's strong ref (its URI and
        CID, from getRecord: the PDS reads another account's record from its AppView), and
        the parent's own root when it is a reply, else the parent."""
        parts = _at_uri(parent_uri)
        if parts is None:
            raise Rejected(f"{parent_uri!r} is not an at:// post URI to reply to", platform=NAME)
        repo, collection, rkey = parts
        response = self._send(
            "GET",
            GET_RECORD,
            endpoint="read",
            params={"repo": repo, "collection": collection, "rkey": rkey},
        )
        if _record_missing(response):
            said, _ = _words(response, "not found")
            raise Rejected(
                f"the post answered ({parent_uri}) is not there: {said}",
                platform=NAME,
                status_code=response.status_code,
            )
        parent = _read(response, create=False)
        parent_ref = _strong_ref(parent)
        if parent_ref is None:
            raise Transient(f"getRecord answered no URI and CID for {parent_uri}", platform=NAME)
        value = parent.get("value")
        reply = value.get("reply") if isinstance(value, dict) else None
        if reply is None:
            return {"root": parent_ref, "parent": parent_ref}
        root = _strong_ref(reply.get("root")) if isinstance(reply, dict) else None
        if root is None:
            raise Rejected(
                f"the post answered ({parent_uri}) is a reply without a readable root",
                platform=NAME,
            )
        return {"root": root, "parent": parent_ref}

    def upload_media(self, media: MediaUpload) -> MediaRef:
        """`uploadBlob` with the raw bytes and their Content-Type (§2.2); what the lexicon
        refuses (over 1,000,000 bytes, §2.4) and what we refuse (no alt text, a type the
        rules do not list) is refused before anything is sent. A blob is addressed by its
        content: uploading the same bytes again is the same blob, and one no post references
        is deleted after a while, so a failed upload is safe to repeat (not a create)."""
        _check_media(media, static_rules(NAME))
        answer = self._call(
            "POST",
            UPLOAD_BLOB,
            endpoint="media",
            content=media.data,
            headers={"Content-Type": media.mime_type},
        )
        blob = answer.get("blob")
        link = _object(_object(blob).get("ref")).get("$link")
        if not (
            isinstance(blob, dict)
            and isinstance(link, str)
            and isinstance(blob.get("mimeType"), str)
            and isinstance(blob.get("size"), int)
        ):
            raise Transient("uploadBlob answered without a blob reference", platform=NAME)
        ref = BlobRef(
            link=link,
            mime_type=blob["mimeType"],
            size=blob["size"],
            alt=media.alt_text,
            width=media.width,
            height=media.height,
        )
        return MediaRef(platform=NAME, id=encode_media_id(ref))

    def find_delivery(self, delivery: Delivery) -> Published | None:
        """The record under the delivery's own key (`getRecord`): there, it is out. Missing,
        the account's posts are read newest key first (`listRecords`) back to the plan:
        a reply by the post it answers (`reply.parent.uri`), a publish by its text and the
        blobs it staged; this covers a PDS that ignored our key. Others' posts
        (`taken_ids`) are skipped. Past `RECONCILE_LIMIT` posts it cannot tell."""
        did = self._did()
        rkey = tid_for(delivery.delivery_id, delivery.planned_at)
        response = self._send(
            "GET",
            GET_RECORD,
            endpoint="read",
            params={"repo": did, "collection": POST, "rkey": rkey},
        )
        if not _record_missing(response):
            found = _read(response, create=False)
            uri = found.get("uri")
            if isinstance(uri, str) and uri not in delivery.taken_ids:
                return self._published(uri, found.get("value"))
        return self._find_listed(delivery, did)

    def _find_listed(self, delivery: Delivery, did: str) -> Published | None:
        since = _aware(delivery.planned_at) - RECONCILE_SLACK
        blobs = _staged_blobs(delivery)
        seen = 0
        cursor: str | None = None
        while True:
            params: dict[str, Any] = {"repo": did, "collection": POST, "limit": LIST_PAGE_LIMIT}
            body = self._call(
                "GET",
                LIST_RECORDS,
                endpoint="read",
                params=params | ({"cursor": cursor} if cursor else {}),
            )
            records = body.get("records")
            if not isinstance(records, list):
                raise Transient("listRecords answered without `records`", platform=NAME)
            for item in records:
                seen += 1
                uri = item.get("uri") if isinstance(item, dict) else None
                if not isinstance(uri, str):
                    continue
                keyed = _key_time(uri)
                if keyed is not None and keyed < since:
                    return None  # newest key first: every record after this is older
                value = item.get("value")
                if uri not in delivery.taken_ids and _delivered(value, delivery, blobs):
                    return self._published(uri, value)
            found = body.get("cursor")
            cursor = found if isinstance(found, str) and found else None
            if not records or cursor is None:
                return None
            if seen >= RECONCILE_LIMIT:
                raise Inconclusive(
                    f"looked through the newest {seen} own posts without reaching "
                    f"{since:%Y-%m-%d %H:%M:%S} UTC; cannot tell whether it is out",
                    platform=NAME,
                )

    def _published(self, uri: str, value: object) -> Published:
        created = value.get("createdAt") if isinstance(value, dict) else None
        return Published(remote_id=uri, url=self._url(uri), created_at=_timestamp(created))

    def close(self) -> None:
        self._client.close()
        if self._appview is not None:
            self._appview.close()


def connect(
    account: BlueskyAccount,
    *,
    variables: Mapping[str, str],
    door: Door,
    timeout: float,
    transport: httpx.BaseTransport | None = None,
    session: Session | None = None,
) -> BlueskyPlatform:
    """Bluesky's access tokens expire within hours: every request carries the session's
    current one, refreshed once and repeated once on 400 `ExpiredToken`. The app password
    is the session's to use (a new login), never the adapter's."""
    if session is None:
        raise ConfigError(f"account {account.name!r}: {NAME} needs a session to connect")
    return BlueskyPlatform(
        account, session=session, door=door, timeout=timeout, transport=transport
    )


SPEC = PlatformSpec(
    name=NAME,
    account_model=BlueskyAccount,
    connect=connect,
    policy=POLICY,
    capabilities=frozenset(Capability),
    sources=(Source.SEARCH,),
    authenticator=AUTHENTICATOR,
)


# -- mapping --------------------------------------------------------------------------------


def _read(response: httpx.Response, *, create: bool) -> dict[str, Any]:
    """The JSON object of a success, else the error the answer means (`_error`)."""
    if not response.is_success:
        raise _error(response, create=create)
    body = _json(response)
    if body is None:
        # Accepted, but unreadable (a proxy's page?): a create may well be out.
        error_class = OutcomeUnknown if create else Transient
        raise error_class(
            "success status with a body that is not a JSON object",
            platform=NAME,
            status_code=response.status_code,
            detail=response.text,
        )
    return body


def _error(response: httpx.Response, *, create: bool) -> SocialError:
    """What an error answer means, in Bluesky's words (`{"error","message"}`, §2.5)."""
    status = response.status_code
    error, _ = _xrpc_error(response)
    said, detail = _words(response, "request rejected")
    if error in REFUSED or status == 401:
        # Seen here after the session's one refresh and repeat: a person (or a new app
        # password) is needed.
        return AuthExpired(
            f"access token refused: {said}", platform=NAME, status_code=status, detail=detail
        )
    if status == 429:
        return RateLimited(
            said,
            retry_after=retry_after_seconds(response.headers),
            platform=NAME,
            status_code=429,
            detail=detail,
        )
    if status == 500 and create:
        # §2.5: the reference PDS answers a record key that exists already so (the first
        # attempt went through); or it failed. Only the record itself can tell.
        return OutcomeUnknown(
            f"server error on a create; it may have been processed (a repeated record key "
            f"is answered so too): {said}",
            platform=NAME,
            status_code=500,
            detail=detail,
        )
    if create and (status == 409 or (status == 400 and _ALREADY.search(said))):
        # Another PDS may refuse an existing key in words of its own (unconfirmed; the
        # reference PDS's repo MST says "There is already a value at key"): the first
        # attempt may be out, so never a rejection.
        return OutcomeUnknown(
            f"the record key is taken, maybe by an earlier attempt: {said}",
            platform=NAME,
            status_code=status,
            detail=detail,
        )
    if status in (400, 403, 404, 409, 410, 413, 422):
        return Rejected(said, platform=NAME, status_code=status, detail=detail)
    return status_error(response, platform=NAME, create=create)


_ALREADY = re.compile(r"already (?:exists|a value)|record already|duplicate key", re.IGNORECASE)


def _appview_error(response: httpx.Response, *, appview: str) -> SocialError:
    """The AppView refusing a search. Its 401 or 403 (or a token it says is expired or
    invalid) is about the service token or the AppView's DID, not the session: `Rejected`
    with its words, never `AuthExpired` (which would mark the account for reconnecting)."""
    status = response.status_code
    error, _ = _xrpc_error(response)
    if status in (401, 403) or error in EXPIRED:
        said, detail = _words(response, "service token refused")
        return Rejected(
            f"the AppView at {appview} refused the service token for did:web audience "
            f"{_did_web(appview)}: {said}",
            platform=NAME,
            status_code=status,
            detail=detail,
        )
    return _error(response, create=False)


def _post(view: Mapping[str, Any]) -> SocialPost:
    """A `postView` (§2.2 searchPosts) as a post. Its time is `sortAt` as Bluesky sorts and
    windows searches by: the earlier of the record's `createdAt` (the client's word) and
    `indexedAt` (the AppView's)."""
    record = _object(view.get("record"))
    author = _object(view.get("author"))
    uri = str(view.get("uri") or "")
    did = str(author.get("did") or "")
    handle = str(author.get("handle") or "")
    _, _, rkey = _at_uri(uri) or ("", "", "")
    actor = handle if handle and handle != "handle.invalid" else did
    times = [
        when
        for when in (_timestamp(record.get("createdAt")), _timestamp(view.get("indexedAt")))
        if when is not None
    ]
    langs = record.get("langs")
    return SocialPost(
        platform=NAME,
        id=uri,
        author_id=did,
        author_handle=handle,
        text=str(record.get("text") or ""),
        url=POST_URL.format(actor=actor, rkey=rkey) if actor and rkey else "",
        created_at=min(times) if times else datetime.min.replace(tzinfo=UTC),
        in_reply_to_id=_parent_uri(record),
        language=str(langs[0]) if isinstance(langs, list) and langs else None,
        media_ids=(),
    )


def _object(value: object) -> dict[str, Any]:
    """`value` when it is a JSON object, else an empty one (a field we cannot read)."""
    return value if isinstance(value, dict) else {}


def _parent_uri(record: object) -> str | None:
    reply = record.get("reply") if isinstance(record, dict) else None
    parent = reply.get("parent") if isinstance(reply, dict) else None
    uri = parent.get("uri") if isinstance(parent, dict) else None
    return uri if isinstance(uri, str) else None


def _strong_ref(value: object) -> dict[str, str] | None:
    """`{uri, cid}` of a record answer or a strong ref, when both are there."""
    if not isinstance(value, dict):
        return None
    uri, cid = value.get("uri"), value.get("cid")
    if isinstance(uri, str) and _at_uri(uri) is not None and isinstance(cid, str) and cid:
        return {"uri": uri, "cid": cid}
    return None


def _at_uri(uri: str) -> tuple[str, str, str] | None:
    """`at://<repo>/<collection>/<rkey>` as its three parts; None for anything else."""
    if not uri.startswith("at://"):
        return None
    parts = uri.removeprefix("at://").split("/")
    if len(parts) != 3 or not all(parts):
        return None
    return parts[0], parts[1], parts[2]


def _key_time(uri: str) -> datetime | None:
    """When a record's key says it was made (a TID key), else None."""
    parts = _at_uri(uri)
    return timestamp(parts[2]) if parts is not None and is_tid(parts[2]) else None


def _images_embed(media_ids: tuple[str, ...]) -> dict[str, Any]:
    """`app.bsky.embed.images` of the uploads (§2.2), in their order."""
    if len(media_ids) > MAX_IMAGES:
        raise Rejected(
            f"{len(media_ids)} images; Bluesky takes at most {MAX_IMAGES}", platform=NAME
        )
    try:
        refs = [decode_media_id(media_id) for media_id in media_ids]
    except ValueError as error:
        raise Rejected(f"cannot attach: {error}", platform=NAME) from None
    return {"$type": "app.bsky.embed.images", "images": [ref.image() for ref in refs]}


def _record_blobs(value: Mapping[str, Any]) -> set[str]:
    """The blob CIDs (`$link`) of a post record's images."""
    embed = value.get("embed")
    images = embed.get("images") if isinstance(embed, dict) else None
    links: set[str] = set()
    for image in images if isinstance(images, list) else ():
        blob = image.get("image") if isinstance(image, dict) else None
        ref = blob.get("ref") if isinstance(blob, dict) else None
        link = ref.get("$link") if isinstance(ref, dict) else None
        if isinstance(link, str):
            links.add(link)
    return links


def _staged_blobs(delivery: Delivery) -> set[str]:
    """The blob CIDs a publish staged (its media ids), to compare with a record's."""
    try:
        return {decode_media_id(media_id).link for media_id in delivery.media_ids}
    except ValueError as error:
        raise Inconclusive(
            f"cannot compare the delivery's staged uploads with posts: {error}", platform=NAME
        ) from None


def _delivered(value: object, delivery: Delivery, blobs: set[str]) -> bool:
    """Whether this record of ours is the delivery's: a reply by the post it answers (we
    answer a post at most once); a publish, never a reply, by its text and exactly the
    blobs it staged (the same text with other images is another delivery's)."""
    if not isinstance(value, dict):
        return False
    if delivery.kind == DeliveryKind.REPLY:
        return _parent_uri(value) == delivery.subject
    if value.get("reply") is not None:
        return False
    text = value.get("text")
    return (
        isinstance(text, str)
        and content_hash(text) == content_hash(delivery.text)
        and _record_blobs(value) == blobs
    )


def _check_media(media: MediaUpload, rules: ContentRules) -> None:
    """Refuse, before anything is sent, what Bluesky refuses (§2.4) and what we do."""
    limit = rules.max_image_bytes
    if limit is not None and len(media.data) > limit:
        raise Rejected(
            f"image is {len(media.data):,} bytes; Bluesky takes images of at most {limit:,} bytes",
            platform=NAME,
        )
    if media.mime_type not in rules.image_mime_types:
        raise Rejected(
            f"image type {media.mime_type} is not one we send to Bluesky "
            f"({', '.join(rules.image_mime_types)})",
            platform=NAME,
        )
    if rules.alt_text_required and not media.alt_text.strip():
        raise Rejected(
            "image has no alt text; Bluesky images carry one and we refuse an empty one",
            platform=NAME,
        )


def _did_web(url: str) -> str:
    """The did:web of a service at `url`: its host, a port as `%3A<port>` (did:web)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    return f"did:web:{host}%3A{parts.port}" if parts.port else f"did:web:{host}"


def _aware(when: datetime) -> datetime:
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


def _datetime(when: datetime) -> str:
    """An atproto datetime: RFC 3339 in UTC with `Z`, to the microsecond (a window's bounds
    exactly as asked)."""
    return _aware(when).astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def _timestamp(value: object) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return _aware(datetime.fromisoformat(value.replace("Z", "+00:00")))
    except ValueError:
        return None
