"""Classifying HTTP answers and transport failures into the error taxonomy."""

from __future__ import annotations

import socket
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import httpx
import pytest

from social_pipelines.errors import (
    ERROR_EXCERPT_LIMIT,
    OutcomeUnknown,
    RateLimited,
    Rejected,
    Transient,
)
from social_pipelines.platforms.http import (
    RateLimitInfo,
    parse_reset,
    rate_limit_info,
    retry_after_seconds,
    status_error,
    transport_error,
)

NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
REQUEST = httpx.Request("POST", "https://social.example/api/v1/statuses")


def _response(status: int, headers: dict[str, str] | None = None, text: str = "") -> httpx.Response:
    return httpx.Response(status, headers=headers, text=text, request=REQUEST)


# -- status codes --------------------------------------------------------------------------


@pytest.mark.parametrize("status", [500, 502, 504])
def test_a_server_error_on_a_create_is_outcome_unknown(status: int) -> None:
    error = status_error(_response(status, text="oops"), platform="mastodon", create=True)
    assert type(error) is OutcomeUnknown
    assert error.may_have_reached and not error.retryable
    assert (error.status_code, error.platform, error.detail) == (status, "mastodon", "oops")


@pytest.mark.parametrize("status", [500, 502, 504])
def test_a_server_error_on_a_read_is_transient(status: int) -> None:
    error = status_error(_response(status), platform="mastodon", create=False)
    assert type(error) is Transient
    assert error.retryable and not error.may_have_reached


@pytest.mark.parametrize("create", [True, False])
def test_503_is_transient_even_on_a_create(create: bool) -> None:
    error = status_error(_response(503), platform="mastodon", create=create)
    assert type(error) is Transient
    assert error.status_code == 503


@pytest.mark.parametrize("create", [True, False])
def test_408_is_transient(create: bool) -> None:
    assert type(status_error(_response(408), platform="x", create=create)) is Transient


@pytest.mark.parametrize("status", [400, 403, 404, 410, 413, 422])
def test_client_errors_are_rejected(status: int) -> None:
    error = status_error(_response(status, text="nope"), platform="mastodon", create=True)
    assert type(error) is Rejected
    assert error.kind == "rejected"
    assert not error.retryable and not error.may_have_reached


def test_429_with_retry_after_seconds() -> None:
    error = status_error(_response(429, {"Retry-After": "120"}), platform="mastodon", create=True)
    assert type(error) is RateLimited
    assert error.retry_after == 120.0
    assert error.status_code == 429
    assert error.retryable and error.kind == "rate_limited"
    before = datetime.now(UTC)
    assert before + timedelta(seconds=119) <= error.resume_at <= before + timedelta(seconds=121)


def test_429_with_retry_after_as_an_http_date() -> None:
    when = datetime.now(UTC) + timedelta(seconds=90)
    error = status_error(
        _response(429, {"Retry-After": format_datetime(when, usegmt=True)}),
        platform="mastodon",
        create=False,
    )
    assert isinstance(error, RateLimited)
    assert 85 <= error.retry_after <= 90  # HTTP dates have whole seconds


def test_429_with_an_iso_ratelimit_reset() -> None:
    reset = datetime.now(UTC) + timedelta(minutes=5)
    headers = {
        "X-RateLimit-Limit": "300",
        "X-RateLimit-Remaining": "0",
        "X-RateLimit-Reset": reset.isoformat().replace("+00:00", "Z"),
    }
    error = status_error(_response(429, headers), platform="mastodon", create=True)
    assert isinstance(error, RateLimited)
    assert 295 <= error.retry_after <= 300


def test_429_without_any_hint_has_no_retry_after() -> None:
    error = status_error(_response(429), platform="mastodon", create=True)
    assert isinstance(error, RateLimited)
    assert error.retry_after is None and error.resume_at is None


def test_a_huge_error_body_is_trimmed() -> None:
    error = status_error(_response(500, text="é" * 10_000), platform="m", create=True)
    assert len(error.detail.encode("utf-8")) <= ERROR_EXCERPT_LIMIT
    assert error.detail.endswith("...")


def test_an_html_error_page_is_its_title_in_the_message_and_whole_in_the_detail() -> None:
    page = (
        "<!DOCTYPE html><html><head><title>504 Gateway Time-out</title></head>"
        "<body><h1>504 Gateway Time-out</h1><hr><center>nginx</center></body></html>"
    )
    error = status_error(_response(504, text=page), platform="mastodon", create=True)
    assert str(error) == (
        "mastodon: server error on a create; it may have been processed (HTTP 504): "
        "504 Gateway Time-out"
    )
    assert error.detail == page
    assert error.full_text.endswith(page)


# -- transport failures --------------------------------------------------------------------


@pytest.mark.parametrize(
    "error_class",
    [httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout, httpx.UnsupportedProtocol],
)
@pytest.mark.parametrize("create", [True, False])
def test_failures_before_the_request_left_are_transient(
    error_class: type[httpx.TransportError], create: bool
) -> None:
    error = transport_error(
        error_class("no route", request=REQUEST), platform="mastodon", create=create
    )
    assert type(error) is Transient
    assert error_class.__name__ in str(error)
    assert not error.may_have_reached


@pytest.mark.parametrize(
    "error_class",
    [httpx.ReadTimeout, httpx.WriteTimeout, httpx.ReadError, httpx.RemoteProtocolError],
)
def test_failures_after_the_request_left_on_a_create_are_unknown(
    error_class: type[httpx.TransportError],
) -> None:
    error = transport_error(error_class("cut", request=REQUEST), platform="mastodon", create=True)
    assert type(error) is OutcomeUnknown
    assert error.may_have_reached
    assert "may have been processed" in str(error)


@pytest.mark.parametrize("error_class", [httpx.ReadTimeout, httpx.ReadError])
def test_failures_after_the_request_left_on_a_read_are_transient(
    error_class: type[httpx.TransportError],
) -> None:
    error = transport_error(error_class("cut", request=REQUEST), platform="m", create=False)
    assert type(error) is Transient


def _closed_loopback_port() -> int:
    """A port on 127.0.0.1 that nothing listens on (bound, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.mark.parametrize("create", [True, False])
def test_a_refused_connection_names_the_host_and_port_but_no_secret(create: bool) -> None:
    port = _closed_loopback_port()
    url = f"http://alice:pa55word@127.0.0.1:{port}/api/v1/statuses?access_token=tok-SECRET-9x"
    with httpx.Client(timeout=2) as client, pytest.raises(httpx.ConnectError) as caught:
        client.post(url, headers={"Authorization": "Bearer tok-HEADER-7y"})

    error = transport_error(caught.value, platform="mastodon", create=create)

    assert type(error) is Transient
    message = str(error)
    assert message == (
        f"mastodon: ConnectError reaching 127.0.0.1:{port} (Connection refused) "
        "before the request was sent"
    )
    for secret in ("tok-SECRET-9x", "access_token", "pa55word", "alice", "/api", "tok-HEADER"):
        assert secret not in message


@pytest.mark.parametrize(
    ("url", "peer"),
    [
        ("https://social.example/api/v2/search?q=x&token=t0k", "social.example"),
        ("https://social.example:443/x", "social.example"),  # a default port is not news
        ("http://social.example:8080/x", "social.example:8080"),
        ("https://u:p@[2001:db8::1]:8443/x?t=1", "[2001:db8::1]:8443"),
    ],
)
def test_a_transport_failure_names_only_host_and_a_non_default_port(url: str, peer: str) -> None:
    request = httpx.Request("GET", url)
    error = transport_error(
        httpx.ReadTimeout(f"timed out on {url}", request=request), platform="m", create=True
    )
    assert str(error) == (
        f"m: ReadTimeout from {peer} after the request was sent; it may have been processed"
    )


def test_a_transport_failure_without_its_request_still_classifies() -> None:
    error = transport_error(httpx.ConnectError("no request"), platform="m", create=True)
    assert str(error) == "m: ConnectError before the request was sent"


# -- reset headers -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, None),
        ("", None),
        ("not a time", None),
        ("30", NOW + timedelta(seconds=30)),  # small numbers: seconds from now
        ("1740830700", datetime(2025, 3, 1, 12, 5, tzinfo=UTC)),  # epoch seconds
        ("2025-03-01T12:05:00.000Z", datetime(2025, 3, 1, 12, 5, tzinfo=UTC)),
        ("2025-03-01T13:05:00+01:00", datetime(2025, 3, 1, 12, 5, tzinfo=UTC)),
        ("2025-03-01T12:05:00", datetime(2025, 3, 1, 12, 5, tzinfo=UTC)),  # naive: UTC
        ("Sat, 01 Mar 2025 12:05:00 GMT", datetime(2025, 3, 1, 12, 5, tzinfo=UTC)),
    ],
)
def test_parse_reset(value: str | None, expected: datetime | None) -> None:
    parsed = parse_reset(value, now=NOW)
    assert parsed == expected
    if parsed is not None:
        assert parsed.tzinfo is not None  # always aware, so it compares with now()


@pytest.mark.parametrize(
    ("headers", "seconds"),
    [
        ({"Retry-After": "42"}, 42.0),
        ({"Retry-After": "1.5"}, 1.5),
        ({"Retry-After": "-3"}, 0.0),
        ({"Retry-After": "Sat, 01 Mar 2025 12:01:00 GMT"}, 60.0),
        ({"Retry-After": "Sat, 01 Mar 2025 11:00:00 GMT"}, 0.0),  # already past
        ({"X-RateLimit-Reset": "2025-03-01T12:10:00.000Z"}, 600.0),
        ({"x-rate-limit-reset": "1740830700"}, 300.0),
        ({"RateLimit-Reset": "15"}, 15.0),
        # Retry-After wins over a reset header.
        ({"Retry-After": "5", "X-RateLimit-Reset": "2025-03-01T13:00:00Z"}, 5.0),
        ({}, None),
        ({"Retry-After": "soon"}, None),
    ],
)
def test_retry_after_seconds(headers: dict[str, str], seconds: float | None) -> None:
    assert retry_after_seconds(httpx.Headers(headers), now=NOW) == seconds


def test_rate_limit_info_from_mastodon_headers() -> None:
    info = rate_limit_info(
        httpx.Headers(
            {
                "X-RateLimit-Limit": "300",
                "X-RateLimit-Remaining": "299",
                "X-RateLimit-Reset": "2025-03-01T12:05:00.000Z",
            }
        )
    )
    assert info == RateLimitInfo(300, 299, datetime(2025, 3, 1, 12, 5, tzinfo=UTC))


def test_rate_limit_info_from_x_style_headers() -> None:
    info = rate_limit_info(
        httpx.Headers(
            {
                "x-rate-limit-limit": "50",
                "x-rate-limit-remaining": "0",
                "x-rate-limit-reset": "1740830700",
            }
        )
    )
    assert info == RateLimitInfo(50, 0, datetime(2025, 3, 1, 12, 5, tzinfo=UTC))


def test_rate_limit_info_is_none_without_headers_and_tolerates_junk() -> None:
    assert rate_limit_info(httpx.Headers({"Content-Type": "application/json"})) is None
    info = rate_limit_info(httpx.Headers({"X-RateLimit-Limit": "lots", "X-RateLimit-Reset": "?"}))
    assert info == RateLimitInfo(None, None, None)
