"""The campaigns file: what loads, what is reported and skipped, what stops the load."""

from __future__ import annotations

from pathlib import Path

import pytest

from social_pipelines.campaigns import AccountConfig, Campaign, load_campaigns
from social_pipelines.errors import ConfigError
from social_pipelines.settings import DEFAULT_CAMPAIGNS_FILE

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
        ACCOUNT
        + _campaign(
            "mentions",
            max_replies=3,
            search_limit=20,
            max_age_hours=6,
            blocklist=["crypto"],
            template="Hi @{author}, about {query} ({campaign})",
        )
        + _campaign("quiet", enabled=False),
    )
    book = load_campaigns(path, variables=VARIABLES)
    assert book.path == path
    assert book.problems == []
    account = book.accounts["brand"]
    assert account == AccountConfig(
        name="brand",
        platform="mastodon",
        instance_url="https://social.example",
        token_env="BRAND_TOKEN",
    )
    mentions = book.campaigns["mentions"]
    assert (mentions.account, mentions.query, mentions.max_replies) == ("brand", "dagster", 3)
    assert (mentions.search_limit, mentions.max_age_hours) == (20, 6)
    assert mentions.blocklist == ("crypto",)
    quiet = book.campaigns["quiet"]
    assert (quiet.max_replies, quiet.search_limit, quiet.max_age_hours) == (5, 40, 24)
    assert [c.name for c in book.enabled()] == ["mentions"]
    assert [c.name for c in book.enabled(["quiet"])] == ["quiet"]


def test_asking_for_an_unknown_campaign_names_the_known_ones(tmp_path: Path) -> None:
    book = load_campaigns(_write(tmp_path, ACCOUNT + _campaign("mentions")), VARIABLES)
    with pytest.raises(ConfigError, match="no campaign named nope; known: mentions"):
        book.enabled(["mentions", "nope"])


def test_asking_for_a_refused_campaign_says_why_it_was_refused(tmp_path: Path) -> None:
    path = _write(tmp_path, ACCOUNT + _campaign("ok") + _campaign("greedy", max_replies=1000))
    book = load_campaigns(path, VARIABLES)
    with pytest.raises(ConfigError) as caught:
        book.enabled(["greedy"])
    message = str(caught.value)
    assert "no campaign named greedy; known: ok" in message
    assert f"refused: {path}: campaigns[1] (greedy): max_replies" in message


def test_a_refusal_carries_file_index_name_and_fields_for_metadata(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        ACCOUNT
        + _campaign("two_bad", max_replies=1000, quer="x")
        + _campaign("lost", account="ghost")
        + '[[campaigns]]\naccount = "brand"\nquery = "x"\n',
    )
    book = load_campaigns(path, VARIABLES)
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
    book = load_campaigns(DEFAULT_CAMPAIGNS_FILE, variables=variables)
    assert book.problems == []
    assert book.accounts["brand"].instance_url == "http://127.0.0.1:8765"
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
    path = _write(tmp_path, ACCOUNT + _campaign("first") + entry + _campaign("third"))
    book = load_campaigns(path, variables=VARIABLES)
    assert sorted(book.campaigns) == ["first", "third"]
    [problem] = book.problems
    assert problem.where.startswith(f"{path}: campaigns[1]")
    assert field in problem.message
    assert str(problem).startswith(f"{path}: campaigns[1]")


def test_a_campaign_without_a_name_is_reported_by_index(tmp_path: Path) -> None:
    path = _write(tmp_path, ACCOUNT + '[[campaigns]]\naccount = "brand"\nquery = "x"\n')
    book = load_campaigns(path, variables=VARIABLES)
    [problem] = book.problems
    assert problem.where == f"{path}: campaigns[0]"
    assert "name" in problem.message


def test_a_campaign_for_an_unknown_account_is_reported(tmp_path: Path) -> None:
    path = _write(tmp_path, ACCOUNT + _campaign("ok") + _campaign("lost", account="ghost"))
    book = load_campaigns(path, variables=VARIABLES)
    assert list(book.campaigns) == ["ok"]
    [problem] = book.problems
    assert problem.where == f"{path}: campaigns[1] (lost)"
    assert "account 'ghost' is not defined; defined: brand" in problem.message


def test_a_duplicate_campaign_name_is_reported(tmp_path: Path) -> None:
    path = _write(tmp_path, ACCOUNT + _campaign("twin") + _campaign("twin", query="other"))
    book = load_campaigns(path, variables=VARIABLES)
    assert book.campaigns["twin"].query == "dagster"  # the first one wins
    [problem] = book.problems
    assert "campaigns[1] (twin)" in problem.where
    assert "duplicate" in problem.message


def test_an_unknown_template_placeholder_is_reported(tmp_path: Path) -> None:
    path = _write(tmp_path, ACCOUNT + _campaign("t", template="Hi {author}, {handle}!"))
    book = load_campaigns(path, variables=VARIABLES)
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


def test_instance_url_expands_variables(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        '[accounts.brand]\nplatform = "mastodon"\n'
        'instance_url = "${MASTO_HOST}/api-root/"\ntoken_env = "BRAND_TOKEN"\n',
    )
    book = load_campaigns(path, variables={"MASTO_HOST": "https://m.example"})
    assert book.accounts["brand"].instance_url == "https://m.example/api-root"


def test_instance_url_expands_from_the_environment_by_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MASTO_HOST_FOR_TEST", "https://env.example")
    path = _write(
        tmp_path,
        '[accounts.brand]\nplatform = "mastodon"\n'
        'instance_url = "${MASTO_HOST_FOR_TEST}"\ntoken_env = "BRAND_TOKEN"\n',
    )
    assert load_campaigns(path).accounts["brand"].instance_url == "https://env.example"


def test_an_unset_variable_stops_the_load_naming_it(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        '[accounts.brand]\nplatform = "mastodon"\n'
        'instance_url = "${NOT_SET_ANYWHERE}"\ntoken_env = "BRAND_TOKEN"\n' + _campaign("mentions"),
    )
    with pytest.raises(ConfigError) as caught:
        load_campaigns(path, variables={})
    message = str(caught.value)
    assert str(path) in message
    assert "[accounts.brand]" in message
    assert "instance_url" in message
    assert "environment variable NOT_SET_ANYWHERE is not set" in message


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ('platform = "myspace"', "'myspace' is not supported; allowed: mastodon"),
        ('instance_url = "social.example"', "is not an http:// or https:// URL"),
        ('token_env = "lower_case"', "token_env"),
        ("password = 'x'", "password"),
    ],
)
def test_a_bad_account_stops_the_load(tmp_path: Path, body: str, fragment: str) -> None:
    fields = {
        "platform": '"mastodon"',
        "instance_url": '"https://social.example"',
        "token_env": '"BRAND_TOKEN"',
    }
    key = body.split(" = ")[0]
    fields[key] = body.split(" = ", 1)[1]
    text = "[accounts.brand]\n" + "".join(f"{k} = {v}\n" for k, v in fields.items())
    path = _write(tmp_path, text + _campaign("mentions"))
    with pytest.raises(ConfigError) as caught:
        load_campaigns(path, variables=VARIABLES)
    assert str(caught.value).startswith(f"{path}: [accounts.brand]")
    assert fragment in str(caught.value)


def test_a_missing_file_is_named(tmp_path: Path) -> None:
    path = tmp_path / "nowhere.toml"
    with pytest.raises(ConfigError) as caught:
        load_campaigns(path)
    assert str(path) in str(caught.value)
    assert "SOCIAL_CAMPAIGNS_FILE" in str(caught.value)


def test_bad_toml_is_named_with_its_position(tmp_path: Path) -> None:
    path = _write(tmp_path, ACCOUNT + "[[campaigns]]\nname = \n")
    with pytest.raises(ConfigError) as caught:
        load_campaigns(path)
    assert f"campaigns file {path} is not valid TOML" in str(caught.value)
    assert "line" in str(caught.value)


def test_an_unknown_top_level_key_stops_the_load(tmp_path: Path) -> None:
    path = _write(tmp_path, ACCOUNT + "[settings]\nx = 1\n")
    with pytest.raises(ConfigError, match=r"unknown top-level key\(s\) \['settings'\]"):
        load_campaigns(path, variables=VARIABLES)


def test_accounts_written_as_an_array_is_a_config_error(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        '[[accounts]]\nname = "brand"\nplatform = "mastodon"\n'
        'instance_url = "https://social.example"\ntoken_env = "BRAND_TOKEN"\n',
    )
    with pytest.raises(ConfigError, match=str(path)):
        load_campaigns(path, variables=VARIABLES)


def test_a_file_that_is_not_utf8_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "latin1.toml"
    path.write_bytes((ACCOUNT + "# café\n").encode("latin-1"))
    with pytest.raises(ConfigError, match=str(path)):
        load_campaigns(path, variables=VARIABLES)


# -- tokens --------------------------------------------------------------------------------


def _account() -> AccountConfig:
    return AccountConfig(
        name="brand",
        platform="mastodon",
        instance_url="https://social.example",
        token_env="BRAND_TOKEN",
    )


def test_token_comes_from_the_named_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    account = _account()
    token = account.token({"BRAND_TOKEN": "tok-brand-secret"})
    assert token.get_secret_value() == "tok-brand-secret"
    assert "tok-brand-secret" not in str(token) + repr(token)
    monkeypatch.setenv("BRAND_TOKEN", "from-env-secret")
    assert account.token().get_secret_value() == "from-env-secret"


@pytest.mark.parametrize("variables", [{}, {"BRAND_TOKEN": ""}])
def test_a_missing_token_names_the_variable_and_no_value(variables: dict[str, str]) -> None:
    leaky = {**variables, "OTHER_TOKEN": "tok-other-secret", "BRAND_TOKEN_OLD": "tok-old"}
    with pytest.raises(ConfigError) as caught:
        _account().token(leaky)
    message = str(caught.value)
    assert "BRAND_TOKEN" in message
    assert "'brand'" in message
    assert "tok-" not in message


def test_a_missing_token_in_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("BRAND_TOKEN", raising=False)
    with pytest.raises(ConfigError, match="environment variable BRAND_TOKEN"):
        _account().token()


def test_account_errors_never_show_a_token_value(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        '[accounts.brand]\nplatform = "myspace"\ninstance_url = "https://social.example"\n'
        'token_env = "BRAND_TOKEN"\n',
    )
    with pytest.raises(ConfigError) as caught:
        load_campaigns(path, variables=VARIABLES)
    assert "tok-brand-secret" not in str(caught.value)


def test_a_misplaced_token_reference_is_not_echoed(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        '[accounts.brand]\nplatform = "mastodon"\ninstance_url = "${BRAND_TOKEN}"\n'
        'token_env = "BRAND_TOKEN"\n',
    )
    with pytest.raises(ConfigError) as caught:
        load_campaigns(path, variables=VARIABLES)
    assert "tok-brand-secret" not in str(caught.value)
