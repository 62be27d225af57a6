"""Stored tokens per account, the refresh claim, and reconnect marks.

The SQL behind `resilience/sessions.py`. A token set is an opaque text here (the session
layer's JSON), Fernet-encrypted at rest when a key is given (`TokenCipher`). Refresh tokens
rotate, so two processes refreshing one account at once would lock it out: one claims the
refresh with a conditional update (like the breaker's trial call), the others wait for its
write and use what it stored. Every write bumps `version`, so a holder whose claim lapsed
can never overwrite a newer refresh with an older one.

A `reconnect_needed` mark is kept for any account the platform refused for good (Mastodon's
included, which stores no tokens): runs, schedules and sensors skip the account with the
mark's reason until it is accepted again.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

import sqlalchemy as sa
from cryptography.fernet import Fernet, InvalidToken

from social_pipelines.clock import Clock, utcnow
from social_pipelines.errors import ConfigError
from social_pipelines.store.engine import for_writing
from social_pipelines.store.schema import account_tokens
from social_pipelines.store.sql import insert_missing

_t = account_tokens.c
OK = "ok"
RECONNECT_NEEDED = "reconnect_needed"
KEY_HINT = (
    'generate one with: python -c "from cryptography.fernet import Fernet; '
    'print(Fernet.generate_key().decode())"'
)


class TokenCipher:
    """Encrypts token sets at rest with SOCIAL_SECRET_KEY; without a key it stores them
    plainly (and `accounts check` warns)."""

    def __init__(self, key: str | None) -> None:
        self._fernet: Fernet | None = None
        if key:
            try:
                self._fernet = Fernet(key.encode("ascii"))
            except (ValueError, UnicodeEncodeError):
                # Never echo the value: it is a secret even when malformed.
                raise ConfigError(
                    "SOCIAL_SECRET_KEY is not a Fernet key (32 url-safe base64-encoded "
                    f"bytes); {KEY_HINT}"
                ) from None

    @property
    def encrypts(self) -> bool:
        return self._fernet is not None

    def seal(self, text: str) -> tuple[str, bool]:
        if self._fernet is None:
            return text, False
        return self._fernet.encrypt(text.encode("utf-8")).decode("ascii"), True

    def open(self, payload: str, *, encrypted: bool, where: str) -> str:
        if not encrypted:
            return payload
        if self._fernet is None:
            raise ConfigError(
                f"the stored tokens of {where} are encrypted and SOCIAL_SECRET_KEY is not "
                "set: set the key they were stored with, or connect the account again"
            )
        try:
            return self._fernet.decrypt(payload.encode("ascii")).decode("utf-8")
        except InvalidToken:
            raise ConfigError(
                f"SOCIAL_SECRET_KEY does not decrypt the stored tokens of {where}: set the "
                "key they were stored with, or connect the account again"
            ) from None


@dataclass(frozen=True)
class TokenRow:
    """One account's row: its tokens (decrypted; None when it holds none) and its state."""

    platform: str
    account: str
    payload: str | None = field(repr=False)
    encrypted: bool
    expires_at: datetime | None
    refresh_expires_at: datetime | None
    state: str
    reason: str | None
    marked_at: datetime | None
    version: int
    refreshed_at: datetime | None
    updated_at: datetime

    @property
    def reconnect_needed(self) -> bool:
        return self.state == RECONNECT_NEEDED


class TokenStore:
    def __init__(
        self, engine: sa.Engine, cipher: TokenCipher | None = None, *, clock: Clock = utcnow
    ) -> None:
        self.engine = engine
        self.writer = for_writing(engine)
        self.cipher = cipher or TokenCipher(None)
        self.clock = clock

    # -- reading ---------------------------------------------------------------------------

    def get(self, platform: str, account: str) -> TokenRow | None:
        with self.engine.connect() as connection:
            row = connection.execute(
                sa.select(account_tokens).where(_t.platform == platform, _t.account == account)
            ).one_or_none()
        return None if row is None else self._row(row)

    def all(self) -> list[TokenRow]:
        with self.engine.connect() as connection:
            rows = connection.execute(
                sa.select(account_tokens).order_by(_t.platform, _t.account)
            ).all()
        return [self._row(row) for row in rows]

    def marked(self) -> list[TokenRow]:
        """Every account marked `reconnect_needed`."""
        return [row for row in self.all() if row.reconnect_needed]

    def any_plain(self) -> bool:
        """Whether some tokens are stored unencrypted."""
        with self.engine.connect() as connection:
            return (
                connection.execute(
                    sa.select(sa.func.count())
                    .select_from(account_tokens)
                    .where(_t.payload.is_not(None), _t.encrypted.is_(False))
                ).scalar_one()
                > 0
            )

    def _row(self, row: sa.Row) -> TokenRow:
        where = f"{row.platform} account {row.account!r}"
        payload = (
            None
            if row.payload is None
            else self.cipher.open(row.payload, encrypted=row.encrypted, where=where)
        )
        return TokenRow(
            platform=row.platform,
            account=row.account,
            payload=payload,
            encrypted=row.encrypted,
            expires_at=row.expires_at,
            refresh_expires_at=row.refresh_expires_at,
            state=row.state,
            reason=row.reason,
            marked_at=row.marked_at,
            version=row.version,
            refreshed_at=row.refreshed_at,
            updated_at=row.updated_at,
        )

    # -- writing ---------------------------------------------------------------------------

    def _ensure(self, connection: sa.Connection, platform: str, account: str) -> None:
        insert_missing(
            connection,
            account_tokens,
            {
                "platform": platform,
                "account": account,
                "payload": None,
                "encrypted": False,
                "state": OK,
                "version": 0,
                "updated_at": self.clock(),
            },
        )

    def save(
        self,
        platform: str,
        account: str,
        payload: str,
        *,
        expires_at: datetime | None,
        refresh_expires_at: datetime | None,
        version: int | None = None,
        refreshed: bool = False,
        clear_mark: bool = True,
    ) -> bool:
        """Store a token set; True when written. With `version`, only over that version
        (a refresh that read it): a newer write wins. Stored tokens mean the platform took
        them: the reconnect mark is cleared (unless `clear_mark` is False)."""
        sealed, encrypted = self.cipher.seal(payload)
        now = self.clock()
        values: dict[str, object] = {
            "payload": sealed,
            "encrypted": encrypted,
            "expires_at": expires_at,
            "refresh_expires_at": refresh_expires_at,
            "version": _t.version + 1,
            "updated_at": now,
        }
        if refreshed:
            values["refreshed_at"] = now
        if clear_mark:
            values.update(state=OK, reason=None, marked_at=None)
        condition = sa.and_(_t.platform == platform, _t.account == account)
        if version is not None:
            condition = sa.and_(condition, _t.version == version)
        with self.writer.begin() as connection:
            self._ensure(connection, platform, account)
            done = connection.execute(account_tokens.update().where(condition).values(**values))
            return done.rowcount == 1

    def claim_refresh(self, platform: str, account: str, owner: str, lease: timedelta) -> bool:
        """Take the account's refresh for `lease`, unless someone else holds it."""
        now = self.clock()
        with self.writer.begin() as connection:
            self._ensure(connection, platform, account)
            done = connection.execute(
                account_tokens.update()
                .where(
                    _t.platform == platform,
                    _t.account == account,
                    sa.or_(
                        _t.refresh_owner.is_(None),
                        _t.refresh_owner == owner,
                        _t.refresh_until < now,
                    ),
                )
                .values(refresh_owner=owner, refresh_until=now + lease)
            )
            return done.rowcount == 1

    def release_refresh(self, platform: str, account: str, owner: str) -> None:
        with self.writer.begin() as connection:
            connection.execute(
                account_tokens.update()
                .where(_t.platform == platform, _t.account == account, _t.refresh_owner == owner)
                .values(refresh_owner=None, refresh_until=None)
            )

    def mark_reconnect(self, platform: str, account: str, reason: str) -> bool:
        """Mark the account `reconnect_needed`; True when it was not marked before (the
        first mark is the one an alert announces). A later reason replaces the first."""
        now = self.clock()
        with self.writer.begin() as connection:
            self._ensure(connection, platform, account)
            newly = connection.execute(
                account_tokens.update()
                .where(_t.platform == platform, _t.account == account, _t.state != RECONNECT_NEEDED)
                .values(state=RECONNECT_NEEDED, reason=reason, marked_at=now, updated_at=now)
            ).rowcount
            if not newly:
                connection.execute(
                    account_tokens.update()
                    .where(_t.platform == platform, _t.account == account)
                    .values(reason=reason, updated_at=now)
                )
            return newly == 1

    def clear_mark(self, platform: str, account: str) -> bool:
        """The platform accepts the account again; True when it was marked."""
        with self.writer.begin() as connection:
            return (
                connection.execute(
                    account_tokens.update()
                    .where(
                        _t.platform == platform,
                        _t.account == account,
                        _t.state == RECONNECT_NEEDED,
                    )
                    .values(state=OK, reason=None, marked_at=None, updated_at=self.clock())
                ).rowcount
                == 1
            )
