"""Library logs reach a run's event log through the instance's `python_logs`, and the JSON
log file gets the run's records with their run and step: shown on a run against the
sandbox whose search answers 503, with the shipped dagster.yaml's settings."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from dagster import DagsterInstance, instance_for_test

from social_pipelines import logfile
from social_pipelines.sandbox.process import SandboxProcess
from social_pipelines_tests.pipeline.conftest import MakeSettings
from social_pipelines_tests.pipeline.helpers import run_reply_job

REPO_ROOT = Path(__file__).resolve().parents[2]


def shipped_python_logs(name: str) -> dict:
    return yaml.safe_load((REPO_ROOT / name).read_text(encoding="utf-8"))["python_logs"]


def test_both_profiles_route_the_library_loggers() -> None:
    embedded = shipped_python_logs("dagster.yaml")
    assert embedded["managed_python_loggers"] == ["social_pipelines", "httpx"]
    assert embedded["python_log_level"] == "INFO"
    assert shipped_python_logs("deploy/dagster.yaml") == embedded


@pytest.fixture
def logged_instance() -> Iterator[DagsterInstance]:
    with instance_for_test(
        overrides={"python_logs": shipped_python_logs("dagster.yaml")}
    ) as instance:
        yield instance
    logfile.uninstall()


def test_a_runs_event_log_and_json_log_hold_the_library_logs(
    demo_sandbox: SandboxProcess,
    make_settings: MakeSettings,
    logged_instance: DagsterInstance,
    env: Path,
) -> None:
    log_file = env / "logs" / "social.jsonl"
    settings = make_settings(
        log_file=log_file,
        policies={
            "mastodon": {"breaker_fail_max": 1, "retry_initial_seconds": 0.01, "op_retry_delay": 0}
        },
    )
    demo_sandbox.set_faults(error_503=1.0, endpoints=["GET /api/v2/search"])
    try:
        result = run_reply_job(logged_instance, settings, raise_on_error=False)
    finally:
        demo_sandbox.clear_faults()
    assert not result.success

    records = logged_instance.all_logs(result.run_id)
    by_step = [(r.step_key or "", r.user_message) for r in records]
    httpx_lines = [
        (step, m) for step, m in by_step if m.startswith("HTTP Request: GET") and "503" in m
    ]
    assert httpx_lines and all(step.startswith("search_posts") for step, _ in httpx_lines)
    assert "/api/v2/search?" in httpx_lines[0][1]
    # pybreaker's transition, logged by resilience/breaker.py's own logger.
    assert any("circuit mastodon:" in m and "-> open" in m for _, m in by_step), by_step
    assert any("repeating in" in m for _, m in by_step)  # a retry

    lines = [json.loads(line) for line in log_file.read_text(encoding="utf-8").splitlines()]
    of_run = [line for line in lines if line.get("run_id") == result.run_id]
    breaker = [line for line in of_run if line["logger"] == "social_pipelines.resilience.breaker"]
    assert breaker and breaker[0]["step"].startswith("search_posts")
    assert breaker[0]["level"] == "WARNING" and "-> open" in breaker[0]["message"]
    assert any(line["logger"] == "httpx" and "503" in line["message"] for line in of_run)
    failures = [line for line in of_run if line.get("event") == "STEP_FAILURE"]
    assert failures and "circuit mastodon:brand is open" in failures[0]["exception"]
    assert all(line["job"] == "reply_job" for line in of_run)
