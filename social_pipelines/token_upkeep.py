"""Keeping every account usable: refresh tokens before they expire, and look again at the
accounts marked `reconnect_needed`.

What `token_refresh_job` runs (every 15 minutes) and `accounts check` reports from. A mark
stops an account's campaigns and targets until the platform accepts it again; so that
nothing stays stopped longer than it must, every run verifies each marked account with one
cheap authenticated call (`whoami`): a revoked token that was replaced, a new app password,
or a refusal that was the platform's passing fault clears the mark.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from social_pipelines.errors import AuthExpired, SocialError
from social_pipelines.log import Log
from social_pipelines.platforms.account import AccountBase
from social_pipelines.platforms.catalog import spec_for
from social_pipelines.wiring import Wiring

REFRESH_WITHIN = timedelta(hours=1)
_LOG = logging.getLogger(__name__)


@dataclass(frozen=True)
class AccountNote:
    account: str
    platform: str
    what: str  # refreshed, kept, cleared, still_marked, failed
    detail: str = ""
    expires_at: datetime | None = None

    def line(self) -> str:
        until = f" (valid until {self.expires_at:%Y-%m-%d %H:%M} UTC)" if self.expires_at else ""
        tail = f": {self.detail}" if self.detail else ""
        return f"{self.platform} {self.account}: {self.what}{until}{tail}"


@dataclass
class UpkeepReport:
    notes: list[AccountNote] = field(default_factory=list)

    def of(self, what: str) -> list[AccountNote]:
        return [note for note in self.notes if note.what == what]

    @property
    def problems(self) -> list[AccountNote]:
        return self.of("still_marked") + self.of("failed")


def has_work(wiring: Wiring) -> bool:
    """Whether a run would do anything: an account holds tokens, or one is marked."""
    return any(row.payload is not None or row.reconnect_needed for row in wiring.tokens.all())


def upkeep(
    wiring: Wiring, *, within: timedelta = REFRESH_WITHIN, log: Log | None = None
) -> UpkeepReport:
    """Refresh every stored token expiring within `within`; verify every marked account."""
    log = log or _LOG
    report = UpkeepReport()
    book = wiring.accounts()
    for account in book.accounts.values():
        row = wiring.tokens.get(account.platform, account.name)
        if row is not None and row.reconnect_needed:
            report.notes.append(verify(wiring, account, log=log))
        elif spec_for(account.platform).authenticator is not None and row and row.payload:
            report.notes.append(_refresh(wiring, account, within, log=log))
    for note in report.notes:
        (log.warning if note in report.problems else log.info)(note.line())
    return report


def verify(wiring: Wiring, account: AccountBase, *, log: Log) -> AccountNote:
    """One cheap authenticated call for a marked account; the mark goes when it passes."""
    try:
        with wiring.connect(account, log=log, verifying=True) as platform:
            identity = platform.whoami()
    except SocialError as error:
        row = wiring.tokens.get(account.platform, account.name)
        reason = (row.reason if row else None) or str(error)
        what = "still_marked"
        detail = reason if isinstance(error, AuthExpired) else f"{reason}; now: {error}"
        return AccountNote(account.name, account.platform, what, detail)
    wiring.tokens.clear_mark(account.platform, account.name)
    return AccountNote(
        account.name, account.platform, "cleared", f"accepted again as {identity.handle}"
    )


def _refresh(wiring: Wiring, account: AccountBase, within: timedelta, *, log: Log) -> AccountNote:
    try:
        with wiring.connect(account, log=log) as platform:
            session = platform.session
            assert session is not None, "a platform with an authenticator has a session"
            before = wiring.tokens.get(account.platform, account.name)
            tokens = session.refresh_if_expiring(within)
    except SocialError as error:
        return AccountNote(account.name, account.platform, "failed", str(error))
    if tokens is None:
        return AccountNote(
            account.name,
            account.platform,
            "fresh",
            expires_at=before.expires_at if before else None,
        )
    after = wiring.tokens.get(account.platform, account.name)
    if after is not None and before is not None and after.version == before.version:
        # The token endpoint failed on the way; the tokens in hand are still valid.
        return AccountNote(
            account.name,
            account.platform,
            "kept",
            "refresh failed for now; the current token is used until it is refreshed",
            expires_at=tokens.expires_at,
        )
    return AccountNote(account.name, account.platform, "refreshed", expires_at=tokens.expires_at)
