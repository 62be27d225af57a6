"""The per-account rate limit: headers, 429s, violations, exactness under concurrency."""

from __future__ import annotations

import multiprocessing
import time
from concurrent.futures import ProcessPoolExecutor
from datetime import datetime

import httpx

from social_pipelines.sandbox.process import SandboxProcess


def wait_for_window_start(window: float) -> float:
    """Sleep until just after an (epoch-aligned) window boundary; return that boundary."""
    now = time.time()
    boundary = (now // window + 1) * window
    time.sleep(boundary - now + 0.05)
    return boundary


def test_limit_headers_429_and_violations(sandbox: SandboxProcess):
    sandbox.set_rate_limit(limit=3, window_seconds=2)
    boundary = wait_for_window_start(2)
    with sandbox.client() as client:
        answers = [client.get("/api/v1/accounts/verify_credentials") for _ in range(4)]
        # Public endpoints without a token count against the client IP, not the account.
        anonymous = httpx.get(f"{sandbox.url}/api/v2/instance")
    assert [a.status_code for a in answers] == [200, 200, 200, 429]
    assert [a.headers["X-RateLimit-Remaining"] for a in answers] == ["2", "1", "0", "0"]
    for answer in answers:
        assert answer.headers["X-RateLimit-Limit"] == "3"
        reset = datetime.fromisoformat(answer.headers["X-RateLimit-Reset"].replace("Z", "+00:00"))
        assert reset.timestamp() == boundary + 2
    limited = answers[-1]
    assert limited.json() == {"error": "Too many requests"}
    assert 1 <= int(limited.headers["Retry-After"]) <= 2
    assert anonymous.status_code == 200
    stats = sandbox.stats()
    assert stats["violations"] == 1 and stats["requests"] == 5
    assert stats["rate_limit"] == {"enabled": True, "limit": 3, "window_seconds": 2.0}
    time.sleep(boundary + 2 - time.time() + 0.05)
    with sandbox.client() as client:
        assert client.get("/api/v1/accounts/verify_credentials").status_code == 200


def test_rate_limit_can_be_switched_off(sandbox: SandboxProcess):
    sandbox.set_rate_limit(enabled=False, limit=1)
    with sandbox.client() as client:
        answers = [client.get("/api/v1/accounts/verify_credentials") for _ in range(5)]
    assert {a.status_code for a in answers} == {200}
    assert "X-RateLimit-Limit" not in answers[0].headers
    assert sandbox.stats()["violations"] == 0


def hammer(url: str, count: int) -> list[int]:
    """One client process: `count` sequential requests as the brand account."""
    headers = {"Authorization": "Bearer sandbox-token-brand"}
    with httpx.Client(base_url=url, headers=headers, trust_env=False) as client:
        return [client.get("/api/v1/accounts/verify_credentials").status_code for _ in range(count)]


def test_limit_is_exact_under_concurrent_processes(sandbox: SandboxProcess):
    window = 10 * 86_400.0  # so long that no window boundary falls inside the test
    if window - time.time() % window < 60:
        wait_for_window_start(window)
    sandbox.set_rate_limit(limit=60, window_seconds=window)
    workers, each = 4, 30
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        results = list(pool.map(hammer, [sandbox.url] * workers, [each] * workers))
    codes = [code for result in results for code in result]
    assert codes.count(200) == 60
    assert codes.count(429) == workers * each - 60
    stats = sandbox.stats()
    assert stats["violations"] == workers * each - 60
    assert stats["requests"] == workers * each
