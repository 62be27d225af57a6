"""A stateful X API v2 on the shapes of platforms.md §1.

One `XFake` is `api.x.com` (and its older name `api.twitter.com`): users, OAuth 2.0 user
tokens (an app with its client id, and a secret when it is a confidential client), posts,
uploads with their alt text, and per-user rate counters.

What it does, by section:

- §1.1 `POST /2/oauth2/token` (form-encoded): `grant_type=authorization_code` with the PKCE
  verifier (S256) for a code `authorize()` handed out (what the consent page would), and
  `grant_type=refresh_token`, which rotates: the used refresh token is refused afterwards
  with 400 `invalid_grant` (RFC 6749 §5.2; X's own wording is reported as
  `invalid_request` "Value passed for the token was invalid.": `refused_grant_error`
  switches to it). A confidential client authenticates with `Authorization: Basic`
  (401 `unauthorized_client` without it); a public one names `client_id` in the form.
  Access tokens live two hours ("only stay valid for two hours", §1.1).
- §1.5 an expired, revoked or unknown access token is 401 with the observed problem JSON
  `{"detail":"Unauthorized","status":401,"title":"Unauthorized","type":"about:blank"}`.
- §1.2 `GET /2/users/me`; `GET /2/tweets/search/recent` (query operators: words, "phrases",
  OR, -negation, parentheses, `from:`, `to:`, `@user`, `is:reply`, `is:quote`, `lang:`,
  `has:media`; `start_time` within the last 7 days and both bounds at least 10 s before
  the request, refused otherwise; `max_results` 10..100; `next_token`);
  `GET /2/users/:id/mentions` and `GET /2/users/:id/tweets` (`max_results` 5..100,
  `pagination_token`, `start_time`/`end_time`, `since_id`/`until_id`, `exclude`); every
  read answers only the fields asked for (`id`, `text` and `edit_history_tweet_ids` by
  default; `tweet.fields`, `expansions`, `user.fields`, `media.fields`), with `includes`
  and `meta` (`result_count`, `newest_id`, `oldest_id`, `next_token`); an unknown query
  parameter or field is 400, as X answers it. Post text comes back as X serves it: `&`,
  `<`, `>` escaped as HTML entities, every link as a t.co link (`entities.urls[]` keeps the
  original in `expanded_url`) and, on a post with media, a t.co link appended for the
  media (an URL entity with its `media_key`, shown as `pic.x.com/…`).
- §1.2 `POST /2/tweets` answers 201 `{"data":{"id","text","edit_history_tweet_ids"}}`;
  §1.5 the same text as one of the account's posts is 403 "You are not allowed to create
  a Tweet with duplicate content."; §1.2 (self-serve, since 2026-04-13) a reply to a post
  whose author neither mentioned nor quoted the account is 403 (wording observed for reply
  settings, X's own for this restriction is undocumented); at most 4 `media_ids`, each an
  upload of this user.
- §1.2 `POST /2/media/upload` (multipart `media` + `media_category`, or JSON base64) answers
  `{"data":{"id","media_key","size","expires_after_secs","image":{"w","h","image_type"}}}`
  (media key `3_<id>` for a photo, observed); §1.4 JPG/PNG/GIF/WEBP of at most 5 MB.
  `POST /2/media/metadata` takes `{"id","metadata":{"alt_text":{"text"}}}`, alt text at most
  1000 characters.
- §1.3 `x-rate-limit-limit/remaining/reset` (epoch seconds) per user and endpoint on every
  authenticated answer, 429 past them.

Faults a test switches on: `lose_create_answers` (the post is made, the answer lost:
a status or an exception), `timeline_lag` (a new post shows in the author's timeline only
after that many reads of it: X's timelines are eventually consistent).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import html
import json
import re
import secrets
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email.parser import BytesParser
from email.policy import HTTP
from io import BytesIO
from typing import Any
from urllib.parse import parse_qs

import httpx
from PIL import Image
from twitter_text import extract_urls_with_indices

from social_pipelines.platforms.content import static_rules, text_length
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

HOSTS = ("api.x.com", "api.twitter.com")
TWITTER_EPOCH_MS = 1288834974657
ACCESS_LIFETIME = timedelta(hours=2)  # §1.1
MAX_IMAGE_BYTES = 5 * 1024 * 1024  # §1.4 "image ≤ 5 MB"
MAX_ALT_TEXT = 1000  # §1.2 alt text maxLength
SEARCH_WINDOW = timedelta(days=7)  # §1.2 "Must be within the last 7 days"
NEWEST_BOUND = timedelta(seconds=10)  # both bounds at least 10 s before the request
IMAGE_TYPES = ("image/jpeg", "image/png", "image/gif", "image/webp")
# §1.3, per user per 15 minutes.
RATES = {
    "search": 300,
    "mentions": 300,
    "timeline": 900,
    "tweets": 100,
    "lookup": 900,
    "media_upload": 500,
    "media_metadata": 500,
    "users_me": 75,
}
WINDOW = 15 * 60.0
TWEET_FIELDS = frozenset(
    {
        "article",
        "attachments",
        "author_id",
        "card_uri",
        "community_id",
        "context_annotations",
        "conversation_id",
        "created_at",
        "display_text_range",
        "edit_controls",
        "edit_history_tweet_ids",
        "entities",
        "geo",
        "id",
        "in_reply_to_user_id",
        "lang",
        "media_metadata",
        "non_public_metrics",
        "note_tweet",
        "organic_metrics",
        "possibly_sensitive",
        "promoted_metrics",
        "public_metrics",
        "referenced_tweets",
        "reply_settings",
        "scopes",
        "source",
        "text",
        "withheld",
    }
)
USER_FIELDS = frozenset(
    {
        "affiliation",
        "connection_status",
        "created_at",
        "description",
        "entities",
        "id",
        "location",
        "most_recent_tweet_id",
        "name",
        "pinned_tweet_id",
        "profile_banner_url",
        "profile_image_url",
        "protected",
        "public_metrics",
        "receives_your_dm",
        "subscription_type",
        "url",
        "username",
        "verified",
        "verified_type",
        "withheld",
    }
)
MEDIA_FIELDS = frozenset(
    {
        "alt_text",
        "duration_ms",
        "height",
        "media_key",
        "non_public_metrics",
        "organic_metrics",
        "preview_image_url",
        "promoted_metrics",
        "public_metrics",
        "type",
        "url",
        "variants",
        "width",
    }
)
EXPANSIONS = frozenset(
    {
        "article.cover_media",
        "article.media_entities",
        "attachments.media_keys",
        "attachments.media_source_tweet",
        "attachments.poll_ids",
        "author_id",
        "edit_history_tweet_ids",
        "entities.mentions.username",
        "geo.place_id",
        "in_reply_to_user_id",
        "entities.note.mentions.username",
        "referenced_tweets.id",
        "referenced_tweets.id.attachments.media_keys",
        "referenced_tweets.id.author_id",
    }
)
FIELD_PARAMS = (
    "tweet.fields",
    "expansions",
    "user.fields",
    "media.fields",
    "place.fields",
    "poll.fields",
)
TIMELINE_PARAMS = frozenset(
    {
        "since_id",
        "until_id",
        "max_results",
        "pagination_token",
        "start_time",
        "end_time",
        *FIELD_PARAMS,
    }
)
SEARCH_PARAMS = frozenset(
    {
        "query",
        "start_time",
        "end_time",
        "since_id",
        "until_id",
        "max_results",
        "next_token",
        "pagination_token",
        "sort_order",
        *FIELD_PARAMS,
    }
)
DUPLICATE = "You are not allowed to create a Tweet with duplicate content."
REPLY_REFUSED = (
    "Reply to this conversation is not allowed because you have not been mentioned or "
    "otherwise engaged by the author of the post you are replying to."
)


def snowflake(when: datetime, sequence: int = 0) -> str:
    """An X id: milliseconds since X's epoch, shifted past worker and sequence bits."""
    millis = int(when.timestamp() * 1000) - TWITTER_EPOCH_MS
    return str((millis << 22) | (sequence & 0xFFF))


class XError(Exception):
    def __init__(self, status: int, body: dict[str, Any]) -> None:
        super().__init__(body.get("detail") or body.get("error"))
        self.status = status
        self.body = body


def _problem(status: int, title: str, detail: str, kind: str = "about:blank") -> XError:
    return XError(status, {"title": title, "detail": detail, "type": kind, "status": status})


def _invalid(message: str, parameters: dict[str, list[str]] | None = None) -> XError:
    """§1.5 problem JSON for an invalid request, with the offending parameters."""
    return XError(
        400,
        {
            "errors": [{"parameters": parameters or {}, "message": message}],
            "title": "Invalid Request",
            "detail": "One or more parameters to your request was invalid.",
            "type": "https://api.twitter.com/2/problems/invalid-request",
        },
    )


UNAUTHORIZED = {
    "detail": "Unauthorized",
    "status": 401,
    "title": "Unauthorized",
    "type": "about:blank",
}


@dataclass
class User:
    id: str
    username: str
    name: str
    created_at: datetime


@dataclass
class Tweet:
    id: str
    author_id: str
    text: str  # as stored and served (t.co links), before HTML escaping
    written: str  # as the author wrote it
    created_at: datetime
    urls: list[dict[str, Any]]
    mentions: list[dict[str, Any]]
    hashtags: list[dict[str, Any]]
    reply_to: str | None = None
    reply_to_user: str | None = None
    conversation_id: str = ""
    quote_of: str | None = None
    media_keys: tuple[str, ...] = ()
    lang: str = "en"
    hidden_reads: int = 0


@dataclass
class Media:
    id: str
    key: str
    owner: str
    size: int
    mime_type: str
    width: int | None
    height: int | None
    uploaded_at: datetime
    alt_text: str | None = None
    attached_to: str | None = None


@dataclass
class AccessToken:
    user_id: str
    expires_at: datetime
    scope: str


@dataclass
class Grant:
    """An authorization code a consent handed out, waiting for its exchange."""

    user_id: str
    client_id: str
    redirect_uri: str
    code_challenge: str
    scope: str
    expires_at: datetime
    access_token: str | None = None
    refresh_token: str | None = None


@dataclass(frozen=True)
class CreateAttempt:
    user_id: str
    text: str
    status: int  # 0 when the answer was lost (an exception)
    created: str | None  # the new post's id, when one was made
    reply_to: str | None = None


@dataclass
class App:
    client_id: str
    client_secret: str | None = field(default=None, repr=False)


class XFake:
    """Call it with a request; route every name in `hosts` to it."""

    def __init__(
        self,
        *,
        client_id: str = "fake-client-id",
        client_secret: str | None = None,
        clock: Clock = utcnow,
        access_lifetime: timedelta = ACCESS_LIFETIME,
        reply_restriction: bool = True,
    ) -> None:
        self.app = App(client_id, client_secret)
        self.clock = clock
        self.access_lifetime = access_lifetime
        self.reply_restriction = reply_restriction
        self.hosts = HOSTS
        self.users: dict[str, User] = {}
        self.tweets: dict[str, Tweet] = {}
        self.media: dict[str, Media] = {}
        self.access: dict[str, AccessToken] = {}
        self.refresh: dict[str, tuple[str, str]] = {}  # token -> (user id, scope)
        self.grants: dict[str, Grant] = {}
        self.rates = RateCounters(clock)
        self.calls: list[Call] = []
        self.creates: list[CreateAttempt] = []
        self.refreshes = 0
        self.issued: list[str] = []  # every access and refresh token handed out
        self.refused_grant_error = "invalid_grant"
        self.lose_create_answers: list[int | type[httpx.TransportError]] = []
        self.timeline_lag = 0
        self._sequence = 0

    # -- test set-up ------------------------------------------------------------------------

    def add_user(self, username: str, name: str | None = None) -> User:
        existing = self.user(username)
        if existing is not None:
            return existing
        created = datetime(2020, 1, 1, tzinfo=self.clock().tzinfo)
        user_id = str(int(hashlib.sha256(username.encode()).hexdigest()[:15], 16))
        user = User(user_id, username, name or username.replace("_", " ").title(), created)
        self.users[user_id] = user
        return user

    def user(self, username_or_id: str) -> User | None:
        if username_or_id in self.users:
            return self.users[username_or_id]
        wanted = username_or_id.removeprefix("@").casefold()
        return next((u for u in self.users.values() if u.username.casefold() == wanted), None)

    def authorize(
        self,
        username: str,
        *,
        redirect_uri: str,
        code_challenge: str,
        scope: str = "tweet.read tweet.write users.read media.write offline.access",
        access_token: str | None = None,
        refresh_token: str | None = None,
    ) -> str:
        """What the consent page does when the person allows the app: a code for the
        redirect (30 s to exchange it). The tokens it is exchanged for may be chosen."""
        user = self.add_user(username)
        code = secrets.token_urlsafe(24)
        self.grants[code] = Grant(
            user.id,
            self.app.client_id,
            redirect_uri,
            code_challenge,
            scope,
            self.clock() + timedelta(seconds=30),
            access_token,
            refresh_token,
        )
        return code

    def seed_post(
        self,
        username: str,
        text: str,
        *,
        created_at: datetime | None = None,
        reply_to: Tweet | None = None,
        quote_of: Tweet | None = None,
    ) -> Tweet:
        """Another account's post, written at `created_at`."""
        user = self.add_user(username)
        return self._create(user, text, created_at or self.clock(), reply_to, quote_of, ())

    def posts_of(self, username: str) -> list[Tweet]:
        user = self.user(username)
        assert user is not None, username
        return sorted(
            (t for t in self.tweets.values() if t.author_id == user.id),
            key=lambda t: int(t.id),
            reverse=True,
        )

    def expire_access_tokens(self) -> None:
        """Every access token issued so far is dead from now on."""
        for token in self.access.values():
            token.expires_at = min(token.expires_at, self.clock() - timedelta(seconds=1))

    # -- the service ------------------------------------------------------------------------

    def __call__(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        endpoint = ""
        try:
            if request.url.host not in self.hosts:
                raise _problem(404, "Not Found Error", f"unknown host {request.url.host}")
            endpoint, handler, args = self._route(request.method, path)
            response = handler(request, *args)
        except XError as error:
            response = json_response(error.status, error.body, getattr(error, "headers", None))
        except httpx.TransportError:
            self.calls.append(Call(request.method, request.url.host, path, 0, endpoint))
            raise
        self.calls.append(
            Call(request.method, request.url.host, path, response.status_code, endpoint)
        )
        return response

    def _route(self, method: str, path: str) -> tuple[str, Any, tuple[str, ...]]:
        routes: list[tuple[str, str, str, Any]] = [
            ("POST", r"/2/oauth2/token", "token", self._token),
            ("GET", r"/2/users/me", "users_me", self._me),
            ("GET", r"/2/tweets/search/recent", "search", self._search),
            ("GET", r"/2/users/(\d+)/mentions", "mentions", self._mentions),
            ("GET", r"/2/users/(\d+)/tweets", "timeline", self._timeline),
            ("GET", r"/2/tweets", "lookup", self._lookup),
            ("POST", r"/2/tweets", "tweets", self._create_tweet),
            ("POST", r"/2/media/upload", "media_upload", self._upload),
            ("POST", r"/2/media/metadata", "media_metadata", self._metadata),
        ]
        allowed = []
        for verb, pattern, name, handler in routes:
            match = re.fullmatch(pattern, path)
            if match is None:
                continue
            if verb == method:
                return name, handler, match.groups()
            allowed.append(verb)
        if allowed:
            raise _problem(405, "Method Not Allowed", f"{method} is not allowed on {path}")
        raise _problem(
            404,
            "Not Found Error",
            f"Sorry, that page does not exist: {path}",
            "https://api.twitter.com/2/problems/resource-not-found",
        )

    # -- auth -------------------------------------------------------------------------------

    def _authed(self, request: httpx.Request, endpoint: str) -> tuple[User, dict[str, str]]:
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        held = self.access.get(token.strip()) if scheme.lower() == "bearer" else None
        if held is None or held.expires_at <= self.clock():
            raise XError(401, dict(UNAUTHORIZED))
        user = self.users[held.user_id]
        allowed, limit, remaining, reset = self.rates.take(
            endpoint, user.id, limit=RATES[endpoint], seconds=WINDOW
        )
        headers = {
            "x-rate-limit-limit": str(limit),
            "x-rate-limit-remaining": str(remaining),
            "x-rate-limit-reset": str(int(reset)),
        }
        if not allowed:
            error = XError(
                429,
                {
                    "title": "Too Many Requests",
                    "detail": "Too Many Requests",
                    "type": "about:blank",
                    "status": 429,
                },
            )
            error.headers = headers  # type: ignore[attr-defined]
            raise error
        return user, headers

    def _issue(
        self,
        user_id: str,
        scope: str,
        *,
        access_token: str | None = None,
        refresh_token: str | None = None,
    ) -> dict[str, Any]:
        access = access_token or _token_value()
        self.issued.append(access)
        self.access[access] = AccessToken(user_id, self.clock() + self.access_lifetime, scope)
        body: dict[str, Any] = {
            "token_type": "bearer",
            "expires_in": int(self.access_lifetime.total_seconds()),
            "access_token": access,
            "scope": scope,
        }
        if "offline.access" in scope.split():
            refresh = refresh_token or _token_value()
            self.issued.append(refresh)
            self.refresh[refresh] = (user_id, scope)
            body["refresh_token"] = refresh
        return body

    def _client_ok(self, request: httpx.Request, form: dict[str, str]) -> None:
        """Confidential clients send Basic credentials; public ones their client_id."""
        if self.app.client_secret is not None:
            header = request.headers.get("authorization", "")
            scheme, _, encoded = header.partition(" ")
            try:
                pair = base64.b64decode(encoded, validate=True).decode()
            except (binascii.Error, UnicodeDecodeError):
                pair = ""
            client_id, _, client_secret = pair.partition(":")
            if (
                scheme.lower() != "basic"
                or client_id != self.app.client_id
                or not hmac.compare_digest(client_secret, self.app.client_secret)
            ):
                raise XError(
                    401,
                    {
                        "error": "unauthorized_client",
                        "error_description": "Missing valid authorization header",
                    },
                )
            return
        if form.get("client_id") != self.app.client_id:
            raise XError(
                400,
                {
                    "error": "invalid_request",
                    "error_description": "Missing required parameter [client_id].",
                },
            )

    def _token(self, request: httpx.Request) -> httpx.Response:
        """§1.1: the token endpoint, form-encoded."""
        if not request.headers.get("content-type", "").startswith(
            "application/x-www-form-urlencoded"
        ):
            raise XError(
                400,
                {"error": "invalid_request", "error_description": "Unsupported content type"},
            )
        form = {k: v[-1] for k, v in parse_qs(request.content.decode()).items()}
        self._client_ok(request, form)
        grant = form.get("grant_type")
        refused = {
            "error": self.refused_grant_error,
            "error_description": "Value passed for the token was invalid.",
        }
        if grant == "refresh_token":
            held = self.refresh.pop(form.get("refresh_token", ""), None)
            if held is None:
                raise XError(400, refused)
            self.refreshes += 1
            return json_response(200, self._issue(held[0], held[1]))
        if grant == "authorization_code":
            code = self.grants.pop(form.get("code", ""), None)
            verifier = form.get("code_verifier", "")
            digest = hashlib.sha256(verifier.encode()).digest()
            challenge = base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
            if (
                code is None
                or code.expires_at <= self.clock()
                or code.redirect_uri != form.get("redirect_uri")
                or not hmac.compare_digest(code.code_challenge, challenge)
            ):
                raise XError(400, refused)
            return json_response(
                200,
                self._issue(
                    code.user_id,
                    code.scope,
                    access_token=code.access_token,
                    refresh_token=code.refresh_token,
                ),
            )
        raise XError(
            400,
            {"error": "unsupported_grant_type", "error_description": f"grant_type {grant!r}"},
        )

    # -- reads ------------------------------------------------------------------------------

    def _me(self, request: httpx.Request) -> httpx.Response:
        user, headers = self._authed(request, "users_me")
        params = _params(request, frozenset(FIELD_PARAMS))
        fields = _fields(params, "user.fields", USER_FIELDS)
        return json_response(200, {"data": self._user_json(user, fields)}, headers)

    def _search(self, request: httpx.Request) -> httpx.Response:
        """§1.2 recent search, newest first."""
        _, headers = self._authed(request, "search")
        params = _params(request, SEARCH_PARAMS)
        query = params.get("query")
        if not query:
            raise _invalid("The `query` query parameter can not be empty", {"query": [""]})
        if len(query) > 512:
            raise _invalid("The `query` query parameter is too long (512)", {"query": [query]})
        matcher = _SearchQuery(query, self)
        start, end = self._bounds(params, search=True)
        posts = [
            t for t in self.tweets.values() if matcher.matches(t) and _within(t, params, start, end)
        ]
        return self._page(
            request,
            params,
            posts,
            headers,
            sizes=(10, 100),
            cursor_param=("next_token", "pagination_token"),
        )

    def _mentions(self, request: httpx.Request, user_id: str) -> httpx.Response:
        _, headers = self._authed(request, "mentions")
        self._authed_user_path(user_id)
        params = _params(request, TIMELINE_PARAMS)
        start, end = self._bounds(params, search=False)
        mentioned = self.users[user_id].username.casefold()
        posts = [
            t
            for t in self.tweets.values()
            if any(m["username"].casefold() == mentioned for m in t.mentions)
            and _within(t, params, start, end)
        ]
        return self._page(request, params, posts, headers, sizes=(5, 100))

    def _timeline(self, request: httpx.Request, user_id: str) -> httpx.Response:
        _, headers = self._authed(request, "timeline")
        self._authed_user_path(user_id)
        params = _params(request, TIMELINE_PARAMS | {"exclude"})
        start, end = self._bounds(params, search=False)
        exclude = set(filter(None, params.get("exclude", "").split(",")))
        if exclude - {"replies", "retweets"}:
            raise _invalid(
                "The `exclude` query parameter value is not one of [replies,retweets]",
                {"exclude": [params["exclude"]]},
            )
        posts = []
        for tweet in self.tweets.values():
            if tweet.author_id != user_id or not _within(tweet, params, start, end):
                continue
            if "replies" in exclude and tweet.reply_to:
                continue
            if tweet.hidden_reads > 0:
                tweet.hidden_reads -= 1  # not in this read yet (eventual consistency)
                continue
            posts.append(tweet)
        return self._page(request, params, posts, headers, sizes=(5, 100))

    def _lookup(self, request: httpx.Request) -> httpx.Response:
        _, headers = self._authed(request, "lookup")
        params = _params(request, frozenset({"ids", *FIELD_PARAMS}))
        ids = [i for i in params.get("ids", "").split(",") if i]
        if not ids or len(ids) > 100:
            raise _invalid("The `ids` query parameter must hold 1 to 100 ids", {"ids": ids})
        found = [self.tweets[i] for i in ids if i in self.tweets]
        body = self._tweets_body(params, found)
        missing = [i for i in ids if i not in self.tweets]
        if missing:
            body["errors"] = [
                {
                    "value": i,
                    "detail": f"Could not find tweet with ids: [{i}].",
                    "title": "Not Found Error",
                    "resource_type": "tweet",
                    "parameter": "ids",
                    "resource_id": i,
                    "type": "https://api.twitter.com/2/problems/resource-not-found",
                }
                for i in missing
            ]
        return json_response(200, body, headers)

    def _authed_user_path(self, user_id: str) -> None:
        if user_id not in self.users:
            raise XError(
                200,
                {
                    "errors": [
                        {
                            "value": user_id,
                            "detail": f"Could not find user with id: [{user_id}].",
                            "title": "Not Found Error",
                            "resource_type": "user",
                            "parameter": "id",
                            "resource_id": user_id,
                            "type": "https://api.twitter.com/2/problems/resource-not-found",
                        }
                    ]
                },
            )

    def _bounds(
        self, params: dict[str, str], *, search: bool
    ) -> tuple[datetime | None, datetime | None]:
        now = self.clock()
        bounds: dict[str, datetime] = {}
        for name in ("start_time", "end_time"):
            if name not in params:
                continue
            try:
                bounds[name] = parse_time(params[name])
            except ValueError:
                raise _invalid(
                    f"Invalid '{name}':'{params[name]}'. '{name}' must be a valid RFC 3339 time.",
                    {name: [params[name]]},
                ) from None
            if bounds[name] > now - NEWEST_BOUND:
                raise _invalid(
                    f"Invalid '{name}':'{params[name]}'. '{name}' must be a minimum of 10 "
                    "seconds prior to the request time.",
                    {name: [params[name]]},
                )
        start, end = bounds.get("start_time"), bounds.get("end_time")
        oldest = now - SEARCH_WINDOW
        if search and start is not None and start < oldest:
            raise _invalid(
                f"Invalid 'start_time':'{params['start_time']}'. 'start_time' must be on or "
                f"after {iso(oldest)}",
                {"start_time": [params["start_time"]]},
            )
        if start is not None and end is not None and start >= end:
            raise _invalid(
                "Invalid 'start_time' and 'end_time': 'end_time' must be after 'start_time'.",
                {"start_time": [params["start_time"]], "end_time": [params["end_time"]]},
            )
        if search and start is None:
            start = oldest
        return start, end

    def _page(
        self,
        request: httpx.Request,
        params: dict[str, str],
        posts: list[Tweet],
        headers: dict[str, str],
        *,
        sizes: tuple[int, int],
        cursor_param: tuple[str, ...] = ("pagination_token",),
    ) -> httpx.Response:
        low, high = sizes
        raw = params.get("max_results", str(10))
        try:
            size = int(raw)
        except ValueError:
            size = -1
        if not low <= size <= high:
            raise _invalid(
                f"The `max_results` query parameter value [{raw}] is not between {low} and {high}",
                {"max_results": [raw]},
            )
        posts = sorted(posts, key=lambda t: int(t.id), reverse=True)
        cursor = next((params[p] for p in cursor_param if p in params), None)
        if cursor is not None:
            try:
                offset = int(base64.urlsafe_b64decode(cursor.encode()).decode())
            except (ValueError, binascii.Error):
                raise _invalid(
                    f"The `{cursor_param[0]}` query parameter value [{cursor}] is not valid",
                    {cursor_param[0]: [cursor]},
                ) from None
        else:
            offset = 0
        page = posts[offset : offset + size]
        body = self._tweets_body(params, page)
        meta: dict[str, Any] = {"result_count": len(page)}
        if page:
            meta["newest_id"] = page[0].id
            meta["oldest_id"] = page[-1].id
        if offset + size < len(posts):
            meta["next_token"] = base64.urlsafe_b64encode(str(offset + size).encode()).decode()
        if offset:
            meta["previous_token"] = base64.urlsafe_b64encode(
                str(max(0, offset - size)).encode()
            ).decode()
        body["meta"] = meta
        return json_response(200, body, headers)

    def _tweets_body(self, params: dict[str, str], tweets: list[Tweet]) -> dict[str, Any]:
        tweet_fields = _fields(params, "tweet.fields", TWEET_FIELDS)
        user_fields = _fields(params, "user.fields", USER_FIELDS)
        media_fields = _fields(params, "media.fields", MEDIA_FIELDS)
        expansions = _fields(params, "expansions", EXPANSIONS)
        body: dict[str, Any] = {}
        if tweets:
            body["data"] = [self._tweet_json(t, tweet_fields) for t in tweets]
        includes: dict[str, list[dict[str, Any]]] = {}
        user_ids: list[str] = []
        if "author_id" in expansions:
            user_ids += [t.author_id for t in tweets]
        if "in_reply_to_user_id" in expansions:
            user_ids += [t.reply_to_user for t in tweets if t.reply_to_user]
        if "entities.mentions.username" in expansions:
            user_ids += [m["id"] for t in tweets for m in t.mentions if "id" in m]
        if user_ids:
            includes["users"] = [
                self._user_json(self.users[i], user_fields) for i in dict.fromkeys(user_ids)
            ]
        if "attachments.media_keys" in expansions:
            keys = [k for t in tweets for k in t.media_keys]
            media = [m for m in self.media.values() if m.key in keys]
            if media:
                includes["media"] = [_media_json(m, media_fields) for m in media]
        if "referenced_tweets.id" in expansions:
            refs = [r for t in tweets for r in (t.reply_to, t.quote_of) if r in self.tweets]
            if refs:
                includes["tweets"] = [
                    self._tweet_json(self.tweets[r], tweet_fields) for r in dict.fromkeys(refs)
                ]
        if includes:
            body["includes"] = includes
        return body

    def _user_json(self, user: User, fields: set[str]) -> dict[str, Any]:
        data: dict[str, Any] = {"id": user.id, "name": user.name, "username": user.username}
        if "created_at" in fields:
            data["created_at"] = iso(user.created_at)
        if "protected" in fields:
            data["protected"] = False
        return data

    def _tweet_json(self, tweet: Tweet, fields: set[str]) -> dict[str, Any]:
        data: dict[str, Any] = {
            "id": tweet.id,
            "text": html.escape(tweet.text, quote=False),
            "edit_history_tweet_ids": [tweet.id],
        }
        if "author_id" in fields:
            data["author_id"] = tweet.author_id
        if "created_at" in fields:
            data["created_at"] = iso(tweet.created_at)
        if "conversation_id" in fields:
            data["conversation_id"] = tweet.conversation_id
        if "in_reply_to_user_id" in fields and tweet.reply_to_user:
            data["in_reply_to_user_id"] = tweet.reply_to_user
        if "lang" in fields:
            data["lang"] = tweet.lang
        if "referenced_tweets" in fields:
            refs = []
            if tweet.reply_to:
                refs.append({"type": "replied_to", "id": tweet.reply_to})
            if tweet.quote_of:
                refs.append({"type": "quoted", "id": tweet.quote_of})
            if refs:
                data["referenced_tweets"] = refs
        if "attachments" in fields and tweet.media_keys:
            data["attachments"] = {"media_keys": list(tweet.media_keys)}
        if "entities" in fields:
            entities = {
                name: values
                for name, values in (
                    ("urls", tweet.urls),
                    ("mentions", tweet.mentions),
                    ("hashtags", tweet.hashtags),
                )
                if values
            }
            if entities:
                data["entities"] = entities
        if "possibly_sensitive" in fields:
            data["possibly_sensitive"] = False
        if "reply_settings" in fields:
            data["reply_settings"] = "everyone"
        return data

    # -- writes -----------------------------------------------------------------------------

    def _create_tweet(self, request: httpx.Request) -> httpx.Response:
        """§1.2: `{"text", "reply"?: {"in_reply_to_tweet_id"}, "media"?: {"media_ids"}}`."""
        user, headers = self._authed(request, "tweets")
        body = _json_body(request)
        allowed = {
            "text",
            "reply",
            "media",
            "quote_tweet_id",
            "reply_settings",
            "for_super_followers_only",
            "nullcast",
            "geo",
            "poll",
            "card_uri",
            "community_id",
            "direct_message_deep_link",
            "share_with_followers",
            "made_with_ai",
            "paid_partnership",
        }
        for key in body:
            if key not in allowed:
                raise _invalid(
                    f"$.{key}: is not defined in the schema and the schema does not allow "
                    "additional properties",
                    {key: [str(body[key])]},
                )
        text = body.get("text", "")
        media = body.get("media") or {}
        reply = body.get("reply") or {}
        if not isinstance(text, str) or not isinstance(media, dict) or not isinstance(reply, dict):
            raise _invalid("$.text, $.media and $.reply must be a string and objects")
        media_ids = media.get("media_ids") or []
        if not text and not media_ids:
            raise _invalid("$.text: a post needs text or media", {"text": [""]})
        if text_length(text, static_rules("x")) > 280:
            raise _invalid("$.text: Your Tweet text is too long.", {"text": [text]})
        if not isinstance(media_ids, list) or len(media_ids) > 4:
            raise _invalid("$.media.media_ids: must hold 1 to 4 ids", {"media_ids": media_ids})
        uploads = []
        for media_id in media_ids:
            upload = self.media.get(str(media_id))
            if (
                upload is None
                or upload.owner != user.id
                or upload.attached_to is not None
                or upload.uploaded_at + timedelta(days=1) < self.clock()
            ):
                raise _invalid("Your media IDs are invalid.", {"media.media_ids": [str(media_id)]})
            uploads.append(upload)
        target = None
        if reply:
            target = self.tweets.get(str(reply.get("in_reply_to_tweet_id", "")))
            if target is None:
                raise _invalid(
                    "The Post you are replying to has been deleted or is not visible to you.",
                    {"reply.in_reply_to_tweet_id": [str(reply.get("in_reply_to_tweet_id"))]},
                )
            if self.reply_restriction and not self._summoned(user, target):
                self.creates.append(CreateAttempt(user.id, text, 403, None, target.id))
                raise _problem(403, "Forbidden", REPLY_REFUSED)
        written = unicodedata.normalize("NFC", text)
        if self._duplicate(user, written):
            self.creates.append(
                CreateAttempt(user.id, text, 403, None, target.id if target else None)
            )
            raise _problem(403, "Forbidden", DUPLICATE)
        quote = self.tweets.get(str(body["quote_tweet_id"])) if "quote_tweet_id" in body else None
        tweet = self._create(user, written, self.clock(), target, quote, tuple(uploads))
        tweet.hidden_reads = self.timeline_lag
        if self.lose_create_answers:
            fault = self.lose_create_answers.pop(0)
            if isinstance(fault, int):
                self.creates.append(CreateAttempt(user.id, text, fault, tweet.id, tweet.reply_to))
                raise _problem(fault, "Internal Server Error", "Internal Server Error")
            self.creates.append(CreateAttempt(user.id, text, 0, tweet.id, tweet.reply_to))
            raise fault("the answer was lost on the way (fault)", request=request)
        self.creates.append(CreateAttempt(user.id, text, 201, tweet.id, tweet.reply_to))
        return json_response(
            201,
            {
                "data": {
                    "id": tweet.id,
                    "text": html.escape(tweet.text, quote=False),
                    "edit_history_tweet_ids": [tweet.id],
                }
            },
            headers,
        )

    def _summoned(self, user: User, target: Tweet) -> bool:
        """§1.2: the post's author mentioned the account or quoted one of its posts (an
        account's own posts it may always answer: it is their author)."""
        if target.author_id == user.id:
            return True
        if any(m.get("id") == user.id for m in target.mentions):
            return True
        quoted = self.tweets.get(target.quote_of or "")
        return quoted is not None and quoted.author_id == user.id

    def _duplicate(self, user: User, written: str) -> bool:
        """§1.5: the same text as one of the account's posts (X's window for it is not
        documented: a day here)."""
        since = self.clock() - timedelta(days=1)
        return any(
            t.author_id == user.id
            and t.created_at >= since
            and t.written.strip() == written.strip()
            for t in self.tweets.values()
        )

    def _create(
        self,
        user: User,
        written: str,
        when: datetime,
        reply_to: Tweet | None,
        quote_of: Tweet | None,
        uploads: Iterable[Media],
    ) -> Tweet:
        self._sequence = (self._sequence + 1) % 4096
        tweet_id = snowflake(when, self._sequence)
        text = ""
        urls: list[dict[str, Any]] = []
        cursor = 0
        for found in extract_urls_with_indices(written):
            start, end = found["indices"]
            text += written[cursor:start]
            short = "https://t.co/" + _short(found["url"] + tweet_id)
            url = found["url"] if "://" in found["url"] else "http://" + found["url"]
            shown = re.sub(r"^https?://(www\.)?", "", url)
            urls.append(
                {
                    "start": len(text),
                    "end": len(text) + len(short),
                    "url": short,
                    "expanded_url": url,
                    "display_url": shown if len(shown) <= 26 else shown[:25] + "…",
                }
            )
            text += short
            cursor = end
        text += written[cursor:]
        uploads = list(uploads)
        media_keys = tuple(m.key for m in uploads)
        if uploads:
            short = "https://t.co/" + _short("media" + tweet_id)
            text = f"{text} {short}" if text else short
            urls.append(
                {
                    "start": len(text) - len(short),
                    "end": len(text),
                    "url": short,
                    "expanded_url": f"https://x.com/{user.username}/status/{tweet_id}/photo/1",
                    "display_url": f"pic.x.com/{_short('pic' + tweet_id)}",
                    "media_key": media_keys[0],
                }
            )
            for upload in uploads:
                upload.attached_to = tweet_id
        mentions = []
        for match in re.finditer(r"(?<![\w@])@(\w{1,15})", text):
            mentioned = self.user(match.group(1))
            mention: dict[str, Any] = {
                "start": match.start(),
                "end": match.end(),
                "username": mentioned.username if mentioned else match.group(1),
            }
            if mentioned is not None:
                mention["id"] = mentioned.id
            mentions.append(mention)
        hashtags = [
            {"start": m.start(), "end": m.end(), "tag": m.group(1)}
            for m in re.finditer(r"(?<![\w#])#(\w+)", text)
        ]
        tweet = Tweet(
            id=tweet_id,
            author_id=user.id,
            text=text,
            written=written,
            created_at=when,
            urls=urls,
            mentions=mentions,
            hashtags=hashtags,
            reply_to=reply_to.id if reply_to else None,
            reply_to_user=reply_to.author_id if reply_to else None,
            conversation_id=(reply_to.conversation_id if reply_to else tweet_id),
            quote_of=quote_of.id if quote_of else None,
            media_keys=media_keys,
        )
        self.tweets[tweet_id] = tweet
        return tweet

    def _upload(self, request: httpx.Request) -> httpx.Response:
        """§1.2 simple upload: multipart `media` + `media_category`, or JSON base64."""
        user, headers = self._authed(request, "media_upload")
        content_type = request.headers.get("content-type", "")
        if content_type.startswith("multipart/form-data"):
            parts = _multipart(request)
            data = parts.get("media", (b"", ""))[0]
            category = parts.get("media_category", (b"", ""))[0].decode()
            declared = parts.get("media", (b"", ""))[1]
        elif "json" in content_type:
            body = _json_body(request)
            try:
                data = base64.b64decode(str(body.get("media", "")), validate=True)
            except binascii.Error:
                raise _invalid("$.media: must be base64", {"media": ["…"]}) from None
            category = str(body.get("media_category", ""))
            declared = str(body.get("media_type", ""))
        else:
            raise _invalid("The request must be multipart/form-data or JSON")
        if not data:
            raise _invalid("$.media: is missing but it is required", {"media": []})
        if category not in ("tweet_image", "tweet_gif", "tweet_video", "dm_image", "subtitles"):
            raise _invalid(
                f"$.media_category: '{category}' is not one of the allowed values",
                {"media_category": [category]},
            )
        mime = sniff(data) or declared
        if mime not in IMAGE_TYPES:
            raise _invalid(f"media type {mime or 'unknown'} is not supported", {"media": [mime]})
        if len(data) > MAX_IMAGE_BYTES:
            raise _invalid(
                f"media is {len(data)} bytes; images may be at most {MAX_IMAGE_BYTES}",
                {"media": [str(len(data))]},
            )
        try:
            with Image.open(BytesIO(data)) as image:
                width, height = image.size
        except Exception:
            raise _invalid("media could not be processed", {"media": ["…"]}) from None
        self._sequence = (self._sequence + 1) % 4096
        media_id = snowflake(self.clock(), self._sequence)
        upload = Media(
            media_id, f"3_{media_id}", user.id, len(data), mime, width, height, self.clock()
        )
        self.media[media_id] = upload
        return json_response(
            200,
            {
                "data": {
                    "id": media_id,
                    "media_key": upload.key,
                    "size": len(data),
                    "expires_after_secs": 86400,
                    "image": {"image_type": mime, "w": width, "h": height},
                }
            },
            headers,
        )

    def _metadata(self, request: httpx.Request) -> httpx.Response:
        """§1.2: `{"id","metadata":{"alt_text":{"text"}}}`, text at most 1000 characters."""
        user, headers = self._authed(request, "media_metadata")
        body = _json_body(request)
        media_id = str(body.get("id", ""))
        upload = self.media.get(media_id)
        if upload is None or upload.owner != user.id:
            raise _invalid(f"$.id: media {media_id!r} not found", {"id": [media_id]})
        alt = ((body.get("metadata") or {}).get("alt_text") or {}).get("text")
        if not isinstance(alt, str):
            raise _invalid("$.metadata.alt_text.text: is missing but it is required")
        if len(alt) > MAX_ALT_TEXT:
            raise _invalid(
                f"$.metadata.alt_text.text: must be at most {MAX_ALT_TEXT} characters",
                {"alt_text": [str(len(alt))]},
            )
        upload.alt_text = alt
        return json_response(
            200,
            {"data": {"id": media_id, "associated_metadata": {"alt_text": {"text": alt}}}},
            headers,
        )


class _SearchQuery:
    """X's query language, the operators a brand's search uses: words (whole words, any
    case), "exact phrases", `OR`, `-` negation, parentheses, `from:`, `to:`, `@user`,
    `#tag`, `is:reply`, `is:quote`, `is:retweet`, `lang:`, `has:media`, `has:links`."""

    def __init__(self, query: str, fake: XFake) -> None:
        self.fake = fake
        self.tokens = re.findall(r'"[^"]*"|\(|\)|-?[^\s()]+', query)
        self.position = 0
        self.tree = self._or()
        if self.position != len(self.tokens):
            raise _invalid(f"There were errors processing your request: bad query {query!r}")

    def _or(self) -> Any:
        terms = [self._and()]
        while self._peek() == "OR":
            self.position += 1
            terms.append(self._and())
        return ("or", terms)

    def _and(self) -> Any:
        terms = []
        while (token := self._peek()) is not None and token not in (")", "OR"):
            terms.append(self._unary())
        if not terms:
            raise _invalid("There were errors processing your request: empty query group")
        return ("and", terms)

    def _unary(self) -> Any:
        token = self._peek()
        assert token is not None
        if token == "(":
            self.position += 1
            inner = self._or()
            if self._peek() != ")":
                raise _invalid("There were errors processing your request: missing ')'")
            self.position += 1
            return inner
        self.position += 1
        if token.startswith("-") and len(token) > 1:
            return ("not", self._atom(token[1:]))
        return self._atom(token)

    def _atom(self, token: str) -> Any:
        if token.startswith('"'):
            return ("phrase", token.strip('"').casefold())
        kind, _, value = token.partition(":")
        if value and kind in ("from", "to", "is", "lang", "has"):
            return (kind, value.casefold())
        return ("word", token.casefold())

    def _peek(self) -> str | None:
        return self.tokens[self.position] if self.position < len(self.tokens) else None

    def matches(self, tweet: Tweet) -> bool:
        return self._eval(self.tree, tweet)

    def _eval(self, node: Any, tweet: Tweet) -> bool:
        kind = node[0]
        if kind == "or":
            return any(self._eval(n, tweet) for n in node[1])
        if kind == "and":
            return all(self._eval(n, tweet) for n in node[1])
        if kind == "not":
            return not self._eval(node[1], tweet)
        value = node[1]
        text = tweet.written.casefold()
        author = self.fake.users[tweet.author_id].username.casefold()
        if kind == "phrase":
            return value in text
        if kind == "word":
            if value.startswith("@"):
                return any(m["username"].casefold() == value[1:] for m in tweet.mentions)
            return re.search(r"(?<![\w#@])" + re.escape(value) + r"(?!\w)", text) is not None
        if kind == "from":
            return author == value.removeprefix("@")
        if kind == "to":
            replied = self.fake.users.get(tweet.reply_to_user or "")
            return replied is not None and replied.username.casefold() == value.removeprefix("@")
        if kind == "lang":
            return tweet.lang == value
        if kind == "has":
            return {"media": bool(tweet.media_keys), "links": bool(tweet.urls)}.get(value, False)
        return {
            "reply": tweet.reply_to is not None,
            "quote": tweet.quote_of is not None,
            "retweet": False,
        }.get(value, False)


def _within(
    tweet: Tweet, params: dict[str, str], start: datetime | None, end: datetime | None
) -> bool:
    if start is not None and tweet.created_at < start:
        return False
    if end is not None and tweet.created_at >= end:
        return False
    if "since_id" in params and int(tweet.id) <= int(params["since_id"]):
        return False
    return not ("until_id" in params and int(tweet.id) >= int(params["until_id"]))


def _media_json(media: Media, fields: set[str]) -> dict[str, Any]:
    data: dict[str, Any] = {"media_key": media.key, "type": "photo"}
    if "width" in fields and media.width:
        data["width"] = media.width
    if "height" in fields and media.height:
        data["height"] = media.height
    if "alt_text" in fields and media.alt_text is not None:
        data["alt_text"] = media.alt_text
    if "url" in fields:
        data["url"] = f"https://pbs.twimg.com/media/{_short(media.id)}.jpg"
    return data


def _params(request: httpx.Request, allowed: frozenset[str]) -> dict[str, str]:
    """The query's parameters, each once; one X does not take is 400, as X answers."""
    parsed = parse_qs(request.url.query.decode(), keep_blank_values=True)
    for name, values in parsed.items():
        if name not in allowed:
            raise _invalid(
                f"The query parameter [{name}] is not one of [{','.join(sorted(allowed))}]",
                {name: values},
            )
        if len(values) > 1:
            raise _invalid(f"Duplicate query parameter [{name}]", {name: values})
    return {name: values[0] for name, values in parsed.items()}


def _fields(params: dict[str, str], name: str, allowed: frozenset[str]) -> set[str]:
    values = {v for v in params.get(name, "").split(",") if v}
    unknown = sorted(values - allowed)
    if unknown:
        raise _invalid(
            f"The `{name}` query parameter value [{unknown[0]}] is not one of "
            f"[{','.join(sorted(allowed))}]",
            {name: unknown},
        )
    return values


def _json_body(request: httpx.Request) -> dict[str, Any]:
    if "json" not in request.headers.get("content-type", ""):
        raise _invalid("The request must be application/json")
    try:
        body = json.loads(request.content or b"")
    except ValueError:
        raise _invalid("The request body is not valid JSON") from None
    if not isinstance(body, dict):
        raise _invalid("The request body must be a JSON object")
    return body


def _multipart(request: httpx.Request) -> dict[str, tuple[bytes, str]]:
    """`{name: (bytes, content type)}` of a multipart/form-data body."""
    head = f"Content-Type: {request.headers['content-type']}\r\n\r\n".encode()
    message = BytesParser(policy=HTTP).parsebytes(head + request.content)
    parts: dict[str, tuple[bytes, str]] = {}
    for part in message.iter_parts():  # type: ignore[attr-defined]
        name = part.get_param("name", header="content-disposition")
        payload = part.get_payload(decode=True) or b""
        parts[str(name)] = (payload, part.get_content_type() if part.get_filename() else "")
    return parts


def _short(seed: str) -> str:
    return base64.b32encode(hashlib.sha256(seed.encode()).digest()).decode()[:10].lower()


def _token_value() -> str:
    return base64.urlsafe_b64encode(secrets.token_bytes(48)).decode().rstrip("=")
