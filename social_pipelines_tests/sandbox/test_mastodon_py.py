"""Contract test: the real Mastodon.py client library drives the sandbox."""

from __future__ import annotations

import pytest
from mastodon import Mastodon, MastodonAPIError, MastodonNotFoundError, MastodonRatelimitError

from social_pipelines.sandbox.process import SandboxProcess
from social_pipelines_tests.sandbox.fixtures import png_bytes


def client(sandbox: SandboxProcess, **kwargs) -> Mastodon:
    return Mastodon(access_token=sandbox.token(), api_base_url=sandbox.url, **kwargs)


def test_mastodon_py_round_trip(sandbox: SandboxProcess):
    sandbox.seed(
        [
            {"key": "a", "author": "datadiana", "text": "Is Dagster worth it?", "age_minutes": 300},
            {"key": "b", "author": "etl_ed", "text": "Dagster rocks", "age_minutes": 200},
        ]
    )
    api = client(sandbox)
    me = api.account_verify_credentials()
    assert me.username == "brand" and me.acct == "brand"
    assert api.instance().domain == "sandbox.local"

    found = api.search_v2("dagster", result_type="statuses")
    assert [s.account.acct for s in found.statuses] == ["etl_ed", "datadiana"]
    target = found.statuses[1]

    media = api.media_post(png_bytes(8, 6), mime_type="image/png", description="A chart")
    assert media.type == "image" and media.meta.original.width == 8

    reply = api.status_post(
        "@datadiana yes, it is!",
        in_reply_to_id=target,
        idempotency_key="reply-1",
        media_ids=[media],
    )
    assert str(reply.in_reply_to_id) == str(target.id)
    assert reply.media_attachments[0].id == media.id
    assert reply.mentions[0].acct == "datadiana"
    duplicate = api.status_post(
        "@datadiana yes, it is!", in_reply_to_id=target, idempotency_key="reply-1"
    )
    assert duplicate.id == reply.id

    for n in range(3):
        api.status_post(f"post {n}")
    own = api.account_statuses(me.id, limit=2)
    assert [s.content for s in own] == ["<p>post 2</p>", "<p>post 1</p>"]
    older = api.fetch_next(own)
    assert [s.content for s in older] == ["<p>post 0</p>", reply.content]
    assert api.status(reply.id).id == reply.id
    assert len(sandbox.posted()) == 4

    with pytest.raises(MastodonAPIError) as blank:
        api.status_post("")
    assert blank.value.args[1] == 422
    with pytest.raises(MastodonNotFoundError):
        api.status_post("x", in_reply_to_id=1)


def test_mastodon_py_reads_the_rate_limit_headers(sandbox: SandboxProcess):
    sandbox.set_rate_limit(limit=3, window_seconds=3600)
    api = client(sandbox, ratelimit_method="throw")
    api.account_verify_credentials()
    assert api.ratelimit_limit == 3 and api.ratelimit_remaining == 2
    assert api.ratelimit_reset is not None
    api.account_verify_credentials()
    api.account_verify_credentials()
    with pytest.raises(MastodonRatelimitError):
        api.account_verify_credentials()
    assert sandbox.stats()["violations"] == 1


def test_mastodon_py_reads_a_hashtag_timeline_and_the_mentions(sandbox: SandboxProcess):
    """The two reply sources' endpoints, read and paged through `Link` by the library."""
    ids = sandbox.seed(
        [
            {"author": "datadiana", "text": f"@brand question {n} #Dagster", "age_minutes": 90 - n}
            for n in range(5)
        ]
        + [{"author": "etl_ed", "text": "#dagster and no mention", "age_minutes": 1}]
    )["statuses"]
    api = client(sandbox)

    tagged = api.timeline_hashtag("dagster", limit=4)
    assert [str(s.id) for s in tagged] == [ids[5], ids[4], ids[3], ids[2]]
    assert tagged[0].tags[0].name == "dagster"
    older = api.fetch_next(tagged)
    assert [str(s.id) for s in older] == [ids[1], ids[0]]
    assert api.fetch_next(older) == []  # Mastodon links a next page; it is empty

    mentions = api.notifications(types=["mention"], limit=3)
    assert [n.type for n in mentions] == ["mention"] * 3
    assert [str(n.status.id) for n in mentions] == [ids[4], ids[3], ids[2]]
    assert mentions[0].account.acct == "datadiana"
    rest = api.fetch_next(mentions)
    assert [str(n.status.id) for n in rest] == [ids[1], ids[0]]
    assert api.notifications(exclude_types=["mention"]) == []
