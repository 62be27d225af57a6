"""Fault injection: which requests fail, and how, reproducibly under a seed.

One `random.Random(seed)` makes exactly one draw per faultable request, so a client that
sends the same requests in the same order sees the same faults; the number of draws is
persisted and replayed at start, so the sequence continues across a restart instead of
starting over.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from typing import Any

from social_pipelines.sandbox.db import Database
from social_pipelines.sandbox.ids import iso_micro

SETTING = "faults"
DRAWS_COUNTER = "fault_draws"
COUNTER_PREFIX = "fault:"
# Draw order: a single uniform draw r picks the first kind whose cumulative probability
# exceeds r, so the kinds are mutually exclusive and their probabilities must sum to <= 1.
FAULT_KINDS = (
    "error_500",
    "error_502",
    "error_503",
    "reset_before",
    "reset_after",
    "timeout_before",
    "timeout_after",
)
BEFORE_KINDS = frozenset({"error_500", "error_502", "error_503", "reset_before", "timeout_before"})
DEFAULT_TIMEOUT_DELAY = 30.0
DURATION_KEYS = ("latency", "timeout_delay", "expire_tokens_for")


class InvalidFaults(ValueError):
    pass


@dataclass(frozen=True)
class FaultSettings:
    probabilities: dict[str, float] = field(default_factory=dict)
    latency: float = 0.0
    timeout_delay: float = DEFAULT_TIMEOUT_DELAY
    tokens_invalid_until: float | None = None
    seed: int = 0
    endpoints: tuple[str, ...] = ()

    @classmethod
    def parse(cls, body: dict[str, Any], now: float, default_seed: int) -> FaultSettings:
        """The whole fault set from an admin request; unspecified kinds are 0."""
        known = {*FAULT_KINDS, *DURATION_KEYS, "seed", "endpoints"}
        unknown = sorted(set(body) - known)
        if unknown:
            raise InvalidFaults(f"unknown fault settings: {', '.join(unknown)}")
        probabilities = {kind: _number(body, kind, 0.0) for kind in FAULT_KINDS}
        for kind, value in probabilities.items():
            if not 0.0 <= value <= 1.0:
                raise InvalidFaults(f"{kind} must be a probability between 0 and 1")
        if sum(probabilities.values()) > 1.0 + 1e-9:
            raise InvalidFaults("fault probabilities must add up to at most 1")
        durations = {key: _number(body, key, 0.0) for key in DURATION_KEYS}
        if "timeout_delay" not in body:
            durations["timeout_delay"] = DEFAULT_TIMEOUT_DELAY
        for key, value in durations.items():
            if value < 0 or not math.isfinite(value):
                raise InvalidFaults(f"{key} must be a non-negative number of seconds")
        seed = body.get("seed", default_seed)
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise InvalidFaults("seed must be an integer")
        endpoints = body.get("endpoints") or []
        if not isinstance(endpoints, list) or not all(_is_endpoint(item) for item in endpoints):
            raise InvalidFaults('endpoints must be a list like ["POST /api/v1/statuses"]')
        expire = durations["expire_tokens_for"]
        return cls(
            probabilities={kind: value for kind, value in probabilities.items() if value},
            latency=durations["latency"],
            timeout_delay=durations["timeout_delay"],
            tokens_invalid_until=now + expire if expire else None,
            seed=seed,
            endpoints=tuple(" ".join(item.split()) for item in endpoints),
        )

    def to_json(self, now: float) -> dict[str, Any]:
        until = self.tokens_invalid_until
        remaining = max(0.0, until - now) if until is not None else 0.0
        data: dict[str, Any] = {kind: self.probabilities.get(kind, 0.0) for kind in FAULT_KINDS}
        data.update(
            latency=self.latency,
            timeout_delay=self.timeout_delay,
            expire_tokens_for=round(remaining, 3),
            tokens_invalid_until=iso_micro(until) if until is not None and remaining else None,
            seed=self.seed,
            endpoints=list(self.endpoints),
        )
        return data

    def to_stored(self) -> dict[str, Any]:
        return {
            "probabilities": self.probabilities,
            "latency": self.latency,
            "timeout_delay": self.timeout_delay,
            "tokens_invalid_until": self.tokens_invalid_until,
            "seed": self.seed,
            "endpoints": list(self.endpoints),
        }

    @classmethod
    def from_stored(cls, data: dict[str, Any]) -> FaultSettings:
        return cls(
            probabilities={str(k): float(v) for k, v in data.get("probabilities", {}).items()},
            latency=float(data.get("latency", 0.0)),
            timeout_delay=float(data.get("timeout_delay", DEFAULT_TIMEOUT_DELAY)),
            tokens_invalid_until=data.get("tokens_invalid_until"),
            seed=int(data.get("seed", 0)),
            endpoints=tuple(data.get("endpoints", ())),
        )

    def applies_to(self, method: str, path: str) -> bool:
        """Whether a request is in scope (no `endpoints` means every API request)."""
        if not self.endpoints:
            return True
        for endpoint in self.endpoints:
            want_method, _, want_path = endpoint.partition(" ")
            if want_method not in ("*", method.upper()):
                continue
            if path == want_path or path.startswith(want_path.rstrip("/") + "/"):
                return True
        return False


def _number(body: dict[str, Any], key: str, default: float) -> float:
    value = body.get(key, default)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidFaults(f"{key} must be a number")
    return float(value)


def _is_endpoint(item: object) -> bool:
    if not isinstance(item, str):
        return False
    parts = item.split()
    return len(parts) == 2 and parts[1].startswith("/")


class FaultInjector:
    def __init__(self, db: Database, default_seed: int) -> None:
        self.db = db
        self.default_seed = default_seed
        stored = db.get_setting(SETTING)
        self.settings = (
            FaultSettings.from_stored(stored) if stored else FaultSettings(seed=default_seed)
        )
        self.rng = random.Random(self.settings.seed)
        # Continue the sequence where the previous process left it.
        for _ in range(db.counter(DRAWS_COUNTER)):
            self.rng.random()

    def configure(self, settings: FaultSettings) -> None:
        """Replace the fault set and restart the draw sequence from its seed."""
        with self.db.transaction():
            self.db.set_setting(SETTING, settings.to_stored())
            self.db.execute("DELETE FROM counters WHERE name = ?", (DRAWS_COUNTER,))
        self.settings = settings
        self.rng = random.Random(settings.seed)

    def clear(self) -> None:
        self.configure(FaultSettings(seed=self.default_seed))

    def tokens_expired(self, now: float) -> bool:
        until = self.settings.tokens_invalid_until
        return until is not None and now < until

    def in_scope(self, method: str, path: str) -> bool:
        return self.settings.applies_to(method, path)

    def draw(self) -> str | None:
        """One draw for one in-scope request (call inside a transaction); the kind or None."""
        settings = self.settings
        if not settings.probabilities:
            return None
        value = self.rng.random()
        self.db.incr(DRAWS_COUNTER)
        cumulative = 0.0
        for kind in FAULT_KINDS:
            cumulative += settings.probabilities.get(kind, 0.0)
            if value < cumulative:
                self.db.incr(COUNTER_PREFIX + kind)
                return kind
        return None

    def counts(self) -> dict[str, int]:
        found = self.db.counters(COUNTER_PREFIX)
        return {kind: found.get(kind, 0) for kind in FAULT_KINDS}
