"""The campaigns file: what loads, what is reported and skipped, what stops the load.

Campaigns post as accounts of the accounts file (`test_accounts.py`), by name."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Literal

import httpx
import pytest

from social_pipelines.accounts import AccountBook, load_accounts
from social_pipelines.campaigns import NEEDS, Campaign, load_campaigns
from social_pipelines.errors import ConfigError
from social_pipelines.platforms import catalog
from social_pipelines.platforms.account import AccountBase
from social_pipelines.platforms.capabilities import Adapter, Capability, PlatformSpec
from social_pipelines.platforms.http import Door
from social_pipelines.platforms.policy import PlatformPolicy
from social_pipelines.settings import DEFAULT_ACCOUNTS_FILE, DEFAULT_CAMPAIGNS_FILE

ACCOUNT = """
[accounts.brand]
platform = "mastodon"
instance_url = "https://social.example/"
token_env = "BRAND_TOKEN"
"""

VARIABLES = {"BRAND_TOKEN": "tok-brand-secret"}


def _write(tmp_path: Path, text: str, name: str = "campaigns.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def _accounts(tmp_path: Path, text: str = ACCOUNT) -> AccountBook:
    return load_accounts(_write(tmp_path, text, "accounts.toml"), VARIABLES)


def _campaign(name: str, **fields: object) -> str:
    lines = ["[[campaigns]]", f'name = "{name}"']
    fields = {"account": "brand", "query": "dagster", **fields}
    for key, value in fields.items():
        # TOML and Python agree on ints, floats and double-quoted strings and lists.
        rendered = str(value).lower() if isinstance(value, bool) else repr(value)
        lines.append(f"{key} = {rendered.replace(chr(39), chr(34))}")
    return "\n".join(lines) + "\n"


def test_a_valid_file_loads(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        _campaign(
            "mentions",
            max_replies=3,
            search_limit=20,
            max_age_hours=6,
            blocklist=["crypto"],
            template="Hi @{author}, about {query} ({campaign})",
        )
        + _campaign("quiet", enabled=False),
    )
    book = load_campaigns(path, _accounts(tmp_path))
    assert book.path == path
    assert book.problems == []
    mentions = book.campaigns["mentions"]
    assert (mentions.account, mentions.query, mentions.max_replies) == ("brand", "dagster", 3)
    assert (mentions.search_limit, mentions.max_age_hours) == (20, 6)
    assert mentions.blocklist == ("crypto",)
    quiet = book.campaigns["quiet"]
    assert (quiet.max_replies, quiet.search_limit, quiet.max_age_hours) == (5, 40, 24)
    assert [c.name for c in book.enabled()] == ["mentions"]
    assert [c.name for c in book.enabled(["quiet"])] == ["quiet"]


def test_asking_for_an_unknown_campaign_names_the_known_ones(tmp_path: Path) -> None:
    book = load_campaigns(_write(tmp_path, _campaign("mentions")), _accounts(tmp_path))
    with pytest.raises(ConfigError, match="no campaign named nope; known: mentions"):
        book.enabled(["mentions", "nope"])


def test_asking_for_a_refused_campaign_says_why_it_was_refused(tmp_path: Path) -> None:
    path = _write(tmp_path, _campaign("ok") + _campaign("greedy", max_replies=1000))
    book = load_campaigns(path, _accounts(tmp_path))
    with pytest.raises(ConfigError) as caught:
        book.enabled(["greedy"])
    message = str(caught.value)
    assert "no campaign named greedy; known: ok" in message
    assert f"refused: {path}: campaigns[1] (greedy): max_replies" in message


def test_a_refusal_carries_file_index_name_and_fields_for_metadata(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        _campaign("two_bad", max_replies=1000, quer="x")
        + _campaign("lost", account="ghost")
        + '[[campaigns]]\naccount = "brand"\nquery = "x"\n',
    )
    book = load_campaigns(path, _accounts(tmp_path))
    assert [problem.as_metadata() for problem in book.problems] == [
        {
            "file": str(path),
            "index": 0,
            "campaign": "two_bad",
            "fields": ["max_replies", "quer"],
            "problem": book.problems[0].message,
        },
        {
            "file": str(path),
            "index": 1,
            "campaign": "lost",
            "fields": ["account"],
            "problem": "account 'ghost' is not defined; defined: brand",
        },
        {
            "file": str(path),
            "index": 2,
            "campaign": None,
            "fields": ["name"],
            "problem": book.problems[2].message,
        },
    ]


def test_the_shipped_default_file_loads_with_the_sandbox_variables() -> None:
    variables = {"SOCIAL_SANDBOX_URL": "http://127.0.0.1:8765/", "SOCIAL_SANDBOX_TOKEN": "t"}
    book = load_campaigns(DEFAULT_CAMPAIGNS_FILE, load_accounts(DEFAULT_ACCOUNTS_FILE, variables))
    assert book.problems == []
    assert book.accounts.get("brand").instance_url == "http://127.0.0.1:8765"
    assert len(book.enabled()) == 2


@pytest.mark.parametrize(
    ("entry", "field"),
    [
        (_campaign("greedy", max_replies=1000), "max_replies"),
        (_campaign("blank", query=""), "query"),
        (_campaign("bad name!"), "name"),
        (_campaign("typo", quer="x"), "quer"),
        (_campaign("old", max_age_hours=0), "max_age_hours"),
    ],
)
def test_a_bad_campaign_is_reported_with_file_index_and_field(
    tmp_path: Path, entry: str, field: str
) -> None:
    path = _write(tmp_path, _campaign("first") + entry + _campaign("third"))
    book = load_campaigns(path, _accounts(tmp_path))
    assert sorted(book.campaigns) == ["first", "third"]
    [problem] = book.problems
    assert problem.where.startswith(f"{path}: campaigns[1]")
    assert field in problem.message
    assert str(problem).startswith(f"{path}: campaigns[1]")


def test_a_campaign_without_a_name_is_reported_by_index(tmp_path: Path) -> None:
    path = _write(tmp_path, '[[campaigns]]\naccount = "brand"\nquery = "x"\n')
    book = load_campaigns(path, _accounts(tmp_path))
    [problem] = book.problems
    assert problem.where == f"{path}: campaigns[0]"
    assert "name" in problem.message


def test_a_campaign_for_an_unknown_account_is_reported(tmp_path: Path) -> None:
    path = _write(tmp_path, _campaign("ok") + _campaign("lost", account="ghost"))
    book = load_campaigns(path, _accounts(tmp_path))
    assert list(book.campaigns) == ["ok"]
    [problem] = book.problems
    assert problem.where == f"{path}: campaigns[1] (lost)"
    assert "account 'ghost' is not defined; defined: brand" in problem.message


class NoticeboardAccount(AccountBase):
    """An account on a test platform that publishes and replies but cannot search."""

    platform: Literal["noticeboard"]  # pyright: ignore[reportIncompatibleVariableOverride]


def _never_connected(
    account: NoticeboardAccount,
    *,
    variables: Mapping[str, str],
    door: Door,
    timeout: float,
    transport: httpx.BaseTransport | None = None,
) -> Adapter:
    raise AssertionError("loading campaigns never connects to a platform")


NOTICEBOARD = PlatformSpec(
    name="noticeboard",
    account_model=NoticeboardAccount,
    connect=_never_connected,
    policy=PlatformPolicy(),
    capabilities=frozenset({Capability.PUBLISH, Capability.REPLY}),
)


def test_a_campaign_whose_platform_cannot_search_is_refused_at_load(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(catalog.SPECS, NOTICEBOARD.name, NOTICEBOARD)
    # The accounts file's union of models is built when the catalog loads, so the test
    # platform's account joins the book directly, beside one loaded from a file.
    loaded = _accounts(tmp_path)
    board = NoticeboardAccount(name="board", platform="noticeboard")
    accounts = AccountBook(loaded.path, {**loaded.accounts, "board": board})
    path = _write(tmp_path, _campaign("mentions") + _campaign("notices", account="board"))

    book = load_campaigns(path, accounts)

    assert accounts.lacks("board", *NEEDS) == [Capability.SEARCH]
    assert list(book.campaigns) == ["mentions"]
    [problem] = book.problems
    assert problem.where == f"{path}: campaigns[1] (notices)"
    assert problem.fields == ("account",)
    assert problem.message == (
        "account 'board' is on noticeboard, which cannot search; "
        "a reply campaign needs search and reply"
    )
    with pytest.raises(ConfigError, match="which cannot search"):
        book.enabled(["notices"])


def test_a_duplicate_campaign_name_is_reported(tmp_path: Path) -> None:
    path = _write(tmp_path, _campaign("twin") + _campaign("twin", query="other"))
    book = load_campaigns(path, _accounts(tmp_path))
    assert book.campaigns["twin"].query == "dagster"  # the first one wins
    [problem] = book.problems
    assert "campaigns[1] (twin)" in problem.where
    assert "duplicate" in problem.message


def test_an_unknown_template_placeholder_is_reported(tmp_path: Path) -> None:
    path = _write(tmp_path, _campaign("t", template="Hi {author}, {handle}!"))
    book = load_campaigns(path, _accounts(tmp_path))
    assert book.campaigns == {}
    [problem] = book.problems
    assert "template" in problem.message
    assert "'handle'" in problem.message
    assert "allowed: ['author', 'campaign', 'query']" in problem.message


@pytest.mark.parametrize(
    ("template", "valid"),
    [
        ("Hi {who.name}", False),
        ("Hi {who!r}", False),
        ("Hi {who:>5}", False),
        ("Hi {author", False),
        ("Use {{braces}} here, @{author}", True),
    ],
)
def test_template_validation_matches_what_format_accepts(template: str, valid: bool) -> None:
    def formats() -> bool:
        try:
            template.format(author="a", query="q", campaign="c")
        except (KeyError, ValueError, IndexError, AttributeError):
            return False
        return True

    try:
        Campaign(name="t", account="brand", query="q", template=template)
        accepted = True
    except ValueError:
        accepted = False
    assert formats() == valid
    assert accepted == valid


def test_a_missing_file_is_named(tmp_path: Path) -> None:
    path = tmp_path / "nowhere.toml"
    with pytest.raises(ConfigError) as caught:
        load_campaigns(path, _accounts(tmp_path))
    assert str(path) in str(caught.value)
    assert "SOCIAL_CAMPAIGNS_FILE" in str(caught.value)


def test_bad_toml_is_named_with_its_position(tmp_path: Path) -> None:
    path = _write(tmp_path, "[[campaigns]]\nname = \n")
    with pytest.raises(ConfigError) as caught:
        load_campaigns(path, _accounts(tmp_path))
    assert f"campaigns file {path} is not valid TOML" in str(caught.value)
    assert "line" in str(caught.value)


def test_an_unknown_top_level_key_stops_the_load(tmp_path: Path) -> None:
    path = _write(tmp_path, "[settings]\nx = 1\n")
    with pytest.raises(ConfigError, match=r"unknown top-level key\(s\) \['settings'\]"):
        load_campaigns(path, _accounts(tmp_path))


def test_a_file_that_is_not_utf8_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "latin1.toml"
    path.write_bytes((_campaign("c") + "# café\n").encode("latin-1"))
    with pytest.raises(ConfigError, match=str(path)):
        load_campaigns(path, _accounts(tmp_path))


def test_accounts_left_in_the_campaigns_file_are_refused_with_where_they_go(
    tmp_path: Path,
) -> None:
    path = _write(tmp_path, ACCOUNT + _campaign("mentions"))
    accounts = _accounts(tmp_path)
    with pytest.raises(ConfigError) as caught:
        load_campaigns(path, accounts)
    message = str(caught.value)
    assert message.startswith(f"{path}: accounts live in their own file now")
    assert f"({accounts.path}; SOCIAL_ACCOUNTS_FILE)" in message
