"""A door that lets every request through and writes down what passed it.

For adapter tests that check an adapter's mapping without the shared limits: it records
each permit taken (by endpoint class) and each answer's rate headers, so a test can say
"every request took exactly one permit" and "the headers reached the limiter".
"""

from __future__ import annotations

from dataclasses import dataclass, field

import httpx

from social_pipelines.platforms.http import RateLimitInfo, rate_limit_info


@dataclass
class Passage:
    endpoint: str
    sent: bool | None = None  # None: still in flight
    status: int | None = None
    info: RateLimitInfo | None = None


@dataclass
class RecordingDoor:
    passages: list[Passage] = field(default_factory=list)

    def enter(self, endpoint: str) -> Passage:
        passage = Passage(endpoint)
        self.passages.append(passage)
        return passage

    def leave(self, permit: object, response: httpx.Response | None, *, sent: bool) -> None:
        assert isinstance(permit, Passage) and permit.sent is None, "left once, after entering"
        permit.sent = sent
        if response is not None:
            permit.status = response.status_code
            permit.info = rate_limit_info(response.headers)

    @property
    def observed(self) -> list[tuple[str, RateLimitInfo]]:
        """(endpoint, what the answer announced) for every answer that announced anything."""
        return [(p.endpoint, p.info) for p in self.passages if p.info is not None]
