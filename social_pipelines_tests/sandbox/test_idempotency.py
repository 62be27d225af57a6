"""`Idempotency-Key`: one status per key and account, even under delays and faults."""

from __future__ import annotations

import threading
import time

import httpx
import pytest

from social_pipelines.sandbox.process import SandboxProcess


def post(
    sandbox: SandboxProcess,
    key: str,
    text: str = "hello",
    user: str = "brand",
    timeout: float = 10.0,
) -> httpx.Response:
    return httpx.post(
        f"{sandbox.url}/api/v1/statuses",
        data={"status": text},
        headers={"Authorization": f"Bearer sandbox-token-{user}", "Idempotency-Key": key},
        timeout=timeout,
    )


def test_same_key_returns_the_same_status(sandbox: SandboxProcess):
    first = post(sandbox, "k1", "first")
    second = post(sandbox, "k1", "second text, same key")
    assert first.status_code == second.status_code == 200
    assert first.json()["id"] == second.json()["id"]
    assert second.json()["content"] == "<p>first</p>"
    other_key = post(sandbox, "k2", "first")
    assert other_key.json()["id"] != first.json()["id"]
    # Keys are scoped per account.
    other_account = post(sandbox, "k1", "first", user="datadiana")
    assert other_account.json()["id"] != first.json()["id"]
    posted = sandbox.posted()
    assert [p["idempotency_key"] for p in posted] == ["k1", "k2", "k1"]
    assert sandbox.stats()["statuses_created"] == 3


def test_concurrent_duplicate_waits_for_the_first(sandbox: SandboxProcess):
    """The second request arrives while the first is held by a `timeout_after` delay."""
    sandbox.set_faults(timeout_after=1.0, timeout_delay=0.8, endpoints=["POST /api/v1/statuses"])
    results: dict[str, httpx.Response] = {}

    def send(name: str) -> None:
        results[name] = post(sandbox, "same-key", f"from {name}")

    first = threading.Thread(target=send, args=("first",))
    first.start()
    time.sleep(0.3)  # the first is created and now sleeping in its delay
    second = threading.Thread(target=send, args=("second",))
    second.start()
    first.join()
    second.join()
    assert results["first"].status_code == results["second"].status_code == 200
    assert results["first"].json()["id"] == results["second"].json()["id"]
    assert len(sandbox.posted()) == 1


def test_duplicate_during_a_slow_first_request_never_creates_twice(sandbox: SandboxProcess):
    """Ten requests with one key fired together, while every request is slowed down."""
    sandbox.set_faults(latency=0.2)
    responses: list[httpx.Response] = []
    lock = threading.Lock()

    def send() -> None:
        response = post(sandbox, "burst")
        with lock:
            responses.append(response)

    threads = [threading.Thread(target=send) for _ in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert {r.status_code for r in responses} == {200}
    assert len({r.json()["id"] for r in responses}) == 1
    assert len(sandbox.posted()) == 1


@pytest.mark.parametrize("fault", ["error_503", "reset_before"])
def test_a_fault_before_creation_releases_the_key(sandbox: SandboxProcess, fault: str):
    sandbox.set_faults(**{fault: 1.0})
    try:
        response = post(sandbox, "retry-me")
        assert response.status_code == 503
    except httpx.TransportError:
        assert fault == "reset_before"
    assert sandbox.posted() == []
    sandbox.clear_faults()
    retried = post(sandbox, "retry-me")
    assert retried.status_code == 200
    assert [p["idempotency_key"] for p in sandbox.posted()] == ["retry-me"]


def test_a_validation_error_releases_the_key(sandbox: SandboxProcess):
    assert post(sandbox, "k", "").status_code == 422
    assert post(sandbox, "k", "now with text").status_code == 200
    assert len(sandbox.posted()) == 1


def test_a_fault_after_creation_keeps_the_key(sandbox: SandboxProcess):
    sandbox.set_faults(reset_after=1.0)
    with pytest.raises(httpx.TransportError):
        post(sandbox, "sent-but-lost")
    sandbox.clear_faults()
    retried = post(sandbox, "sent-but-lost")
    posted = sandbox.posted()
    assert len(posted) == 1 and retried.json()["id"] == posted[0]["id"]


def test_ignored_keys_create_a_status_per_request(sandbox: SandboxProcess):
    """Like Takahē: with keys ignored, a repeated key is a second status."""
    assert sandbox.idempotency() == {"honoured": True}
    assert sandbox.set_idempotency(honoured=False) == {"honoured": False}
    first = post(sandbox, "k1", "first")
    second = post(sandbox, "k1", "first")
    assert first.status_code == second.status_code == 200
    assert first.json()["id"] != second.json()["id"]
    assert [p["idempotency_key"] for p in sandbox.posted()] == [None, None]
    assert sandbox.stats()["idempotency_keys_honoured"] is False
    # Honoured again: keys dedupe from now on.
    sandbox.set_idempotency(honoured=True)
    third = post(sandbox, "k3", "third")
    assert post(sandbox, "k3", "third").json()["id"] == third.json()["id"]


def test_idempotency_setting_persists_and_reset_restores_startup(tmp_path):
    db = tmp_path / "sandbox.db"
    with SandboxProcess(db) as sandbox:
        sandbox.set_idempotency(honoured=False)
        sandbox.restart()
        assert sandbox.idempotency() == {"honoured": False}
        sandbox.reset()  # this process started from the stored setting: still ignored
        assert sandbox.idempotency() == {"honoured": False}
    with SandboxProcess(tmp_path / "fresh.db", ignore_idempotency_keys=True) as sandbox:
        assert sandbox.idempotency() == {"honoured": False}
        sandbox.set_idempotency(honoured=True)
        sandbox.reset()
        assert sandbox.idempotency() == {"honoured": False}
        created = [post(sandbox, "same", "x").json()["id"] for _ in range(2)]
        assert created[0] != created[1]


@pytest.mark.parametrize("body", [{"honoured": "no"}, {"honoured": False, "extra": 1}, {}], ids=str)
def test_idempotency_admin_rejects_bad_bodies(sandbox: SandboxProcess, body):
    answer = httpx.post(f"{sandbox.url}/_sandbox/idempotency", json=body)
    assert answer.status_code == 422
    assert sandbox.idempotency() == {"honoured": True}
