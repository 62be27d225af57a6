"""The JSON log file and the secret masking: what a team shipping logs elsewhere reads."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from social_pipelines import logfile
from social_pipelines.logs import configure, known_secrets
from social_pipelines.redact import RedactSecrets, mask_signed_query
from social_pipelines.settings import Settings

REPO_ROOT = Path(__file__).resolve().parents[1]
SECRET = "tok-Zq9Xv4Lm2Pw7"


@pytest.fixture
def log_path(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "logs" / "social.jsonl"
    yield path
    logfile.uninstall()


def lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def handlers_of(name: str, kind: type) -> list[logging.Handler]:
    return [h for h in logging.getLogger(name).handlers if isinstance(h, kind)]


def test_a_record_is_one_json_line_with_its_secrets_masked(log_path: Path) -> None:
    logfile.install(log_path, secrets=[SECRET])
    log = logging.getLogger("social_pipelines.tests.logfile")
    try:
        raise RuntimeError(f"the platform echoed {SECRET}")
    except RuntimeError:
        log.exception("refresh with %s failed", SECRET)
    log.info("plain line")
    first, second = lines(log_path)
    assert first["level"] == "ERROR" and first["logger"] == "social_pipelines.tests.logfile"
    assert first["message"] == "refresh with *** failed"
    assert "RuntimeError: the platform echoed ***" in first["exception"]
    assert first["time"].endswith("+00:00") and "T" in first["time"]
    assert second["message"] == "plain line" and "exception" not in second
    assert SECRET not in log_path.read_text(encoding="utf-8")


def test_installing_again_adds_no_second_handler(log_path: Path, tmp_path: Path) -> None:
    first = logfile.install(log_path, secrets=["first-secret-1"])
    again = logfile.install(log_path, secrets=["second-secret-2"])
    assert again is first
    for name in logfile.LIBRARY_LOGGERS:
        assert len(handlers_of(name, logfile.SharedRotatingFile)) == 1
    assert {"first-secret-1", "second-secret-2"} <= set(first.redaction.secrets)
    # Another file: the handler moves, still one.
    moved = logfile.install(tmp_path / "other.jsonl")
    assert moved is not first and logfile.installed() is moved
    assert handlers_of("social_pipelines", logfile.SharedRotatingFile) == [moved.handler]


def test_configuring_from_the_settings_twice_installs_one_file(
    log_path: Path, tmp_path: Path
) -> None:
    settings = Settings(_env_file=None, dagster_home=tmp_path, log_file=log_path)
    configure(settings)
    configure(settings)
    assert len(handlers_of("social_pipelines", logfile.SharedRotatingFile)) == 1
    httpx_filters = [f for f in logging.getLogger("httpx").filters if isinstance(f, RedactSecrets)]
    assert len(httpx_filters) == 1


def test_known_secrets_are_the_secret_settings_and_the_accounts_secret_variables(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    accounts = tmp_path / "accounts.toml"
    accounts.write_text(
        textwrap.dedent(
            """
            [accounts.brand]
            platform = "mastodon"
            instance_url = "https://m.example"
            token_env = "T_BRAND_TOKEN"

            [accounts.brand_bsky]
            platform = "bluesky"
            handle = "brand.bsky.social"
            app_password_env = "T_BSKY_PASSWORD"

            [accounts.brand_x]
            platform = "x"
            client_id_env = "T_X_CLIENT_ID"
            client_secret_env = "T_X_CLIENT_SECRET"
            """
        ),
        encoding="utf-8",
    )
    for name, value in {
        "T_BRAND_TOKEN": "brand-token-value",
        "T_BSKY_PASSWORD": "bsky-app-password",
        "T_X_CLIENT_ID": "public-client-id",
        "T_X_CLIENT_SECRET": "x-client-secret-value",
        "DAGSTER_PG_PASSWORD": "dagster-pg-password",
    }.items():
        monkeypatch.setenv(name, value)
    settings = Settings(
        _env_file=None,
        dagster_home=tmp_path,
        accounts_file=accounts,
        llm_api_key="sk-llm-key-value",  # pyright: ignore[reportArgumentType]
        database_url="postgresql://social:db-password-value@db.example:5432/social",
    )
    secrets = known_secrets(settings)
    assert {
        "brand-token-value",
        "bsky-app-password",
        "x-client-secret-value",
        "sk-llm-key-value",
        "db-password-value",
        "dagster-pg-password",
    } <= secrets
    assert "public-client-id" not in secrets


def test_httpx_request_lines_are_masked_wherever_they_go(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    configure(Settings(_env_file=None, dagster_home=tmp_path, llm_api_key=SECRET))  # pyright: ignore[reportArgumentType]
    caplog.set_level(logging.INFO, logger="httpx")
    transport = httpx.MockTransport(lambda request: httpx.Response(200))
    with httpx.Client(transport=transport) as client:
        client.get(f"https://cdn.example/a.jpg?X-Amz-Signature=abc123&echo={SECRET}&w=2")
    logged = "\n".join(r.getMessage() for r in caplog.records if r.name == "httpx")
    assert "HTTP Request: GET https://cdn.example/a.jpg?X-Amz-Signature=***&echo=***&w=2" in logged


def test_signed_query_values_are_masked() -> None:
    assert (
        mask_signed_query("GET https://h/p?X-Goog-Signature=s1&sig=s2&access_token=s3&q=dagster")
        == "GET https://h/p?X-Goog-Signature=***&sig=***&access_token=***&q=dagster"
    )


def test_run_records_are_written_once(log_path: Path) -> None:
    """`RunLogFile` (dagster.yaml) takes a run's records; those of the library loggers the
    file already took directly are not written twice."""
    logfile.install(log_path)
    forward = logfile.RunLogFile()
    library = logging.LogRecord("social_pipelines.resilience.breaker", 30, "", 0, "lib", (), None)
    run = logging.LogRecord("dagster", 20, "", 0, "from context.log", (), None)
    run.dagster_meta = {  # what Dagster's handler attaches
        "orig_message": "replied",
        "run_id": "run-1",
        "job_name": "reply_job",
        "step_key": "post_replies",
        "dagster_event": None,
    }
    forward.handle(library)
    forward.handle(run)
    (only,) = lines(log_path)
    assert only == {
        "time": only["time"],
        "level": "INFO",
        "logger": "dagster",
        "message": "replied",
        "run_id": "run-1",
        "job": "reply_job",
        "step": "post_replies",
    }


def test_warnings_still_reach_stderr_with_a_log_file(tmp_path: Path) -> None:
    """Python prints a warning nobody handles to stderr; the file must not swallow it."""
    script = textwrap.dedent(
        f"""
        import logging
        from pathlib import Path
        from social_pipelines import logfile
        logfile.install(Path({str(tmp_path / "f.jsonl")!r}))
        logging.getLogger("social_pipelines.x").warning("shown on stderr")
        logging.getLogger("social_pipelines.x").info("only in the file")
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        check=True,
        timeout=60,
    )
    assert done.stderr.strip() == "shown on stderr"
    messages = [line["message"] for line in lines(tmp_path / "f.jsonl")]
    assert messages == ["shown on stderr", "only in the file"]


WRITER = """
import logging, sys
from pathlib import Path
from social_pipelines import logfile
logfile.install(Path(sys.argv[1]), max_bytes=4096, backups=1000)
log = logging.getLogger("social_pipelines.writer")
sys.stdin.readline()
for i in range(int(sys.argv[3])):
    log.info("%s line %05d %s", sys.argv[2], i, "x" * 60)
"""


def test_several_processes_share_one_rotating_file_without_losing_a_line(
    tmp_path: Path,
) -> None:
    """stdlib's RotatingFileHandler lost 8% to 18% of the lines here (4 processes x 500
    lines, and x 1500): a process renamed a file another was rotating at the same time."""
    path = tmp_path / "shared.jsonl"
    per_process = 500
    names = ("first", "second", "third", "fourth")
    writers = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, str(path), name, str(per_process)],
            cwd=REPO_ROOT,
            stdin=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
        )
        for name in names
    ]
    for writer in writers:  # all start writing at once
        assert writer.stdin is not None
        writer.stdin.write("go\n")
        writer.stdin.flush()
    for writer in writers:
        assert writer.wait(timeout=120) == 0
    files = sorted(tmp_path.glob("shared.jsonl*"))
    rotated = [f for f in files if not f.name.endswith(".lock")]
    assert len(rotated) > 5, "the test must rotate the file several times"
    seen = [json.loads(line)["message"] for f in rotated for line in f.read_text().splitlines()]
    expected = {f"{name} line {i:05d} {'x' * 60}" for name in names for i in range(per_process)}
    assert len(seen) == len(expected) and set(seen) == expected
    assert all(f.stat().st_size <= 4096 for f in rotated)
