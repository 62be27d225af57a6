"""What every adapter's account model shares: a name, its platform, and secrets by name.

Each adapter module exports its own model (`MastodonAccount`, ...) built on `AccountBase`,
with `platform` as a literal: the accounts file validates each entry with the model its
`platform` names, so it gets exactly its platform's fields. Credentials never live in the file: a
field ending in `_env` names the environment variable that holds one.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
)

from social_pipelines.errors import ConfigError
from social_pipelines.platforms.policy import PlatformPolicy

NAME_PATTERN = r"^[A-Za-z0-9_]{1,64}$"  # also a valid Dagster mapping key
ENV_NAME_PATTERN = r"^[A-Z][A-Z0-9_]*$"
_ENV_REFERENCE = re.compile(r"\$\{([A-Z0-9_]+)\}")


class AccountBase(BaseModel):
    """One account on one platform, as the accounts file names it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=NAME_PATTERN)
    platform: str
    # `[accounts.NAME.policy]`: this account's own overrides of its platform's policy row
    # (limits, quotas, breaker), over the settings' per-platform ones.
    policy: dict[str, Any] = Field(default_factory=dict)

    @field_validator("policy")
    @classmethod
    def _policy_fields(cls, value: dict[str, Any]) -> dict[str, Any]:
        unknown = sorted(set(value) - set(PlatformPolicy.model_fields))
        if unknown:
            raise ValueError(
                f"unknown field(s) {', '.join(unknown)}; allowed: "
                f"{', '.join(sorted(PlatformPolicy.model_fields))}"
            )
        try:
            PlatformPolicy.model_validate(value)
        except ValidationError as error:
            raise ValueError(
                "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in error.errors())
            ) from None
        return value

    def secret(
        self, env: str, variables: Mapping[str, str] | None = None, *, what: str
    ) -> SecretStr:
        """The value of the environment variable `env` (`what` says what it holds), or a
        ConfigError naming the account and the variable, never a value."""
        value = (os.environ if variables is None else variables).get(env)
        if not value:
            raise ConfigError(
                f"account {self.name!r}: environment variable {env} ({what}) is not set"
            )
        return SecretStr(value)


def expand_url(value: str, info: ValidationInfo) -> str:
    """An http(s) URL with `${NAME}` references filled in from the validation context's
    `variables` (default: the environment), for adapters' URL fields."""
    variables: Mapping[str, str] = (info.context or {}).get("variables", os.environ)
    expanded = _ENV_REFERENCE.sub(lambda m: variables.get(m.group(1), m.group(0)), value)
    if unresolved := _ENV_REFERENCE.search(expanded):
        raise ValueError(f"environment variable {unresolved.group(1)} is not set")
    if not expanded.startswith(("http://", "https://")):
        # Never echo an expanded value: a mistyped reference may name a secret.
        shown = value if expanded != value else repr(value)
        raise ValueError(f"{shown} is not an http:// or https:// URL")
    return expanded.rstrip("/")
