"""The demo seed payload has the mix the demo campaign relies on."""

from __future__ import annotations

from social_pipelines.sandbox.demo_posts import demo_posts


def test_demo_posts_mix():
    posts = demo_posts()["posts"]
    assert 38 <= len(posts) <= 45
    assert len({post["key"] for post in posts}) == len(posts)
    assert all(150 <= post["age_minutes"] <= 1400 for post in posts)
    text = [post["text"].lower() for post in posts]
    on_topic = [t for t in text if "dagster" in t or "data pipeline" in t]
    spam = [t for t in text if "giveaway" in t or "crypto" in t]
    assert 22 <= len(on_topic) <= 30
    assert len(spam) == 3
    assert 2 <= sum(post["author"] == "brand" for post in posts) <= 5
    assert len(posts) - len(on_topic) >= 10  # off-topic chatter
