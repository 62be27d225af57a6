"""Reply campaigns and the accounts they post as, from a validated TOML file.

Credentials never live in the file: an account names the environment variable that holds
its token. A bad campaign is reported with its file, index and field, and skipped; the
others still run. A bad account, or a file that cannot be read, stops the load: nothing
that uses it could run correctly.
"""

from __future__ import annotations

import functools
import os
import re
import string
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

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

NAME_PATTERN = r"^[A-Za-z0-9_]{1,64}$"  # also a valid Dagster mapping key
SUPPORTED_PLATFORMS = ("mastodon",)
TEMPLATE_FIELDS = frozenset({"author", "query", "campaign"})
_ENV_REFERENCE = re.compile(r"\$\{([A-Z0-9_]+)\}")


class AccountConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=NAME_PATTERN)
    platform: str
    instance_url: str
    token_env: str = Field(pattern=r"^[A-Z][A-Z0-9_]*$")

    @field_validator("platform")
    @classmethod
    def _known_platform(cls, value: str) -> str:
        if value not in SUPPORTED_PLATFORMS:
            allowed = ", ".join(SUPPORTED_PLATFORMS)
            raise ValueError(f"{value!r} is not supported; allowed: {allowed}")
        return value

    @field_validator("instance_url")
    @classmethod
    def _url(cls, value: str, info: ValidationInfo) -> str:
        variables: Mapping[str, str] = (info.context or {}).get("variables", os.environ)
        expanded = _ENV_REFERENCE.sub(lambda m: variables.get(m.group(1), m.group(0)), value)
        if unresolved := _ENV_REFERENCE.search(expanded):
            raise ValueError(f"environment variable {unresolved.group(1)} is not set")
        if not expanded.startswith(("http://", "https://")):
            # Never echo an expanded value: a mistyped reference may name a secret.
            shown = value if expanded != value else repr(value)
            raise ValueError(f"{shown} is not an http:// or https:// URL")
        return expanded.rstrip("/")

    def token(self, variables: Mapping[str, str] | None = None) -> SecretStr:
        value = (os.environ if variables is None else variables).get(self.token_env)
        if not value:
            raise ConfigError(
                f"account {self.name!r}: environment variable {self.token_env} (its access "
                "token) is not set"
            )
        return SecretStr(value)


class Campaign(BaseModel):
    """One account answering one search query."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=NAME_PATTERN)
    account: str
    query: str = Field(min_length=1, max_length=512)
    max_replies: int = Field(default=5, ge=0, le=100)
    search_limit: int = Field(default=40, ge=1, le=200)
    max_age_hours: float = Field(
        default=24, gt=0, le=24 * 7, description="posts older than this are never answered"
    )
    blocklist: tuple[str, ...] = ()
    template: str = Field(
        default="Thanks for the mention, @{author}! Happy to help with {query}.",
        min_length=1,
    )
    enabled: bool = True

    @field_validator("template")
    @classmethod
    def _placeholders(cls, value: str) -> str:
        """Only plain `{author}`, `{query}`, `{campaign}` (and `{{`/`}}` for braces), so a
        template that validates here can never fail when a reply is written."""
        allowed = sorted(TEMPLATE_FIELDS)
        try:
            fields = list(string.Formatter().parse(value))
        except ValueError as error:
            raise ValueError(f"{error}; write literal braces as {{{{ and }}}}") from None
        for _text, name, spec, conversion in fields:
            if name is None:
                continue
            if name not in TEMPLATE_FIELDS:
                raise ValueError(f"unknown placeholder {name!r}; allowed: {allowed}")
            if spec or conversion:
                raise ValueError(
                    f"placeholder {{{name}}} takes no conversion or format spec; "
                    f"allowed: {', '.join('{' + field + '}' for field in allowed)}"
                )
        return value


@dataclass(frozen=True)
class CampaignProblem:
    """A campaign entry that was refused: where it is (file, index, name) and why."""

    where: str
    message: str
    file: str = ""
    index: int | None = None
    name: str | None = None
    fields: tuple[str, ...] = ()

    def __str__(self) -> str:
        return f"{self.where}: {self.message}"

    def as_metadata(self) -> dict[str, object]:
        """Plain values for run metadata (JSON)."""
        return {
            "file": self.file,
            "index": self.index,
            "campaign": self.name,
            "fields": list(self.fields),
            "problem": self.message,
        }


@dataclass(frozen=True)
class CampaignBook:
    """What a campaigns file holds, and what in it had to be skipped (never silently)."""

    path: Path
    accounts: dict[str, AccountConfig]
    campaigns: dict[str, Campaign]
    problems: list[CampaignProblem] = field(default_factory=list)

    def enabled(self, names: list[str] | None = None) -> list[Campaign]:
        if names:
            unknown = sorted(set(names) - set(self.campaigns))
            if unknown:
                refused = [p for p in self.problems if p.name in unknown]
                raise ConfigError(
                    f"{self.path}: no campaign named {', '.join(unknown)}; "
                    f"known: {', '.join(sorted(self.campaigns)) or 'none'}"
                    + "".join(f"; refused: {problem}" for problem in refused)
                )
            return [self.campaigns[name] for name in names]
        return [c for c in self.campaigns.values() if c.enabled]


def _fields(error: ValidationError) -> tuple[str, ...]:
    names = (".".join(str(p) for p in item["loc"]) for item in error.errors())
    return tuple(dict.fromkeys(name for name in names if name))


def _explain(error: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(p) for p in item['loc']) or 'entry'}: {item['msg']}"
        + (f" (got {item['input']!r})" if not isinstance(item.get("input"), dict) else "")
        for item in error.errors()
    )


def load_campaigns(path: Path, variables: Mapping[str, str] | None = None) -> CampaignBook:
    """Read a campaigns file; `${NAME}` in an instance URL is taken from `variables`
    (default: the environment)."""
    context = {"variables": os.environ if variables is None else variables}
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as error:
        raise ConfigError(
            f"campaigns file {path} is not UTF-8 text (byte {error.start}); save it as UTF-8"
        ) from None
    except FileNotFoundError:
        raise ConfigError(f"campaigns file {path} does not exist (SOCIAL_CAMPAIGNS_FILE)") from None
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"campaigns file {path} is not valid TOML: {error}") from None
    unknown = sorted(set(raw) - {"accounts", "campaigns"})
    if unknown:
        raise ConfigError(
            f"{path}: unknown top-level key(s) {unknown}; allowed: accounts, campaigns"
        )

    accounts: dict[str, AccountConfig] = {}
    accounts_table = raw.get("accounts") or {}
    if not isinstance(accounts_table, dict):
        raise ConfigError(
            f"{path}: `accounts` must be a table of named accounts ([accounts.NAME]), "
            f"not {type(accounts_table).__name__}"
        )
    campaign_list = raw.get("campaigns") or []
    if not isinstance(campaign_list, list):
        raise ConfigError(f"{path}: `campaigns` must be an array of tables ([[campaigns]])")
    for name, body in accounts_table.items():
        try:
            accounts[name] = AccountConfig.model_validate({"name": name, **body}, context=context)
        except (ValidationError, TypeError) as error:
            detail = _explain(error) if isinstance(error, ValidationError) else str(error)
            raise ConfigError(f"{path}: [accounts.{name}]: {detail}") from None

    campaigns: dict[str, Campaign] = {}
    problems: list[CampaignProblem] = []
    for index, body in enumerate(campaign_list):
        name = body.get("name") if isinstance(body, dict) else None
        where = f"{path}: campaigns[{index}]" + (f" ({name})" if name is not None else "")
        refuse = functools.partial(
            CampaignProblem,
            where,
            file=str(path),
            index=index,
            name=None if name is None else str(name),
        )
        try:
            campaign = Campaign(**body)
        except ValidationError as error:
            problems.append(refuse(_explain(error), fields=_fields(error)))
            continue
        except TypeError as error:
            problems.append(refuse(str(error)))
            continue
        if campaign.account not in accounts:
            problems.append(
                refuse(
                    f"account {campaign.account!r} is not defined; defined: "
                    f"{', '.join(sorted(accounts)) or 'none'}",
                    fields=("account",),
                )
            )
        elif campaign.name in campaigns:
            problems.append(refuse(f"duplicate campaign name {campaign.name!r}", fields=("name",)))
        else:
            campaigns[campaign.name] = campaign
    return CampaignBook(path=path, accounts=accounts, campaigns=campaigns, problems=problems)
