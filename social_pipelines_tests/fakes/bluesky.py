"""A stateful Bluesky (AT Protocol PDS + AppView) on the shapes of platforms.md §2.

One `BlueskyFake` is the entryway (`bsky.social`), the account's own PDS (named in the
session's DID document, `#atproto_pds`) and the public AppView: every host in `hosts`
routes to it. It keeps accounts, sessions (JWTs with `exp`, refresh tokens that rotate),
repositories of records with their keys, uploaded blobs and rate counters.

What it does as the reference PDS does, by section:

- §2.1 `createSession` checks the app password and answers `accessJwt`/`refreshJwt` (JWTs
  whose `exp` is the access lifetime, 120 min by default as in the PDS code), `did`,
  `handle` and the `didDoc`; `refreshSession` takes the refresh JWT as its bearer, no body,
  and rotates: the used token is refused afterwards (400 `ExpiredToken` "Token has been
  revoked") unless a grace period is given (the PDS keeps 2 h: `refresh_grace`, in which a
  reuse is answered with the same successor); `getSession`.
- §2.5 an expired access token is HTTP 400 `ExpiredToken` "Token has expired", a bad one
  400 `InvalidToken` "Token could not be verified", a refresh token used as access (or the
  reverse) 400 `InvalidToken` "Bad token scope", none 401 `AuthMissing`.
- §2.2 `searchPosts` (q, since inclusive / until exclusive against `sortAt`, author,
  mentions, lang, limit 1..100 default 25, cursor), `getPosts`, `getAuthorFeed`,
  `com.atproto.repo.getRecord` (400 `RecordNotFound`), `listRecords` (newest first by record
  key; `cursor` is the last key of a page, given whenever the page is not empty, as the
  PDS does), `createRecord`, `uploadBlob`, `resolveHandle`. Unauthenticated search on
  `public.api.bsky.app` is 403 (§2.2 "Search availability").
- §2.5 `app.bsky.feed.post` record keys are TIDs: any other rkey is 400 `InvalidRequest`
  "Invalid record key for app.bsky.feed.post: Invalid TID string (got "…") at $"; a create
  with a key that exists answers 500 `InternalServerError` (observed on the reference PDS,
  not a 409), and nothing is created.
- §2.4 the post lexicon: text at most 300 graphemes and 3000 UTF-8 bytes, at most 4 images
  each with a required `alt` and an optional `aspectRatio`, an image blob of at most
  1,000,000 bytes; a blob must have been uploaded to the repo first. `uploadBlob` itself
  takes up to 52,428,800 bytes (§2.3 "Blob upload max (PDS)"): the 1 MB bound is the
  image lexicon's, checked when a record names the blob. (The wording of these lexicon
  refusals is ours: unconfirmed.)
- §2.3 `RateLimit-Limit/Remaining/Reset/Policy` on every answer: createSession 30 per
  5 min per identifier, writes 5000 points an hour per account (a create costs 3), 3000
  requests per 5 min per client otherwise; 429 `RateLimitExceeded` with `Retry-After`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import secrets
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from io import BytesIO
from typing import Any
from urllib.parse import parse_qs

import httpx
import regex
from PIL import Image

from social_pipelines_tests.fakes.common import (
    Call,
    Clock,
    RateCounters,
    iso,
    json_response,
    parse_time,
    sniff,
    utcnow,
)

ENTRYWAY = "bsky.social"
PDS_HOST = "morel.us-east.host.bsky.network"
APPVIEW = "api.bsky.app"
PUBLIC_APPVIEW = "public.api.bsky.app"
POST = "app.bsky.feed.post"
# The TID alphabet (base32-sortable) and shape: 13 characters, the first of the top half.
TID_ALPHABET = "234567abcdefghijklmnopqrstuvwxyz"
TID_RE = re.compile(r"^[234567abcdefghij][234567abcdefghijklmnopqrstuvwxyz]{12}$")
MAX_IMAGE_BYTES = 1_000_000  # §2.4 app.bsky.embed.images `maxSize`
MAX_BLOB_BYTES = 52_428_800  # §2.3 PDS blob upload max
MAX_GRAPHEMES = 300  # §2.4
MAX_TEXT_BYTES = 3000  # §2.4
_SIGNING_KEY = b"fake-pds-signing-key"


def tid_for(when: datetime, clock_id: int = 0) -> str:
    """A TID: microseconds since the epoch (53 bits) and a 10-bit clock id, base32-sortable."""
    micros = int(when.timestamp() * 1_000_000)
    value = (micros << 10) | (clock_id & 0x3FF)
    chars = []
    for _ in range(13):
        chars.append(TID_ALPHABET[value & 31])
        value >>= 5
    return "".join(reversed(chars))


def _b32(data: bytes) -> str:
    return base64.b32encode(data).decode("ascii").lower().rstrip("=")


def cid_for(data: bytes, *, raw: bool = False) -> str:
    """A CIDv1-looking string: `bafkrei…` (raw, blobs) or `bafyrei…` (dag-cbor, records)."""
    return ("bafkrei" if raw else "bafyrei") + _b32(hashlib.sha256(data).digest())[:52]


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _graphemes(text: str) -> int:
    return len(regex.findall(r"\X", text))


@dataclass
class Actor:
    did: str
    handle: str
    display_name: str
    email: str
    app_password: str | None = field(default=None, repr=False)


@dataclass
class Record:
    uri: str
    cid: str
    did: str
    collection: str
    rkey: str
    value: dict[str, Any]
    indexed_at: datetime

    @property
    def created_at(self) -> datetime:
        return parse_time(self.value["createdAt"])

    @property
    def sort_at(self) -> datetime:
        """The AppView's `sortAt`: the earlier of createdAt and indexedAt (§2.2)."""
        return min(self.created_at, self.indexed_at)


@dataclass
class Blob:
    cid: str
    did: str
    mime_type: str
    size: int
    width: int | None
    height: int | None


@dataclass
class RefreshRow:
    did: str
    expires_at: datetime
    next_jti: str | None = None


@dataclass(frozen=True)
class CreateAttempt:
    """One createRecord the fake answered (or lost the answer of)."""

    did: str
    collection: str
    rkey: str
    status: int  # what it answered; 0 when the answer was lost (an exception)
    created: bool


class XrpcError(Exception):
    def __init__(
        self, status: int, error: str, message: str, headers: Mapping[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.error = error
        self.message = message
        self.headers = dict(headers or {})


def _invalid(message: str, error: str = "InvalidRequest") -> XrpcError:
    return XrpcError(400, error, message)


class BlueskyFake:
    """Call it with a request; `hosts` are the names to route to it."""

    def __init__(
        self,
        *,
        clock: Clock = utcnow,
        access_lifetime: timedelta = timedelta(minutes=120),
        refresh_lifetime: timedelta = timedelta(days=90),
        refresh_grace: timedelta = timedelta(0),
        pds_host: str = PDS_HOST,
    ) -> None:
        self.clock = clock
        self.access_lifetime = access_lifetime
        self.refresh_lifetime = refresh_lifetime
        self.refresh_grace = refresh_grace
        self.pds_host = pds_host
        self.hosts = (ENTRYWAY, pds_host, APPVIEW, PUBLIC_APPVIEW)
        self.actors: dict[str, Actor] = {}  # by DID
        self.records: dict[str, dict[tuple[str, str], Record]] = {}  # did -> (coll, rkey)
        self.blobs: dict[tuple[str, str], Blob] = {}  # (did, cid)
        self.refresh_rows: dict[str, RefreshRow] = {}  # jti -> row
        self.issued_access: set[str] = set()
        self.issued_refresh: set[str] = set()
        self.expired_access: set[str] = set()
        self.rates = RateCounters(clock)
        self.calls: list[Call] = []
        self.creates: list[CreateAttempt] = []
        self.logins = 0
        self.refreshes = 0
        # Faults: each create whose answer is lost after the record was made answers this
        # status (500) or raises this exception class (the answer never arrived).
        self.lose_create_answers: list[int | type[httpx.TransportError]] = []
        self._clock_id = 0
        self._announced = threading.local()

    # -- test set-up ------------------------------------------------------------------------

    def add_account(
        self,
        handle: str,
        *,
        app_password: str | None = None,
        display_name: str | None = None,
    ) -> Actor:
        """An account; only one with an app password can log in (ours)."""
        did = "did:plc:" + _b32(hashlib.sha256(handle.encode()).digest())[:24]
        actor = Actor(
            did=did,
            handle=handle,
            display_name=display_name or handle.split(".")[0].replace("_", " ").title(),
            email=f"{handle.split('.')[0]}@example.com",
            app_password=app_password,
        )
        self.actors[did] = actor
        self.records.setdefault(did, {})
        return actor

    def actor(self, handle_or_did: str) -> Actor:
        found = self._actor(handle_or_did)
        if found is None:
            raise KeyError(handle_or_did)
        return found

    def seed_post(
        self,
        handle: str,
        text: str,
        *,
        created_at: datetime | None = None,
        reply_to: Record | None = None,
        langs: tuple[str, ...] = ("en",),
    ) -> Record:
        """Another account's post, as if it had been written at `created_at` (indexed
        then too); @handles of known accounts become mention facets, as clients make them."""
        actor = self._actor(handle) or self.add_account(handle)
        when = created_at or self.clock()
        record: dict[str, Any] = {
            "$type": POST,
            "text": text,
            "createdAt": iso(when),
            "langs": list(langs),
        }
        facets = self._mention_facets(text)
        if facets:
            record["facets"] = facets
        if reply_to is not None:
            parent = {"uri": reply_to.uri, "cid": reply_to.cid}
            root = reply_to.value.get("reply", {}).get("root", parent)
            record["reply"] = {"root": root, "parent": parent}
        return self._put(actor, POST, self._next_tid(when), record, indexed_at=when)

    def posts_of(self, handle_or_did: str) -> list[Record]:
        """An account's posts, newest key first."""
        actor = self.actor(handle_or_did)
        rows = [r for (c, _), r in self.records[actor.did].items() if c == POST]
        return sorted(rows, key=lambda r: r.rkey, reverse=True)

    def blob(self, did: str, cid: str) -> Blob:
        return self.blobs[(did, cid)]

    def expire_access_tokens(self) -> None:
        """Every access token issued so far is expired from now on (the client still thinks
        it is valid: its `exp` says so)."""
        self.expired_access.update(self.issued_access)

    # -- the service ------------------------------------------------------------------------

    def __call__(self, request: httpx.Request) -> httpx.Response:
        host = request.url.host
        path = request.url.path
        nsid = path.removeprefix("/xrpc/") if path.startswith("/xrpc/") else ""
        try:
            if host not in self.hosts:
                raise XrpcError(404, "NotFound", f"unknown host {host}")
            if not nsid:
                raise XrpcError(404, "NotFound", "Not Found")
            self._announced.headers = {}
            response = self._dispatch(request, host, nsid)
        except XrpcError as error:
            response = json_response(
                error.status, {"error": error.error, "message": error.message}, error.headers
            )
        except httpx.TransportError:
            self.calls.append(Call(request.method, host, path, 0, nsid))
            raise
        for name, value in getattr(self._announced, "headers", {}).items():
            response.headers.setdefault(name, value)
        self.calls.append(Call(request.method, host, path, response.status_code, nsid))
        return response

    _QUERIES = frozenset(
        {
            "com.atproto.server.getSession",
            "com.atproto.repo.getRecord",
            "com.atproto.repo.listRecords",
            "com.atproto.identity.resolveHandle",
            "app.bsky.feed.searchPosts",
            "app.bsky.feed.getPosts",
            "app.bsky.feed.getAuthorFeed",
        }
    )
    _PROCEDURES = frozenset(
        {
            "com.atproto.server.createSession",
            "com.atproto.server.refreshSession",
            "com.atproto.repo.createRecord",
            "com.atproto.repo.uploadBlob",
        }
    )
    _PUBLIC = frozenset(
        {
            "com.atproto.identity.resolveHandle",
            "app.bsky.feed.getPosts",
            "app.bsky.feed.getAuthorFeed",
            "app.bsky.feed.searchPosts",
        }
    )

    def _dispatch(self, request: httpx.Request, host: str, nsid: str) -> httpx.Response:
        if nsid not in self._QUERIES | self._PROCEDURES:
            raise XrpcError(501, "MethodNotImplemented", "Method Not Implemented")
        expected = "GET" if nsid in self._QUERIES else "POST"
        if request.method != expected:
            raise _invalid(f"Incorrect HTTP method ({request.method}) expected {expected}")
        params = {k: v for k, v in parse_qs(request.url.query.decode()).items()}
        if host in (APPVIEW, PUBLIC_APPVIEW):
            return self._appview(request, host, nsid, params)
        self._limit("global", _client(request), 3000, 300.0)
        handler = getattr(self, "_" + nsid.replace(".", "_"))
        return handler(request, params)

    def _appview(
        self, request: httpx.Request, host: str, nsid: str, params: dict[str, list[str]]
    ) -> httpx.Response:
        """The AppView hosts answer public reads without a token; a PDS access token is
        not theirs (its `aud` is the PDS) and search is closed to anonymous callers."""
        if nsid not in self._PUBLIC:
            raise XrpcError(501, "MethodNotImplemented", "Method Not Implemented")
        if request.headers.get("authorization"):
            raise XrpcError(401, "BadJwtAudience", "jwt audience does not match service did")
        if nsid == "app.bsky.feed.searchPosts":
            # §2.2: disabled for unauthenticated callers since January 2025.
            raise XrpcError(403, "Forbidden", "Forbidden")
        handler = getattr(self, "_" + nsid.replace(".", "_"))
        return handler(request, params)

    # -- auth -------------------------------------------------------------------------------

    def _jwt(self, typ: str, claims: dict[str, Any]) -> str:
        header = _b64url(json.dumps({"typ": typ, "alg": "HS256"}).encode())
        payload = _b64url(json.dumps(claims, separators=(",", ":")).encode())
        signature = hmac.new(_SIGNING_KEY, f"{header}.{payload}".encode(), "sha256").digest()
        return f"{header}.{payload}.{_b64url(signature)}"

    def _claims(self, token: str) -> dict[str, Any]:
        parts = token.split(".")
        if len(parts) != 3:
            raise _invalid("Token could not be verified", "InvalidToken")
        expected = hmac.new(_SIGNING_KEY, f"{parts[0]}.{parts[1]}".encode(), "sha256").digest()
        try:
            if not hmac.compare_digest(_unb64url(parts[2]), expected):
                raise ValueError("signature")
            claims: dict[str, Any] = json.loads(_unb64url(parts[1]))
        except ValueError:
            raise _invalid("Token could not be verified", "InvalidToken") from None
        return claims

    def _issue(self, actor: Actor, jti: str | None = None) -> dict[str, Any]:
        now = self.clock()
        access = self._jwt(
            "at+jwt",
            {
                "scope": "com.atproto.access",
                "sub": actor.did,
                "iat": int(now.timestamp()),
                "exp": int((now + self.access_lifetime).timestamp()),
                "aud": f"did:web:{self.pds_host}",
                "nonce": secrets.token_hex(4),
            },
        )
        self.issued_access.add(access)
        jti = jti or secrets.token_urlsafe(16)
        expires = now + self.refresh_lifetime
        self.refresh_rows.setdefault(jti, RefreshRow(actor.did, expires))
        refresh = self._jwt(
            "refresh+jwt",
            {
                "scope": "com.atproto.refresh",
                "sub": actor.did,
                "aud": f"did:web:{ENTRYWAY}",
                "jti": jti,
                "iat": int(now.timestamp()),
                "exp": int(expires.timestamp()),
            },
        )
        self.issued_refresh.add(refresh)
        return {
            "accessJwt": access,
            "refreshJwt": refresh,
            "handle": actor.handle,
            "did": actor.did,
            "didDoc": self._did_doc(actor),
            "email": actor.email,
            "emailConfirmed": True,
            "emailAuthFactor": False,
            "active": True,
        }

    def _did_doc(self, actor: Actor) -> dict[str, Any]:
        return {
            "@context": [
                "https://www.w3.org/ns/did/v1",
                "https://w3id.org/security/multikey/v1",
            ],
            "id": actor.did,
            "alsoKnownAs": [f"at://{actor.handle}"],
            "verificationMethod": [
                {
                    "id": f"{actor.did}#atproto",
                    "type": "Multikey",
                    "controller": actor.did,
                    "publicKeyMultibase": "zQ3sh" + _b32(actor.did.encode())[:40],
                }
            ],
            "service": [
                {
                    "id": "#atproto_pds",
                    "type": "AtprotoPersonalDataServer",
                    "serviceEndpoint": f"https://{self.pds_host}",
                }
            ],
        }

    def _bearer(self, request: httpx.Request) -> str:
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        if not header:
            raise XrpcError(401, "AuthMissing", "Authentication Required")
        if scheme.lower() != "bearer" or not token.strip():
            raise _invalid("Token could not be verified", "InvalidToken")
        return token.strip()

    def _authed(self, request: httpx.Request) -> Actor:
        """The account an access token acts for (§2.5's refusals otherwise)."""
        token = self._bearer(request)
        claims = self._claims(token)
        if claims.get("scope") != "com.atproto.access":
            raise _invalid("Bad token scope", "InvalidToken")
        if token in self.expired_access or claims["exp"] <= self.clock().timestamp():
            raise _invalid("Token has expired", "ExpiredToken")
        actor = self.actors.get(claims["sub"])
        if actor is None:
            raise _invalid("Token could not be verified", "InvalidToken")
        return actor

    def _limit(
        self,
        bucket: str,
        key: str,
        limit: int,
        seconds: float,
        points: int = 1,
        announce: bool = True,
    ) -> dict[str, str]:
        """Take `points` from a limiter; its headers are the answer's (the most specific
        limiter announced wins), a 429 when it is used up."""
        allowed, limit, remaining, reset = self.rates.take(
            bucket, key, limit=limit, seconds=seconds, points=points
        )
        headers = {
            "RateLimit-Limit": str(limit),
            "RateLimit-Remaining": str(remaining),
            "RateLimit-Reset": str(int(reset)),
            "RateLimit-Policy": f"{limit};w={int(seconds)}",
        }
        if announce:
            self._announced.headers = headers
        if not allowed:
            wait = max(1, int(reset - self.clock().timestamp()))
            raise XrpcError(
                429,
                "RateLimitExceeded",
                "Rate Limit Exceeded",
                {**headers, "Retry-After": str(wait)},
            )
        return headers

    def _com_atproto_server_createSession(
        self, request: httpx.Request, params: dict[str, list[str]]
    ) -> httpx.Response:
        """§2.1: `{"identifier","password"}` (a handle, email or DID and an app password)."""
        body = _json_body(request)
        identifier = body.get("identifier")
        password = body.get("password")
        if not isinstance(identifier, str) or not isinstance(password, str):
            raise _invalid('Input must have the property "identifier" and "password"')
        self._limit("createSession", identifier.lower(), 30, 300.0)
        self._limit("createSession-day", identifier.lower(), 300, 86400.0, announce=False)
        actor = self._actor(identifier.lower()) or next(
            (a for a in self.actors.values() if a.email == identifier.lower()), None
        )
        if (
            actor is None
            or actor.app_password is None
            or not hmac.compare_digest(actor.app_password, password)
        ):
            raise XrpcError(401, "AuthenticationRequired", "Invalid identifier or password")
        self.logins += 1
        return json_response(200, self._issue(actor))

    def _com_atproto_server_refreshSession(
        self, request: httpx.Request, params: dict[str, list[str]]
    ) -> httpx.Response:
        """§2.1: the refresh JWT as the bearer, no body; the pair rotates."""
        token = self._bearer(request)
        claims = self._claims(token)
        if claims.get("scope") != "com.atproto.refresh":
            raise _invalid("Bad token scope", "InvalidToken")
        now = self.clock()
        if claims["exp"] <= now.timestamp():
            raise _invalid("Token has expired", "ExpiredToken")
        row = self.refresh_rows.get(claims["jti"])
        if row is None or row.expires_at <= now:
            raise _invalid("Token has been revoked", "ExpiredToken")
        actor = self.actors[row.did]
        if row.next_jti is not None:
            # Used before, still inside the grace period: the same successor again.
            self.refreshes += 1
            return json_response(200, self._issue(actor, row.next_jti))
        row.next_jti = secrets.token_urlsafe(16)
        row.expires_at = min(row.expires_at, now + self.refresh_grace)
        self.refreshes += 1
        return json_response(200, self._issue(actor, row.next_jti))

    def _com_atproto_server_getSession(
        self, request: httpx.Request, params: dict[str, list[str]]
    ) -> httpx.Response:
        actor = self._authed(request)
        return json_response(
            200,
            {
                "handle": actor.handle,
                "did": actor.did,
                "email": actor.email,
                "emailConfirmed": True,
                "didDoc": self._did_doc(actor),
                "active": True,
            },
        )

    # -- identity and reads -----------------------------------------------------------------

    def _actor(self, handle_or_did: str) -> Actor | None:
        if handle_or_did.startswith("did:"):
            return self.actors.get(handle_or_did)
        wanted = handle_or_did.lower().removeprefix("@")
        return next((a for a in self.actors.values() if a.handle == wanted), None)

    def _com_atproto_identity_resolveHandle(
        self, request: httpx.Request, params: dict[str, list[str]]
    ) -> httpx.Response:
        handle = _one(params, "handle", required=True)
        actor = self._actor(handle) if not handle.startswith("did:") else None
        if actor is None:
            raise _invalid("Unable to resolve handle")
        return json_response(200, {"did": actor.did})

    def _repo(self, value: str) -> Actor:
        actor = self._actor(value)
        if actor is None:
            raise _invalid(f"Could not find repo: {value}")
        return actor

    def _com_atproto_repo_getRecord(
        self, request: httpx.Request, params: dict[str, list[str]]
    ) -> httpx.Response:
        """§2.5: 200 with the record, else 400 `RecordNotFound`."""
        actor = self._repo(_one(params, "repo", required=True))
        collection = _one(params, "collection", required=True)
        rkey = _one(params, "rkey", required=True)
        record = self.records[actor.did].get((collection, rkey))
        uri = f"at://{actor.did}/{collection}/{rkey}"
        if record is None:
            raise _invalid(f"Could not locate record: {uri}", "RecordNotFound")
        return json_response(200, {"uri": record.uri, "cid": record.cid, "value": record.value})

    def _com_atproto_repo_listRecords(
        self, request: httpx.Request, params: dict[str, list[str]]
    ) -> httpx.Response:
        """§2.2: newest first (record keys descending) unless `reverse`; `cursor` is the
        last key of the page, there whenever the page is not empty."""
        actor = self._repo(_one(params, "repo", required=True))
        collection = _one(params, "collection", required=True)
        limit = _limit_param(params, default=50)
        reverse = _one(params, "reverse") in ("true", "1")
        cursor = _one(params, "cursor")
        rows = sorted(
            (r for (c, _), r in self.records[actor.did].items() if c == collection),
            key=lambda r: r.rkey,
            reverse=not reverse,
        )
        if cursor:
            rows = [r for r in rows if (r.rkey > cursor if reverse else r.rkey < cursor)]
        page = rows[:limit]
        body: dict[str, Any] = {
            "records": [{"uri": r.uri, "cid": r.cid, "value": r.value} for r in page]
        }
        if page:
            body["cursor"] = page[-1].rkey
        return json_response(200, body)

    def _app_bsky_feed_searchPosts(
        self, request: httpx.Request, params: dict[str, list[str]]
    ) -> httpx.Response:
        """§2.2: authenticated (through the PDS); `since` inclusive and `until` exclusive,
        compared with `sortAt`; newest first (`sort=latest`, the default)."""
        self._authed(request)
        query = _one(params, "q", required=True)
        limit = _limit_param(params, default=25)
        sort = _one(params, "sort") or "latest"
        if sort not in ("latest", "top"):
            raise _invalid("Input/sort must be one of (latest|top)")
        since = _time_param(params, "since")
        until = _time_param(params, "until")
        author = _one(params, "author")
        mentions = _one(params, "mentions")
        lang = _one(params, "lang")
        try:
            offset = int(_one(params, "cursor") or 0)
        except ValueError:
            raise _invalid("Malformed cursor", "BadQueryString") from None
        matcher = _Query(query, self)
        author_actor = self._actor(author) if author else None
        mention_actor = self._actor(mentions) if mentions else None
        hits = []
        for record in self._all_posts():
            if author and (author_actor is None or record.did != author_actor.did):
                continue
            if mentions and (mention_actor is None or mention_actor.did not in _mentioned(record)):
                continue
            if lang and lang not in record.value.get("langs", []):
                continue
            if since and record.sort_at < since:
                continue
            if until and record.sort_at >= until:
                continue
            if matcher.matches(record):
                hits.append(record)
        hits.sort(key=lambda r: (r.sort_at, r.rkey), reverse=True)
        page = hits[offset : offset + limit]
        body: dict[str, Any] = {
            "posts": [self._post_view(r) for r in page],
            "hitsTotal": len(hits),
        }
        if offset + limit < len(hits):
            body["cursor"] = str(offset + limit)
        return json_response(200, body)

    def _app_bsky_feed_getPosts(
        self, request: httpx.Request, params: dict[str, list[str]]
    ) -> httpx.Response:
        """Up to 25 `uris`; unknown ones are left out."""
        uris = params.get("uris") or []
        if not uris:
            raise _invalid('Params must have the property "uris"')
        if len(uris) > 25:
            raise _invalid("Params/uris must not have more than 25 elements")
        found = [r for uri in uris if (r := self._by_uri(uri)) is not None]
        return json_response(200, {"posts": [self._post_view(r) for r in found]})

    def _app_bsky_feed_getAuthorFeed(
        self, request: httpx.Request, params: dict[str, list[str]]
    ) -> httpx.Response:
        """§2.2: an actor's posts newest first, `{"feed":[{"post"}], "cursor"}`."""
        actor = self._actor(_one(params, "actor", required=True))
        if actor is None:
            raise _invalid("Profile not found")
        limit = _limit_param(params, default=50)
        filter_ = _one(params, "filter") or "posts_with_replies"
        cursor = _one(params, "cursor")
        rows = [r for r in self.posts_of(actor.did) if not (cursor and r.rkey >= cursor)]
        if filter_ == "posts_no_replies":
            rows = [r for r in rows if "reply" not in r.value]
        page = rows[:limit]
        body: dict[str, Any] = {"feed": [{"post": self._post_view(r)} for r in page]}
        if len(rows) > limit:
            body["cursor"] = page[-1].rkey
        return json_response(200, body)

    # -- writes -----------------------------------------------------------------------------

    def _com_atproto_repo_uploadBlob(
        self, request: httpx.Request, params: dict[str, list[str]]
    ) -> httpx.Response:
        """§2.2: raw bytes; `{"blob":{"$type":"blob","ref":{"$link"},"mimeType","size"}}`.
        The type is sniffed from the bytes (as the PDS does), the header only a fallback."""
        actor = self._authed(request)
        data = request.content
        if len(data) > MAX_BLOB_BYTES:
            raise XrpcError(413, "PayloadTooLarge", "request entity too large")
        mime = sniff(data) or request.headers.get("content-type", "application/octet-stream")
        width = height = None
        if mime.startswith("image/"):
            try:
                with Image.open(BytesIO(data)) as image:
                    width, height = image.size
            except Exception:  # not an image after all: stored as bytes
                pass
        cid = cid_for(data, raw=True)
        self.blobs[(actor.did, cid)] = Blob(cid, actor.did, mime, len(data), width, height)
        return json_response(
            200,
            {"blob": {"$type": "blob", "ref": {"$link": cid}, "mimeType": mime, "size": len(data)}},
        )

    def _com_atproto_repo_createRecord(
        self, request: httpx.Request, params: dict[str, list[str]]
    ) -> httpx.Response:
        """§2.2 and §2.5: `{"repo","collection","rkey"?,"validate"?,"record"}`."""
        actor = self._authed(request)
        body = _json_body(request)
        repo = body.get("repo")
        collection = body.get("collection")
        record = body.get("record")
        if not isinstance(repo, str) or not isinstance(collection, str):
            raise _invalid('Input must have the property "repo" and "collection"')
        if not isinstance(record, dict):
            raise _invalid('Input must have the property "record"')
        target = self._actor(repo)
        if target is None or target.did != actor.did:
            raise XrpcError(401, "AuthRequired", "Authentication Required")
        self._limit("repo-write-hour", actor.did, 5000, 3600.0, points=3)
        self._limit("repo-write-day", actor.did, 35000, 86400.0, points=3, announce=False)
        rkey = body.get("rkey")
        if rkey is None:
            rkey = self._next_tid(self.clock())
        if not isinstance(rkey, str):
            raise _invalid("Input/rkey must be a string")
        if collection == POST and not TID_RE.match(rkey):
            self.creates.append(CreateAttempt(actor.did, collection, rkey, 400, False))
            raise _invalid(f'Invalid record key for {POST}: Invalid TID string (got "{rkey}") at $')
        validate = body.get("validate")
        record = dict(record)
        record.setdefault("$type", collection)
        status = "unknown"
        if validate is not False and collection == POST:
            try:
                self._validate_post(actor, record)
            except XrpcError:
                self.creates.append(CreateAttempt(actor.did, collection, rkey, 400, False))
                raise
            status = "valid"
        if (collection, rkey) in self.records[actor.did]:
            # §2.5: the repo's MST refuses the key; the reference PDS answers 500.
            self.creates.append(CreateAttempt(actor.did, collection, rkey, 500, False))
            raise XrpcError(500, "InternalServerError", "Internal Server Error")
        made = self._put(actor, collection, rkey, record, indexed_at=self.clock())
        if self.lose_create_answers:
            fault = self.lose_create_answers.pop(0)
            if isinstance(fault, int):
                self.creates.append(CreateAttempt(actor.did, collection, rkey, fault, True))
                raise XrpcError(fault, "InternalServerError", "Internal Server Error")
            self.creates.append(CreateAttempt(actor.did, collection, rkey, 0, True))
            raise fault("the answer was lost on the way (fault)", request=request)
        self.creates.append(CreateAttempt(actor.did, collection, rkey, 200, True))
        return json_response(
            200,
            {
                "uri": made.uri,
                "cid": made.cid,
                "commit": {"cid": cid_for(made.cid.encode()), "rev": self._next_tid(self.clock())},
                "validationStatus": status,
            },
        )

    def _validate_post(self, actor: Actor, record: dict[str, Any]) -> None:
        """§2.4's lexicon, the parts a client can get wrong."""
        where = f"Invalid {POST} record"
        if record.get("$type") != POST:
            raise _invalid(f"{where}: Record/$type must be {POST}")
        text = record.get("text")
        if not isinstance(text, str):
            raise _invalid(f'{where}: Record must have the property "text"')
        if _graphemes(text) > MAX_GRAPHEMES:
            raise _invalid(
                f"{where}: Record/text must not be longer than {MAX_GRAPHEMES} graphemes"
            )
        if len(text.encode("utf-8")) > MAX_TEXT_BYTES:
            raise _invalid(
                f"{where}: Record/text must not be longer than {MAX_TEXT_BYTES} characters"
            )
        created = record.get("createdAt")
        try:
            parse_time(created) if isinstance(created, str) else None
        except ValueError:
            created = None
        if not isinstance(created, str):
            raise _invalid(f'{where}: Record must have the property "createdAt" (a datetime)')
        reply = record.get("reply")
        if reply is not None:
            for part in ("root", "parent"):
                ref = reply.get(part) if isinstance(reply, dict) else None
                if not isinstance(ref, dict) or not ref.get("uri") or not ref.get("cid"):
                    raise _invalid(f"{where}: Record/reply/{part} must be a strong ref (uri, cid)")
        for index, facet in enumerate(record.get("facets") or []):
            span = facet.get("index") if isinstance(facet, dict) else None
            if (
                not isinstance(span, dict)
                or not isinstance(span.get("byteStart"), int)
                or not isinstance(span.get("byteEnd"), int)
                or not 0 <= span["byteStart"] <= span["byteEnd"] <= len(text.encode("utf-8"))
            ):
                raise _invalid(f"{where}: Record/facets/{index}/index must be a byte slice of text")
        embed = record.get("embed")
        if embed is None:
            return
        if not isinstance(embed, dict) or embed.get("$type") != "app.bsky.embed.images":
            raise _invalid(f"{where}: Record/embed must be an object which includes the $type")
        images = embed.get("images")
        if not isinstance(images, list) or not images:
            raise _invalid(f'{where}: Record/embed must have the property "images"')
        if len(images) > 4:
            raise _invalid(f"{where}: Record/embed/images must not have more than 4 elements")
        for index, image in enumerate(images):
            at = f"{where}: Record/embed/images/{index}"
            if not isinstance(image, dict) or not isinstance(image.get("alt"), str):
                raise _invalid(f'{at} must have the property "alt"')
            blob = image.get("image")
            link = (blob or {}).get("ref", {}).get("$link") if isinstance(blob, dict) else None
            if not isinstance(blob, dict) or blob.get("$type") != "blob" or not link:
                raise _invalid(f"{at}/image should be a blob ref")
            stored = self.blobs.get((actor.did, link))
            if stored is None:
                raise _invalid(f"Could not find blob: {link}", "BlobNotFound")
            if stored.size > MAX_IMAGE_BYTES:
                raise _invalid(
                    f"{at}/image file too large ({stored.size} bytes, maxSize {MAX_IMAGE_BYTES})"
                )
            if not stored.mime_type.startswith("image/"):
                raise _invalid(f"{at}/image mime type not accepted: {stored.mime_type}")
            ratio = image.get("aspectRatio")
            if ratio is not None and not (
                isinstance(ratio, dict)
                and isinstance(ratio.get("width"), int)
                and isinstance(ratio.get("height"), int)
                and ratio["width"] >= 1
                and ratio["height"] >= 1
            ):
                raise _invalid(f"{at}/aspectRatio must have width and height of at least 1")

    # -- storage and views ------------------------------------------------------------------

    def _next_tid(self, when: datetime) -> str:
        self._clock_id = (self._clock_id + 1) % 1024
        return tid_for(when, self._clock_id)

    def _put(
        self,
        actor: Actor,
        collection: str,
        rkey: str,
        value: dict[str, Any],
        *,
        indexed_at: datetime,
    ) -> Record:
        encoded = json.dumps(value, sort_keys=True).encode()
        record = Record(
            uri=f"at://{actor.did}/{collection}/{rkey}",
            cid=cid_for(encoded + rkey.encode()),
            did=actor.did,
            collection=collection,
            rkey=rkey,
            value=value,
            indexed_at=indexed_at,
        )
        self.records[actor.did][(collection, rkey)] = record
        return record

    def _all_posts(self) -> list[Record]:
        return [r for rows in self.records.values() for (c, _), r in rows.items() if c == POST]

    def _by_uri(self, uri: str) -> Record | None:
        match = re.match(r"^at://([^/]+)/([^/]+)/([^/]+)$", uri)
        if match is None:
            return None
        actor = self._actor(match.group(1))
        if actor is None:
            return None
        return self.records[actor.did].get((match.group(2), match.group(3)))

    def _mention_facets(self, text: str) -> list[dict[str, Any]]:
        facets = []
        encoded = text.encode("utf-8")
        for match in re.finditer(rb"(?<![\w@])@([a-z0-9][a-z0-9.-]*[a-z0-9])", encoded, re.I):
            actor = self._actor(match.group(1).decode())
            if actor is None:
                continue
            facets.append(
                {
                    "index": {"byteStart": match.start(), "byteEnd": match.end()},
                    "features": [{"$type": "app.bsky.richtext.facet#mention", "did": actor.did}],
                }
            )
        return facets

    def _post_view(self, record: Record) -> dict[str, Any]:
        actor = self.actors[record.did]
        replies = [
            r
            for r in self._all_posts()
            if r.value.get("reply", {}).get("parent", {}).get("uri") == record.uri
        ]
        view: dict[str, Any] = {
            "uri": record.uri,
            "cid": record.cid,
            "author": {
                "did": actor.did,
                "handle": actor.handle,
                "displayName": actor.display_name,
                "labels": [],
                "createdAt": "2023-04-01T00:00:00.000Z",
            },
            "record": record.value,
            "replyCount": len(replies),
            "repostCount": 0,
            "likeCount": 0,
            "quoteCount": 0,
            "indexedAt": iso(record.indexed_at),
            "viewer": {},
            "labels": [],
        }
        embed = record.value.get("embed")
        if isinstance(embed, dict) and embed.get("$type") == "app.bsky.embed.images":
            view["embed"] = {
                "$type": "app.bsky.embed.images#view",
                "images": [
                    {
                        "thumb": _cdn("feed_thumbnail", record.did, image),
                        "fullsize": _cdn("feed_fullsize", record.did, image),
                        "alt": image.get("alt", ""),
                        **({"aspectRatio": image["aspectRatio"]} if "aspectRatio" in image else {}),
                    }
                    for image in embed.get("images", [])
                ],
            }
        return view


def _cdn(size: str, did: str, image: dict[str, Any]) -> str:
    link = image.get("image", {}).get("ref", {}).get("$link", "")
    return f"https://cdn.bsky.app/img/{size}/plain/{did}/{link}@jpeg"


def _mentioned(record: Record) -> set[str]:
    return {
        feature.get("did")
        for facet in record.value.get("facets") or []
        for feature in facet.get("features") or []
        if feature.get("$type") == "app.bsky.richtext.facet#mention"
    }


class _Query:
    """searchPosts' `q`: words (all of them, case-insensitive, whole words), "phrases",
    `from:handle`, `mentions:handle`, `lang:xx`, `#tag`; a `-` before a term negates it."""

    def __init__(self, query: str, fake: BlueskyFake) -> None:
        self.fake = fake
        self.terms: list[tuple[bool, str, str]] = []
        for match in re.finditer(r'(-?)(?:"([^"]*)"|(\S+))', query):
            negated = match.group(1) == "-"
            if match.group(2) is not None:
                self.terms.append((negated, "phrase", match.group(2).casefold()))
                continue
            token = match.group(3)
            kind, _, value = token.partition(":")
            if value and kind in ("from", "mentions", "lang"):
                self.terms.append((negated, kind, value))
            else:
                self.terms.append((negated, "word", token.casefold()))

    def matches(self, record: Record) -> bool:
        text = record.value.get("text", "").casefold()
        for negated, kind, value in self.terms:
            if kind == "phrase":
                hit = value in text
            elif kind == "word":
                hit = re.search(r"(?<!\w)" + re.escape(value) + r"(?!\w)", text) is not None
            elif kind == "from":
                actor = self.fake._actor(value)
                hit = actor is not None and record.did == actor.did
            elif kind == "mentions":
                actor = self.fake._actor(value)
                hit = actor is not None and actor.did in _mentioned(record)
            else:
                hit = value in record.value.get("langs", [])
            if hit == negated:
                return False
        return True


def _client(request: httpx.Request) -> str:
    return request.headers.get("x-forwarded-for", "127.0.0.1")


def _json_body(request: httpx.Request) -> dict[str, Any]:
    if "json" not in request.headers.get("content-type", ""):
        raise _invalid("Wrong request encoding (Content-Type): expected application/json")
    try:
        body = json.loads(request.content or b"{}")
    except ValueError:
        raise _invalid("Request body is not valid JSON") from None
    if not isinstance(body, dict):
        raise _invalid("Input must be an object")
    return body


def _one(params: dict[str, list[str]], name: str, *, required: bool = False) -> str:
    values = params.get(name) or []
    if not values:
        if required:
            raise _invalid(f'Params must have the property "{name}"')
        return ""
    return values[-1]


def _limit_param(params: dict[str, list[str]], *, default: int) -> int:
    raw = _one(params, "limit")
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise _invalid("Params/limit must be an integer") from None
    if not 1 <= value <= 100:
        bound = "greater than 100" if value > 100 else "less than 1"
        raise _invalid(f"Params/limit can not be {bound}")
    return value


def _time_param(params: dict[str, list[str]], name: str) -> datetime | None:
    raw = _one(params, name)
    if not raw:
        return None
    try:
        return parse_time(raw)
    except ValueError:
        raise _invalid(
            f"Params/{name} must be a valid datetime or YYYY-MM-DD", "BadQueryString"
        ) from None
