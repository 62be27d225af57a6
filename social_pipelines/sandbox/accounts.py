"""The accounts the sandbox knows, and the bearer tokens that act as them.

The built-in accounts get fixed ids (derived from fixed creation dates), so every fresh
sandbox everywhere has the same `brand` id: the ledger keys deliveries by the account's
stable id, and a demo database rebuilt from scratch must still match.
"""

from __future__ import annotations

import re
import sqlite3
from dataclasses import dataclass

from social_pipelines.sandbox.db import Database
from social_pipelines.sandbox.ids import SEQUENCE_BITS, next_id, now_ms, parse_iso

TOKEN_PREFIX = "sandbox-token-"  # noqa: S105 - public by design, documented
USERNAME_RE = re.compile(r"^[A-Za-z0-9_]{1,30}$")
BRAND = "brand"

# (username, display name, note, created at): the posting account first.
BUILTIN_ACCOUNTS: tuple[tuple[str, str, str, str], ...] = (
    (BRAND, "Acme Data", "Data pipelines that just work. Official account.", "2022-11-01"),
    ("datadiana", "Diana Okafor", "Data engineer. Airflow refugee. Coffee.", "2022-11-02"),
    ("pipeline_pete", "Pete Lindqvist", "Analytics engineering at a fintech.", "2022-11-03"),
    ("mlops_maya", "Maya Chen", "MLOps, feature stores, too many YAML files.", "2022-11-04"),
    ("etl_ed", "Eduardo Ruiz", "ETL since before it was cool.", "2022-11-05"),
    ("sql_sara", "Sara Novak", "SQL, dbt, and the occasional rant.", "2022-11-06"),
    ("cloudkev", "Kevin O'Brien", "Platform team. Opinions are my cat's.", "2022-11-07"),
    ("orchestrator_oli", "Oliver Grant", "Scheduling things so you don't have to.", "2022-11-08"),
    ("analytics_amy", "Amy Tanaka", "Dashboards and the data behind them.", "2022-11-09"),
    # The brand's second account, for posts published to two accounts (the demo calendar).
    ("brand_news", "Acme Data News", "Releases and events from Acme Data.", "2022-11-10"),
)


@dataclass(frozen=True)
class Account:
    id: int
    username: str
    display_name: str
    note: str
    token: str
    bot: bool
    created_at_ms: int

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> Account:
        return cls(
            id=int(row["id"]),
            username=row["username"],
            display_name=row["display_name"],
            note=row["note"],
            token=row["token"],
            bot=bool(row["bot"]),
            created_at_ms=int(row["created_at_ms"]),
        )


def token_for(username: str) -> str:
    return f"{TOKEN_PREFIX}{username}"


def display_name_for(username: str) -> str:
    """`pipeline_pete` -> `Pipeline Pete`, for authors a seed payload invents."""
    return " ".join(part.capitalize() for part in username.split("_") if part) or username


class Accounts:
    def __init__(self, db: Database) -> None:
        self.db = db
        self._by_token: dict[str, Account] = {}

    def ensure_builtin(self) -> None:
        """Create the built-in accounts that are missing (idempotent)."""
        with self.db.transaction():
            for index, (username, display_name, note, day) in enumerate(BUILTIN_ACCOUNTS):
                if self.by_username(username) is not None:
                    continue
                created = parse_iso(f"{day}T00:00:00Z")
                self.db.execute(
                    "INSERT INTO accounts(id, username, display_name, note, token, bot,"
                    " created_at_ms) VALUES (?, ?, ?, ?, ?, 0, ?)",
                    (
                        (created << SEQUENCE_BITS) + index,
                        username,
                        display_name,
                        note,
                        token_for(username),
                        created,
                    ),
                )

    def create(
        self, username: str, display_name: str | None = None, note: str = "", bot: bool = False
    ) -> tuple[Account, bool]:
        """The account named `username`, created if missing; True when it was created."""
        if not USERNAME_RE.match(username):
            raise ValueError("username must be 1 to 30 letters, digits or underscores")
        with self.db.transaction():
            existing = self.by_username(username)
            if existing is not None:
                return existing, False
            # Mastodon reports an account's creation time at midnight UTC of that day.
            created = now_ms() // 86_400_000 * 86_400_000
            account_id = next_id(self.db, "accounts", now_ms())
            self.db.execute(
                "INSERT INTO accounts(id, username, display_name, note, token, bot, created_at_ms)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    account_id,
                    username,
                    display_name or display_name_for(username),
                    note,
                    token_for(username),
                    int(bot),
                    created,
                ),
            )
        account = self.by_id(account_id)
        assert account is not None
        return account, True

    def by_token(self, token: str | None) -> Account | None:
        """Called on every request, so found accounts are cached (accounts never change)."""
        if not token:
            return None
        cached = self._by_token.get(token)
        if cached is not None:
            return cached
        row = self.db.one("SELECT * FROM accounts WHERE token = ?", (token,))
        if row is None:
            return None
        account = Account.from_row(row)
        self._by_token[token] = account
        return account

    def by_username(self, username: str) -> Account | None:
        row = self.db.one("SELECT * FROM accounts WHERE username = ?", (username,))
        return None if row is None else Account.from_row(row)

    def by_id(self, account_id: int) -> Account | None:
        row = self.db.one("SELECT * FROM accounts WHERE id = ?", (account_id,))
        return None if row is None else Account.from_row(row)

    def all(self) -> list[Account]:
        return [Account.from_row(row) for row in self.db.all("SELECT * FROM accounts ORDER BY id")]
