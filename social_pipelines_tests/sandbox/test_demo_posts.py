"""The demo seed payload has the mix the demo campaigns (and the other reply sources) rely on."""

from __future__ import annotations

from social_pipelines.sandbox.demo_posts import demo_posts


def test_demo_posts_mix():
    posts = demo_posts()["posts"]
    assert 45 <= len(posts) <= 50
    assert len({post["key"] for post in posts}) == len(posts)
    assert all(150 <= post["age_minutes"] <= 1400 for post in posts)
    text = [post["text"].lower() for post in posts]
    on_topic = [t for t in text if "dagster" in t or "data pipeline" in t]
    spam = [t for t in text if "giveaway" in t or "crypto" in t]
    assert 30 <= len(on_topic) <= 36
    assert len(spam) == 4
    assert 2 <= sum(post["author"] == "brand" for post in posts) <= 5
    assert len(posts) - len(on_topic) >= 10  # off-topic chatter


def test_demo_posts_feed_the_hashtag_and_mentions_sources():
    posts = demo_posts()["posts"]
    tagged = [post for post in posts if "#dagster" in post["text"].lower()]
    # Answerable ones, the brand's own (skipped) and spam (blocklisted).
    assert sum(post["author"] != "brand" for post in tagged) >= 3
    assert any(post["author"] == "brand" for post in tagged)
    assert any("giveaway" in post["text"].lower() for post in tagged)
    mentions = [post for post in posts if "@brand" in post["text"]]
    assert len(mentions) >= 3 and all(post["author"] != "brand" for post in mentions)
    # One is off-topic, so a mentions campaign's query has something to filter out.
    assert any("dagster" not in post["text"].lower() for post in mentions)
    assert any("dagster" in post["text"].lower() for post in mentions)
