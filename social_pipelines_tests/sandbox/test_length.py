"""Status length through the API: Mastodon counts grapheme clusters, not code points."""

from __future__ import annotations

import pytest

from social_pipelines.platforms.mastodon import MastodonPlatform
from social_pipelines.sandbox.process import SandboxProcess
from social_pipelines_tests.clusters import CLUSTERS
from social_pipelines_tests.doors import RecordingDoor

TOO_LONG = "Validation failed: Text character limit of {limit} exceeded"


@pytest.mark.parametrize("cluster", CLUSTERS.values(), ids=CLUSTERS.keys())
def test_exactly_the_limit_in_clusters_is_accepted_one_more_refused(
    sandbox: SandboxProcess, cluster: str
):
    limit = sandbox.max_characters
    with sandbox.client() as client:
        exact = client.post("/api/v1/statuses", data={"status": cluster * limit})
        assert exact.status_code == 200, exact.text
        over = client.post("/api/v1/statuses", data={"status": cluster * (limit + 1)})
        assert over.status_code == 422
        assert over.json() == {"error": TOO_LONG.format(limit=limit)}
    assert [post["text"] for post in sandbox.posted()] == [cluster * limit]


def test_spoiler_and_text_share_the_limit_in_clusters(sandbox: SandboxProcess):
    limit = sandbox.max_characters
    family = CLUSTERS["zwj-family"]
    half = limit // 2
    with sandbox.client() as client:
        exact = client.post(
            "/api/v1/statuses",
            json={"status": family * (limit - half), "spoiler_text": family * half},
        )
        assert exact.status_code == 200, exact.text
        assert exact.json()["spoiler_text"] == family * half
        over = client.post(
            "/api/v1/statuses",
            json={"status": family * (limit - half), "spoiler_text": family * (half + 1)},
        )
        assert over.status_code == 422
        assert over.json() == {"error": TOO_LONG.format(limit=limit)}
    assert len(sandbox.posted()) == 1


@pytest.mark.parametrize("cluster", CLUSTERS.values(), ids=CLUSTERS.keys())
def test_the_adapter_counts_as_the_sandbox_does(sandbox: SandboxProcess, cluster: str):
    """The core's length (the reply template fits text with it) and the sandbox's verdict
    agree on clusters beside a URL and a remote mention."""
    with MastodonPlatform(
        sandbox.url, sandbox.token(), door=RecordingDoor(), timeout=5
    ) as platform:
        limits = platform.content_rules()
        limit = limits.max_characters
        lead = f"@datadiana@other.example see https://example.com/{'a' * 80} "
        text = lead + cluster * (limit - platform.text_length(lead, limits))
        assert platform.text_length(text, limits) == limit
        assert platform.text_length(text + cluster, limits) == limit + 1
    with sandbox.client() as client:
        assert client.post("/api/v1/statuses", data={"status": text}).status_code == 200
        over = client.post("/api/v1/statuses", data={"status": text + cluster})
        assert over.status_code == 422
