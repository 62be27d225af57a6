"""Settings: defaults, and every bad value named by its variable."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from social_pipelines.errors import ConfigError
from social_pipelines.settings import DEFAULT_CAMPAIGNS_FILE, Settings, load_settings


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No SOCIAL_* variable, no DAGSTER_HOME, and a working directory without a `.env`."""
    for name in list(os.environ):
        if name.startswith("SOCIAL_") or name == "DAGSTER_HOME":
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_defaults(clean_environment: Path) -> None:
    settings = load_settings()
    assert settings.database_url == ""
    assert settings.campaigns_file == DEFAULT_CAMPAIGNS_FILE
    assert DEFAULT_CAMPAIGNS_FILE.is_file()
    assert settings.sandbox_url == "http://127.0.0.1:8765"
    assert settings.sandbox_token.get_secret_value() == "sandbox-token-brand"
    assert "sandbox-token-brand" not in repr(settings)
    assert settings.http_timeout == 10.0
    assert settings.dagster_home == clean_environment / ".dagster_home"


def test_state_store_defaults_to_a_sqlite_file_in_dagster_home(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    home = tmp_path / "dagster home"
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    settings = load_settings()
    assert settings.dagster_home == home
    assert settings.state_store_url == f"sqlite:///{home}/social_state.db"


def test_state_store_without_dagster_home_lives_in_the_working_directory(
    clean_environment: Path,
) -> None:
    expected = clean_environment / ".dagster_home" / "social_state.db"
    assert load_settings().state_store_url == f"sqlite:///{expected}"


def test_an_empty_dagster_home_means_the_default(
    monkeypatch: pytest.MonkeyPatch, clean_environment: Path
) -> None:
    monkeypatch.setenv("DAGSTER_HOME", "")
    expected = clean_environment / ".dagster_home" / "social_state.db"
    assert load_settings().state_store_url == f"sqlite:///{expected}"


def test_a_database_url_wins_over_the_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOCIAL_DATABASE_URL", "postgresql://u:p@db:5432/social")
    assert load_settings().state_store_url == "postgresql://u:p@db:5432/social"


def test_values_from_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("SOCIAL_SANDBOX_URL", "https://sandbox.example/")
    monkeypatch.setenv("SOCIAL_HTTP_TIMEOUT", "2.5")
    monkeypatch.setenv("SOCIAL_CAMPAIGNS_FILE", str(tmp_path / "c.toml"))
    monkeypatch.setenv("SOCIAL_SANDBOX_TOKEN", "tok-123")
    settings = load_settings()
    assert settings.sandbox_url == "https://sandbox.example"  # trailing slash dropped
    assert settings.http_timeout == 2.5
    assert settings.campaigns_file == tmp_path / "c.toml"
    assert settings.sandbox_token.get_secret_value() == "tok-123"
    assert settings.variables()["SOCIAL_SANDBOX_TOKEN"] == "tok-123"


def test_variables_fill_in_the_sandbox_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOME_OTHER_VARIABLE", "x")
    variables = load_settings().variables()
    assert variables["SOCIAL_SANDBOX_URL"] == "http://127.0.0.1:8765"
    assert variables["SOCIAL_SANDBOX_TOKEN"] == "sandbox-token-brand"
    assert variables["SOME_OTHER_VARIABLE"] == "x"


def test_a_dotenv_file_in_the_working_directory_is_read(clean_environment: Path) -> None:
    (clean_environment / ".env").write_text("SOCIAL_HTTP_TIMEOUT=3\n", encoding="utf-8")
    assert load_settings().http_timeout == 3.0


@pytest.mark.parametrize(
    ("variable", "value", "fragment"),
    [
        ("SOCIAL_HTTP_TIMEOUT", "0", "greater than 0"),
        ("SOCIAL_HTTP_TIMEOUT", "-1", "greater than 0"),
        ("SOCIAL_HTTP_TIMEOUT", "301", "less than or equal to 300"),
        ("SOCIAL_HTTP_TIMEOUT", "ten", "valid number"),
        ("SOCIAL_DATABASE_URL", "mysql://u@db/x", "sqlite:// or postgresql://"),
        ("SOCIAL_DATABASE_URL", "/var/lib/state.db", "sqlite:// or postgresql://"),
        ("SOCIAL_SANDBOX_URL", "ftp://sandbox", "http:// or https://"),
        ("SOCIAL_SANDBOX_URL", "127.0.0.1:8765", "http:// or https://"),
    ],
)
def test_a_bad_value_names_its_variable(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, fragment: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigError) as caught:
        load_settings()
    message = str(caught.value)
    assert f"{variable}={value!r}" in message
    assert fragment in message


def test_several_bad_values_are_all_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOCIAL_HTTP_TIMEOUT", "0")
    monkeypatch.setenv("SOCIAL_SANDBOX_URL", "nope")
    with pytest.raises(ConfigError) as caught:
        load_settings()
    assert "SOCIAL_HTTP_TIMEOUT" in str(caught.value)
    assert "SOCIAL_SANDBOX_URL" in str(caught.value)


def test_settings_model_itself_raises_pydantic_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    # load_settings is the one place that turns them into ConfigError.
    monkeypatch.setenv("SOCIAL_HTTP_TIMEOUT", "0")
    with pytest.raises(ValueError, match="http_timeout"):
        Settings()


def test_policy_overrides_from_nested_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOCIAL_POLICIES__MASTODON__BREAKER_RESET_SECONDS", "30")
    monkeypatch.setenv("SOCIAL_POLICIES__MASTODON__QUOTA_PER_HOUR", "12")
    policies = load_settings().policies
    assert policies == {"mastodon": {"breaker_reset_seconds": "30", "quota_per_hour": "12"}}


@pytest.mark.parametrize(
    ("variable", "value", "fragment"),
    [
        ("SOCIAL_POLICIES__MASTODON__NO_SUCH_FIELD", "1", "unknown field(s) ['no_such_field']"),
        ("SOCIAL_POLICIES__MASTODON__BREAKER_RESET_SECONDS", "-1", "greater than 0"),
        ("SOCIAL_POLICIES", '{"mastodon": {"retry_attempts": 0}}', "mastodon.retry_attempts"),
        ("SOCIAL_POLICIES__MYSPACE__RETRY_ATTEMPTS", "2", "no adapter for platform 'myspace'"),
    ],
)
def test_a_bad_policy_names_the_variable(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, fragment: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigError) as caught:
        load_settings()
    assert "SOCIAL_POLICIES" in str(caught.value)
    assert fragment in str(caught.value)


def test_policies_that_are_not_json_name_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOCIAL_POLICIES", "mastodon.quota_per_hour=3")
    with pytest.raises(ConfigError, match="SOCIAL_POLICIES"):
        load_settings()


def test_rate_limit_buckets_live_beside_the_state_store_by_default(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path))
    assert load_settings().bucket_path == tmp_path / "social_ratelimits.db"
    monkeypatch.setenv("SOCIAL_RATE_LIMIT_DB", str(tmp_path / "elsewhere.db"))
    assert load_settings().bucket_path == tmp_path / "elsewhere.db"


def test_alert_settings_default_to_the_event_log_and_the_local_ui() -> None:
    settings = load_settings()
    assert settings.alert_webhook_url is None and settings.alert_slack_webhook_url is None
    assert settings.ui_base_url == "http://127.0.0.1:3000"
    assert settings.alert_rate_per_minute == 10


@pytest.mark.parametrize("variable", ["SOCIAL_ALERT_WEBHOOK_URL", "SOCIAL_ALERT_SLACK_WEBHOOK_URL"])
@pytest.mark.parametrize("value", ["ftp://hooks.example/T0/s3cr3t", "hooks.example/s3cr3t"])
def test_a_bad_webhook_url_is_named_and_never_echoed(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigError) as raised:
        load_settings()
    message = str(raised.value)
    assert f"{variable}: " in message and "http:// or https:// URL" in message
    assert "s3cr3t" not in message


def test_a_webhook_url_is_kept_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    url = "https://hooks.slack.com/services/T0/B0/s3cr3t"
    monkeypatch.setenv("SOCIAL_ALERT_SLACK_WEBHOOK_URL", url)
    settings = load_settings()
    assert settings.alert_slack_webhook_url is not None
    assert settings.alert_slack_webhook_url.get_secret_value() == url
    assert "s3cr3t" not in repr(settings)


def test_a_malformed_secret_key_is_not_echoed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOCIAL_SECRET_KEY", "not-a-key-but-still-s3cr3t")
    with pytest.raises(ConfigError) as raised:
        load_settings()
    assert "SOCIAL_SECRET_KEY: " in str(raised.value)
    assert "s3cr3t" not in str(raised.value)


def test_a_secret_from_dotenv_reaches_dagster_by_variable_name_never_as_a_value(
    clean_environment: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from dagster import EnvVar

    from social_pipelines.definitions import build_resources

    for variable in ("SOCIAL_LLM_API_KEY", "SOCIAL_ALERT_WEBHOOK_URL"):
        # Registered with monkeypatch, so the export below is undone after the test.
        monkeypatch.setenv(variable, "")
        monkeypatch.delenv(variable)
    (clean_environment / ".env").write_text(
        "SOCIAL_LLM_API_KEY=sk-from-dotenv\n"
        "SOCIAL_ALERT_WEBHOOK_URL=https://hooks.example.com/T0/s3cret\n",
        encoding="utf-8",
    )
    resources = build_resources(load_settings())
    assert resources["reply_writer"].llm_api_key == EnvVar("SOCIAL_LLM_API_KEY")
    assert os.environ["SOCIAL_LLM_API_KEY"] == "sk-from-dotenv"
    shown = repr(resources) + str({k: v.model_dump() for k, v in resources.items()})
    assert "sk-from-dotenv" not in shown and "s3cret" not in shown
