"""Every registered adapter, through the same checks: what its answers and failures map
to in `errors.py`, and that every request it sends passes the door exactly once.

The remote platform is an `httpx.MockTransport` serving its documented answers
(`cases.py`); the adapter, its door transport and its error mapping are the real ones.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import get_args

import httpx
import pytest

from social_pipelines.errors import (
    AuthExpired,
    Duplicate,
    OutcomeUnknown,
    RateLimited,
    SocialError,
    Transient,
)
from social_pipelines.models import CreatePost
from social_pipelines.platforms.capabilities import (
    CAPABILITY_PROTOCOLS,
    Adapter,
    Capability,
    PlatformSpec,
    Poster,
)
from social_pipelines.platforms.catalog import SPECS
from social_pipelines.platforms.http import CREATE
from social_pipelines_tests.doors import RecordingDoor
from social_pipelines_tests.platforms.cases import CASES, Case
from social_pipelines_tests.sessions import MemorySession

Fault = Callable[[httpx.Request], httpx.Response]
# What the deliverer sets on every create (the ledger's plan time): a platform whose record
# key is derived from it (Bluesky) refuses a create without it.
PLANNED_AT = datetime(2026, 12, 1, 11, 55, tzinfo=UTC)


@dataclass
class Remote:
    """The platform: its documented answers, except `fault` for every create."""

    case: Case
    fault: Fault | None = None
    requests: list[httpx.Request] = field(default_factory=list)

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if self.fault is not None and request.extensions.get(CREATE):
            return self.fault(request)
        return self.case.answer(request)


@dataclass
class Connected:
    spec: PlatformSpec
    case: Case
    adapter: Adapter
    door: RecordingDoor
    remote: Remote

    def create(self) -> object:
        assert isinstance(self.adapter, Poster)
        return self.adapter.create_post(
            CreatePost(text="hi", planned_at=PLANNED_AT), idempotency_key="delivery-1"
        )


@pytest.fixture(params=sorted(SPECS))
def connected(request: pytest.FixtureRequest) -> Iterator[Connected]:
    spec = SPECS[request.param]
    assert spec.name in CASES, f"{spec.name}: add its case to platforms/cases.py"
    case = CASES[spec.name]
    door, remote = RecordingDoor(), Remote(case)
    transport = httpx.MockTransport(remote)
    session = (
        MemorySession(
            spec.authenticator,
            case.account,
            variables=case.variables,
            door=door,
            transport=transport,
            tokens=case.tokens,
        )
        if spec.authenticator is not None
        else None
    )
    adapter = spec.connect(
        case.account,
        variables=case.variables,
        door=door,
        timeout=2.0,
        transport=transport,
        session=session,
    )
    with adapter:
        yield Connected(spec, case, adapter, door, remote)


def _raise(error: type[httpx.TransportError]) -> Fault:
    def fault(request: httpx.Request) -> httpx.Response:
        raise error("injected", request=request)

    return fault


def test_the_module_describes_itself(connected: Connected) -> None:
    spec = connected.spec
    [literal] = get_args(spec.account_model.model_fields["platform"].annotation)
    assert literal == spec.name == connected.adapter.name
    for capability in spec.capabilities:
        assert isinstance(connected.adapter, CAPABILITY_PROTOCOLS[capability]), capability
    for capability in set(Capability) - spec.capabilities:
        protocol = CAPABILITY_PROTOCOLS[capability]
        if not any(CAPABILITY_PROTOCOLS[c] is protocol for c in spec.capabilities):
            assert not isinstance(connected.adapter, protocol), f"pretends to {capability}"


def test_401_is_auth_expired(connected: Connected) -> None:
    connected.remote.case = _answering(connected.case, httpx.Response(401, json={}))
    with pytest.raises(AuthExpired):
        connected.adapter.whoami()


def test_429_is_rate_limited_with_its_wait(connected: Connected) -> None:
    refused = httpx.Response(429, headers={"Retry-After": "7"}, json={})
    connected.remote.case = _answering(connected.case, refused)
    with pytest.raises(RateLimited) as raised:
        connected.adapter.whoami()
    assert raised.value.retry_after == 7


def test_a_connect_error_on_a_create_is_transient(connected: Connected) -> None:
    connected.remote.fault = _raise(httpx.ConnectError)
    with pytest.raises(Transient):
        connected.create()
    assert connected.door.passages[-1].sent is False


@pytest.mark.parametrize("error", [httpx.ReadTimeout, httpx.ReadError, httpx.RemoteProtocolError])
def test_no_answer_after_a_create_was_sent_is_outcome_unknown(
    connected: Connected, error: type[httpx.TransportError]
) -> None:
    connected.remote.fault = _raise(error)
    with pytest.raises(OutcomeUnknown):
        connected.create()
    assert connected.door.passages[-1].sent is True


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (500, OutcomeUnknown),
        (502, OutcomeUnknown),
        (504, OutcomeUnknown),
        (503, Transient),  # turned away, not processed
        (429, RateLimited),
    ],
)
def test_a_server_error_on_a_create(
    connected: Connected, status: int, expected: type[SocialError]
) -> None:
    connected.remote.fault = lambda request: httpx.Response(status, text="<html>oops</html>")
    with pytest.raises(SocialError) as raised:
        connected.create()
    assert type(raised.value) is expected


def test_a_duplicate_answer_is_duplicate(connected: Connected) -> None:
    if connected.case.duplicate is None:
        pytest.skip(connected.case.no_duplicate_because)
    duplicate = connected.case.duplicate
    connected.remote.fault = lambda request: duplicate
    with pytest.raises(Duplicate):
        connected.create()


def test_rate_headers_reach_the_limiter(connected: Connected) -> None:
    answer = connected.case.answer

    def with_headers(request: httpx.Request) -> httpx.Response:
        response = answer(request)
        response.headers.update(connected.case.rate_headers)
        return response

    connected.remote.case = _replace(connected.case, with_headers)
    connected.adapter.whoami()
    assert connected.door.observed
    assert {info for _, info in connected.door.observed} == {connected.case.announced}


def test_every_request_takes_exactly_one_permit(connected: Connected) -> None:
    connected.adapter.whoami()
    connected.adapter.content_rules()
    connected.create()
    passages = connected.door.passages
    assert len(passages) == len(connected.remote.requests) > 0
    assert all(passage.sent is True for passage in passages)  # each left exactly once


def _answering(case: Case, response: httpx.Response) -> Case:
    return _replace(case, lambda request: response)


def _replace(case: Case, answer: Callable[[httpx.Request], httpx.Response]) -> Case:
    return replace(case, answer=answer)
