"""No credential ever leaves the requests it belongs in.

Known, distinctive values for every secret the project handles (the Mastodon token, the
Bluesky app password, the X client secret and the X tokens `accounts connect` stored, the
LLM API key, SOCIAL_SECRET_KEY, and every token the platforms hand out on the way) go
through every job on the three platforms: both pipelines, `token_refresh_job` (which
refreshes both session platforms), a reply run whose creates the sandbox answers with 500
and `redeliver_job` that finishes them, a run that fails on a revoked grant, and the CLI.
The instance routes library logs into the event log as the shipped dagster.yaml does
(`python_logs`, httpx's request lines included) and the JSON log file is on
(`SOCIAL_LOG_FILE`). Then none of them may be found in: the Dagster event log (every
record, its event and message, step metadata, failure errors), the run's config, tags and
snapshots, any file under the Dagster instance (its storage and compute logs) or under
DAGSTER_HOME (the state store, the rate buckets, the render cache, the JSON log file), any
table of the state store (bar the sealed `account_tokens.payload`, which must not hold
them in plaintext either), the CLI's output, the console and Python logs, and the alerts
sent (see `alert_payloads`).

So that a typo in a probe cannot make it pass, every value is first shown to be real: each
is in the environment or was handed out by a fake, and each is found where it must be (in
the requests to its platform, in the decrypted token row).
"""

from __future__ import annotations

import base64
import json
import logging
import os
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlparse

import httpx
import pytest
import sqlalchemy as sa
import yaml
from cryptography.fernet import Fernet
from dagster import DagsterInstance, ExecuteInProcessResult, instance_for_test
from dagster._serdes import serialize_value
from respx.models import Call

from social_pipelines import logfile
from social_pipelines.cli import main
from social_pipelines.platforms.auth import TokenSet
from social_pipelines.sandbox.process import SandboxProcess
from social_pipelines.settings import Settings
from social_pipelines.store.tokens import TokenCipher
from social_pipelines_tests.pipeline import platforms_world as pw
from social_pipelines_tests.pipeline.alerting import alerts_sensor_tick, run_failure_sensor
from social_pipelines_tests.pipeline.helpers import reports
from social_pipelines_tests.webhook_receiver import WebhookReceiver

LLM_HOST = "llm.example.test"
# Webhook URLs are secrets (whoever has one can post to the channel): these are probes too.
WEBHOOK_PATH = "/webhook/hooks-s3cret-json-9f2c"
SLACK_PATH = "/slack/services/T0SECRET/B0SECRET/xoxSlackS3cret"
CREDENTIALS = pw.Credentials(
    mastodon_token="sandbox-token-acmeqz7kv9",
    bluesky_app_password="qz7k-b9wx-m4pl-t2vd",
    x_client_secret="xsecret-Qz7K9wXm4PlT2vD-cs",
    x_access_token="xaccess-Qz7K9wXm4PlT2vD-at",
    x_refresh_token="xrefresh-Qz7K9wXm4PlT2vD-rt",
    secret_key=Fernet.generate_key().decode(),
    llm_api_key="sk-llm-Qz7K9wXm4PlT2vD-key",
)
CAMPAIGNS = pw.CAMPAIGNS.replace('query = "dagster"\n', 'query = "dagster"\nwriter = "llm"\n')
LLM_ENV = {
    "SOCIAL_LLM_BASE_URL": f"https://{LLM_HOST}/v1",
    "SOCIAL_LLM_MODEL": "gpt-test-mini",
    "SOCIAL_LLM_API_KEY": CREDENTIALS.llm_api_key or "",
}
# The world's policies, and for Mastodon: no circuit opened by the 500s below, and a
# posting step that fails at once instead of retrying them.
POLICIES = {
    "mastodon": {
        "reconcile_settle_seconds": pw.SETTLE,
        "op_retry_delay": 0,
        "op_retries": 0,
        "breaker_fail_max": 100,
    },
    **{
        name: {"reconcile_settle_seconds": pw.SETTLE, "op_retry_delay": 0}
        for name in ("bluesky", "x")
    },
}
REPO_ROOT = Path(__file__).resolve().parents[2]
SHIPPED_PYTHON_LOGS = yaml.safe_load((REPO_ROOT / "dagster.yaml").read_text())["python_logs"]


def chat_completions(request: httpx.Request) -> httpx.Response:
    """An OpenAI-compatible `POST /chat/completions` (platforms.md §8): the key checked,
    a short reply that names the post's author."""
    if request.headers.get("authorization") != f"Bearer {CREDENTIALS.llm_api_key}":
        return httpx.Response(
            401,
            json={
                "error": {
                    "message": "Incorrect API key provided",
                    "type": "invalid_request_error",
                    "param": None,
                    "code": "invalid_api_key",
                }
            },
        )
    body = json.loads(request.content)
    assert body["model"] == "gpt-test-mini" and body["messages"]
    return httpx.Response(
        200,
        json={
            "id": "chatcmpl-1",
            "object": "chat.completion",
            "created": 1764000000,
            "model": body["model"],
            "choices": [
                {
                    "index": 0,
                    "message": {
                        "role": "assistant",
                        "content": "Thanks for asking! Happy to help.",
                    },
                    "finish_reason": "stop",
                    "logprobs": None,
                }
            ],
            "usage": {"prompt_tokens": 40, "completion_tokens": 8, "total_tokens": 48},
        },
    )


def _sent(calls: Iterable[Call]) -> str:
    """Everything the requests carried: headers (Basic credentials decoded) and bodies."""
    parts: list[str] = []
    for call in calls:
        request = call.request
        for name, value in request.headers.items():
            parts.append(f"{name}: {value}")
            if value.lower().startswith("basic "):
                parts.append(base64.b64decode(value[6:]).decode())
        parts.append(request.content.decode("latin-1"))
    return "\n".join(parts)


def _files(root: Path) -> Iterator[tuple[str, str]]:
    for path in sorted(root.rglob("*")):
        if path.is_file():
            yield str(path), path.read_bytes().decode("latin-1")


def _tables(engine: sa.Engine) -> tuple[dict[str, str], list[str]]:
    """Every table's rows as text (without `account_tokens.payload`), and the payloads."""
    metadata = sa.MetaData()
    metadata.reflect(engine)
    texts: dict[str, str] = {}
    payloads: list[str] = []
    with engine.connect() as connection:
        for table in metadata.sorted_tables:
            rows = connection.execute(sa.select(table)).mappings().all()
            shown = []
            for row in rows:
                values = dict(row)
                if table.name == "account_tokens":
                    payload = values.pop("payload")
                    if payload is not None:
                        payloads.append(payload)
                shown.append(repr(values))
            texts[f"table {table.name} ({len(rows)} rows)"] = "\n".join(shown)
    return texts, payloads


def _run_texts(instance: DagsterInstance, result: ExecuteInProcessResult) -> dict[str, str]:
    run = instance.get_run_by_id(result.run_id)
    assert run is not None
    records = instance.all_logs(result.run_id)
    assert records, "no event log to look through"
    texts = {
        f"event log of {run.job_name} {run.run_id[:8]}": "\n".join(
            serialize_value(record) + "\n" + (record.user_message or "") for record in records
        ),
        f"run config and tags of {run.job_name}": json.dumps(run.run_config, default=str)
        + json.dumps(run.tags),
        f"job snapshot of {run.job_name}": serialize_value(
            instance.get_job_snapshot(run.job_snapshot_id)  # type: ignore[arg-type]
        ),
        f"execution plan snapshot of {run.job_name}": serialize_value(
            instance.get_execution_plan_snapshot(run.execution_plan_snapshot_id)  # type: ignore[arg-type]
        ),
    }
    metadata = []
    errors = []
    for record in records:
        event = record.dagster_event
        if event is None:
            continue
        data = event.event_specific_data
        if getattr(data, "metadata", None):
            metadata.append(repr(data.metadata))  # type: ignore[union-attr]
        error = getattr(data, "error", None)
        if error is not None:
            errors.append(error.to_string())
    texts[f"step metadata of {run.job_name}"] = "\n".join(metadata)
    texts[f"recorded errors of {run.job_name}"] = "\n".join(errors)
    return texts


def alert_payloads(
    instance: DagsterInstance, settings: Settings, receiver: WebhookReceiver, failed: list[str]
) -> dict[str, str]:
    """ALERTS: what the real alert sensors sent to both sinks (a local receiver standing in
    for the JSON webhook and Slack) for the failed runs and the events the runs left (the
    dead letter, the X account to reconnect)."""
    for run_id in failed:
        run_failure_sensor(instance, settings, run_id)
    alerts_sensor_tick(instance, settings, None)
    received = receiver.received
    kinds = {body.get("kind") for body in receiver.bodies() if isinstance(body, dict)}
    # Both failed runs reached the JSON sink, and the X account's mark did too.
    assert {"run_failed", "reconnect_needed"} <= kinds, kinds
    assert any(r.path == SLACK_PATH for r in received), "Slack got nothing: the probe is wrong"
    return {
        f"alert sent to {r.path.split('/')[1]} ({i})": r.body.decode("utf-8", "replace")
        + "\n"
        + repr(r.headers)
        for i, r in enumerate(received)
    }


@pytest.fixture
def instance() -> Iterator[DagsterInstance]:
    """A Dagster instance of its own with the shipped `python_logs` (library logs in the
    event log, runs' records in the JSON log file); the package's `instance` seeds the demo
    posts too, which the world replaces at once."""
    with instance_for_test(overrides={"python_logs": SHIPPED_PYTHON_LOGS}) as test_instance:
        yield test_instance
    logfile.uninstall()


def test_no_secret_is_found_anywhere_but_where_it_belongs(
    demo_sandbox: SandboxProcess,
    instance: DagsterInstance,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
    receiver: WebhookReceiver,
) -> None:
    caplog.set_level(logging.DEBUG)
    places: dict[str, str] = {}
    output: list[str] = []
    log_file = tmp_path / "logs" / "social.jsonl"
    webhook_url, slack_url = receiver.url(WEBHOOK_PATH), receiver.url(SLACK_PATH)
    with pw.world(
        monkeypatch,
        tmp_path,
        demo_sandbox,
        CREDENTIALS,
        campaigns=CAMPAIGNS,
        extra_env={
            **LLM_ENV,
            "SOCIAL_LOG_FILE": str(log_file),
            "SOCIAL_ALERT_WEBHOOK_URL": webhook_url,
            "SOCIAL_ALERT_SLACK_WEBHOOK_URL": slack_url,
            "SOCIAL_POLICIES": json.dumps(POLICIES),
        },
        routes={LLM_HOST: chat_completions},
        # Both sessions expire within the hour: token_refresh_job refreshes them.
        access_lifetime=timedelta(minutes=30),
    ) as world:
        replied = world.reply(instance)
        assert {name: r.new for name, r in reports(replied).items()} == {
            "mastodon_dagster": 2,
            "bluesky_dagster": 2,
            "x_dagster": 2,
        }
        # The model wrote them (the key was sent, and its answer is what went out).
        assert all("Happy to help" in s["text"] for s in world.sandbox.posted("acmeqz7kv9"))
        image = pw.photo(tmp_path / "card.jpg", size=(600, 400))
        assert (
            main(
                [
                    "schedule",
                    "--to",
                    "brand,brand_bsky,brand_x",
                    "--at",
                    "now",
                    "--id",
                    "launch",
                    "--text",
                    "Launch day",
                    "--image",
                    str(image),
                    "--alt",
                    "a card",
                ]
            )
            == 0
        )
        published = world.publish(instance)
        refreshed = world.run(instance, "token_refresh_job")
        assert world.x.refreshes >= 1 and world.bluesky.refreshes >= 1
        # Mastodon answers every create with a 500: the run fails, its deliveries are left
        # for redeliver_job, which sends them once the server is well again.
        end = pw.window_end()
        age = (datetime.now(UTC) - end).total_seconds() / 60 + 30
        world.sandbox.seed(
            [{"author": "mlops_maya", "age_minutes": age, "text": "Dagster sensors?"}]
        )
        world.sandbox.set_faults(error_500=1.0, endpoints=["POST /api/v1/statuses"])
        try:
            refused = world.reply(instance, campaigns=["mastodon_dagster"], raise_on_error=False)
        finally:
            world.sandbox.clear_faults()
        assert not refused.success
        redelivered = world.run(instance, "redeliver_job")
        assert redelivered.output_for_node("redeliver_due").new == 1
        # X revokes the app's grant: the next run fails (recorded) and marks the account.
        world.x.access.clear()
        world.x.refresh.clear()
        failed = world.reply(instance, campaigns=["x_dagster"], raise_on_error=False)
        assert not failed.success
        assert any(event.is_step_failure for event in failed.all_events)
        captured = capsys.readouterr()
        output.append(captured.out + captured.err)

        for command in (
            ["accounts", "check"],
            ["accounts", "check", "--json"],
            ["list"],
            ["show", "launch"],
            ["ledger"],
        ):
            main(command)
            captured = capsys.readouterr()
            places[f"output of {' '.join(command)}"] = captured.out + captured.err

        sent = _sent(world.router.calls)
        issued = {
            **{f"an X token handed out ({i})": t for i, t in enumerate(world.x.issued)},
            **{
                f"a Bluesky JWT handed out ({i})": t
                for i, t in enumerate(world.bluesky.issued_access | world.bluesky.issued_refresh)
            },
        }
        store = world.wiring.store
        places.update(
            alert_payloads(instance, world.settings, receiver, [refused.run_id, failed.run_id])
        )

    secrets = {
        "the Mastodon token": CREDENTIALS.mastodon_token,
        "the Bluesky app password": CREDENTIALS.bluesky_app_password,
        "the X client secret": CREDENTIALS.x_client_secret,
        "the X access token": CREDENTIALS.x_access_token,
        "the X refresh token": CREDENTIALS.x_refresh_token,
        "the LLM API key": CREDENTIALS.llm_api_key,
        "SOCIAL_SECRET_KEY": CREDENTIALS.secret_key,
        "the JSON webhook's URL": webhook_url,
        "the Slack webhook's URL": slack_url,
        **issued,
    }
    # Each probe is real: in the environment or handed out, and where it must be.
    for variable in (
        "SOCIAL_SANDBOX_TOKEN",
        "BRAND_BSKY_APP_PASSWORD",
        "BRAND_X_CLIENT_SECRET",
        "SOCIAL_LLM_API_KEY",
        "SOCIAL_SECRET_KEY",
    ):
        assert os.environ[variable] in secrets.values(), variable
    assert CREDENTIALS.x_access_token in world.x.issued
    assert CREDENTIALS.x_refresh_token in world.x.issued
    assert len(issued) >= 6  # X: connect and refresh; Bluesky: login and refresh
    for name, value in secrets.items():
        if name != "SOCIAL_SECRET_KEY" and "Bluesky JWT" not in name and "webhook" not in name:
            assert value in sent, f"{name} was never sent: the probe is wrong"
    refresh_jwts = [t for t in world.bluesky.issued_refresh if t in sent]
    assert refresh_jwts, "no Bluesky refresh token was ever used"
    texts, payloads = _tables(store.engine)
    assert payloads and all(p for p in payloads)
    cipher = TokenCipher(CREDENTIALS.secret_key)
    opened = [TokenSet.from_json(cipher.open(p, encrypted=True, where="test")) for p in payloads]
    assert {t.access_token for t in opened} & set(issued.values()), "the sealed rows hold tokens"

    runs = (replied, published, refreshed, refused, redelivered, failed)
    assert {r.job_def.name for r in runs} == {
        "reply_job",
        "publish_job",
        "token_refresh_job",
        "redeliver_job",
    }
    for result in runs:
        places.update(_run_texts(instance, result))
    # The places are real: library logs in the event log, every run in the JSON log file,
    # each run's captured stdout and stderr among the instance's files.
    httpx_events = [
        r for r in instance.all_logs(replied.run_id) if r.user_message.startswith("HTTP Request:")
    ]
    assert {urlparse(r.user_message.split()[3]).hostname for r in httpx_events} >= {
        "127.0.0.1",
        LLM_HOST,
    }
    logged = [json.loads(line) for line in log_file.read_text(encoding="utf-8").splitlines()]
    assert {line.get("run_id") for line in logged} >= {r.run_id for r in runs}
    assert any(line["logger"] == "httpx" for line in logged)
    assert any("exception" in line for line in logged)
    compute_logs = [
        path
        for path in Path(instance.root_directory).rglob("*")
        if path.suffix in (".out", ".err") and path.is_file()
    ]
    assert {path.parent.parent.name for path in compute_logs} >= {r.run_id for r in runs}
    places.update(texts)
    places["account_tokens.payload (sealed)"] = "\n".join(payloads)
    places.update(_files(Path(instance.root_directory)))
    places.update(_files(tmp_path))
    places["console output of the runs"] = "\n".join(output)
    places["Python logs"] = "\n".join(
        f"{record.name}: {record.getMessage()} {record.exc_text or ''}" for record in caplog.records
    )
    assert len(places) > 20 and sum(map(len, places.values())) > 100_000

    found = [
        f"{name} in {place}"
        for place, text in places.items()
        for name, value in secrets.items()
        if value and value in text
    ]
    assert not found, "secrets found:\n" + "\n".join(found)
