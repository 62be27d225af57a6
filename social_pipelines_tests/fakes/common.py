"""What both fakes share: a clock, fixed-window rate counters, a request log, faults."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx

Clock = Callable[[], datetime]


def utcnow() -> datetime:
    return datetime.now(UTC)


def json_response(status: int, body: Any, headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.Response(
        status,
        content=json.dumps(body).encode("utf-8"),
        headers={"Content-Type": "application/json; charset=utf-8", **(headers or {})},
    )


def iso(when: datetime) -> str:
    """`2026-12-01T10:00:00.000Z`: millisecond RFC 3339 in UTC, as both platforms write."""
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"


def parse_time(value: str) -> datetime:
    """An RFC 3339 / ISO 8601 time (`Z` or an offset) or a bare `YYYY-MM-DD` (UTC)."""
    if len(value) == 10:
        return datetime.fromisoformat(value).replace(tzinfo=UTC)
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if parsed.tzinfo is None:
        raise ValueError(f"{value!r} has no time zone")
    return parsed.astimezone(UTC)


@dataclass
class Window:
    count: int
    started: float


class RateCounters:
    """Fixed windows per (bucket, key): what the answer headers announce, and the 429."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.windows: dict[tuple[str, str], Window] = {}

    def take(
        self, bucket: str, key: str, *, limit: int, seconds: float, points: int = 1
    ) -> tuple[bool, int, int, float]:
        """(allowed, limit, remaining, reset epoch seconds) after taking `points`."""
        now = self.clock().timestamp()
        start = now - now % seconds
        window = self.windows.get((bucket, key))
        if window is None or window.started != start:
            window = self.windows[(bucket, key)] = Window(0, start)
        allowed = window.count + points <= limit
        if allowed:
            window.count += points
        return allowed, limit, max(0, limit - window.count), start + seconds


@dataclass(frozen=True)
class Call:
    """One request the fake answered: enough to assert on, never the body of a secret."""

    method: str
    host: str
    path: str
    status: int
    endpoint: str


def sniff(data: bytes) -> str | None:
    """An image's type from its first bytes (both platforms look at the bytes)."""
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return "image/gif"
    return None
