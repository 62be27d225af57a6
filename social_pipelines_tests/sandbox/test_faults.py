"""Every fault kind as a client observes it, and reproducibility under a seed."""

from __future__ import annotations

import time

import httpx
import pytest

from social_pipelines.sandbox.process import SandboxProcess

AUTH = {"Authorization": "Bearer sandbox-token-brand"}


def create(sandbox: SandboxProcess, text: str = "hello", timeout: float = 5.0) -> httpx.Response:
    return httpx.post(
        f"{sandbox.url}/api/v1/statuses", data={"status": text}, headers=AUTH, timeout=timeout
    )


def read(sandbox: SandboxProcess, timeout: float = 5.0) -> httpx.Response:
    return httpx.get(
        f"{sandbox.url}/api/v1/accounts/verify_credentials", headers=AUTH, timeout=timeout
    )


@pytest.mark.parametrize(
    ("kind", "status", "json_error"),
    [
        ("error_500", 500, "Internal server error"),
        ("error_502", 502, None),
        ("error_503", 503, "There was a temporary problem serving your request, please try again"),
    ],
)
def test_error_faults_answer_before_processing(sandbox, kind, status, json_error):
    sandbox.set_faults(**{kind: 1.0})
    response = create(sandbox)
    assert response.status_code == status
    assert "X-RateLimit-Remaining" in response.headers
    if json_error:
        assert response.json() == {"error": json_error}
    else:
        assert response.headers["content-type"].startswith("text/html")
        assert "502 Bad Gateway" in response.text
    assert sandbox.posted() == []
    assert sandbox.stats()["faults"][kind] == 1


def test_reset_before_drops_the_connection_and_creates_nothing(sandbox: SandboxProcess):
    sandbox.set_faults(reset_before=1.0)
    with pytest.raises((httpx.ReadError, httpx.RemoteProtocolError)):
        create(sandbox)
    with pytest.raises((httpx.ReadError, httpx.RemoteProtocolError)):
        read(sandbox)
    assert sandbox.posted() == []
    assert sandbox.stats()["faults"]["reset_before"] == 2


def test_reset_after_drops_the_connection_after_creating(sandbox: SandboxProcess):
    sandbox.set_faults(reset_after=1.0)
    with pytest.raises((httpx.ReadError, httpx.RemoteProtocolError)):
        create(sandbox, "it went out")
    assert [p["text"] for p in sandbox.posted()] == ["it went out"]


def test_timeout_before_delays_and_creates_nothing(sandbox: SandboxProcess):
    sandbox.set_faults(timeout_before=1.0, timeout_delay=0.6)
    with pytest.raises(httpx.ReadTimeout):
        create(sandbox, timeout=0.2)
    time.sleep(0.6)
    assert sandbox.posted() == []
    # A client that waits longer than the delay gets a gateway timeout, still nothing created.
    started = time.monotonic()
    patient = create(sandbox, timeout=3.0)
    assert patient.status_code == 504 and time.monotonic() - started >= 0.6
    assert sandbox.posted() == []


def test_timeout_after_creates_then_delays(sandbox: SandboxProcess):
    sandbox.set_faults(timeout_after=1.0, timeout_delay=0.6)
    with pytest.raises(httpx.ReadTimeout):
        create(sandbox, "slow answer", timeout=0.2)
    assert [p["text"] for p in sandbox.posted()] == ["slow answer"]
    started = time.monotonic()
    patient = create(sandbox, "patient", timeout=3.0)
    assert patient.status_code == 200 and time.monotonic() - started >= 0.6


def test_latency_slows_every_request(sandbox: SandboxProcess):
    sandbox.set_faults(latency=0.3)
    started = time.monotonic()
    assert read(sandbox).status_code == 200
    assert time.monotonic() - started >= 0.3


def test_expired_tokens_are_refused_for_a_while(sandbox: SandboxProcess):
    settings = sandbox.set_faults(expire_tokens_for=0.5)
    assert settings["tokens_invalid_until"] is not None
    refused = read(sandbox)
    assert refused.status_code == 401
    assert refused.json() == {"error": "The access token is invalid"}
    assert httpx.get(f"{sandbox.url}/api/v2/instance", headers=AUTH).status_code == 200
    time.sleep(0.6)
    assert read(sandbox).status_code == 200


def test_faults_can_target_endpoints(sandbox: SandboxProcess):
    sandbox.set_faults(error_503=1.0, endpoints=["POST /api/v1/statuses"])
    assert read(sandbox).status_code == 200
    assert create(sandbox).status_code == 503


def test_fault_settings_round_trip_and_validation(sandbox: SandboxProcess):
    settings = sandbox.set_faults(error_500=0.25, timeout_after=0.5, seed=9, timeout_delay=2)
    assert settings["error_500"] == 0.25 and settings["timeout_after"] == 0.5
    assert settings["error_502"] == 0.0 and settings["seed"] == 9
    assert sandbox.faults() == settings
    for bad in (
        {"error_500": 0.8, "error_503": 0.4},
        {"bogus": 1},
        {"error_500": 2},
        {"seed": "x"},
        {"latency": -1},
    ):
        response = httpx.post(f"{sandbox.url}/_sandbox/faults", json=bad)
        assert response.status_code == 422, bad
    cleared = sandbox.clear_faults()
    assert cleared["error_500"] == 0.0 and cleared["timeout_after"] == 0.0


def sequence(sandbox: SandboxProcess, seed: int, count: int = 30) -> list[int]:
    sandbox.set_faults(error_500=0.3, error_503=0.2, seed=seed)
    with sandbox.client() as client:
        return [client.get("/api/v1/accounts/verify_credentials").status_code for _ in range(count)]


def test_same_seed_same_fault_sequence(sandbox: SandboxProcess):
    first = sequence(sandbox, seed=42)
    assert {500, 503, 200} <= set(first)
    again = sequence(sandbox, seed=42)
    other = sequence(sandbox, seed=43)
    assert again == first
    assert other != first
    every = first + again + other
    counts = sandbox.stats()["faults"]
    assert counts["error_500"] == every.count(500)
    assert counts["error_503"] == every.count(503)
