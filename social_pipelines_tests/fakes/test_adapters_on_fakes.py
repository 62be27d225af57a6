"""The Bluesky and X adapters against the stateful fakes, where one-shot mocks cannot go:
paging through real cursors (search, mentions, own posts), reconciliation deep in an
account's history, and a session the platform expired."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from social_pipelines.models import CreatePost, Delivery, DeliveryKind
from social_pipelines.platforms import bluesky, x
from social_pipelines.platforms.auth import pkce_pair
from social_pipelines.platforms.capabilities import Source
from social_pipelines_tests.doors import RecordingDoor
from social_pipelines_tests.fakes.bluesky import BlueskyFake
from social_pipelines_tests.fakes.x import XFake
from social_pipelines_tests.sessions import MemorySession

NOW = datetime.now(UTC).replace(microsecond=0)  # seeded times are kept to the millisecond
VARIABLES = {"APP_PASSWORD": "abcd-efgh-ijkl-mnop", "X_ID": "cid", "X_SECRET": "csecret"}


@pytest.fixture
def bsky() -> Iterator[tuple[BlueskyFake, bluesky.BlueskyPlatform]]:
    fake = BlueskyFake()
    fake.add_account("acme.bsky.social", app_password=VARIABLES["APP_PASSWORD"])
    account = bluesky.BlueskyAccount(
        name="brand_bsky",
        platform="bluesky",
        handle="acme.bsky.social",
        app_password_env="APP_PASSWORD",
    )
    door = RecordingDoor()
    transport = httpx.MockTransport(fake)
    session = MemorySession(
        bluesky.SPEC.authenticator,  # type: ignore[arg-type]
        account,
        variables=VARIABLES,
        door=door,
        transport=transport,
    )
    with bluesky.connect(
        account, variables=VARIABLES, door=door, timeout=2, transport=transport, session=session
    ) as platform:
        yield fake, platform


def test_bluesky_search_pages_back_to_since_through_cursors(
    bsky: tuple[BlueskyFake, bluesky.BlueskyPlatform],
) -> None:
    fake, platform = bsky
    for minutes in range(1, 261):  # 260 posts, a minute apart, the newest a minute old
        fake.seed_post(
            f"u{minutes}.bsky.social",
            f"dagster #{minutes}",
            created_at=NOW - timedelta(minutes=minutes),
        )
    result = platform.search("dagster", limit=200, since=NOW - timedelta(minutes=150))
    assert result.complete
    assert [p.text for p in result.posts] == [f"dagster #{m}" for m in range(1, 151)]
    assert len({p.id for p in result.posts}) == 150
    searches = [c for c in fake.calls if c.endpoint == "app.bsky.feed.searchPosts"]
    assert len(searches) == 2  # 100 a page (the lexicon's most), and no page past `since`

    limited = platform.search("dagster", limit=30, since=NOW - timedelta(minutes=150))
    assert len(limited.posts) == 30 and not limited.complete


def test_bluesky_finds_a_delivery_deep_in_its_own_records(
    bsky: tuple[BlueskyFake, bluesky.BlueskyPlatform],
) -> None:
    fake, platform = bsky
    planned = NOW - timedelta(minutes=5)
    # Made under another key than the delivery's own (a record from before its plan time
    # was fixed): getRecord misses it, and the account's records are read back to the plan.
    published = platform.create_post(
        CreatePost(text="the one to find", planned_at=planned + timedelta(seconds=2)),
        idempotency_key="d" * 32,
    )
    for index in range(150):  # newer posts of ours push it three pages down
        platform.create_post(
            CreatePost(text=f"later {index}", planned_at=planned + timedelta(seconds=index + 3)),
            idempotency_key=f"{index:032d}",
        )
    found = platform.find_delivery(
        Delivery(
            delivery_id="d" * 32,
            kind=DeliveryKind.PUBLISH,
            subject="p/brand_bsky",
            text="the one to find",
            planned_at=planned,
        )
    )
    assert found is not None and found.remote_id == published.remote_id
    lists = [c for c in fake.calls if c.endpoint == "com.atproto.repo.listRecords"]
    assert len(lists) >= 2  # paged through the newer records


def test_bluesky_refreshes_an_expired_session_once(
    bsky: tuple[BlueskyFake, bluesky.BlueskyPlatform],
) -> None:
    fake, platform = bsky
    platform.whoami()
    fake.expire_access_tokens()
    platform.create_post(CreatePost(text="after expiry", planned_at=NOW), idempotency_key="e" * 32)
    assert (fake.logins, fake.refreshes) == (1, 1)
    assert [r.value["text"] for r in fake.posts_of("acme.bsky.social")] == ["after expiry"]


@pytest.fixture
def xp() -> Iterator[tuple[XFake, x.XPlatform]]:
    fake = XFake(client_id="cid", client_secret="csecret")
    account = x.XAccount(
        name="brand_x", platform="x", client_id_env="X_ID", client_secret_env="X_SECRET"
    )
    door = RecordingDoor()
    transport = httpx.MockTransport(fake)
    session = MemorySession(
        x.AUTHENTICATOR, account, variables=VARIABLES, door=door, transport=transport
    )
    verifier, challenge = pkce_pair()
    code = fake.authorize("acme", redirect_uri="http://127.0.0.1/cb", code_challenge=challenge)
    session.tokens = x.exchange_code(
        account,
        code=code,
        code_verifier=verifier,
        redirect_uri="http://127.0.0.1/cb",
        variables=VARIABLES,
        http=session.http,
    )
    with x.connect(
        account, variables=VARIABLES, door=door, timeout=2, transport=transport, session=session
    ) as platform:
        yield fake, platform


def test_x_mentions_and_search_page_through_their_tokens(
    xp: tuple[XFake, x.XPlatform],
) -> None:
    fake, platform = xp
    for minutes in range(1, 251):
        about = "dagster" if minutes % 2 else "lunch"
        fake.seed_post(
            f"user{minutes}",
            f"@acme {about} {minutes}",
            created_at=NOW - timedelta(minutes=minutes),
        )
    since = NOW - timedelta(minutes=200)
    mentions = platform.search("dagster", limit=200, since=since, source=Source.MENTIONS)
    assert mentions.complete
    assert [p.text for p in mentions.posts] == [f"@acme dagster {m}" for m in range(1, 200, 2)]
    search = platform.search("dagster", limit=200, since=since, source=Source.SEARCH)
    assert [p.id for p in search.posts] == [p.id for p in mentions.posts]
    assert sum(c.endpoint == "mentions" for c in fake.calls) >= 2  # paged


def test_x_finds_a_publish_with_its_link_among_many_own_posts(
    xp: tuple[XFake, x.XPlatform],
) -> None:
    fake, platform = xp
    planned = NOW - timedelta(minutes=10)
    text = "Launch & more: https://example.com/a?b=1&c=2"
    published = platform.create_post(CreatePost(text=text, planned_at=planned), idempotency_key="k")
    for index in range(120):  # newer posts of ours (X takes 100 creates in 15 minutes)
        fake.seed_post("acme", f"later {index}")
    found = platform.find_delivery(
        Delivery(
            delivery_id="k" * 32,
            kind=DeliveryKind.PUBLISH,
            subject="p/brand_x",
            text=text,
            planned_at=planned,
        )
    )
    assert found is not None and found.remote_id == published.remote_id
