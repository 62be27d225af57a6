"""The process's logging, set up once from the settings: what every entry point calls.

`configure` is called where every process passes, when the definitions load (webserver,
daemon, code servers, run workers) and in the CLI's `main`, and may be called again: it
never adds a second handler. It

- masks known secrets and signed-URL query values in httpx's request lines (a filter on
  the `httpx` logger itself, so the event log gets them masked too: `python_logs` in
  dagster.yaml routes that logger there);
- with `SOCIAL_LOG_FILE`, installs the JSON log file (`logfile.py`), masking the same
  secrets.

Known secrets are the values of the settings that are `SecretStr`, the password in
`SOCIAL_DATABASE_URL` and `DAGSTER_PG_PASSWORD`, and the variables the accounts file names
for tokens, passwords and secrets (`token_env`, `app_password_env`, `client_secret_env`).
They are read when the process starts; tokens handed out later by a platform are kept
out of every log at their source (the secret test looks for them everywhere).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from pathlib import Path

from pydantic import SecretStr
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from social_pipelines import logfile
from social_pipelines.errors import ConfigError
from social_pipelines.redact import RedactSecrets
from social_pipelines.settings import Settings
from social_pipelines.tomlfile import read_toml

# Words in the name of an accounts-file `*_env` field that say its variable is a secret.
SECRET_WORDS = ("token", "password", "secret")
_HTTPX = logging.getLogger("httpx")
_httpx_redaction = RedactSecrets()


def account_secret_variables(accounts_file: Path) -> list[str]:
    """The variables the accounts file names for secrets, read from the file as written
    (a file that does not validate still names them); none if it cannot be read."""
    try:
        raw = read_toml(accounts_file, what="accounts file", setting="SOCIAL_ACCOUNTS_FILE")
    except ConfigError:
        return []
    accounts = raw.get("accounts")
    names: list[str] = []
    for table in accounts.values() if isinstance(accounts, dict) else ():
        if not isinstance(table, dict):
            continue
        for key, value in table.items():
            secret = any(word in key.lower() for word in SECRET_WORDS)
            if key.endswith("_env") and secret and isinstance(value, str):
                names.append(value)
    return names


def known_secrets(settings: Settings, environ: Mapping[str, str] | None = None) -> set[str]:
    """Every secret value this process knows of (module docstring)."""
    environ = os.environ if environ is None else environ
    values: set[str] = set()
    for name in type(settings).model_fields:
        value = getattr(settings, name)
        if isinstance(value, SecretStr):
            values.add(value.get_secret_value())
    if settings.database_url:
        try:
            password = make_url(settings.database_url).password
        except ArgumentError:
            password = None
        if password:
            values.add(str(password))
    if environ.get("DAGSTER_PG_PASSWORD"):
        values.add(environ["DAGSTER_PG_PASSWORD"])
    variables = settings.variables()
    for variable in account_secret_variables(settings.accounts_file):
        if variables.get(variable):
            values.add(variables[variable])
    return {value for value in values if value}


def configure(settings: Settings, *, context: logfile.RunContext | None = None) -> None:
    """Set up this process's logging from `settings`; safe to call again (never a second
    handler). `context` says which run and step a record was logged in (the Dagster side
    passes one; the core cannot know)."""
    secrets = known_secrets(settings)
    _httpx_redaction.add(secrets)
    if _httpx_redaction not in _HTTPX.filters:
        _HTTPX.addFilter(_httpx_redaction)
    if settings.log_file is not None:
        logfile.install(
            settings.log_file,
            max_bytes=settings.log_file_max_bytes,
            backups=settings.log_file_backups,
            secrets=secrets,
            context=context,
        )
