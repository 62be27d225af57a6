"""`social-pipelines doctor` on a real DAGSTER_HOME: Dagster's own storage (heartbeats,
instigator states, ticks written through the instance), the real state store, the command
run as a person runs it (`main`)."""

from __future__ import annotations

import tomllib
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from dagster import DagsterInstance
from dagster._core.definitions.run_request import InstigatorType
from dagster._core.scheduler.instigation import (
    InstigatorState,
    InstigatorStatus,
    ScheduleInstigatorData,
    TickData,
    TickStatus,
)
from dagster._daemon.types import DaemonHeartbeat

from social_pipelines.doctor.instance import CODE_LOCATION, NO_DAEMON, code_location
from social_pipelines.errors import Rejected, Transient
from social_pipelines.models import DeliveryKind, DeliveryState, Post, Published
from social_pipelines.store import Origin, OutboxStatus
from social_pipelines.store.alerts import AlertRow
from social_pipelines.store.migrate import HEAD, VERSION_TABLE
from social_pipelines.wiring import Wiring
from social_pipelines_tests.doctor.conftest import REPO, Doctor
from social_pipelines_tests.store.helpers import LEASE, make_draft


def _beat(instance: DagsterInstance, age: timedelta, *only: str) -> None:
    """Every daemon the instance requires (or `only` those) heartbeats, `age` ago."""
    at = (datetime.now(UTC) - age).timestamp()
    for daemon in only or instance.get_required_daemon_types():
        instance.add_daemon_heartbeat(DaemonHeartbeat(at, daemon, "test-daemon", []))


def _tick(instance: DagsterInstance, name: str, age: timedelta) -> None:
    """A skipped tick of sensor `name`, `age` ago, as the sensor daemon records one."""
    with code_location(instance) as repository:
        sensor = repository.get_sensor(name)
        instance.create_tick(
            TickData(
                instigator_origin_id=sensor.get_remote_origin_id(),
                instigator_name=name,
                instigator_type=InstigatorType.SENSOR,
                status=TickStatus.SKIPPED,
                timestamp=(datetime.now(UTC) - age).timestamp(),
                selector_id=sensor.selector_id,
                skip_reason="nothing due",
            )
        )


def test_a_fresh_home_without_a_daemon_is_a_problem_unless_accepted(doctor: Doctor) -> None:
    found = doctor()
    assert found.code == 1
    assert found.named("problem") == ["daemon"]
    assert NO_DAEMON in found.detail("daemon")
    assert found.document["summary"]["problem"] == 1
    assert found.document["summary"]["exit_status"] == 1

    accepted = doctor("--no-daemon-ok")
    assert accepted.code == 0
    assert accepted.status("daemon") == "warn"
    assert "--no-daemon-ok" in accepted.detail("daemon")
    # The reply schedule is off by default: said, with how to start it; nothing else warns
    # on a fresh home but the daemon (the UI's bind address depends on the machine).
    assert accepted.status("schedule reply_schedule") == "warn"
    assert "dagster schedule start reply_schedule" in accepted.detail("schedule reply_schedule")
    warned = set(accepted.named("warn")) - {"webserver"}
    assert warned == {"daemon", "schedule reply_schedule"}
    assert accepted.status("state store") == "ok"
    assert HEAD in accepted.detail("state store")
    for sensor in ("deferred_deliveries_sensor", "due_posts_sensor", "release_failed_run_claims"):
        assert accepted.detail(f"sensor {sensor}").startswith("running")  # by default


def test_a_fresh_heartbeat_proves_the_daemon_and_an_old_one_does_not(
    doctor: Doctor, instance: DagsterInstance
) -> None:
    _beat(instance, timedelta(seconds=5))
    fresh = doctor()
    assert fresh.code == 0
    assert fresh.status("daemon") == "ok"
    for daemon in ("SENSOR", "SCHEDULER", "QUEUED_RUN_COORDINATOR", "MONITORING"):
        assert daemon in fresh.detail("daemon")
    # Up, but it has not evaluated the sensors yet: worth a look, not a failure.
    assert fresh.status("sensor due_posts_sensor") == "warn"

    _beat(instance, timedelta(minutes=5))  # missed beats, within Dagster's tolerance
    late = doctor()
    assert late.code == 0
    assert late.status("daemon") == "warn"
    assert "may have stopped" in late.detail("daemon")

    _beat(instance, timedelta(hours=2))  # beyond Dagster's 30 s + 1800 s
    old = doctor()
    assert old.code == 1
    assert old.named("problem") == ["daemon"]
    assert "SENSOR, " in old.detail("daemon") and "beyond Dagster's tolerance" in old.detail(
        "daemon"
    )
    assert doctor("--no-daemon-ok").code == 0

    # One daemon thread stopped while the others beat: named on its own.
    _beat(instance, timedelta(seconds=1))
    _beat(instance, timedelta(hours=2), "SCHEDULER")
    one = doctor()
    assert one.code == 1
    assert one.named("problem") == ["daemon SCHEDULER"]
    assert one.status(next(name for name in one.rows if name.startswith("daemon SENSOR"))) == "ok"


def test_a_running_sensor_that_stopped_ticking_while_the_daemon_is_up_is_a_problem(
    doctor: Doctor, instance: DagsterInstance
) -> None:
    _beat(instance, timedelta(seconds=1))
    _tick(instance, "due_posts_sensor", timedelta(hours=1))
    _tick(instance, "deferred_deliveries_sensor", timedelta(seconds=20))
    found = doctor()
    assert found.code == 1
    assert found.status("sensor due_posts_sensor") == "problem"
    assert "no tick for over" in found.detail("sensor due_posts_sensor")
    assert found.status("sensor deferred_deliveries_sensor") == "ok"
    assert "skipped: nothing due" in found.detail("sensor deferred_deliveries_sensor")


def test_a_running_schedule_that_missed_its_tick_while_the_daemon_is_up_is_a_problem(
    doctor: Doctor, instance: DagsterInstance
) -> None:
    _beat(instance, timedelta(seconds=1))
    now = datetime.now(UTC)
    with code_location(instance) as repository:
        schedule = repository.get_schedule("token_refresh_schedule")
        # Running since an hour ago, as the scheduler records a schedule it starts.
        instance.add_instigator_state(
            InstigatorState(
                schedule.get_remote_origin(),
                InstigatorType.SCHEDULE,
                InstigatorStatus.DECLARED_IN_CODE,
                ScheduleInstigatorData(
                    schedule.cron_schedule, start_timestamp=(now - timedelta(hours=1)).timestamp()
                ),
            )
        )
        owed = next(
            schedule.execution_time_iterator((now - timedelta(minutes=5)).timestamp(), False)
        )
        missed = doctor()
        assert missed.code == 1
        assert missed.named("problem") == ["schedule token_refresh_schedule"]
        assert f"{owed:%H:%M:%S} UTC is missing" in missed.detail("schedule token_refresh_schedule")

        instance.create_tick(
            TickData(
                instigator_origin_id=schedule.get_remote_origin_id(),
                instigator_name=schedule.name,
                instigator_type=InstigatorType.SCHEDULE,
                status=TickStatus.SKIPPED,
                timestamp=owed.timestamp(),
                selector_id=schedule.selector_id,
                skip_reason="no account holds tokens that expire",
            )
        )
    ticked = doctor()
    assert ticked.status("schedule token_refresh_schedule") == "ok"
    assert "no account holds tokens" in ticked.detail("schedule token_refresh_schedule")


def test_a_stopped_sensor_that_runs_by_default_is_a_problem(
    doctor: Doctor, instance: DagsterInstance
) -> None:
    with code_location(instance) as repository:
        sensor = repository.get_sensor("deferred_deliveries_sensor")
        instance.stop_sensor(sensor.get_remote_origin_id(), sensor.selector_id, sensor)
    found = doctor("--no-daemon-ok")
    assert found.code == 1
    assert found.named("problem") == ["sensor deferred_deliveries_sensor"]
    assert "dagster sensor start deferred_deliveries_sensor" in found.detail(
        "sensor deferred_deliveries_sensor"
    )


def test_an_open_circuit_is_a_problem_naming_it_and_its_reset_time(
    doctor: Doctor, wiring: Wiring
) -> None:
    account = wiring.accounts().get("brand")
    breaker = wiring.connector.breaker(account.platform, account.name, wiring.policy(account))

    def unwell() -> None:
        raise Transient("server error", platform="mastodon", status_code=503)

    for _ in range(wiring.policy(account).breaker_fail_max):
        with pytest.raises(Transient):
            breaker.call(unwell)
    assert breaker.snapshot().is_open

    found = doctor("--no-daemon-ok")
    assert found.code == 1
    assert found.named("problem") == ["circuit mastodon:brand"]
    reset_at = breaker.snapshot().reset_at
    assert reset_at is not None
    assert f"until {reset_at:%Y-%m-%d %H:%M:%S} UTC" in found.detail("circuit mastodon:brand")


def test_a_dead_delivery_is_a_problem_that_says_where_to_look(
    doctor: Doctor, wiring: Wiring
) -> None:
    ledger = wiring.store.ledger
    draft = make_draft("post-9")
    ledger.plan(draft)
    claim = ledger.claim(draft.delivery_id, run_id="run", lease=LEASE)
    ledger.record_error(
        draft.delivery_id,
        claim.attempt,
        Rejected("status too long", platform="mastodon", status_code=422),
        state=DeliveryState.DEAD,
    )
    found = doctor("--no-daemon-ok")
    assert found.code == 1
    assert found.named("problem") == ["deliveries dead"]
    detail = found.detail("deliveries dead")
    assert "1 dead in the last 7 d" in detail and "post-9 as brand" in detail
    assert "status too long" in detail and "social-pipelines dead-letters" in detail


def test_a_marked_account_is_a_problem_with_its_reason(doctor: Doctor, wiring: Wiring) -> None:
    wiring.tokens.mark_reconnect("mastodon", "brand_news", "401: The access token was revoked")
    found = doctor("--no-daemon-ok")
    assert found.code == 1
    assert found.named("problem") == ["account brand_news"]
    detail = found.detail("account brand_news")
    assert "reconnect_needed" in detail and "The access token was revoked" in detail
    assert "social-pipelines accounts connect brand_news" in detail
    assert wiring.tokens.get("mastodon", "brand_news").reconnect_needed  # doctor only reads


def test_an_overdue_post_and_a_missed_one_are_problems(doctor: Doctor, wiring: Wiring) -> None:
    outbox = wiring.store.outbox
    now = datetime.now(UTC)
    overdue = Post(
        id="launch", text="We launched", targets=("brand",), at=now - timedelta(minutes=10)
    )
    soon = Post(id="later", text="Soon", targets=("brand",), at=now - timedelta(minutes=1))
    missed = Post(id="old-news", text="Old", targets=("brand",), at=now - timedelta(days=1))
    for post in (overdue, soon, missed):
        outbox.save(post, origin=Origin.CLI)
    outbox.set_status("old-news", OutboxStatus.MISSED, reason="missed: found 24 h late")

    found = doctor("--no-daemon-ok")
    assert found.code == 1
    assert set(found.named("problem")) == {"posts overdue", "posts missed"}
    assert "launch to brand" in found.detail("posts overdue")
    assert "later" not in found.detail("posts overdue")  # due a minute ago: not yet overdue
    assert "old-news" in found.detail("posts missed")


def test_a_quota_used_up_warns(
    doctor: Doctor, wiring: Wiring, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SOCIAL_POLICIES__MASTODON__QUOTA_PER_HOUR", "1")
    ledger = wiring.store.ledger
    draft = make_draft("post-1", kind=DeliveryKind.REPLY)
    ledger.plan(draft)
    claim = ledger.claim(draft.delivery_id, run_id="run", lease=LEASE)
    ledger.record_sent(
        draft.delivery_id, claim.attempt, Published(remote_id="1", url="https://x/1")
    )

    found = doctor("--no-daemon-ok")
    assert found.code == 0
    assert found.status("quota brand") == "warn"
    assert "1/1 in the last hour" in found.detail("quota brand")
    assert found.status("quota brand_news") == "ok"


@pytest.mark.parametrize(
    ("revision", "words"),
    [("0005", ["revision 0005", f"revision {HEAD}", "upgrades it"]), ("9999", ["does not know"])],
)
def test_a_store_behind_or_ahead_of_the_code_is_a_problem_and_is_left_as_it_is(
    doctor: Doctor, wiring: Wiring, revision: str, words: list[str]
) -> None:
    engine = wiring.store.engine
    with engine.begin() as connection:
        connection.execute(sa.text(f"UPDATE {VERSION_TABLE} SET version_num = :r"), {"r": revision})
    found = doctor("--no-daemon-ok")
    assert found.code == 1
    assert found.named("problem") == ["state store"]
    for word in words:
        assert word in found.detail("state store")
    assert "deliveries dead" not in found.rows  # not read from a store it cannot trust
    with engine.connect() as connection:
        assert (
            connection.execute(sa.text(f"SELECT version_num FROM {VERSION_TABLE}")).scalar()
            == revision
        )


def test_unusable_settings_exit_2(home: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    from social_pipelines.cli import main

    monkeypatch.setenv("SOCIAL_HTTP_TIMEOUT", "-1")
    assert main(["doctor"]) == 2
    assert "SOCIAL_HTTP_TIMEOUT" in capsys.readouterr().err


def test_the_table_aligns_every_row(doctor: Doctor, capsys: pytest.CaptureFixture[str]) -> None:
    from social_pipelines.cli import main

    names = list(doctor("--no-daemon-ok").rows)
    assert main(["doctor", "--no-daemon-ok"]) == 0
    lines = capsys.readouterr().out.splitlines()
    rows, total = lines[:-1], lines[-1]
    assert len(rows) == len(names)
    assert total.startswith("0 problem(s), ") and total.endswith(" ok")
    name_columns, detail_columns = set(), set()
    for line, name in zip(rows, names, strict=True):
        at = line.index(f"  {name} ") + 2
        name_columns.add(at)
        rest = line[at + len(name) :]
        detail_columns.add(at + len(name) + len(rest) - len(rest.lstrip()))
    assert len(name_columns) == 1 and len(detail_columns) == 1


def test_the_code_location_name_is_the_one_workspace_and_pyproject_give() -> None:
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())
    assert pyproject["tool"]["dagster"]["code_location_name"] == CODE_LOCATION
    assert f"location_name: {CODE_LOCATION}" in (REPO / "workspace.yaml").read_text()


def test_online_makes_the_whoami_accounts_check_makes(
    doctor: Doctor,
    wiring: Wiring,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    from social_pipelines.sandbox.process import SandboxProcess

    with SandboxProcess(db_path=tmp_path_factory.mktemp("sandbox") / "sandbox.db") as sandbox:
        monkeypatch.setenv("SOCIAL_SANDBOX_URL", sandbox.url)
        wiring.tokens.mark_reconnect("mastodon", "brand_news", "401: a passing refusal")
        offline = doctor("--no-daemon-ok")
        online = doctor("--no-daemon-ok", "--online")
    assert offline.status("account brand_news") == "problem"
    assert "not called (--online makes one whoami)" in offline.detail("account brand")
    assert online.code == 0
    assert "whoami: brand" in online.detail("account brand")
    # Verified by the same call `accounts check` makes: accepted, so the mark is cleared.
    assert online.status("account brand_news") == "ok"
    assert not wiring.tokens.get("mastodon", "brand_news").reconnect_needed


def test_a_token_expiring_within_the_hour_and_plain_tokens_warn_an_unconnected_x_is_a_problem(
    doctor: Doctor, home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    accounts = home / "accounts.toml"
    accounts.write_text(
        "[accounts.sky]\n"
        'platform = "bluesky"\nhandle = "brand.bsky.social"\n'
        'app_password_env = "SKY_APP_PASSWORD"\n'
        "[accounts.xbrand]\n"
        'platform = "x"\nclient_id_env = "X_CLIENT_ID"\n',
        encoding="utf-8",
    )
    monkeypatch.setenv("SOCIAL_ACCOUNTS_FILE", str(accounts))
    monkeypatch.setenv("SOCIAL_CAMPAIGNS_FILE", str(home / "no-campaigns.toml"))
    (home / "no-campaigns.toml").write_text("", encoding="utf-8")
    monkeypatch.setenv("SKY_APP_PASSWORD", "app-password")
    monkeypatch.setenv("X_CLIENT_ID", "client-id")
    from social_pipelines.settings import load_settings
    from social_pipelines.wiring import wire_settings

    tokens = wire_settings(load_settings()).tokens
    soon = datetime.now(UTC) + timedelta(minutes=30)
    tokens.save("bluesky", "sky", '{"access_token": "a"}', expires_at=soon, refresh_expires_at=None)

    found = doctor("--no-daemon-ok")
    assert found.code == 1
    assert found.named("problem") == ["account xbrand"]
    assert "social-pipelines accounts connect xbrand" in found.detail("account xbrand")
    assert found.status("account sky") == "warn"
    assert "expires in 30 min" in found.detail("account sky")
    assert found.status("token encryption") == "warn"
    assert "SOCIAL_SECRET_KEY is not set" in found.detail("token encryption")


def test_a_database_url_is_shown_without_its_password() -> None:
    from social_pipelines.doctor.state import shown_url

    shown = shown_url("postgresql://social:s3cret-pw@db.internal:5432/social_state")
    assert "s3cret-pw" not in shown
    assert shown == "postgresql://social:***@db.internal:5432/social_state"


def test_an_alert_its_sink_refused_is_a_problem_and_a_fresh_one_a_warning(
    doctor: Doctor, wiring: Wiring
) -> None:
    outbox = wiring.store.alerts
    now = outbox.clock()
    row = AlertRow(
        key="delivery_dead:abc:1",
        kind="delivery_dead",
        severity="error",
        title="Dead letter: post p1 to brand (Rejected)",
        payload='{"schema": "social_pipelines.alert/1"}',
        occurred_at=now,
    )
    outbox.record([row], ["webhook"])
    found = doctor("--no-daemon-ok")
    assert found.code == 0
    assert "next tick" in found.detail("alerts")

    claim = outbox.claim_next("webhook", "doctor-test", lease=timedelta(minutes=2))
    assert claim.alert is not None
    outbox.record_failed(
        row.key,
        "webhook",
        "doctor-test",
        error_class="Transient",
        error="HTTP 500 from 127.0.0.1:9",
        next_attempt_at=now + timedelta(minutes=1),
    )
    found = doctor("--no-daemon-ok")
    assert found.code == 1
    assert found.named("problem") == ["alerts"]
    detail = found.detail("alerts")
    assert "1 alert deliveries not taken" in detail and "HTTP 500" in detail
    assert "Dead letter: post p1" in detail
