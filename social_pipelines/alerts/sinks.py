"""Where alerts go: a generic JSON webhook, a Slack incoming webhook, or the event log.

A webhook URL is a secret (Slack's carries its token in the path; a generic one often
does): it is held as a `SecretStr`, never logged, never put in an error, and only its
host is ever shown (`host_of`). Requests go through httpx's transport, not an
`httpx.Client`: the client logs every request's full URL at INFO (logger `httpx`), which
would put the secret in the run's log as soon as library logs reach it.

A send that fails raises one of the taxonomy's errors (`errors.py`), and the caller decides
from its class: `RateLimited` (429, its `Retry-After` honoured), `Transient` (no answer, a
timeout, 5xx: the receiver may come back), `Rejected` (another 4xx: a person must fix the
URL or the receiver, and it is tried again with backoff meanwhile).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import urlsplit

import httpx
from pydantic import SecretStr

from social_pipelines.alerts.model import Alert
from social_pipelines.alerts.slack import slack_body
from social_pipelines.errors import RateLimited, Rejected, SocialError, Transient, summarize
from social_pipelines.log import Log

DEFAULT_TIMEOUT = 5.0
USER_AGENT = "social_pipelines-alerts/1"
LOG_SINK = "log"


class Sink(Protocol):
    @property
    def name(self) -> str: ...

    @property
    def rate_per_minute(self) -> int | None:
        """At most this many alerts a minute to this sink (None: no limit)."""
        ...

    def send(self, alert: Alert) -> None:
        """Deliver the alert, or raise a `SocialError` saying why not."""
        ...


def host_of(url: str) -> str:
    """What may be shown of a webhook URL: its scheme, host and port, nothing else."""
    parts = urlsplit(url)
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{parts.hostname or '?'}{port}"


@dataclass(frozen=True)
class HttpSink:
    """POSTs a JSON body to a webhook URL held as a secret."""

    name: str
    url: SecretStr = field(repr=False)
    rate_per_minute: int | None = 10
    timeout: float = DEFAULT_TIMEOUT

    @property
    def host(self) -> str:
        return host_of(self.url.get_secret_value())

    def body(self, alert: Alert) -> dict[str, Any]:
        return alert.payload()

    def send(self, alert: Alert) -> None:
        url = self.url.get_secret_value()
        request = httpx.Request(
            "POST",
            url,
            content=json.dumps(self.body(alert), ensure_ascii=False).encode("utf-8"),
            headers={"Content-Type": "application/json", "User-Agent": USER_AGENT},
            extensions={"timeout": httpx.Timeout(self.timeout).as_dict()},
        )
        try:
            with httpx.HTTPTransport(retries=0) as transport:
                response = transport.handle_request(request)
                try:
                    response.read()
                finally:
                    response.close()
        except httpx.TimeoutException:
            raise self._error(
                Transient, f"no answer within {self.timeout:g} s (it may have arrived)"
            ) from None
        except httpx.TransportError as error:
            raise self._error(Transient, f"could not be reached ({type(error).__name__})") from None
        if response.is_success:
            return
        said = self._scrub(summarize(response.text))
        status = response.status_code
        if status == 429:
            raise RateLimited(
                f"{self.host} asked to slow down",
                platform=self.name,
                status_code=status,
                detail=said,
                retry_after=_seconds(response.headers.get("Retry-After")),
            )
        kind: type[SocialError] = Transient if status >= 500 else Rejected
        raise self._error(kind, "answered", status_code=status, detail=said)

    def _error(
        self,
        kind: type[SocialError],
        what: str,
        *,
        status_code: int | None = None,
        detail: str = "",
    ) -> SocialError:
        # "webhook: http://127.0.0.1:8977 answered (HTTP 500): ..." (the platform prefix
        # names the sink).
        return kind(
            f"{self.host} {what}",
            platform=self.name,
            status_code=status_code,
            detail=detail,
        )

    def _scrub(self, text: str) -> str:
        """A receiver's answer with the URL (and its path) taken out, should it echo it."""
        url = self.url.get_secret_value()
        path = urlsplit(url).path
        for secret in (url, path if len(path) > 1 else ""):
            if secret:
                text = text.replace(secret, "[redacted]")
        return text


class SlackSink(HttpSink):
    """A Slack incoming webhook: the alert as `{"text": ..., "blocks": [...]}`."""

    def body(self, alert: Alert) -> dict[str, Any]:
        return slack_body(alert)


@dataclass(frozen=True)
class LogSink:
    """No sink configured: the alert is a warning in the sensor's own log (the event log),
    with its title and fields, and counts as delivered there."""

    log: Log
    name: str = LOG_SINK
    rate_per_minute: int | None = None

    def send(self, alert: Alert) -> None:
        fields = json.dumps(alert.fields(), ensure_ascii=False, default=str)
        self.log.warning(f"alert [{alert.severity}] {alert.title}: {fields}")


def _seconds(value: str | None) -> float | None:
    """`Retry-After` in seconds (an HTTP date is taken as no hint: the backoff decides)."""
    try:
        return max(0.0, float(value)) if value else None
    except ValueError:
        return None
