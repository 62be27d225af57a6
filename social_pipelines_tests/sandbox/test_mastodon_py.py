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
