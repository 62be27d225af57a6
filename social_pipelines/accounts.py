"""The accounts file (`SOCIAL_ACCOUNTS_FILE`): every account the project posts as.

Each `[accounts.NAME]` table is validated against its own platform's account model (the
adapter module exports it), so it takes exactly that platform's fields. Credentials never
live in the file: an account names the environment variable that holds each one. Reply
campaigns (and the calendar) refer to accounts by name.

A bad account stops the load, naming the file, the account and the field: whatever was
meant to post as it could not run correctly, and guessing would post as someone else.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from pydantic import ValidationError

from social_pipelines.errors import ConfigError
from social_pipelines.platforms.account import AccountBase
from social_pipelines.platforms.capabilities import Capability
from social_pipelines.platforms.catalog import SPECS
from social_pipelines.tomlfile import explain, read_toml, refuse_unknown_keys


@dataclass(frozen=True)
class AccountBook:
    path: Path
    accounts: dict[str, AccountBase]

    def get(self, name: str) -> AccountBase:
        try:
            return self.accounts[name]
        except KeyError:
            raise ConfigError(
                f"{self.path}: no account named {name!r}; defined: "
                f"{', '.join(sorted(self.accounts)) or 'none'}"
            ) from None

    def lacks(self, name: str, *needed: Capability) -> list[Capability]:
        """What of `needed` the account's platform cannot do."""
        spec = SPECS[self.accounts[name].platform]
        return [capability for capability in needed if not spec.can(capability)]


def load_accounts(path: Path, variables: Mapping[str, str] | None = None) -> AccountBook:
    """Read an accounts file; `${NAME}` in a URL is taken from `variables` (default: the
    environment)."""
    context = {"variables": os.environ if variables is None else variables}
    raw = read_toml(path, what="accounts file", setting="SOCIAL_ACCOUNTS_FILE")
    refuse_unknown_keys(path, raw, allowed=("accounts",))
    table = raw.get("accounts") or {}
    if not isinstance(table, dict):
        raise ConfigError(
            f"{path}: `accounts` must be a table of named accounts ([accounts.NAME]), "
            f"not {type(table).__name__}"
        )
    accounts: dict[str, AccountBase] = {}
    for name, body in table.items():
        where = f"{path}: [accounts.{name}]"
        if not isinstance(body, dict):
            raise ConfigError(f"{where}: must be a table of fields, not {type(body).__name__}")
        platform = body.get("platform")
        if platform not in SPECS:
            raise ConfigError(
                f"{where}: platform: {platform!r} is not supported; allowed: "
                f"{', '.join(sorted(SPECS))}"
            )
        try:
            model = SPECS[platform].account_model  # chosen by `platform`: exactly its fields
            accounts[name] = model.model_validate({"name": name, **body}, context=context)
        except ValidationError as error:
            raise ConfigError(f"{where}: {explain(error)}") from None
    return AccountBook(path=path, accounts=accounts)
