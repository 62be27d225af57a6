"""The catalog of platforms and the registry that connects an account to its adapter.

Every registered platform is checked the same way, with its documented answers from
`cases.py` served by an `httpx.MockTransport`; the adapter and its door are the real ones.
"""

from __future__ import annotations

import httpx
import pytest

from social_pipelines.errors import ConfigError
from social_pipelines.platforms.account import AccountBase
from social_pipelines.platforms.catalog import SPECS, spec_for
from social_pipelines.platforms.registry import connect
from social_pipelines_tests.doors import RecordingDoor
from social_pipelines_tests.platforms.cases import BASE, CASES
from social_pipelines_tests.sessions import MemorySession


def test_every_spec_is_keyed_by_its_own_name() -> None:
    assert SPECS, "no platform registered"
    for key, spec in SPECS.items():
        assert spec.name == key
        assert spec_for(key) is spec


def test_an_unknown_platform_names_the_available_ones() -> None:
    with pytest.raises(KeyError) as caught:
        spec_for("myspace")
    [message] = caught.value.args
    assert message == (f"no adapter for platform 'myspace'; available: {', '.join(sorted(SPECS))}")


@pytest.mark.parametrize("platform", sorted(SPECS))
def test_connect_gives_the_platforms_adapter_with_every_request_through_the_door(
    platform: str,
) -> None:
    case = CASES[platform]
    door = RecordingDoor()
    requests: list[httpx.Request] = []

    def remote(request: httpx.Request) -> httpx.Response:
        requests.append(request)
        return case.answer(request)

    transport = httpx.MockTransport(remote)
    authenticator = SPECS[platform].authenticator
    # A platform whose tokens expire connects with a session (the resilience layer's).
    session = (
        MemorySession(
            authenticator,
            case.account,
            variables=case.variables,
            door=door,
            transport=transport,
            tokens=case.tokens,
        )
        if authenticator is not None
        else None
    )
    with connect(
        case.account,
        variables=case.variables,
        door=door,
        timeout=2.0,
        transport=transport,
        session=session,
    ) as adapter:
        with SPECS[platform].connect(
            case.account,
            variables=case.variables,
            door=RecordingDoor(),
            timeout=2.0,
            session=session,
        ) as direct:
            assert type(adapter) is type(direct)  # what the platform's own module builds
        assert adapter.name == platform
        identity = adapter.whoami()

    assert identity.platform == platform
    assert requests, "whoami asked the platform"
    assert all(str(request.url).startswith(BASE) for request in requests)  # the account's
    assert len(door.passages) == len(requests)  # each request passed the given door once
    assert all(passage.sent is True for passage in door.passages)


@pytest.mark.parametrize("platform", sorted(SPECS))
def test_an_account_of_another_model_is_refused_before_any_request(platform: str) -> None:
    model = SPECS[platform].account_model
    stray = AccountBase(name="stray", platform=platform)  # not the platform's own model
    door = RecordingDoor()
    with pytest.raises(ConfigError) as caught:
        connect(stray, variables={}, door=door, timeout=2.0)
    assert str(caught.value) == (
        f"account 'stray': a AccountBase is not a {model.__name__}, the account model of {platform}"
    )
    assert door.passages == []


def test_an_account_of_an_unknown_platform_is_a_config_error() -> None:
    with pytest.raises(ConfigError) as caught:
        connect(
            AccountBase(name="old", platform="myspace"),
            variables={},
            door=RecordingDoor(),
            timeout=2.0,
        )
    assert str(caught.value) == (
        f"account 'old': no adapter for platform 'myspace'; available: {', '.join(sorted(SPECS))}"
    )
