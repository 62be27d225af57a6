"""One account's session, kept in the state store for every process and machine.

`StoredSession` is the `platforms.auth.Session` an adapter with an authenticator gets:

- tokens are read from the store (encrypted at rest) and reused across runs and
  processes: a Bluesky login is limited to 30 per 5 minutes and 300 a day, so a run never
  logs in while a stored session can be refreshed;
- they are refreshed ahead of expiry, and once when the platform answered "expired";
- a refresh is claimed in the store first (refresh tokens rotate: two processes refreshing
  at once would lock the account out); whoever does not hold the claim waits for the
  holder's write and uses it;
- a stored refresh token is never replaced by an empty one (`TokenSet.merged`);
- a transient failure of the token endpoint is repeated (tenacity) and never taken for a
  dead token: the tokens in hand are used while they are valid;
- only a recognised auth failure (`AuthExpired` from the refresh, and from a new login
  where the platform has one) marks the account `reconnect_needed`, with the platform's
  words; runs, schedules and sensors then skip it until `accounts connect` or a new
  secret fixes it (`token_refresh_job` checks every marked account).
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Mapping
from datetime import timedelta
from typing import Any

import httpx

from social_pipelines.clock import Clock, utcnow
from social_pipelines.errors import AuthExpired, SocialError, Transient
from social_pipelines.log import Log
from social_pipelines.platforms.account import AccountBase
from social_pipelines.platforms.auth import Authenticator, TokenSet
from social_pipelines.platforms.policy import PlatformPolicy
from social_pipelines.resilience.retry import retrying
from social_pipelines.store.tokens import TokenRow, TokenStore

# Tokens are refreshed when they expire within this; `token_refresh_job` looks an hour ahead.
REFRESH_AHEAD = timedelta(minutes=5)
# How long one process may hold an account's refresh (a refresh is one request; retries
# of a failing token endpoint stay well inside it).
REFRESH_LEASE = timedelta(seconds=90)
# How often a process waiting for another's refresh looks whether it is done.
WAIT_POLL_SECONDS = 0.2
_LOG = logging.getLogger(__name__)


class ReconnectNeeded(AuthExpired):
    """The platform refused the account for good: a person must connect it again."""


class StoredSession:
    def __init__(
        self,
        tokens: TokenStore,
        account: AccountBase,
        authenticator: Authenticator,
        *,
        http: httpx.Client,
        variables: Mapping[str, str],
        policy: PlatformPolicy,
        log: Log | None = None,
        clock: Clock = utcnow,
        sleep: Callable[[float], None] = time.sleep,
        ahead: timedelta = REFRESH_AHEAD,
        lease: timedelta = REFRESH_LEASE,
        owner: str | None = None,
        ignore_mark: bool = False,
    ) -> None:
        """`ignore_mark` lets a marked account try (verifying it: a success clears the
        mark); otherwise a marked account raises `ReconnectNeeded` at once."""
        self.tokens = tokens
        self.ignore_mark = ignore_mark
        self.account = account
        self.platform = account.platform
        self.authenticator = authenticator
        self.http = http
        self.variables = variables
        self.policy = policy
        self.log = log or _LOG
        self.clock = clock
        self._sleep = sleep
        self.ahead = ahead
        self.lease = lease
        self.owner = owner or uuid.uuid4().hex
        self._held: TokenSet | None = None

    @property
    def where(self) -> str:
        return f"{self.platform} account {self.account.name!r}"

    # -- Session ---------------------------------------------------------------------------

    def current(self) -> TokenSet:
        row = self.tokens.get(self.platform, self.account.name)
        if row is not None and row.reconnect_needed and not self.ignore_mark:
            raise ReconnectNeeded(
                f"{self.where} needs reconnecting ({row.reason}); run `social-pipelines "
                f"accounts connect {self.account.name}`",
                platform=self.platform,
            )
        held = self._tokens(row)
        if held is None:
            return self._refresh_or_login(None, row)
        if held.expires_within(self.ahead.total_seconds(), now=self.clock()):
            return self._refresh_or_login(held, row)
        self._held = held
        return held

    def renew(self, refused: TokenSet) -> TokenSet:
        row = self.tokens.get(self.platform, self.account.name)
        held = self._tokens(row)
        if held is not None and held.access_token != refused.access_token:
            return held  # another process refreshed meanwhile
        return self._refresh_or_login(held or refused, row, force=True)

    # -- what the refresh job and `accounts connect` use ------------------------------------

    def refresh_if_expiring(self, within: timedelta) -> TokenSet | None:
        """Refresh when the stored tokens expire within `within`; the new tokens, or None
        when nothing was due."""
        row = self.tokens.get(self.platform, self.account.name)
        held = self._tokens(row)
        if held is None or not held.expires_within(within.total_seconds(), now=self.clock()):
            return None
        return self._refresh_or_login(held, row, force=True)

    def login(self) -> TokenSet:
        """A new session from the account's own secret, stored (the mark cleared)."""
        return self._locked(lambda row: self._login(row))

    def store(self, tokens: TokenSet) -> None:
        """Keep tokens a person just connected (`accounts connect`), clearing the mark."""
        self.tokens.save(
            self.platform,
            self.account.name,
            tokens.to_json(),
            expires_at=tokens.expires_at,
            refresh_expires_at=tokens.refresh_expires_at,
        )
        self._held = tokens

    # -- the refresh -----------------------------------------------------------------------

    def _tokens(self, row: TokenRow | None) -> TokenSet | None:
        if row is None or row.payload is None:
            return None
        return TokenSet.from_json(row.payload)

    def _refresh_or_login(
        self, held: TokenSet | None, row: TokenRow | None, *, force: bool = False
    ) -> TokenSet:
        seen = row.version if row is not None else -1
        stale = held.access_token if held is not None else None

        def work(current: TokenRow | None) -> TokenSet:
            fresh = self._tokens(current)
            # Someone refreshed while we waited for the claim: theirs, if it is good.
            if (
                fresh is not None
                and current is not None
                and current.version != seen
                and fresh.access_token != stale
                and not fresh.expires_within(
                    0 if force else self.ahead.total_seconds(), now=self.clock()
                )
            ):
                return fresh
            if fresh is None:
                return self._login(current)
            return self._refresh(fresh, current)

        return self._locked(work)

    def _locked(self, work: Callable[[TokenRow | None], TokenSet]) -> TokenSet:
        """Run `work` holding the account's refresh claim; wait while another holds it."""
        deadline = time.monotonic() + self.lease.total_seconds() * 2
        while not self.tokens.claim_refresh(
            self.platform, self.account.name, self.owner, self.lease
        ):
            if time.monotonic() > deadline:
                raise Transient(
                    f"{self.where}: another process holds its token refresh for longer than "
                    f"{self.lease.total_seconds() * 2:g} s",
                    platform=self.platform,
                )
            self._sleep(WAIT_POLL_SECONDS)
        try:
            tokens = work(self.tokens.get(self.platform, self.account.name))
        finally:
            self.tokens.release_refresh(self.platform, self.account.name, self.owner)
        self._held = tokens
        return tokens

    def _refresh(self, held: TokenSet, row: TokenRow | None) -> TokenSet:
        try:
            fresh = self._retried(
                "token refresh",
                lambda: self.authenticator.refresh(
                    self.account, held, variables=self.variables, http=self.http
                ),
            )
        except AuthExpired as refused:
            self.log.warning(f"{self.where}: the platform refused its refresh token: {refused}")
            return self._login(row, after=refused)
        except SocialError as error:
            if not held.expires_within(0, now=self.clock()):
                # The token endpoint is unwell, the tokens in hand are still good.
                self.log.warning(
                    f"{self.where}: token refresh failed ({error}); the current token is "
                    "valid until "
                    f"{held.expires_at:%Y-%m-%d %H:%M:%S} UTC and is used meanwhile"
                    if held.expires_at
                    else f"{self.where}: token refresh failed ({error})"
                )
                return held
            raise
        tokens = held.merged(fresh)
        self._save(tokens, row, refreshed=True)
        self.log.info(
            f"{self.where}: token refreshed"
            + (
                f", valid until {tokens.expires_at:%Y-%m-%d %H:%M:%S} UTC"
                if tokens.expires_at
                else ""
            )
        )
        return tokens

    def _login(self, row: TokenRow | None, *, after: AuthExpired | None = None) -> TokenSet:
        try:
            tokens = self._retried(
                "login",
                lambda: self.authenticator.login(
                    self.account, variables=self.variables, http=self.http
                ),
            )
        except AuthExpired as refused:
            reason = str(refused) if after is None else f"{after}; then a new login: {refused}"
            self.mark(reason)
            raise ReconnectNeeded(
                f"{self.where} needs reconnecting: {reason}", platform=self.platform
            ) from None
        self._save(tokens, row, refreshed=False)
        self.log.info(f"{self.where}: new session stored")
        return tokens

    def mark(self, reason: str) -> None:
        if self.tokens.mark_reconnect(self.platform, self.account.name, reason):
            self.log.warning(f"{self.where} marked reconnect_needed: {reason}")

    def _save(self, tokens: TokenSet, row: TokenRow | None, *, refreshed: bool) -> None:
        written = self.tokens.save(
            self.platform,
            self.account.name,
            tokens.to_json(),
            expires_at=tokens.expires_at,
            refresh_expires_at=tokens.refresh_expires_at,
            version=row.version if row is not None else 0,
            refreshed=refreshed,
        )
        if not written:
            # Our claim lapsed and someone wrote newer tokens: theirs stay (ours may
            # already be superseded by a rotation); we use ours for this call only.
            self.log.warning(f"{self.where}: newer tokens were stored meanwhile; kept those")

    def _retried(self, what: str, call: Callable[[], Any]) -> Any:
        runner = retrying(self.policy, what=f"{self.where} {what}", log=self.log)
        return runner(call)
