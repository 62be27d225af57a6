"""The outbox's commands as a person runs them, settings from the environment, against the
real sandbox: the exact names and exit codes of the README's table."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest
from PIL import Image

from social_pipelines.cli import main
from social_pipelines.errors import Rejected
from social_pipelines.models import DeliveryKind, DeliveryState, publish_subject
from social_pipelines.sandbox.process import SandboxProcess
from social_pipelines.settings import load_settings
from social_pipelines.wiring import wire_settings
from social_pipelines_tests.store.helpers import LEASE, make_draft


@pytest.fixture
def shell(env: Path, demo_sandbox: SandboxProcess, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("DAGSTER_HOME", str(env))
    monkeypatch.setenv("SOCIAL_DATABASE_URL", f"sqlite:///{env / 'state.db'}")
    monkeypatch.setenv("SOCIAL_SANDBOX_URL", demo_sandbox.url)
    monkeypatch.chdir(env)
    return env


def _out(capsys: pytest.CaptureFixture[str]) -> tuple[str, str]:
    captured = capsys.readouterr()
    return captured.out, captured.err


def test_schedule_list_show_and_cancel(shell: Path, capsys: pytest.CaptureFixture[str]) -> None:
    photo = shell / "photo.jpg"
    Image.new("RGB", (64, 48), (10, 200, 10)).save(photo)
    code = main(
        [
            "schedule", "--to", "brand,brand_news", "--at", "2030-01-01T09:00:00+01:00",
            "--text", "Hello", "--id", "hello-1", "--image", str(photo), "--alt", "green",
            "--link", "https://example.com/x",
        ]
    )  # fmt: skip
    out, _ = _out(capsys)
    assert code == 0 and out.strip() == "hello-1"
    assert main(["list"]) == 0
    out, _ = _out(capsys)
    assert "hello-1  2030-01-01 08:00 UTC  scheduled" in out
    assert main(["list", "--state", "published"]) == 0
    assert "no posts in state published" in _out(capsys)[0]
    assert main(["show", "hello-1", "--json"]) == 0
    shown = json.loads(_out(capsys)[0])
    assert shown["state"] == "scheduled" and len(shown["revisions"]) == 1
    assert shown["revisions"][0]["post"]["images"][0]["alt"] == "green"
    assert main(["show", "nope"]) == 1
    assert main(["cancel", "hello-1"]) == 0
    assert "cancelled hello-1: brand, brand_news" in _out(capsys)[0]
    assert main(["cancel", "hello-1"]) == 1  # nothing left to cancel
    assert main(["cancel", "nope"]) == 1


def test_schedule_refuses_bad_input_with_the_reason(
    shell: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base = ["schedule", "--to", "brand", "--text", "Hi"]
    assert main([*base, "--at", "2030-01-01 09:00"]) == 2
    assert "no UTC offset" in _out(capsys)[1]
    assert main([*base, "--at", "2030-01-01T09:00Z", "--image", "missing.jpg"]) == 2
    assert "no such file" in _out(capsys)[1]
    assert main([*base, "--at", "2030-01-01T09:00Z", "--image", "http://x.example/a.jpg"]) == 2
    assert "only https://" in _out(capsys)[1]
    assert main(["schedule", "--to", "ghost", "--at", "now", "--text", "x"]) == 2
    assert "no account 'ghost'" in _out(capsys)[1]
    assert main([*base, "--at", "now", "--id", "bad id!"]) == 2
    assert "id" in _out(capsys)[1]
    assert main(["schedule", "--to", "brand", "--at", "now", "--text", "x" * 600]) == 2
    err = _out(capsys)[1]
    assert "refused for brand" in err and "at most 500" in err


def test_retry_and_dead_letters(shell: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["schedule", "--to", "brand", "--at", "now", "--text", "x", "--id", "d1"]) == 0
    _out(capsys)
    store = wire_settings(load_settings()).store
    draft = make_draft(publish_subject("d1", "brand"), kind=DeliveryKind.PUBLISH)
    claim = store.ledger.plan_and_claim(draft, run_id="r", lease=LEASE)
    store.ledger.record_error(
        draft.delivery_id, claim.attempt, Rejected("the image was broken"), state=DeliveryState.DEAD
    )
    assert main(["dead-letters", "--json"]) == 0
    (dead,) = json.loads(_out(capsys)[0])
    assert dead["subject"] == "d1/brand" and "the image was broken" in dead["reason"]
    assert main(["list", "--state", "failed"]) == 0
    assert "brand: dead (the image was broken)" in _out(capsys)[0]
    assert main(["retry", "d1"]) == 0
    assert "due again: d1/brand" in _out(capsys)[0]
    assert main(["dead-letters"]) == 0
    assert "no dead deliveries" in _out(capsys)[0]
    assert main(["retry", "d1"]) == 0
    assert "nothing dead or failed" in _out(capsys)[0]
    assert main(["retry", "nothing-here"]) == 1


def test_calendar_check_and_sync(
    shell: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    calendar = shell / "calendar"
    calendar.mkdir()
    (calendar / "a.yaml").write_text(
        textwrap.dedent(
            """\
            - id: ok
              at: 2030-01-01T09:00:00Z
              to: brand
              text: Fine
            - id: bad
              at: 2030-01-01 09:00
              to: brand
              text: No zone
            """
        ),
        encoding="utf-8",
    )
    assert main(["calendar", "check"]) == 2  # no calendar configured
    assert "SOCIAL_CALENDAR_DIR" in _out(capsys)[1]
    monkeypatch.setenv("SOCIAL_CALENDAR_DIR", str(calendar))
    assert main(["calendar", "check"]) == 2
    out, _ = _out(capsys)
    assert "entry 'bad', field 'at'" in out and "1 post(s), 1 problem(s)" in out
    assert wire_settings(load_settings()).store.outbox.get("ok") is None  # check writes nothing
    assert main(["calendar", "sync"]) == 0
    assert "calendar: 1 new" in _out(capsys)[0]
    assert wire_settings(load_settings()).store.outbox.get("ok") is not None


def test_render_writes_what_each_platform_gets(
    shell: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    photo = shell / "wide.png"
    Image.new("RGBA", (3000, 1000), (0, 0, 255, 128)).save(photo)
    out_dir = shell / "out"
    assert main(["render", str(photo), "--platform", "instagram", "--out", str(out_dir)]) == 0
    written = [Path(line) for line in _out(capsys)[0].splitlines()]
    assert written and all(path.exists() for path in written)
    assert any("instagram" in path.name for path in written)
