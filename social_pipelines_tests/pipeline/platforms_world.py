"""One brand on three platforms, for the pipeline tests: a Mastodon account on the real
sandbox (loopback), a Bluesky account and an X account on the stateful fakes
(`social_pipelines_tests/fakes`), mocked with respx by host (the sandbox passes through).

Everything is configured the way a deployment is: the settings come from the environment
(`SOCIAL_*`, `DAGSTER_HOME`), credentials from the variables the accounts file names, the
X tokens from `accounts connect` (its own PKCE flow, the browser played by a GET of the
loopback redirect), Bluesky's session from its app password at the first call.
"""

from __future__ import annotations

import contextlib
import io
import json
import random
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlparse

import httpx
import pytest
import respx
from dagster import DagsterInstance, ExecuteInProcessResult
from PIL import Image

from social_pipelines.accounts_cli import connect_in_browser
from social_pipelines.definitions import build_definitions
from social_pipelines.partitions import last_complete_window, reply_windows
from social_pipelines.platforms.catalog import SPECS
from social_pipelines.sandbox.accounts import TOKEN_PREFIX
from social_pipelines.sandbox.process import SandboxProcess
from social_pipelines.settings import Settings
from social_pipelines.wiring import Wiring, wire_settings
from social_pipelines_tests.fakes.bluesky import BlueskyFake
from social_pipelines_tests.fakes.x import XFake

BRAND_BSKY = "acme.bsky.social"
BRAND_X = "acme_data"
ACCOUNTS = """
[accounts.brand]
platform = "mastodon"
instance_url = "${SOCIAL_SANDBOX_URL}"
token_env = "SOCIAL_SANDBOX_TOKEN"

[accounts.brand_bsky]
platform = "bluesky"
handle = "acme.bsky.social"
app_password_env = "BRAND_BSKY_APP_PASSWORD"

[accounts.brand_x]
platform = "x"
client_id_env = "BRAND_X_CLIENT_ID"
client_secret_env = "BRAND_X_CLIENT_SECRET"
"""
CAMPAIGNS = """
[[campaigns]]
name = "mastodon_dagster"
account = "brand"
query = "dagster"
template = "Hi @{author}, thanks for talking about Dagster!"

[[campaigns]]
name = "bluesky_dagster"
account = "brand_bsky"
query = "dagster"
template = "Hi @{author}, thanks for talking about Dagster!"

[[campaigns]]
name = "x_dagster"
account = "brand_x"
query = "dagster"
template = "Hi @{author}, thanks for the mention!"
"""
# Reconciliation waits this long after an unknown outcome (the platforms' default is 5 s).
SETTLE = 0.2


@dataclass(frozen=True)
class Credentials:
    """What the environment holds for the three accounts and the state store."""

    mastodon_token: str = "sandbox-token-brand"
    bluesky_app_password: str = "abcd-efgh-ijkl-mnop"
    x_client_id: str = "x-client-id-acme"
    x_client_secret: str = "x-client-secret-acme"
    x_access_token: str | None = None
    x_refresh_token: str | None = None
    secret_key: str | None = None
    llm_api_key: str | None = None


@dataclass
class World:
    sandbox: SandboxProcess
    bluesky: BlueskyFake
    x: XFake
    settings: Settings
    directory: Path
    credentials: Credentials
    router: respx.MockRouter
    seeded: dict[str, list[str]] = field(default_factory=dict)

    @property
    def wiring(self) -> Wiring:
        return wire_settings(self.settings)

    def run(
        self,
        instance: DagsterInstance,
        job: str,
        *,
        ops: dict[str, dict] | None = None,
        partition_key: str | None = None,
        raise_on_error: bool = True,
    ) -> ExecuteInProcessResult:
        definitions = build_definitions(self.settings)
        return definitions.get_job_def(job).execute_in_process(
            instance=instance,
            run_config={"ops": ops} if ops else None,
            partition_key=partition_key,
            raise_on_error=raise_on_error,
        )

    def reply(
        self, instance: DagsterInstance, *, raise_on_error: bool = True, **config: object
    ) -> ExecuteInProcessResult:
        return self.run(
            instance,
            "reply_job",
            ops={"plan_campaigns": {"config": config}},
            partition_key=last_complete_window(),
            raise_on_error=raise_on_error,
        )

    def publish(
        self, instance: DagsterInstance, *, raise_on_error: bool = True, **config: object
    ) -> ExecuteInProcessResult:
        return self.run(
            instance,
            "publish_job",
            ops={"plan_publishes": {"config": config}},
            raise_on_error=raise_on_error,
        )


def window_end() -> datetime:
    key = last_complete_window()
    assert key is not None
    return reply_windows.time_window_for_partition_key(key).end.astimezone(UTC)


def photo(path: Path, *, size: tuple[int, int] = (1800, 1200)) -> Path:
    """A photo too big for Bluesky as it is (noise compresses badly): each platform gets
    its own rendering."""
    rng = random.Random(7)
    image = Image.new("RGB", size, (30, 90, 160))
    half = (size[0] // 2, size[1])
    noise = Image.frombytes("RGB", half, rng.randbytes(half[0] * half[1] * 3))
    image.paste(noise, (0, 0))
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=95)
    path.write_bytes(buffer.getvalue())
    return path


def sandbox_posts(end: datetime, own: str = "brand") -> dict:
    """Mastodon posts for the reply campaign: two to answer, one of ours, one off-topic."""
    now = datetime.now(UTC)

    def age(hours: float) -> float:
        return ((now - end).total_seconds() / 60) + hours * 60

    return {
        "posts": [
            {"key": "m1", "author": "datadiana", "age_minutes": age(3), "text": "Dagster k8s?"},
            {"key": "m2", "author": "etl_ed", "age_minutes": age(2), "text": "Dagster rocks"},
            {"key": "m3", "author": own, "age_minutes": age(1), "text": "Dagster tips"},
            {"key": "m4", "author": "sql_sara", "age_minutes": age(1), "text": "Lunch was great"},
        ]
    }


def seed_bluesky(fake: BlueskyFake, end: datetime) -> list[str]:
    """Two posts about Dagster to answer, one of the brand's own, one off-topic; the URIs
    of the two."""
    fake.add_account(BRAND_BSKY)
    first = fake.seed_post(
        "dana.bsky.social", "Is Dagster good for dbt?", created_at=end - timedelta(hours=3)
    )
    second = fake.seed_post(
        "eve.bsky.social", "Loving dagster asset checks", created_at=end - timedelta(hours=2)
    )
    fake.seed_post(BRAND_BSKY, "Dagster office hours today", created_at=end - timedelta(hours=1))
    fake.seed_post("fin.bsky.social", "Coffee time", created_at=end - timedelta(hours=1))
    # Written after the window: the next window's.
    fake.seed_post("gus.bsky.social", "dagster later", created_at=end + timedelta(minutes=1))
    return [first.uri, second.uri]


def seed_x(fake: XFake, end: datetime) -> list[str]:
    """Mentions of the brand about Dagster (the default source reads mentions), one that is
    not about Dagster, and a post about Dagster that does not mention the brand (only a
    search would find it, and the reply restriction would refuse an answer)."""
    fake.add_user(BRAND_X)
    first = fake.seed_post(
        "dana_x", f"@{BRAND_X} does Dagster run on ECS?", created_at=end - timedelta(hours=3)
    )
    second = fake.seed_post(
        "eve_x", f"dagster + @{BRAND_X} = happy on-call", created_at=end - timedelta(hours=2)
    )
    fake.seed_post("fin_x", f"@{BRAND_X} what time is it", created_at=end - timedelta(hours=2))
    fake.seed_post("gus_x", "dagster is trending", created_at=end - timedelta(hours=1))
    return [first.id, second.id]


def browser(fake: XFake, username: str, credentials: Credentials) -> Callable[[str], None]:
    """A person consenting at X's page: the fake hands out a code for the redirect, which
    the browser follows to the loopback server `accounts connect` runs."""

    def open_url(url: str) -> None:
        query = {k: v[0] for k, v in parse_qs(urlparse(url).query).items()}
        assert query["client_id"] == credentials.x_client_id
        code = fake.authorize(
            username,
            redirect_uri=query["redirect_uri"],
            code_challenge=query["code_challenge"],
            scope=query["scope"],
            access_token=credentials.x_access_token,
            refresh_token=credentials.x_refresh_token,
        )
        redirect = f"{query['redirect_uri']}?{urlencode({'code': code, 'state': query['state']})}"
        with contextlib.closing(urllib.request.urlopen(redirect, timeout=10)) as answer:
            answer.read()

    return open_url


def set_environment(
    monkeypatch: pytest.MonkeyPatch,
    directory: Path,
    sandbox: SandboxProcess,
    credentials: Credentials,
    *,
    accounts: str = ACCOUNTS,
    campaigns: str = CAMPAIGNS,
    extra: dict[str, str] | None = None,
) -> Settings:
    """The environment a deployment would export, and the settings read from it."""
    accounts_file = directory / "accounts.toml"
    campaigns_file = directory / "campaigns.toml"
    accounts_file.write_text(accounts, encoding="utf-8")
    campaigns_file.write_text(campaigns, encoding="utf-8")
    policies = {
        name: {"reconcile_settle_seconds": SETTLE, "op_retry_delay": 0}
        for name in ("mastodon", "bluesky", "x")
        if name in SPECS
    }
    variables = {
        "DAGSTER_HOME": str(directory),
        "SOCIAL_SANDBOX_URL": sandbox.url,
        "SOCIAL_DATABASE_URL": f"sqlite:///{directory / 'state.db'}",
        "SOCIAL_ACCOUNTS_FILE": str(accounts_file),
        "SOCIAL_CAMPAIGNS_FILE": str(campaigns_file),
        "SOCIAL_POLICIES": json.dumps(policies),
        "SOCIAL_SANDBOX_TOKEN": credentials.mastodon_token,
        "BRAND_BSKY_APP_PASSWORD": credentials.bluesky_app_password,
        "BRAND_X_CLIENT_ID": credentials.x_client_id,
        "BRAND_X_CLIENT_SECRET": credentials.x_client_secret,
        **(extra or {}),
    }
    if credentials.secret_key:
        variables["SOCIAL_SECRET_KEY"] = credentials.secret_key
    for name, value in variables.items():
        monkeypatch.setenv(name, value)
    return Settings(_env_file=None)


@contextlib.contextmanager
def world(
    monkeypatch: pytest.MonkeyPatch,
    directory: Path,
    sandbox: SandboxProcess,
    credentials: Credentials = Credentials(),
    *,
    accounts: str = ACCOUNTS,
    campaigns: str = CAMPAIGNS,
    extra_env: dict[str, str] | None = None,
    routes: dict[str, Callable[[httpx.Request], httpx.Response]] | None = None,
    access_lifetime: timedelta | None = None,
) -> Iterator[World]:
    """The three accounts, their posts seeded, X connected; respx on for the fakes (and
    `routes`, more hosts to mock). `access_lifetime` shortens both fakes' access tokens."""
    end = window_end()
    sandbox.reset()
    username = credentials.mastodon_token.removeprefix(TOKEN_PREFIX)
    if username != "brand":
        sandbox.create_account(username)
    seeded = {"mastodon": sandbox.seed(sandbox_posts(end, username))["statuses"][:2]}
    lifetimes = {"access_lifetime": access_lifetime} if access_lifetime else {}
    bluesky = BlueskyFake(**lifetimes)
    x = XFake(
        client_id=credentials.x_client_id, client_secret=credentials.x_client_secret, **lifetimes
    )
    seeded["bluesky"] = seed_bluesky(bluesky, end)
    bluesky.actor(BRAND_BSKY).app_password = credentials.bluesky_app_password
    seeded["x"] = seed_x(x, end)
    settings = set_environment(
        monkeypatch,
        directory,
        sandbox,
        credentials,
        accounts=accounts,
        campaigns=campaigns,
        extra=extra_env,
    )
    with respx.mock(assert_all_called=False, assert_all_mocked=True) as router:
        for host in bluesky.hosts:
            router.route(host=host).mock(side_effect=bluesky)
        for host in x.hosts:
            router.route(host=host).mock(side_effect=x)
        for host, side_effect in (routes or {}).items():
            router.route(host=host).mock(side_effect=side_effect)
        router.route(host="127.0.0.1").pass_through()
        wiring = wire_settings(settings)
        connect_in_browser(
            wiring,
            wiring.accounts().get("brand_x"),
            port=0,
            timeout=10,
            open_url=browser(x, BRAND_X, credentials),
        )
        yield World(sandbox, bluesky, x, settings, directory, credentials, router, seeded)
