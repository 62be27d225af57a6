"""A campaign's `source`: the platform's default when the file names none, resolved at load
so every loaded campaign has one; refused at load, naming the platform and what it reads,
when the account's platform does not declare it; a hashtag source's query is one tag."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import pytest

from social_pipelines.accounts import AccountBook
from social_pipelines.campaigns import Campaign, load_campaigns, source_of
from social_pipelines.platforms import catalog
from social_pipelines.platforms.account import AccountBase
from social_pipelines.platforms.capabilities import Capability, PlatformSpec, Source
from social_pipelines.platforms.policy import PlatformPolicy
from social_pipelines_tests.test_campaigns import _accounts, _campaign, _never_connected, _write


class ChirpAccount(AccountBase):
    """An account on a test platform that reads only its mentions (like X's self-serve
    tier, whose replies must answer a mention), mentions first."""

    platform: Literal["chirp"]  # pyright: ignore[reportIncompatibleVariableOverride]


CHIRP = PlatformSpec(
    name="chirp",
    account_model=ChirpAccount,
    connect=_never_connected,
    policy=PlatformPolicy(),
    capabilities=frozenset({Capability.SEARCH, Capability.REPLY}),
    sources=(Source.MENTIONS, Source.SEARCH),
)


@pytest.fixture
def accounts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AccountBook:
    """`brand` on Mastodon (from a file) and `bird` on the chirp test platform."""
    monkeypatch.setitem(catalog.SPECS, CHIRP.name, CHIRP)
    loaded = _accounts(tmp_path)
    bird = ChirpAccount(name="bird", platform="chirp")
    return AccountBook(loaded.path, {**loaded.accounts, "bird": bird})


def test_a_campaign_without_a_source_gets_its_platforms_default(
    tmp_path: Path, accounts: AccountBook
) -> None:
    path = _write(tmp_path, _campaign("toots") + _campaign("chirps", account="bird"))
    book = load_campaigns(path, accounts)
    assert book.problems == []
    assert book.campaigns["toots"].source == Source.SEARCH  # Mastodon's first
    assert book.campaigns["chirps"].source == Source.MENTIONS  # chirp's first
    assert source_of(Campaign(name="c", account="bird", query="q"), "chirp") == Source.MENTIONS


def test_each_source_the_platform_declares_loads(tmp_path: Path, accounts: AccountBook) -> None:
    path = _write(
        tmp_path,
        _campaign("found", source="search")
        + _campaign("tagged", source="hashtag", query="#DataEngineering")
        + _campaign("bare_tag", source="hashtag", query="dagster")
        + _campaign("mentioned", source="mentions", query="*")
        + _campaign("chirp_search", account="bird", source="search"),
    )
    book = load_campaigns(path, accounts)
    assert book.problems == []
    assert {name: c.source for name, c in book.campaigns.items()} == {
        "found": Source.SEARCH,
        "tagged": Source.HASHTAG,
        "bare_tag": Source.HASHTAG,
        "mentioned": Source.MENTIONS,
        "chirp_search": Source.SEARCH,
    }
    # The query is kept as written (a template's {query} shows it).
    assert book.campaigns["tagged"].query == "#DataEngineering"


def test_a_source_the_platform_does_not_declare_is_refused_naming_what_it_reads(
    tmp_path: Path, accounts: AccountBook
) -> None:
    path = _write(
        tmp_path,
        _campaign("ok", account="bird")
        + _campaign("tags", account="bird", source="hashtag", query="dagster"),
    )
    book = load_campaigns(path, accounts)
    assert list(book.campaigns) == ["ok"]
    [problem] = book.problems
    assert problem.where == f"{path}: campaigns[1] (tags)"
    assert problem.fields == ("source",)
    assert problem.message == (
        "source 'hashtag': account 'bird' is on chirp, which finds posts to answer by "
        "mentions, search only"
    )


@pytest.mark.parametrize(
    ("entry", "field", "words"),
    [
        (_campaign("two", source="hashtag", query="data pipeline"), "query", "one hashtag"),
        (_campaign("digits", source="hashtag", query="#2024"), "query", "at least one letter"),
        (_campaign("hashes", source="hashtag", query="#a #b"), "query", "one hashtag"),
        (_campaign("typo", source="hashtags"), "source", "'search', 'hashtag' or 'mentions'"),
    ],
)
def test_a_bad_source_or_hashtag_query_is_reported_with_its_field(
    tmp_path: Path, accounts: AccountBook, entry: str, field: str, words: str
) -> None:
    path = _write(tmp_path, _campaign("first") + entry)
    book = load_campaigns(path, accounts)
    assert list(book.campaigns) == ["first"]
    [problem] = book.problems
    assert problem.fields == (field,)
    assert problem.message.startswith(f"{field}: ") and words in problem.message


def test_a_hashtag_default_source_checks_the_query_too(
    tmp_path: Path, accounts: AccountBook, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A platform whose default is the hashtag source: a campaign naming no source gets
    the same check of its query as one that names it."""
    tags_first = PlatformSpec(
        name="chirp",
        account_model=ChirpAccount,
        connect=_never_connected,
        policy=PlatformPolicy(),
        capabilities=frozenset({Capability.SEARCH, Capability.REPLY}),
        sources=(Source.HASHTAG,),
    )
    monkeypatch.setitem(catalog.SPECS, "chirp", tags_first)
    path = _write(
        tmp_path,
        _campaign("tag", account="bird", query="#dagster")
        + _campaign("phrase", account="bird", query="data pipeline"),
    )
    book = load_campaigns(path, accounts)
    assert book.campaigns["tag"].source == Source.HASHTAG
    [problem] = book.problems
    assert problem.name == "phrase" and problem.fields == ("query",)


def test_an_x_campaign_reads_the_accounts_mentions_unless_told_otherwise(
    tmp_path: Path,
) -> None:
    """Self-serve X apps may answer only posts that mention the account (platforms.md
    §1.2): a search campaign there would see every reply refused."""
    from social_pipelines.accounts import load_accounts

    accounts_file = tmp_path / "accounts.toml"
    accounts_file.write_text(
        '[accounts.brand_x]\nplatform = "x"\nclient_id_env = "X_ID"\n', encoding="utf-8"
    )
    book = load_accounts(accounts_file, {"X_ID": "id"})
    campaigns_file = tmp_path / "campaigns.toml"
    campaigns_file.write_text(
        '[[campaigns]]\nname = "x_help"\naccount = "brand_x"\nquery = "dagster"\n\n'
        '[[campaigns]]\nname = "x_search"\naccount = "brand_x"\nquery = "dagster"\n'
        'source = "search"\n\n'
        '[[campaigns]]\nname = "x_tag"\naccount = "brand_x"\nquery = "dagster"\n'
        'source = "hashtag"\n',
        encoding="utf-8",
    )
    loaded = load_campaigns(campaigns_file, book)
    assert loaded.campaigns["x_help"].source == Source.MENTIONS
    assert loaded.campaigns["x_search"].source == Source.SEARCH
    [refused] = loaded.problems
    assert refused.name == "x_tag" and "hashtag" in refused.message
