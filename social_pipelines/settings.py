"""Every environment variable the project reads, validated once when the definitions load.

A bad value fails at load with a message that names the variable, what is wrong with the
value and what is allowed, instead of surfacing mid-run as a confusing stack trace.
"""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import AliasChoices, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict, SettingsError

from social_pipelines.errors import ConfigError

ENV_PREFIX = "SOCIAL_"
PACKAGE_DIR = Path(__file__).resolve().parent
DEFAULT_CAMPAIGNS_FILE = PACKAGE_DIR / "defaults" / "campaigns.toml"
DEFAULT_ACCOUNTS_FILE = PACKAGE_DIR / "defaults" / "accounts.toml"
# The sandbox's brand account token: not a credential, the sandbox's own fixed value.
SANDBOX_TOKEN = "sandbox-token-brand"  # noqa: S105 - the sandbox's fixed value
# The sandbox's second brand account (the demo calendar posts to both): fixed, public.
SANDBOX_NEWS_TOKEN = "sandbox-token-brand_news"  # noqa: S105 - the sandbox's fixed value


def dagster_home() -> Path:
    """Where Dagster keeps its storage; the state store defaults to living beside it."""
    return Path(os.environ.get("DAGSTER_HOME") or Path.cwd() / ".dagster_home")


class Settings(BaseSettings):
    """The project's settings (prefix `SOCIAL_`, `.env` supported)."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        env_nested_delimiter="__",
        validate_default=True,
        # `Settings(dagster_home=...)` in code, DAGSTER_HOME in the environment.
        populate_by_name=True,
    )

    database_url: str = Field(
        default="",
        description="SQLAlchemy URL of the state store (ledger, outbox, tokens, breakers, "
        "rate-limit blocks and budgets); postgresql://USER:PASSWORD@HOST:PORT/DB for "
        "production (psycopg 3). Passed to Dagster by variable name: it may hold a password.",
        json_schema_extra={"shown_default": "SQLite `$DAGSTER_HOME/social_state.db`"},
    )
    accounts_file: Path = Field(
        default=DEFAULT_ACCOUNTS_FILE,
        description="TOML file with the accounts to post as (credentials by variable name).",
    )
    campaigns_file: Path = Field(
        default=DEFAULT_CAMPAIGNS_FILE,
        description="TOML file with the reply campaigns (each names an account).",
    )
    sandbox_url: str = Field(
        default="http://127.0.0.1:8765",
        description="Base URL of the local sandbox platform, for accounts that use it.",
    )
    sandbox_token: SecretStr = Field(
        default=SecretStr(SANDBOX_TOKEN),
        description="Access token of the sandbox's brand account (not a real credential).",
        json_schema_extra={"shown_default": "the sandbox's fixed token"},
    )
    http_timeout: float = Field(
        default=10.0, gt=0, le=300, description="Seconds before any platform call times out."
    )
    policies: dict[str, dict[str, Any]] = Field(
        default_factory=dict,
        description="Per-platform overrides of each adapter's POLICY (breaker, rates, "
        "quotas, retries; platforms/policy.py), one variable per value, e.g. "
        "SOCIAL_POLICIES__MASTODON__QUOTA_PER_HOUR=20, or all as JSON in SOCIAL_POLICIES.",
        json_schema_extra={"shown_default": "each adapter's `POLICY`"},
    )
    claim_lease_seconds: float = Field(
        default=60.0,
        ge=4,
        le=3600,
        description="How long a delivery claim outlives its holder's last heartbeat (renewed "
        "every quarter lease): a killed run's claims are free for reconciliation after this.",
    )
    calendar_dir: Path | None = Field(
        default=None,
        description="Folder of YAML or JSON files, each a list of posts: the content "
        "calendar, synced into the outbox at every due-posts sensor tick. Unset: no calendar.",
    )
    default_timezone: str | None = Field(
        default=None,
        description="IANA zone (such as Europe/Berlin) a post time without a UTC offset is "
        "read in; unset, such a time is refused.",
    )
    publish_max_lateness: timedelta = Field(
        default=timedelta(hours=6),
        gt=timedelta(0),
        description="A post found later than this after its time is marked missed and never "
        "sent (unless publish_job runs with force_late): a stale backlog must not flood an "
        "account after an outage. Seconds or ISO 8601 (PT6H).",
    )
    media_cache_dir: Path | None = Field(
        default=None,
        description="Where images rendered for each platform are kept, by source content and "
        "spec: a retry renders nothing again.",
        json_schema_extra={"shown_default": "`$DAGSTER_HOME/social_media_cache`"},
    )
    secret_key: SecretStr | None = Field(
        default=None,
        description="Fernet key that seals stored tokens and sessions at rest (32 url-safe "
        'base64 bytes: python -c "from cryptography.fernet import Fernet; '
        'print(Fernet.generate_key().decode())"). Unset: they are stored plainly, and '
        "`accounts check` warns.",
    )
    llm_base_url: str = Field(
        default="",
        description='OpenAI-compatible API for writer = "llm" campaigns (https://api.openai.'
        "com/v1, http://127.0.0.1:11434/v1 for Ollama, a vLLM or llama.cpp server); unset: "
        "the template writes every reply, and the run says so.",
    )
    llm_model: str = Field(default="", description="The model those campaigns ask.")
    llm_api_key: SecretStr | None = Field(
        default=None, description="Its API key (Bearer); local servers may need none."
    )
    llm_timeout: float = Field(
        default=60.0, gt=0, le=600, description="Seconds before a reply request gives up."
    )
    llm_max_tokens_field: Literal["max_completion_tokens", "max_tokens"] = Field(
        default="max_completion_tokens",
        description="The field that caps the reply's tokens: OpenAI, vLLM and llama.cpp "
        "take max_completion_tokens; Ollama reads only max_tokens.",
    )
    alert_webhook_url: SecretStr | None = Field(
        default=None,
        description="Generic JSON webhook every alert is POSTed to (a failed run, a circuit "
        "opened, an account to reconnect, a post missed or dead-lettered, a quota used up), "
        "in the README's format (schema social_pipelines.alert/1); only its host is ever "
        "logged. Unset, and no Slack webhook either: alerts go to the sensors' event log.",
    )
    alert_slack_webhook_url: SecretStr | None = Field(
        default=None,
        description="Slack incoming-webhook URL (https://hooks.slack.com/services/...) the "
        "same alerts are posted to, as Slack messages; only its host is ever logged.",
    )
    alert_rate_per_minute: int = Field(
        default=10,
        ge=1,
        le=600,
        description="At most this many alerts a minute to each sink; what exceeds it waits "
        "for the next minute (never dropped). Slack takes about one message a second per "
        "webhook.",
    )
    ui_base_url: str = Field(
        default="http://127.0.0.1:3000",
        description="Where people open the Dagster UI: alerts link each run as "
        "{SOCIAL_UI_BASE_URL}/runs/{run_id}.",
    )
    run_retention_days: float = Field(
        default=90.0,
        ge=0,
        description="Finished runs older than this many days are deleted, with their event "
        "logs and the step outputs kept for re-executing them, by prune_history_schedule "
        "(daily; Dagster keeps runs forever otherwise). 0 keeps every run.",
    )
    log_file: Path | None = Field(
        default=None,
        description="JSON log file, one object a line (time in UTC, level, logger, message, "
        "run_id, step, exception), for shipping logs elsewhere: library logs (HTTP requests, "
        "retries, circuit transitions, rate-limit waits, token refreshes) from every process, "
        "and every run's own log through dagster.yaml's python_logs. Known secret values are "
        "masked as ***. Every process may write the one file: lines and rotation go under a "
        "lock file beside it. Unset: no file (the event log has it all).",
    )
    log_file_max_bytes: int = Field(
        default=10 * 1024 * 1024,
        ge=0,
        description="The JSON log file is rotated when it would grow past this many bytes "
        "(0: never rotated, say for logrotate with copytruncate).",
    )
    log_file_backups: int = Field(
        default=5,
        ge=0,
        le=1000,
        description="Rotated JSON log files kept (file.1 is the newest), older ones deleted; "
        "0: never rotated.",
    )
    rate_limit_db: Path | None = Field(
        default=None,
        description="SQLite file of the shared rate buckets (on PostgreSQL they live in "
        "the state store).",
        json_schema_extra={"shown_default": "`$DAGSTER_HOME/social_ratelimits.db`"},
    )
    dagster_home: Path = Field(
        default_factory=dagster_home,
        validation_alias=AliasChoices("DAGSTER_HOME", "SOCIAL_DAGSTER_HOME"),
        description="Dagster's home: its dagster.yaml and (embedded default) its SQLite "
        "storage, with the state store beside it. `make` installs the embedded dagster.yaml "
        "there and initialises the storage when it creates the home, refreshes its own "
        "earlier copy, and never replaces another profile.",
        json_schema_extra={"shown_default": "`.dagster_home/` in the checkout (the Makefile)"},
    )

    @field_validator("dagster_home", mode="before")
    @classmethod
    def _empty_home_is_unset(cls, value: object) -> object:
        # DAGSTER_HOME="" means "not set" to Dagster too, not "the current directory".
        return dagster_home() if value in ("", None) else value

    @field_validator("secret_key")
    @classmethod
    def _fernet_key(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None or not value.get_secret_value():
            return None
        from social_pipelines.store.tokens import TokenCipher

        try:
            TokenCipher(value.get_secret_value())
        except ConfigError as error:
            raise ValueError(str(error).removeprefix("SOCIAL_SECRET_KEY ")) from None
        return value

    @field_validator("default_timezone")
    @classmethod
    def _known_zone(cls, value: str | None) -> str | None:
        if not value:
            return None
        from social_pipelines.when import WhenError, zone

        try:
            zone(value)
        except WhenError as error:
            raise ValueError(str(error)) from None
        return value

    @field_validator("database_url")
    @classmethod
    def _known_database(cls, value: str) -> str:
        if value and not value.startswith(("sqlite://", "postgresql://", "postgresql+psycopg://")):
            raise ValueError(
                "must be a sqlite:// or postgresql:// URL (or empty for the embedded default)"
            )
        return value

    @field_validator("alert_webhook_url", "alert_slack_webhook_url")
    @classmethod
    def _secret_http_url(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None or not value.get_secret_value():
            return None
        # Kept as given (not stripped): definitions.py passes it by EnvVar only while it is
        # the environment's value exactly.
        parts = urlsplit(value.get_secret_value())
        if parts.scheme not in ("http", "https") or not parts.hostname:
            # Never echo the value: the URL is the secret.
            raise ValueError("must be an http:// or https:// URL with a host")
        return value

    @field_validator("sandbox_url", "ui_base_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must be an http:// or https:// URL")
        return value.rstrip("/")

    @field_validator("policies")
    @classmethod
    def _valid_policies(cls, value: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
        from social_pipelines.platforms.policy import PlatformPolicy
        from social_pipelines.resilience.policy import policy_for

        for platform, change in value.items():
            unknown = sorted(set(change) - set(PlatformPolicy.model_fields))
            if unknown:
                raise ValueError(
                    f"{platform}: unknown field(s) {unknown}; allowed: "
                    f"{', '.join(sorted(PlatformPolicy.model_fields))}"
                )
            try:
                policy_for(platform, value)
            except ValidationError as error:
                problems = "; ".join(
                    f"{platform}.{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in error.errors()
                )
                raise ValueError(problems) from None
        return value

    @property
    def media_cache_path(self) -> Path:
        return self.media_cache_dir or self.dagster_home / "social_media_cache"

    @property
    def bucket_path(self) -> Path:
        return self.rate_limit_db or self.dagster_home / "social_ratelimits.db"

    def variables(self) -> dict[str, str]:
        """What the accounts file's `${NAME}` references and `*_env` fields resolve to."""
        return credential_variables(self.sandbox_url, self.sandbox_token.get_secret_value())

    @property
    def state_store_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{self.dagster_home / 'social_state.db'}"


def credential_variables(sandbox_url: str, sandbox_token: str = "") -> dict[str, str]:
    """The environment, with the sandbox's address and its (not secret) token filled in:
    what resources and the CLI alike resolve account credentials from."""
    return {
        "SOCIAL_SANDBOX_URL": sandbox_url,
        "SOCIAL_SANDBOX_TOKEN": sandbox_token or SANDBOX_TOKEN,
        "SOCIAL_SANDBOX_NEWS_TOKEN": SANDBOX_NEWS_TOKEN,
        **os.environ,
    }


_SECRET_FIELDS = frozenset(
    name for name, info in Settings.model_fields.items() if "SecretStr" in str(info.annotation)
)


def _describe(error: ValidationError) -> str:
    lines = []
    for item in error.errors():
        field = str(item["loc"][0]) if item["loc"] else "?"
        variable = field if field.isupper() else ENV_PREFIX + field.upper()
        value = item.get("input")
        # A secret's value is never shown, not even a malformed one.
        secret = field in _SECRET_FIELDS
        shown = "" if isinstance(value, dict) or secret else f"={value!r}"
        lines.append(f"{variable}{shown}: {item['msg']}")
    return "invalid settings: " + "; ".join(lines)


def load_settings() -> Settings:
    """Read and validate the settings, turning pydantic's error into one clear sentence."""
    try:
        settings = Settings()
    except ValidationError as error:
        raise ConfigError(_describe(error)) from None
    except SettingsError as error:
        # pydantic-settings could not even parse a value (e.g. JSON for a dict field).
        raise ConfigError(
            f"invalid settings: {error}; complex fields such as {ENV_PREFIX}POLICIES take "
            f"JSON, or one {ENV_PREFIX}POLICIES__<PLATFORM>__<FIELD> variable per value"
        ) from None
    _export_from_dotenv(settings)
    return settings


# What resources get by variable name (`EnvVar`): the secrets, and the state store's URL,
# which may hold a password.
_BY_NAME = (*sorted(_SECRET_FIELDS), "database_url")


def _export_from_dotenv(settings: Settings) -> None:
    """Put a secret that came from `.env` into this process's environment. Dagster resolves
    an `EnvVar` from the environment only, and the definitions pass a secret by name only
    when the environment holds it: without this, a secret kept in `.env` would reach the
    resources as a plain config value, shown in the UI. Every process that loads the
    definitions reads the same `.env`, so each exports it for itself."""
    for name in _BY_NAME:
        value = getattr(settings, name)
        if isinstance(value, SecretStr):
            value = value.get_secret_value()
        default = Settings.model_fields[name].default
        if isinstance(default, SecretStr):
            default = default.get_secret_value()
        variable = ENV_PREFIX + name.upper()
        if value and value != default and variable not in os.environ:
            os.environ[variable] = value
