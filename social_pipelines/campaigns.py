"""Reply campaigns, from a validated TOML file: which account answers which posts.

Accounts live in their own file (`accounts.py`); a campaign names one, and where its posts
come from (`source`: a search, a hashtag's timeline, the account's mentions; by default
the first its platform declares). A bad campaign is reported with its file, index and
field, and skipped; the others still run. A file that cannot be read stops the load.
"""

from __future__ import annotations

import functools
import string
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
)

from social_pipelines.accounts import AccountBook
from social_pipelines.errors import ConfigError
from social_pipelines.platforms.account import NAME_PATTERN
from social_pipelines.platforms.capabilities import Capability, Source
from social_pipelines.platforms.catalog import spec_for
from social_pipelines.platforms.text import hashtag_name
from social_pipelines.tomlfile import explain, fields, read_toml, refuse_unknown_keys

TEMPLATE_FIELDS = frozenset({"author", "query", "campaign"})
PROMPT_FIELDS = TEMPLATE_FIELDS | {"post", "platform", "max_characters", "links"}
# What a reply campaign asks of its account's platform.
NEEDS = (Capability.SEARCH, Capability.REPLY)


class Campaign(BaseModel):
    """One account answering the posts one source finds for one query."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=NAME_PATTERN)
    account: str
    # Before `query`, whose check depends on it. None in the file: the platform's default,
    # filled in by `load_campaigns`, so a loaded campaign always names its source.
    source: Source | None = Field(
        default=None,
        description="where posts are found: search, hashtag (the query is the tag) or "
        "mentions (the query filters them; * keeps all); default: the platform's first",
    )
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
    # Who writes the replies: the template (offline, deterministic), or a language model
    # (SOCIAL_LLM_*; the template answers when none is configured or it is unavailable).
    writer: Literal["template", "llm"] = "template"
    allow_links: bool = Field(default=False, description="may a written reply hold a link")
    prompt: str | None = Field(
        default=None,
        min_length=1,
        description="the LLM's instructions, with {post} {author} {campaign} {query} "
        "{platform} {max_characters} {links}; default: the package's own",
    )

    @field_validator("query")
    @classmethod
    def _one_hashtag(cls, value: str, info: ValidationInfo) -> str:
        """A hashtag source reads one tag's timeline: a query that is not one tag would be
        read as some other tag, or refused by the platform, at every run."""
        if info.data.get("source") == Source.HASHTAG and hashtag_name(value) is None:
            raise ValueError(
                'with source = "hashtag" the query is one hashtag, with or without its # '
                '(like "dagster" or "#DataEngineering"): letters, digits and underscores, '
                "at least one letter"
            )
        return value

    @field_validator("prompt")
    @classmethod
    def _prompt_placeholders(cls, value: str | None) -> str | None:
        return None if value is None else _checked(value, PROMPT_FIELDS)

    @field_validator("template")
    @classmethod
    def _placeholders(cls, value: str) -> str:
        return _checked(value, TEMPLATE_FIELDS)


def _checked(value: str, allowed_fields: frozenset[str]) -> str:
    """Only plain placeholders of `allowed_fields` (and `{{`/`}}` for braces), so a
    template that validates here can never fail when a reply is written."""
    allowed = sorted(allowed_fields)
    try:
        parsed = list(string.Formatter().parse(value))
    except ValueError as error:
        raise ValueError(f"{error}; write literal braces as {{{{ and }}}}") from None
    for _text, name, spec, conversion in parsed:
        if name is None:
            continue
        if name not in allowed_fields:
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
    accounts: AccountBook
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


def load_campaigns(path: Path, accounts: AccountBook) -> CampaignBook:
    """Read a campaigns file whose campaigns post as the accounts of `accounts`."""
    raw = read_toml(path, what="campaigns file", setting="SOCIAL_CAMPAIGNS_FILE")
    if "accounts" in raw:
        raise ConfigError(
            f"{path}: accounts live in their own file now: move every [accounts.NAME] table "
            f"to the accounts file ({accounts.path}; SOCIAL_ACCOUNTS_FILE)"
        )
    refuse_unknown_keys(path, raw, allowed=("campaigns",))
    campaign_list = raw.get("campaigns") or []
    if not isinstance(campaign_list, list):
        raise ConfigError(f"{path}: `campaigns` must be an array of tables ([[campaigns]])")

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
            problems.append(refuse(explain(error), fields=fields(error)))
            continue
        except TypeError as error:
            problems.append(refuse(str(error)))
            continue
        if campaign.account not in accounts.accounts:
            problems.append(
                refuse(
                    f"account {campaign.account!r} is not defined; defined: "
                    f"{', '.join(sorted(accounts.accounts)) or 'none'}",
                    fields=("account",),
                )
            )
        elif lacking := accounts.lacks(campaign.account, *NEEDS):
            platform = accounts.accounts[campaign.account].platform
            problems.append(
                refuse(
                    f"account {campaign.account!r} is on {platform}, which cannot "
                    f"{' or '.join(lacking)}; a reply campaign needs "
                    f"{' and '.join(NEEDS)}",
                    fields=("account",),
                )
            )
        elif campaign.name in campaigns:
            problems.append(refuse(f"duplicate campaign name {campaign.name!r}", fields=("name",)))
        else:
            platform = accounts.accounts[campaign.account].platform
            allowed = spec_for(platform).sources
            source = source_of(campaign, platform)
            if source not in allowed:
                problems.append(
                    refuse(
                        f"source '{source}': account {campaign.account!r} is on {platform}, "
                        f"which finds posts to answer by {', '.join(allowed)} only",
                        fields=("source",),
                    )
                )
                continue
            try:
                # Validated again with the source filled in: its checks (the hashtag
                # query) hold for a default source as for one written in the file.
                campaign = Campaign.model_validate({**campaign.model_dump(), "source": source})
            except ValidationError as error:
                problems.append(refuse(explain(error), fields=fields(error)))
                continue
            campaigns[campaign.name] = campaign
    return CampaignBook(path=path, accounts=accounts, campaigns=campaigns, problems=problems)


def source_of(campaign: Campaign, platform: str) -> Source:
    """Where `campaign` finds posts: its own source, else `platform`'s default (the first
    it declares). A loaded campaign always has its own; this keeps that one rule."""
    return campaign.source or spec_for(platform).sources[0]
