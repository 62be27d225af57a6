"""The one Definitions object of the code location, its resources built from the settings."""

from __future__ import annotations

import os
import warnings
from typing import Any

from dagster import BetaWarning, Definitions, EnvVar
from pydantic import SecretStr

from social_pipelines.alert_sensors import alert_on_run_failure, alerts_sensor
from social_pipelines.io_manager import StateStoreIOManager
from social_pipelines.jobs import (
    prune_history_job,
    publish_job,
    redeliver_job,
    reply_job,
    token_refresh_job,
)
from social_pipelines.logs import configure as configure_logging
from social_pipelines.resources import (
    AlertsResource,
    HistoryResource,
    PlatformsResource,
    ReplyWriterResource,
    StateStoreResource,
)
from social_pipelines.run_context import current_step
from social_pipelines.schedules import (
    prune_history_schedule,
    reply_schedule,
    token_refresh_schedule,
)
from social_pipelines.sensors import (
    deferred_deliveries_sensor,
    due_posts_sensor,
    release_failed_run_claims,
)
from social_pipelines.settings import SANDBOX_TOKEN, Settings, load_settings
from social_pipelines.wiring import policies_json


def _by_name(variable: str, value: str) -> Any:
    """A value that may be a secret: by the variable's name when it came from the
    environment (Dagster resolves it in each process and never shows it), else as given
    (code that builds Settings itself, such as a test, passes its own values)."""
    return EnvVar(variable) if value and os.environ.get(variable) == value else value


def _secret(variable: str, value: SecretStr | None) -> Any:
    """An optional secret setting, by the variable's name (`_by_name`); "" when unset."""
    return _by_name(variable, value.get_secret_value() if value else "")


def _unless_default(token: SecretStr) -> str:
    value = token.get_secret_value()
    return "" if value == SANDBOX_TOKEN else value


def build_resources(settings: Settings) -> dict[str, Any]:
    """Every resource, fully configured: what the code location, and tests, run with."""
    state_store = StateStoreResource(
        # The URL may carry a password: pass it by name, never by value.
        database_url=_by_name("SOCIAL_DATABASE_URL", settings.state_store_url)
    )
    platforms = PlatformsResource(
        state_store=state_store,
        accounts_file=str(settings.accounts_file),
        campaigns_file=str(settings.campaigns_file),
        bucket_path=str(settings.bucket_path),
        sandbox_url=settings.sandbox_url,
        # Empty for the sandbox's own fixed token, so no token value is ever in config.
        sandbox_token=_by_name("SOCIAL_SANDBOX_TOKEN", _unless_default(settings.sandbox_token)),
        policies=policies_json(settings.policies),
        http_timeout=settings.http_timeout,
        claim_lease_seconds=settings.claim_lease_seconds,
        calendar_dir=str(settings.calendar_dir or ""),
        default_timezone=settings.default_timezone or "",
        publish_max_lateness_seconds=settings.publish_max_lateness.total_seconds(),
        media_cache_dir=str(settings.media_cache_path),
        secret_key=_secret("SOCIAL_SECRET_KEY", settings.secret_key),
    )
    return {
        "state_store": state_store,
        # Step outputs in the state store, not in files under this machine's DAGSTER_HOME:
        # a run re-executed (or retried) on any machine reaching the store reads them.
        "io_manager": StateStoreIOManager(state_store=state_store),
        "platforms": platforms,
        "history": HistoryResource(run_retention_days=settings.run_retention_days),
        "reply_writer": ReplyWriterResource(
            llm_base_url=settings.llm_base_url,
            llm_model=settings.llm_model,
            llm_api_key=_secret("SOCIAL_LLM_API_KEY", settings.llm_api_key),
            llm_timeout=settings.llm_timeout,
            llm_max_tokens_field=settings.llm_max_tokens_field,
        ),
        "alerts": AlertsResource(
            state_store=state_store,
            webhook_url=_secret("SOCIAL_ALERT_WEBHOOK_URL", settings.alert_webhook_url),
            slack_webhook_url=_secret(
                "SOCIAL_ALERT_SLACK_WEBHOOK_URL", settings.alert_slack_webhook_url
            ),
            ui_base_url=settings.ui_base_url,
            rate_per_minute=settings.alert_rate_per_minute,
        ),
    }


# dagster.yaml's python_logs names a handler (the JSON log file): Dagster warns that this is
# beta at every run. Ours to know, not every run's stderr to say.
warnings.filterwarnings(
    "ignore", message="Handling yaml-defined logging configuration", category=BetaWarning
)


def build_definitions(settings: Settings) -> Definitions:
    # Every process that runs anything of ours loads these: its logging is set up here
    # (once; a second call adds no handler).
    configure_logging(settings, context=current_step)
    return Definitions(
        jobs=[reply_job, publish_job, redeliver_job, token_refresh_job, prune_history_job],
        schedules=[reply_schedule, token_refresh_schedule, prune_history_schedule],
        sensors=[
            deferred_deliveries_sensor,
            due_posts_sensor,
            release_failed_run_claims,
            alert_on_run_failure,
            alerts_sensor,
        ],
        resources=build_resources(settings),
    )


# Every setting is validated now: a bad value fails the code location at load, with a
# message naming the variable, instead of failing runs later.
defs = build_definitions(load_settings())
