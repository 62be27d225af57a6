"""The accounts file: each account validated against its own platform's model."""

from __future__ import annotations

from pathlib import Path

import pytest

from social_pipelines.accounts import load_accounts
from social_pipelines.errors import ConfigError
from social_pipelines.platforms.capabilities import Capability
from social_pipelines.platforms.mastodon import MastodonAccount
from social_pipelines.settings import DEFAULT_ACCOUNTS_FILE

ACCOUNT = """
[accounts.brand]
platform = "mastodon"
instance_url = "https://social.example/"
token_env = "BRAND_TOKEN"
"""

VARIABLES = {"BRAND_TOKEN": "tok-brand-secret"}


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "accounts.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_a_valid_file_loads_into_the_platforms_own_model(tmp_path: Path) -> None:
    path = _write(tmp_path, ACCOUNT)
    book = load_accounts(path, VARIABLES)
    assert book.path == path
    assert book.get("brand") == MastodonAccount(
        name="brand",
        platform="mastodon",
        instance_url="https://social.example",
        token_env="BRAND_TOKEN",
    )
    assert book.lacks("brand", Capability.SEARCH, Capability.REPLY) == []


def test_asking_for_an_unknown_account_names_the_file_and_the_known_ones(tmp_path: Path) -> None:
    path = _write(tmp_path, ACCOUNT)
    with pytest.raises(ConfigError) as caught:
        load_accounts(path, VARIABLES).get("ghost")
    assert str(caught.value) == f"{path}: no account named 'ghost'; defined: brand"


def test_the_shipped_default_file_loads_with_the_sandbox_variables() -> None:
    variables = {"SOCIAL_SANDBOX_URL": "http://127.0.0.1:8765/", "SOCIAL_SANDBOX_TOKEN": "t"}
    book = load_accounts(DEFAULT_ACCOUNTS_FILE, variables)
    assert list(book.accounts) == ["brand", "brand_news"]
    assert book.get("brand").platform == "mastodon"
    assert isinstance(book.get("brand"), MastodonAccount)
    assert book.get("brand").instance_url == "http://127.0.0.1:8765"


def test_instance_url_expands_variables(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        '[accounts.brand]\nplatform = "mastodon"\n'
        'instance_url = "${MASTO_HOST}/api-root/"\ntoken_env = "BRAND_TOKEN"\n',
    )
    book = load_accounts(path, {"MASTO_HOST": "https://m.example"})
    assert book.get("brand").instance_url == "https://m.example/api-root"


def test_instance_url_expands_from_the_environment_by_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MASTO_HOST_FOR_TEST", "https://env.example")
    path = _write(
        tmp_path,
        '[accounts.brand]\nplatform = "mastodon"\n'
        'instance_url = "${MASTO_HOST_FOR_TEST}"\ntoken_env = "BRAND_TOKEN"\n',
    )
    assert load_accounts(path).get("brand").instance_url == "https://env.example"


def test_an_unset_variable_stops_the_load_naming_it(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        '[accounts.brand]\nplatform = "mastodon"\n'
        'instance_url = "${NOT_SET_ANYWHERE}"\ntoken_env = "BRAND_TOKEN"\n',
    )
    with pytest.raises(ConfigError) as caught:
        load_accounts(path, {})
    message = str(caught.value)
    assert str(path) in message
    assert "[accounts.brand]" in message
    assert "instance_url" in message
    assert "environment variable NOT_SET_ANYWHERE is not set" in message


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ('platform = "myspace"', "'myspace' is not supported; allowed: bluesky, mastodon, x"),
        ('instance_url = "social.example"', "is not an http:// or https:// URL"),
        ('token_env = "lower_case"', "token_env"),
        ("password = 'x'", "password"),
    ],
)
def test_a_bad_account_stops_the_load_naming_file_account_and_field(
    tmp_path: Path, body: str, fragment: str
) -> None:
    fields = {
        "platform": '"mastodon"',
        "instance_url": '"https://social.example"',
        "token_env": '"BRAND_TOKEN"',
    }
    key = body.split(" = ")[0]
    fields[key] = body.split(" = ", 1)[1]
    text = "[accounts.brand]\n" + "".join(f"{k} = {v}\n" for k, v in fields.items())
    path = _write(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load_accounts(path, VARIABLES)
    assert str(caught.value).startswith(f"{path}: [accounts.brand]: {key}")
    assert fragment in str(caught.value)


def test_a_missing_file_is_named_with_its_setting(tmp_path: Path) -> None:
    path = tmp_path / "nowhere.toml"
    with pytest.raises(ConfigError) as caught:
        load_accounts(path)
    assert str(path) in str(caught.value)
    assert "SOCIAL_ACCOUNTS_FILE" in str(caught.value)


def test_accounts_written_as_an_array_is_a_config_error(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        '[[accounts]]\nname = "brand"\nplatform = "mastodon"\n'
        'instance_url = "https://social.example"\ntoken_env = "BRAND_TOKEN"\n',
    )
    with pytest.raises(ConfigError, match=str(path)):
        load_accounts(path, VARIABLES)


def test_an_unknown_top_level_key_stops_the_load(tmp_path: Path) -> None:
    path = _write(tmp_path, ACCOUNT + "[campaigns]\nx = 1\n")
    with pytest.raises(ConfigError, match=r"unknown top-level key\(s\) \['campaigns'\]"):
        load_accounts(path, VARIABLES)


# -- tokens --------------------------------------------------------------------------------


def _account() -> MastodonAccount:
    return MastodonAccount(
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
        load_accounts(path, VARIABLES)
    assert "tok-brand-secret" not in str(caught.value)


def test_a_misplaced_token_reference_is_not_echoed(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        '[accounts.brand]\nplatform = "mastodon"\ninstance_url = "${BRAND_TOKEN}"\n'
        'token_env = "BRAND_TOKEN"\n',
    )
    with pytest.raises(ConfigError) as caught:
        load_accounts(path, VARIABLES)
    assert "tok-brand-secret" not in str(caught.value)


def test_an_account_may_override_its_platforms_policy(tmp_path: Path) -> None:
    from social_pipelines.resilience.connector import account_policy

    path = _write(tmp_path, ACCOUNT + "\n[accounts.brand.policy]\nquota_per_hour = 20\n")
    account = load_accounts(path, VARIABLES).get("brand")
    assert account.policy == {"quota_per_hour": 20}
    # Over the settings' per-platform overrides, which stay for what it does not change.
    policy = account_policy(account, {"mastodon": {"quota_per_hour": 50, "op_retries": 1}})
    assert (policy.quota_per_hour, policy.op_retries) == (20, 1)


@pytest.mark.parametrize(
    ("table", "named"),
    [
        ("quota_per_hour = 20\nquota_per_week = 1\n", "quota_per_week"),
        ("quota_per_hour = -1\n", "quota_per_hour"),
    ],
)
def test_a_bad_policy_override_names_the_account_and_field(
    tmp_path: Path, table: str, named: str
) -> None:
    path = _write(tmp_path, ACCOUNT + "\n[accounts.brand.policy]\n" + table)
    with pytest.raises(ConfigError) as raised:
        load_accounts(path, VARIABLES)
    message = str(raised.value)
    assert "[accounts.brand]" in message and "policy" in message and named in message
