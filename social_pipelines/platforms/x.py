"""X (Twitter) API v2: account, policy, OAuth 2.0 user tokens, adapter.

Facts and their sources are in `../shared/reference/platforms.md` §1; the comments name the
section. What X does not document is designed to fail loudly, with X's own words, when the
guess is wrong: an answer we do not recognise is never taken for success.

- Tokens: OAuth 2.0 authorization code with PKCE (`accounts connect` drives it: a person
  consents in a browser), refreshed with the refresh token that `offline.access` grants.
  The session (`resilience/sessions.py`) keeps them; this module only speaks to X.
- No idempotency key is documented for `POST /2/tweets` (§1.5, unconfirmed), so nothing is
  sent: a create that may have left is found again by `find_delivery` among the account's
  own posts (the post a reply answers, or a publish's text and uploads), and X's 403
  "duplicate content" is `Duplicate`, reconciled, never failed.
- Self-serve apps may reply only to posts whose author mentioned or quoted the account
  (§1.2, since 2026-04-13): a reply campaign reads the account's mentions by default, and a
  refused reply is `Rejected`, never retried.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import httpx
from pydantic import Field, SecretStr, field_validator

from social_pipelines.errors import (
    AuthExpired,
    ConfigError,
    Duplicate,
    Inconclusive,
    OutcomeUnknown,
    QuotaExhausted,
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
from social_pipelines.platforms.auth import Session, SessionAuth, TokenSet, pkce_pair
from social_pipelines.platforms.capabilities import (
    Capability,
    ClosedOnExit,
    PlatformSpec,
    Source,
)
from social_pipelines.platforms.content import static_rules, text_length
from social_pipelines.platforms.http import (
    Door,
    build_client,
    parse_reset,
    retry_after_seconds,
    route,
    status_error,
)
from social_pipelines.platforms.oauth import OAuthClient, authorization_url, read_token_answer
from social_pipelines.platforms.paging import Pages, collect
from social_pipelines.platforms.policy import HOUR, MINUTE, PlatformPolicy, rates
from social_pipelines.platforms.text import matches_query

__all__ = [
    "AUTHENTICATOR",
    "NAME",
    "POLICY",
    "SPEC",
    "XAccount",
    "XAuthenticator",
    "XPlatform",
    "authorize_url",
    "connect",
    "exchange_code",
    "pkce_pair",
]

NAME = "x"
API_URL = "https://api.x.com"  # §1.1 (the OpenAPI `servers`)
# §1.1: the consent page, as X's OAuth 2.0 guides write it (user-access-token.mdx,
# authorization-code.mdx) and its Python SDK defaults to (`authorization_base_url`
# "https://x.com/i"). The OpenAPI securityScheme names https://api.x.com/2/oauth2/authorize,
# which is what that page itself posts the person's consent to, not a page for a browser.
AUTHORIZE_URL = "https://x.com/i/oauth2/authorize"
TOKEN_PATH = "/2/oauth2/token"  # noqa: S105 - a path (§1.1, on the API host)
# §1.1: what posting, replying, uploading and refreshing need (offline.access: a refresh
# token; without it the access token dies after two hours and a person must connect again).
DEFAULT_SCOPES = ("tweet.read", "tweet.write", "users.read", "media.write", "offline.access")

ME_PATH = "/2/users/me"
SEARCH_PATH = "/2/tweets/search/recent"
TWEETS_PATH = "/2/tweets"
UPLOAD_PATH = "/2/media/upload"
METADATA_PATH = "/2/media/metadata"
POST_URL = "https://x.com/{handle}/status/{id}"
ANY_POST_URL = "https://x.com/i/status/{id}"  # X's own address for a post of any account

# §1.2: what a hit needs: its author (the expansion gives the username), conversation,
# the post it answers, its links (to restore them) and language.
SEARCH_FIELDS = "created_at,author_id,conversation_id,referenced_tweets,lang,entities"
# find_delivery: the post a reply answers, links to restore, attachments to compare.
OWN_FIELDS = "created_at,referenced_tweets,entities,attachments"
# §1.2: recent search takes 10..100 results a page, the mentions timeline 5..100, the
# user timeline 5..100.
SEARCH_PAGE_SIZES = (10, 100)
TIMELINE_PAGE_SIZES = (5, 100)
# A search stops after this many pages whatever it found (own posts and non-matching
# mentions can fill pages); the result says so, so the run can warn.
MAX_SEARCH_PAGES = 25
# §1.2: start_time "Must be within the last 7 days" for recent search; a minute of margin
# keeps a request in flight (and our clock's skew) inside it.
SEARCH_WINDOW = timedelta(days=7) - timedelta(minutes=1)
# start_time and end_time must be at least 10 seconds before the request (widely reported
# error text, unconfirmed by X's reference): a later `until` is left to the local filter.
NEWEST_BOUND = timedelta(seconds=15)
# The mentions timeline serves the newest 800 mentions whatever their age (X's timelines
# introduction; unconfirmed for v2's exact figure): past that, older ones are out of reach.
MENTIONS_REACH = 800
# Reconciliation looks through at most this many of the account's own posts: the user
# timeline serves the newest 3,200 (§1.2's endpoint; the figure is widely reported).
RECONCILE_LIMIT = 3200
# §1.4: alt text at most 1000 characters (`CreateMediaMetadataMetadataAltText.maxLength`).
MAX_ALT_TEXT = 1000
MEDIA_CATEGORY = "tweet_image"  # §1.2 `MediaUploadRequest.media_category`
# A media key is `<type>_<media id>` (`^([0-9]+)_([0-9]+)$` in X's reference; that the
# second number is the upload's id is observed, unconfirmed): a post's attachments are
# compared with a delivery's uploads through it.
MEDIA_KEY = re.compile(r"^([0-9]+)_([0-9]+)$")


def _utc_now() -> datetime:
    return datetime.now(UTC)


class XAccount(AccountBase):
    """`[accounts.NAME]` with `platform = "x"`: an OAuth 2.0 app of X's developer portal."""

    # Frozen, so never reassigned: the literal narrows the base's `str` to this platform.
    platform: Literal["x"]  # pyright: ignore[reportIncompatibleVariableOverride]
    client_id_env: str = Field(
        pattern=ENV_NAME_PATTERN, description="environment variable holding the OAuth 2.0 client id"
    )
    client_secret_env: str | None = Field(
        default=None,
        pattern=ENV_NAME_PATTERN,
        description="environment variable holding the client secret (confidential clients "
        "only: web apps and bots; a native app is a public client and has none)",
    )
    api_url: str = Field(default=API_URL, description="X's API; ${VARIABLE} references allowed")

    _expand_url = field_validator("api_url")(expand_url)

    def oauth_client(self, variables: Mapping[str, str] | None = None) -> OAuthClient:
        """The app as the token endpoint knows it (its secret read now, never stored)."""
        client_id = self.secret(self.client_id_env, variables, what="its OAuth 2.0 client id")
        secret: SecretStr | None = (
            self.secret(self.client_secret_env, variables, what="its OAuth 2.0 client secret")
            if self.client_secret_env
            else None
        )
        return OAuthClient(
            client_id.get_secret_value(), secret.get_secret_value() if secret else None
        )


# §1.3, per user ("per 15 minutes unless otherwise noted", x-api/fundamentals/rate-limits.mdx),
# the buckets of every endpoint this adapter calls. Posting quotas are what the create
# limits allow (300 in 3 hours: 300 an hour at most, 2,400 a day); posts cost money on
# pay-per-use (§1.3 billing), so accounts usually set their own (`[accounts.NAME.policy]`).
POLICY = PlatformPolicy(
    buckets={
        # POST /2/tweets: the rate-limit table says 100/15 min, the manage-posts guide
        # 200/15 min: the lower one; and the guide's 300 per 3 hours (creates and retweets).
        "tweets": rates((100, 15 * MINUTE), (300, 3 * HOUR)),
        "search": rates((300, 15 * MINUTE)),  # GET /2/tweets/search/recent
        "mentions": rates((300, 15 * MINUTE)),  # GET /2/users/:id/mentions
        "timeline": rates((900, 15 * MINUTE)),  # GET /2/users/:id/tweets
        "media_upload": rates((500, 15 * MINUTE)),  # POST /2/media/upload
        "media_metadata": rates((500, 15 * MINUTE)),  # POST /2/media/metadata
        # GET /2/users/me: 75/15 min in the current table (the legacy tiers had 25 or 250
        # a day); the adapter asks once per connection, so the lower figure costs nothing.
        "users_me": rates((75, 15 * MINUTE)),
        # The token endpoint documents no limit; refreshes are rare and serialised, so a
        # ceiling of our own that a runaway loop would hit long before X minds.
        "oauth_token": rates((30, 15 * MINUTE)),
    },
    endpoints={
        "write": ["tweets"],
        "search": ["search"],
        "mentions": ["mentions"],
        "timeline": ["timeline"],
        "media": ["media_upload"],
        "media_metadata": ["media_metadata"],
        "me": ["users_me"],
        "auth": ["oauth_token"],
    },
    quota_per_hour=300,
    quota_per_day=2400,
)


class XAuthenticator:
    """X's token requests (`platforms/auth.Authenticator`) and the authorization-code flow
    `accounts connect` drives (`auth.AuthorizationFlow`)."""

    def __init__(
        self,
        *,
        authorize_endpoint: str = AUTHORIZE_URL,
        clock: Callable[[], datetime] = _utc_now,
    ) -> None:
        """`authorize_endpoint` is the consent page (another for a stand-in of X);
        `clock` dates the tokens' expiry (tests pass their own)."""
        self.authorize_endpoint = authorize_endpoint
        self.clock = clock

    def client(
        self,
        account: XAccount,
        *,
        door: Door,
        timeout: float,
        transport: httpx.BaseTransport | None = None,
    ) -> httpx.Client:
        return build_client(
            account.api_url, door=door, platform=NAME, timeout=timeout, transport=transport
        )

    def login(
        self, account: XAccount, *, variables: Mapping[str, str], http: httpx.Client
    ) -> TokenSet:
        """X has no login with the account's own secret: a person consents in a browser."""
        raise AuthExpired(
            f"account {account.name!r}: no X tokens are stored; X needs a person to authorise "
            f"the app: run `social-pipelines accounts connect {account.name}`",
            platform=NAME,
        )

    def refresh(
        self,
        account: XAccount,
        tokens: TokenSet,
        *,
        variables: Mapping[str, str],
        http: httpx.Client,
    ) -> TokenSet:
        """`POST /2/oauth2/token` with `grant_type=refresh_token` (§1.1). The answer's new
        refresh token replaces the used one (X rotates them, unconfirmed); an answer
        without one keeps the stored one (the session merges)."""
        if not tokens.refresh_token:
            raise AuthExpired(
                f"account {account.name!r}: the stored X tokens hold no refresh token (was "
                "offline.access granted?); run `social-pipelines accounts connect "
                f"{account.name}`",
                platform=NAME,
            )
        return self._token(
            account,
            {"grant_type": "refresh_token", "refresh_token": tokens.refresh_token},
            variables=variables,
            http=http,
            what="token refresh",
        )

    def expired(self, response: httpx.Response) -> bool:
        """X refuses an expired (or revoked) access token with 401 (§1.5): no distinct
        "expired" code is documented, so every 401 is refreshed once and repeated once."""
        return response.status_code == 401

    def authorize_url(
        self,
        account: XAccount,
        *,
        variables: Mapping[str, str],
        redirect_uri: str,
        state: str,
        code_challenge: str,
        scopes: Sequence[str] = DEFAULT_SCOPES,
    ) -> str:
        """The consent page for this account's app, with an S256 challenge (`pkce_pair`)."""
        return authorization_url(
            self.authorize_endpoint,
            client_id=account.oauth_client(variables).client_id,
            redirect_uri=redirect_uri,
            scopes=scopes,
            state=state,
            code_challenge=code_challenge,
        )

    def exchange_code(
        self,
        account: XAccount,
        *,
        code: str,
        code_verifier: str,
        redirect_uri: str,
        variables: Mapping[str, str],
        http: httpx.Client,
    ) -> TokenSet:
        """The redirect's code for tokens (`grant_type=authorization_code`; X's codes live
        30 seconds), with the account's id and username from `/2/users/me`."""
        tokens = self._token(
            account,
            {
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": redirect_uri,
                "code_verifier": code_verifier,
            },
            variables=variables,
            http=http,
            what="authorization code exchange",
        )
        return self._with_identity(tokens, http)

    def _token(
        self,
        account: XAccount,
        form: Mapping[str, str],
        *,
        variables: Mapping[str, str],
        http: httpx.Client,
        what: str,
    ) -> TokenSet:
        data, headers = account.oauth_client(variables).token_request(form)
        response = http.post(TOKEN_PATH, data=data, headers=headers, extensions=route("auth"))
        return read_token_answer(response, now=self.clock(), platform=NAME, what=what)

    def _with_identity(self, tokens: TokenSet, http: httpx.Client) -> TokenSet:
        """The tokens with whose they are, when `/2/users/me` says so at once. The code is
        spent already, so a failed look-up keeps the tokens (`whoami` asks again later)."""
        try:
            response = http.get(
                ME_PATH,
                headers={"Authorization": f"Bearer {tokens.access_token}"},
                extensions=route("me"),
            )
        except SocialError:
            return tokens
        if not response.is_success:
            return tokens
        try:
            user = response.json()["data"]
            return replace(tokens, subject=str(user["id"]), handle=str(user.get("username") or ""))
        except (ValueError, KeyError, TypeError, AttributeError):
            return tokens


AUTHENTICATOR = XAuthenticator()
# What `accounts connect` calls (`auth.AuthorizationFlow`), as plain functions too.
authorize_url = AUTHENTICATOR.authorize_url
exchange_code = AUTHENTICATOR.exchange_code


class XPlatform(ClosedOnExit):
    """One X account, its requests signed by its session's current access token."""

    name = NAME

    def __init__(
        self,
        api_url: str,
        *,
        auth: httpx.Auth,
        door: Door,
        timeout: float = 10.0,
        transport: httpx.BaseTransport | None = None,
        clock: Callable[[], datetime] = _utc_now,
    ) -> None:
        """`auth` signs every request (`SessionAuth`: one refresh and one repeat on a 401);
        `clock` is what the 7-day search window and the time bounds are measured by."""
        self._clock = clock
        self._client = build_client(
            api_url, door=door, platform=NAME, timeout=timeout, transport=transport, auth=auth
        )
        self._identity: Identity | None = None

    # -- requests --------------------------------------------------------------------------

    def _request(
        self,
        method: str,
        path: str,
        *,
        endpoint: str,
        create: bool = False,
        reply: bool = False,
        **kwargs: Any,
    ) -> dict[str, Any]:
        """The JSON object of a success, else the error the answer means (`_error`);
        `reply` marks a create that answers a post (X's reply restriction)."""
        response = self._client.request(
            method, path, extensions=route(endpoint, create=create), **kwargs
        )
        if not response.is_success:
            raise _error(response, create=create, reply=reply)
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

    # -- capabilities ----------------------------------------------------------------------

    def whoami(self) -> Identity:
        if self._identity is None:
            user = _data(self._request("GET", ME_PATH, endpoint="me"), "the account's id")
            self._identity = Identity(
                platform=NAME, account_id=str(user["id"]), handle=str(user.get("username") or "")
            )
        return self._identity

    def content_rules(self) -> ContentRules:
        """X publishes no limits to read: the documented ones (§1.4)."""
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
        source: Source = Source.MENTIONS,
    ) -> SearchResult:
        """Other accounts' posts for `query`, newest first, back to `since`.

        MENTIONS (X's default: self-serve apps may answer only posts that mention or quote
        the account) reads the account's mention timeline and keeps the posts matching the
        query (`text.matches_query`); SEARCH is recent search, which reaches back 7 days
        only: an older `since` is searched from there, and the result says it is incomplete.
        """
        if source not in SPEC.sources:
            raise ConfigError(
                f"{NAME} cannot read reply source {source!r}; it reads {', '.join(SPEC.sources)}"
            )
        own_id = self.whoami().account_id
        now = self._clock()

        def wanted(post: SocialPost) -> bool:
            return since <= post.created_at and (until is None or post.created_at < until)

        if source == Source.SEARCH:
            start = max(since, now - SEARCH_WINDOW)
            clamped = f"X's 7-day recent search window (searched from {start:%Y-%m-%d %H:%M} UTC)"
            if until is not None and until <= start:
                # All of it is older than recent search reaches: nothing to ask.
                return SearchResult(posts=[], complete=False, stopped_by=clamped)
            pages = self._search_pages(query, start=start, until=until, limit=limit, now=now)
            result = collect(
                pages, limit=limit, own_id=own_id, keep=wanted, max_pages=MAX_SEARCH_PAGES
            )
            if start > since and result.complete:
                return result.model_copy(update={"complete": False, "stopped_by": clamped})
            return result
        pages = self._mention_pages(own_id, since=since, until=until, limit=limit, now=now)
        examined = [0]
        result = collect(
            _counted(pages, examined),
            limit=limit,
            own_id=own_id,
            keep=lambda post: wanted(post) and matches_query(post.text, query),
            max_pages=MAX_SEARCH_PAGES,
        )
        if result.complete and examined[0] >= MENTIONS_REACH:
            return result.model_copy(
                update={
                    "complete": False,
                    "stopped_by": f"X's mention timeline (its newest {MENTIONS_REACH} mentions)",
                }
            )
        return result

    def _search_pages(
        self, query: str, *, start: datetime, until: datetime | None, limit: int, now: datetime
    ) -> Iterator[tuple[list[SocialPost], bool]]:
        """Recent search's pages (`next_token`), newest first, each with whether more follow."""
        params = {
            "query": query,
            "max_results": _page_size(limit, SEARCH_PAGE_SIZES),
            "tweet.fields": SEARCH_FIELDS,
            "expansions": "author_id",
        } | _time_bounds(start, until, now=now)
        return self._pages(SEARCH_PATH, params, endpoint="search", cursor="next_token")

    def _mention_pages(
        self, own_id: str, *, since: datetime, until: datetime | None, limit: int, now: datetime
    ) -> Iterator[tuple[list[SocialPost], bool]]:
        """The mention timeline's pages (`pagination_token`), newest first."""
        params = {
            "max_results": _page_size(limit, TIMELINE_PAGE_SIZES),
            "tweet.fields": SEARCH_FIELDS,
            "expansions": "author_id",
        } | _time_bounds(since, until, now=now)
        return self._pages(
            f"/2/users/{own_id}/mentions",
            params,
            endpoint="mentions",
            cursor="pagination_token",
        )

    def _pages(
        self, path: str, params: Mapping[str, Any], *, endpoint: str, cursor: str
    ) -> Iterator[tuple[list[SocialPost], bool]]:
        """Each page as posts, fetched only when the one before was used up."""
        for body, more in self._raw_pages(path, params, endpoint=endpoint, cursor=cursor):
            users = _usernames(body)
            yield [_post(tweet, users) for tweet in _tweets(body)], more

    def _raw_pages(
        self, path: str, params: Mapping[str, Any], *, endpoint: str, cursor: str
    ) -> Iterator[tuple[dict[str, Any], bool]]:
        """Each answer of a paged endpoint and whether another page follows (`cursor` is
        its token parameter: recent search says `next_token`, timelines
        `pagination_token`; both answer `meta.next_token`)."""
        token: str | None = None
        while True:
            query = dict(params) | ({cursor: token} if token else {})
            body = self._request("GET", path, endpoint=endpoint, params=query)
            token = _next_token(body)
            yield body, token is not None
            if token is None:
                return

    def create_post(self, post: CreatePost, *, idempotency_key: str) -> Published:
        """`POST /2/tweets` (§1.2). X documents no idempotency key, so none is sent (the
        delivery id stays ours); reconciliation is the guard."""
        body: dict[str, Any] = {"text": post.text}
        if post.in_reply_to_id:
            body["reply"] = {"in_reply_to_tweet_id": post.in_reply_to_id}
        if post.media_ids:
            body["media"] = {"media_ids": list(post.media_ids)}
        answer = self._request(
            "POST",
            TWEETS_PATH,
            endpoint="write",
            create=True,
            reply=bool(post.in_reply_to_id),
            json=body,
        )
        created = answer.get("data")
        if not isinstance(created, dict) or not created.get("id"):
            # A success with only `errors`: whether a post came of it, only our own posts
            # can tell.
            raise OutcomeUnknown(
                f"create answered without the new post's id: {_problem(answer, 'no data')}",
                platform=NAME,
            )
        remote_id = str(created["id"])
        return Published(remote_id=remote_id, url=self._url(remote_id))

    def upload_media(self, media: MediaUpload) -> MediaRef:
        """`POST /2/media/upload` (multipart, `tweet_image`), then the alt text with
        `POST /2/media/metadata` (§1.2). What X documents it refuses (§1.4: size, type,
        alt text over 1000 characters) is refused here, before anything is sent."""
        _check_media(media, static_rules(NAME))
        answer = self._request(
            "POST",
            UPLOAD_PATH,
            endpoint="media",
            create=True,
            files={"media": (media.filename, media.data, media.mime_type)},
            data={"media_category": MEDIA_CATEGORY},
        )
        # Without an id nothing can be attached; an unattached upload expires by itself.
        uploaded = _data(answer, "the upload's media id")
        media_id = str(uploaded["id"])
        _check_upload(media_id, uploaded)
        if media.alt_text:
            self._request(
                "POST",
                METADATA_PATH,
                endpoint="media_metadata",
                json={"id": media_id, "metadata": {"alt_text": {"text": media.alt_text}}},
            )
        return MediaRef(platform=NAME, id=media_id)

    def find_delivery(self, delivery: Delivery) -> Published | None:
        """Among the account's own posts since the plan: a reply by the post it answers (we
        answer a post at most once), a publish by its text as written (t.co links restored,
        the media link X appends dropped) and the uploads it staged."""
        own_id = self.whoami().account_id
        # Nothing of ours can predate the plan; a minute of slack covers clock skew.
        since = delivery.planned_at - timedelta(minutes=1)
        params = {
            "max_results": TIMELINE_PAGE_SIZES[1],
            "tweet.fields": OWN_FIELDS,
        } | _time_bounds(since, None, now=self._clock())
        seen = 0
        for body, more in self._raw_pages(
            f"/2/users/{own_id}/tweets", params, endpoint="timeline", cursor="pagination_token"
        ):
            for tweet in _tweets(body):
                seen += 1
                if str(tweet.get("id")) not in delivery.taken_ids and _delivered(tweet, delivery):
                    return Published(
                        remote_id=str(tweet["id"]),
                        url=self._url(str(tweet["id"])),
                        created_at=_timestamp(tweet.get("created_at")),
                    )
            if seen >= RECONCILE_LIMIT or not more:
                break
        if seen >= RECONCILE_LIMIT:
            # Older posts since the plan were out of reach: not finding it proves nothing.
            raise Inconclusive(
                f"looked through the newest {seen} own posts without reaching "
                f"{since:%Y-%m-%d %H:%M:%S} UTC; cannot tell whether it is out",
                platform=NAME,
            )
        return None

    def close(self) -> None:
        self._client.close()

    def _url(self, post_id: str) -> str:
        """The post's address under the account's username when known (no request for it)."""
        if self._identity is not None and self._identity.handle:
            return POST_URL.format(handle=self._identity.handle, id=post_id)
        return ANY_POST_URL.format(id=post_id)


def connect(
    account: XAccount,
    *,
    variables: Mapping[str, str],
    door: Door,
    timeout: float,
    transport: httpx.BaseTransport | None = None,
    session: Session | None = None,
) -> XPlatform:
    """X's tokens expire: every request carries the session's current one, refreshed once
    and repeated once on a 401."""
    if session is None:
        raise ConfigError(f"account {account.name!r}: {NAME} needs a session to connect")
    return XPlatform(
        account.api_url,
        auth=SessionAuth(session, AUTHENTICATOR.expired),
        door=door,
        timeout=timeout,
        transport=transport,
    )


SPEC = PlatformSpec(
    name=NAME,
    account_model=XAccount,
    connect=connect,
    policy=POLICY,
    capabilities=frozenset(Capability),
    sources=(Source.MENTIONS, Source.SEARCH),
    authenticator=AUTHENTICATOR,
)


# -- paging ---------------------------------------------------------------------------------


def _counted(pages: Pages, seen: list[int]) -> Pages:
    """The pages as they are read, adding up in `seen[0]` how many posts X served."""
    for page, more in pages:
        seen[0] += len(page)
        yield page, more


def _page_size(limit: int, sizes: tuple[int, int]) -> int:
    """Just enough for the limit (X bills every post read), within what X takes."""
    low, high = sizes
    return max(low, min(high, limit))


def _time_bounds(start: datetime, until: datetime | None, *, now: datetime) -> dict[str, str]:
    """`start_time` and `end_time` (RFC 3339 `YYYY-MM-DDTHH:mm:ssZ`), never newer than X
    takes: a bound later than that is left to the local filter (`end_time` omitted)."""
    newest = now - NEWEST_BOUND
    bounds = {"start_time": _rfc3339(min(start, newest))}
    if until is not None and until <= newest:
        # Rounded up: the local filter drops the fraction of a second past `until`.
        bounds["end_time"] = _rfc3339(until + timedelta(microseconds=999_999))
    return bounds


def _rfc3339(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _next_token(body: Mapping[str, Any]) -> str | None:
    meta = body.get("meta")
    token = meta.get("next_token") if isinstance(meta, dict) else None
    return str(token) if token else None


# -- mapping --------------------------------------------------------------------------------


def _json(response: httpx.Response) -> dict[str, Any] | None:
    try:
        body = response.json()
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


def _data(body: Mapping[str, Any], what: str) -> dict[str, Any]:
    """The `data` object of a success. One without it (only `errors`, a proxy's JSON) is
    not an answer we can use: asking again may help, so it is `Transient` in X's words."""
    data = body.get("data")
    if not isinstance(data, dict) or not data.get("id"):
        raise Transient(f"X answered without {what}: {_problem(body, 'no data')}", platform=NAME)
    return data


def _tweets(body: Mapping[str, Any]) -> list[dict[str, Any]]:
    """A page's posts (an empty page has no `data` at all, only `meta.result_count: 0`)."""
    data = body.get("data")
    return [tweet for tweet in data if isinstance(tweet, dict)] if isinstance(data, list) else []


def _usernames(body: Mapping[str, Any]) -> dict[str, str]:
    """Author ids to usernames, from the `author_id` expansion's `includes.users`."""
    includes = body.get("includes")
    users = includes.get("users") if isinstance(includes, dict) else None
    return {
        str(user["id"]): str(user.get("username") or "")
        for user in users or ()
        if isinstance(user, dict) and "id" in user
    }


def _post(tweet: Mapping[str, Any], usernames: Mapping[str, str]) -> SocialPost:
    author_id = str(tweet.get("author_id") or "")
    handle = usernames.get(author_id, "")
    post_id = str(tweet["id"])
    return SocialPost(
        platform=NAME,
        id=post_id,
        author_id=author_id,
        author_handle=handle,
        text=_unescape(_restored(tweet)),
        url=(
            POST_URL.format(handle=handle, id=post_id)
            if handle
            else ANY_POST_URL.format(id=post_id)
        ),
        created_at=_timestamp(tweet.get("created_at")) or datetime.min.replace(tzinfo=UTC),
        in_reply_to_id=_replied_to(tweet),
        language=str(tweet["lang"]) if tweet.get("lang") else None,
        media_ids=_media_ids(tweet, strict=False),
    )


def _replied_to(tweet: Mapping[str, Any]) -> str | None:
    for reference in tweet.get("referenced_tweets") or ():
        if isinstance(reference, dict) and reference.get("type") == "replied_to":
            return str(reference.get("id"))
    return None


def _media_ids(tweet: Mapping[str, Any], *, strict: bool) -> tuple[str, ...]:
    """The upload ids of a post's attachments, read from their media keys. `strict`: a key
    of another shape is `Inconclusive` (reconciliation cannot compare what it cannot read),
    else it is left out."""
    attachments = tweet.get("attachments")
    keys = attachments.get("media_keys") if isinstance(attachments, dict) else None
    ids: list[str] = []
    for key in keys or ():
        found = MEDIA_KEY.match(str(key))
        if found is not None:
            ids.append(found.group(2))
        elif strict:
            raise Inconclusive(
                f"post {tweet.get('id')} carries media key {key!r}, not <type>_<media id>: "
                "cannot tell whether it holds this delivery's uploads",
                platform=NAME,
            )
    return tuple(ids)


def _restored(tweet: Mapping[str, Any]) -> str:
    """The text as it was written: X sends every link as t.co (`entities.urls[].url`, the
    original in `expanded_url`) and appends a t.co link for attached media (an URL entity
    with a `media_key`, shown as pic.x.com): expanded, and dropped."""
    text = str(tweet.get("text") or "")
    entities = tweet.get("entities")
    urls = entities.get("urls") if isinstance(entities, dict) else None
    attachments = tweet.get("attachments")
    attached = isinstance(attachments, dict) and bool(attachments.get("media_keys"))
    for entity in urls or ():
        if not isinstance(entity, dict) or not entity.get("url"):
            continue
        short = str(entity["url"])
        if entity.get("media_key") or (attached and _shows_media(entity)):
            text = re.sub(r"\s*" + re.escape(short), "", text)
        else:
            text = text.replace(short, str(entity.get("expanded_url") or short))
    return text


def _shows_media(entity: Mapping[str, Any]) -> bool:
    shown = str(entity.get("display_url") or "")
    return shown.startswith(("pic.x.com/", "pic.twitter.com/"))


def _unescape(text: str) -> str:
    """X escapes `&`, `<` and `>` in post text as HTML entities (observed); only those."""
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def _comparable(text: str) -> str:
    """What a publish is recognised by: X counts (and keeps) text NFC-normalised (§1.4)."""
    return content_hash(unicodedata.normalize("NFC", text))


def _delivered(tweet: Mapping[str, Any], delivery: Delivery) -> bool:
    """Whether this post of ours is the delivery's."""
    if delivery.kind == DeliveryKind.REPLY:
        return _replied_to(tweet) == delivery.subject
    restored = _restored(tweet)
    # Both readings of the text: X's escaping reversed, and as sent (were X not to escape,
    # a text that itself holds "&amp;" must still be recognised).
    if _comparable(delivery.text) not in {_comparable(restored), _comparable(_unescape(restored))}:
        return False
    # A post of the same text with other attachments is another delivery's (two publishes
    # of one text, one with images): ours carries exactly what it staged.
    return set(_media_ids(tweet, strict=True)) == set(delivery.media_ids)


def _timestamp(value: object) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def _check_media(media: MediaUpload, rules: ContentRules) -> None:
    """Refuse, before anything is sent, what X documents it refuses (§1.4)."""
    if len(media.alt_text) > MAX_ALT_TEXT:
        raise Rejected(
            f"alt text is {len(media.alt_text)} characters; X takes at most {MAX_ALT_TEXT}",
            platform=NAME,
        )
    if rules.max_image_bytes is not None and len(media.data) > rules.max_image_bytes:
        raise Rejected(
            f"image is {len(media.data)} bytes; X takes images of at most "
            f"{rules.max_image_bytes} bytes (5 MB)",
            platform=NAME,
        )
    if media.mime_type not in rules.image_mime_types:
        raise Rejected(
            f"image type {media.mime_type} is not one X takes "
            f"({', '.join(rules.image_mime_types)})",
            platform=NAME,
        )


def _check_upload(media_id: str, uploaded: Mapping[str, Any]) -> None:
    """An upload X says it could not process is refused; and one whose media key does not
    name its id is refused too, before a post carries it: reconciliation reads a post's
    uploads from its media keys (`MEDIA_KEY`), and a post it could not recognise might
    be sent twice."""
    processing = uploaded.get("processing_info")
    if isinstance(processing, dict) and processing.get("state") == "failed":
        error = processing.get("error")
        said = error.get("message") if isinstance(error, dict) else None
        raise Rejected(f"X could not process the image: {said or processing}", platform=NAME)
    key = uploaded.get("media_key")
    if key is not None:
        found = MEDIA_KEY.match(str(key))
        if found is None or found.group(2) != media_id:
            raise Rejected(
                f"X answered media key {key!r} for media id {media_id}: reconciliation "
                "recognises a post's uploads by the id in its media keys, which this "
                "contradicts; not attaching it",
                platform=NAME,
            )


# -- errors ---------------------------------------------------------------------------------

_DUPLICATE = re.compile(r"duplicate content|is a duplicate|\(code 187\)", re.IGNORECASE)
# §1.2: "Replies via the API are only permitted if the replying account has been explicitly
# summoned by the original post's author ... the reply request will be rejected"; X's
# wording of the refusal is not documented. Observed for an author's own reply settings:
# "Reply to this conversation is not allowed because you have not been mentioned or
# otherwise engaged by the author of the post you are replying to."
_REPLY = re.compile(r"\brepl(?:y|ies|ying)\b", re.IGNORECASE)
_REFUSED_REPLY = re.compile(
    r"not (?:allowed|permitted)|mentioned|summoned|engaged|quoted", re.IGNORECASE
)


def _error(response: httpx.Response, *, create: bool, reply: bool) -> SocialError:
    """What an error answer means; X's problem JSON (`title`, `detail`, `type`) is the
    message (§1.5)."""
    status = response.status_code
    body = _json(response)
    message = _problem(body, _DEFAULT_WORDS.get(status, "request rejected"))
    detail = "" if body is not None else response.text
    if status == 401:
        return AuthExpired(
            f"access token refused: {message}", platform=NAME, status_code=401, detail=detail
        )
    if status == 403:
        return _forbidden(message, create=create, reply=reply, detail=detail)
    if status == 429:
        return _limited(response, body, message, detail)
    if status in (400, 404, 409, 410, 422):
        return Rejected(message, platform=NAME, status_code=status, detail=detail)
    return status_error(response, platform=NAME, create=create)


_DEFAULT_WORDS = {401: "Unauthorized", 403: "Forbidden", 429: "rate limited"}


def _forbidden(message: str, *, create: bool, reply: bool, detail: str) -> SocialError:
    """403: duplicate content (reconcile, never fail), the self-serve reply restriction,
    or any other refusal (client-forbidden, not-authorized-for-resource): never retried."""
    if create and _DUPLICATE.search(message):
        return Duplicate(message, platform=NAME, status_code=403, detail=detail)
    if create and reply and _REPLY.search(message) and _REFUSED_REPLY.search(message):
        return Rejected(
            "reply refused by X's reply restriction (self-serve apps may reply only to posts "
            f"whose author mentioned or quoted this account): {message}",
            platform=NAME,
            status_code=403,
            detail=detail,
        )
    return Rejected(message, platform=NAME, status_code=403, detail=detail)


def _limited(
    response: httpx.Response, body: Mapping[str, Any] | None, message: str, detail: str
) -> SocialError:
    """429: a rate limit (wait until `x-rate-limit-reset`, epoch seconds, §1.3), or the
    usage cap (§1.5 `usage-capped`).

    A usage cap is not a wait of seconds: it lasts until X's billing period says (the
    observed answer names the period, "Monthly", and no end), so it is `QuotaExhausted`,
    deferred, never retried in place. Its `until` is `x-rate-limit-reset` when given: the
    earliest time asking again can change anything (the cap's own end is not announced).
    """
    kind = str((body or {}).get("type") or "")
    if kind.endswith("/usage-capped") or (body or {}).get("title") == "UsageCapExceeded":
        period = (body or {}).get("period")
        return QuotaExhausted(
            f"usage cap exceeded: {message}" + (f" (period: {period})" if period else ""),
            until=parse_reset(response.headers.get("x-rate-limit-reset")),
            platform=NAME,
            status_code=429,
            detail=detail,
        )
    return RateLimited(
        message,
        retry_after=retry_after_seconds(response.headers),
        platform=NAME,
        status_code=429,
        detail=detail,
    )


def _problem(body: Mapping[str, Any] | None, default: str) -> str:
    """X's words: a problem's `title: detail` [type], v1.1 `errors[].message (code N)`, an
    OAuth `error: error_description`; `default` when the body says nothing."""
    if not body:
        return default
    parts = [
        str(body[key]) for key in ("title", "detail", "error", "error_description") if body.get(key)
    ]
    parts = list(dict.fromkeys(parts))  # a title repeated as the detail once
    for error in body.get("errors") or ():
        if isinstance(error, dict):
            said = error.get("message") or error.get("detail") or error.get("title")
            if said:
                parts.append(f"{said} (code {error['code']})" if "code" in error else str(said))
    if not parts:
        return default
    message = ": ".join(parts)
    kind = body.get("type")
    if isinstance(kind, str) and kind and kind != "about:blank":
        message += f" [{kind.rsplit('/', 1)[-1]}]"
    return message
