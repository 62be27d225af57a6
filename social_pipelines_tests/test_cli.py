"""The `social-pipelines` command, run as a person would: `ledger` against a real SQLite
state store, `demo` end to end against the sandbox it starts, and how it refuses bad
input. Settings come from the environment, as for a person's shell."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from social_pipelines.cli import main
from social_pipelines.errors import OutcomeUnknown
from social_pipelines.models import DeliveryState, Published
from social_pipelines.sandbox.accounts import BRAND
from social_pipelines.sandbox.process import SandboxProcess
from social_pipelines.store import StateStore
from social_pipelines_tests.store.helpers import LEASE, FakeClock, make_draft

PAGE = (
    "<!DOCTYPE html><html><head><title>502 Bad Gateway</title></head>"
    "<body><h1>502 Bad Gateway</h1><hr>nginx</body></html>"
)


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[StateStore]:
    """The state store the command reads (from the environment), with a clock we move."""
    url = f"sqlite:///{tmp_path / 'state.db'}"
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path))
    monkeypatch.setenv("SOCIAL_DATABASE_URL", url)
    monkeypatch.chdir(tmp_path)  # no stray .env
    opened = StateStore(url, clock=FakeClock())
    yield opened
    opened.dispose()


def _sent(store: StateStore, subject: str) -> None:
    draft = make_draft(subject)
    store.ledger.plan(draft)
    claim = store.ledger.claim(draft.delivery_id, run_id="run", lease=LEASE)
    store.ledger.record_sent(
        draft.delivery_id, claim.attempt, Published(remote_id=subject, url=f"https://x/{subject}")
    )
    store.ledger.clock.advance(minutes=1)


def _lines(capsys: pytest.CaptureFixture[str]) -> list[str]:
    return capsys.readouterr().out.splitlines()


def test_ledger_shows_the_newest_rows_and_says_when_it_cut_the_list(
    store: StateStore, capsys: pytest.CaptureFixture[str]
) -> None:
    for number in range(5):
        _sent(store, f"post-{number}")

    assert main(["ledger", "--limit", "3"]) == 0

    lines = _lines(capsys)
    assert [line.split()[5] for line in lines[:3]] == ["post-4", "post-3", "post-2"]
    assert lines[3] == "showing the newest 3 deliveries of more; use --limit N to see more"
    assert len(lines) == 4


def test_ledger_says_nothing_was_cut_when_everything_fits(
    store: StateStore, capsys: pytest.CaptureFixture[str]
) -> None:
    for number in range(3):
        _sent(store, f"post-{number}")

    assert main(["ledger", "--limit", "3"]) == 0

    lines = _lines(capsys)
    assert [line.split()[5] for line in lines] == ["post-2", "post-1", "post-0"]
    assert "https://x/post-2" in lines[0]


def test_ledger_filters_by_state_and_shows_an_error_page_by_its_title(
    store: StateStore, capsys: pytest.CaptureFixture[str]
) -> None:
    _sent(store, "fine")
    draft = make_draft("doubtful")
    store.ledger.plan(draft)
    claim = store.ledger.claim(draft.delivery_id, run_id="run", lease=LEASE)
    error = OutcomeUnknown("server error", platform="mastodon", status_code=502, detail=PAGE)
    store.ledger.record_error(draft.delivery_id, claim.attempt, error, state=DeliveryState.UNKNOWN)

    assert main(["ledger", "--state", "unknown", "--state", "dead"]) == 0

    [line] = _lines(capsys)
    assert " unknown " in line and "doubtful" in line
    assert line.endswith("mastodon: server error (HTTP 502): 502 Bad Gateway")
    assert store.ledger.get(draft.delivery_id).error.endswith(PAGE)  # the row keeps it


def test_an_empty_ledger_says_so(store: StateStore, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["ledger", "--state", "dead"]) == 0
    assert _lines(capsys) == ["no deliveries in state dead"]


@pytest.mark.parametrize(
    ("argv", "fragments"),
    [
        (
            ["ledger", "--state", "sen"],
            ["'sen'", *(f"'{state}'" for state in DeliveryState)],
        ),
        (["ledger", "--limit", "0"], ["--limit", "'0'", "at least 1"]),
        (["ledger", "--limit", "lots"], ["--limit", "'lots'"]),
        ([], ["usage: social-pipelines", "error: the following arguments are required"]),
        (["nope"], ["'demo', 'dev', 'ledger'", "argument command: invalid choice: 'nope'"]),
    ],
)
def test_a_bad_command_or_option_exits_2_with_a_message_not_a_traceback(
    store: StateStore, capsys: pytest.CaptureFixture[str], argv: list[str], fragments: list[str]
) -> None:
    with pytest.raises(SystemExit) as caught:
        main(argv)

    assert caught.value.code == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "Traceback" not in captured.err
    for fragment in fragments:
        assert fragment in captured.err


def test_a_bad_setting_is_one_line_on_stderr_and_exit_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)  # no stray .env
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path))
    monkeypatch.setenv("SOCIAL_HTTP_TIMEOUT", "0")

    assert main(["ledger"]) == 2

    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == (
        "social-pipelines: invalid settings: SOCIAL_HTTP_TIMEOUT='0': "
        "Input should be greater than 0\n"
    )
    assert not (tmp_path / "state.db").exists()  # refused before opening anything


def test_demo_dry_run_shows_the_replies_it_would_post_and_posts_none(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The whole demo: its own sandbox, reply_job on a fresh DAGSTER_HOME (~15 s)."""
    url = f"sqlite:///{tmp_path / 'state.db'}"
    monkeypatch.chdir(tmp_path)  # no stray .env
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path))
    monkeypatch.setenv("SOCIAL_DATABASE_URL", url)
    # The demo points the environment at the sandbox it starts; set here, so undone after.
    monkeypatch.setenv("SOCIAL_SANDBOX_URL", "http://127.0.0.1:9/")
    try:
        assert main(["demo", "--dry-run"]) == 0
    finally:
        StateStore.close(url)  # the store the run opened for this process

    lines = _lines(capsys)
    assert lines[0].startswith("sandbox at http://127.0.0.1:")
    would = [line for line in lines if line.startswith("would reply [")]
    assert would, lines
    assert not [line for line in lines if line.startswith("replied ")]
    assert [line for line in lines if line.startswith("would publish [demo-launch] ")]
    assert not [line for line in lines if line.startswith("published [")]
    assert lines[-2:] == [
        "replies: 0 new, 0 already answered",
        "published: 0 new, 0 already published",
    ]
    store = StateStore(url)
    try:
        assert store.ledger.list() == []  # a dry run records nothing
    finally:
        store.dispose()
    with SandboxProcess(db_path=tmp_path / "sandbox.db") as sandbox:  # what the demo used
        assert sandbox.posted(BRAND) == []
        assert sandbox.posted("brand_news") == []
