"""A seed payload of realistic posts for the demo (`make run`) and for tests.

Every post is between 150 and 1400 minutes old, so all of them fall before the last complete
two-hour window whenever the demo runs. The mix is deliberate: posts a reply campaign should
answer (questions, complaints, praise about Dagster and data pipelines), the brand's own
posts (never answered), four spam posts with "giveaway" or "crypto" (the demo campaign
blocklists those) and off-topic chatter that search must not return. Some carry the
#dagster hashtag (one of them the brand's own, one spam) and some mention `@brand` (one of
them off-topic), so a hashtag or mentions campaign finds posts too, and has some to skip.
"""

from __future__ import annotations

from typing import Any

# (key, author, age in minutes, text); keys are stable so seeding twice adds nothing.
DEMO_POSTS: tuple[tuple[str, str, int, str], ...] = (
    (
        "demo-01",
        "datadiana",
        1390,
        "Anyone running Dagster in production on Kubernetes? Curious how you size the run workers.",
    ),
    (
        "demo-02",
        "pipeline_pete",
        1350,
        "Our nightly data pipeline failed again at 3am and nobody noticed until the CFO "
        "asked why the dashboard was empty. Alerting is not optional, folks.",
    ),
    (
        "demo-03",
        "mlops_maya",
        1310,
        "Switched our feature backfills to Dagster partitions and the reruns finally make "
        "sense. Asset lineage for the win.",
    ),
    (
        "demo-04",
        "etl_ed",
        1270,
        "Is there a sane way to unit test a data pipeline that talks to three different "
        "SaaS APIs? Mocking everything feels like lying to myself.",
    ),
    (
        "demo-05",
        "sql_sara",
        1230,
        "Hot take: half of every data pipeline is retry logic and the other half is "
        "apologising for the retry logic.",
    ),
    (
        "demo-06",
        "cloudkev",
        1190,
        "Dagster sensors vs schedules: when do you reach for which? Our team keeps "
        "arguing about it.",
    ),
    (
        "demo-07",
        "orchestrator_oli",
        1150,
        "Migrated 40 Airflow DAGs to Dagster this quarter. The asset graph alone saved us "
        "a week of archaeology.",
    ),
    (
        "demo-08",
        "analytics_amy",
        1110,
        "Why does my Dagster run queue stay stuck at 'queued' after a daemon restart? "
        "Anyone seen this?",
    ),
    (
        "demo-09",
        "datadiana",
        1070,
        "Spent the morning untangling a data pipeline where every step writes to the same "
        "temp table. Please don't do this.",
    ),
    (
        "demo-10",
        "pipeline_pete",
        1030,
        "Loving the Dagster UI's run timeline. Finally I can show people where the hour "
        "actually goes.",
    ),
    (
        "demo-11",
        "mlops_maya",
        990,
        "How do you folks handle secrets in a Dagster deployment? Env vars, a vault, "
        "something else?",
    ),
    (
        "demo-12",
        "etl_ed",
        950,
        "Rate limits are the silent killer of every social media data pipeline I have ever built.",
    ),
    (
        "demo-13",
        "sql_sara",
        910,
        "dbt plus Dagster has been a really pleasant combo for us. Models as assets just clicks.",
    ),
    (
        "demo-14",
        "cloudkev",
        870,
        "Our data pipeline costs doubled after someone turned on hourly full refreshes. "
        "Incremental loads, people!",
    ),
    (
        "demo-15",
        "orchestrator_oli",
        830,
        "Question for Dagster users: do you keep one code location per team or one big repo?",
    ),
    (
        "demo-16",
        "analytics_amy",
        790,
        "The Dagster docs on partitions could use more examples with time zones. Took me "
        "ages to get daily partitions right in Tokyo.",
    ),
    (
        "demo-17",
        "datadiana",
        750,
        "Every data pipeline eventually grows a 'just rerun it' button. Make it idempotent "
        "before you need it.",
    ),
    (
        "demo-18",
        "pipeline_pete",
        710,
        "Dagster's retry policies with jitter saved us from hammering a flaky vendor API. "
        "Small thing, big difference.",
    ),
    (
        "demo-19",
        "mlops_maya",
        670,
        "Is anyone else seeing slow startup for Dagster code locations with lots of "
        "assets? Ours takes almost a minute.",
    ),
    (
        "demo-20",
        "etl_ed",
        630,
        "Built a tiny data pipeline that posts our release notes everywhere. Of course it "
        "double posted on day one.",
    ),
    (
        "demo-21",
        "sql_sara",
        590,
        "Can Dagster backfill a single partition range without touching downstream assets? "
        "Asking for a tired friend.",
    ),
    (
        "demo-22",
        "cloudkev",
        550,
        "Dagster on ECS with run retries enabled has been boringly reliable for months. "
        "Boring is the goal.",
    ),
    (
        "demo-23",
        "brand",
        1380,
        "New on the blog: five patterns for idempotent data pipeline steps, with Dagster examples.",
    ),
    (
        "demo-24",
        "brand",
        900,
        "We're hosting office hours on Dagster asset checks this Thursday. Bring your "
        "weirdest data quality questions!",
    ),
    (
        "demo-25",
        "brand",
        400,
        "Release 2.4 is out: faster sensors, better backfill previews and a calmer data "
        "pipeline dashboard.",
    ),
    (
        "demo-26",
        "orchestrator_oli",
        510,
        "GIVEAWAY: retweet and follow to win a free Dagster hoodie and 1000 crypto "
        "tokens!!! Link in bio",
    ),
    (
        "demo-27",
        "analytics_amy",
        470,
        "Turn your data pipeline into passive income with this one crypto trick. DM me "
        "for the whitepaper.",
    ),
    (
        "demo-28",
        "etl_ed",
        430,
        "Massive giveaway for every Dagster developer who clicks the link below. Limited "
        "time only!",
    ),
    (
        "demo-29",
        "datadiana",
        1330,
        "Finally finished the sourdough starter. Day 6 and it smells like a bakery.",
    ),
    (
        "demo-30",
        "pipeline_pete",
        1210,
        "Trail run in the rain this morning. Shoes are destroyed, mood is excellent.",
    ),
    (
        "demo-31",
        "mlops_maya",
        1090,
        "Reading recommendations for a long flight? Fiction please, I've had enough whitepapers.",
    ),
    (
        "demo-32",
        "etl_ed",
        970,
        "The office coffee machine has been 'under maintenance' for three weeks. I have questions.",
    ),
    (
        "demo-33",
        "sql_sara",
        850,
        "My cat learned to open the pantry door. We are no longer "
        "the smartest beings in this flat.",
    ),
    (
        "demo-34",
        "cloudkev",
        730,
        "Hiking photos from the weekend: the fog lifted right at the summit.",
    ),
    (
        "demo-35",
        "orchestrator_oli",
        610,
        "Band practice tonight. We are still terrible, but louder now.",
    ),
    (
        "demo-36",
        "analytics_amy",
        490,
        "Made ramen from scratch. It took nine hours and was gone in nine minutes.",
    ),
    ("demo-37", "datadiana", 370, "Conference talk accepted! Now I just need to write it."),
    (
        "demo-38",
        "pipeline_pete",
        290,
        "Plant update: the monstera has a new leaf and I am unreasonably proud.",
    ),
    (
        "demo-39",
        "mlops_maya",
        230,
        "Public service announcement: back up your laptop. Ask me how I know.",
    ),
    (
        "demo-40",
        "cloudkev",
        170,
        "Finished a 1000-piece puzzle. Three pieces missing. The dog looks guilty.",
    ),
    # For the other reply sources: the #dagster timeline (which full-text search on a real
    # server may not cover) and mentions of the brand account.
    (
        "demo-42",
        "sql_sara",
        660,
        "How do you test #dagster sensors locally without waiting for the daemon tick?",
    ),
    (
        "demo-43",
        "cloudkev",
        580,
        "Three months on #Dagster and our on-call pages dropped by half. Not a sponsored post.",
    ),
    (
        "demo-44",
        "mlops_maya",
        540,
        "@brand is there a recording of last week's office hours? I missed the live session.",
    ),
    (
        "demo-45",
        "analytics_amy",
        450,
        "@brand your data pipeline templates saved my week, thank you!",
    ),
    (
        "demo-46",
        "etl_ed",
        410,
        "@brand does the Dagster integration handle incremental dbt models yet?",
    ),
    (
        "demo-47",
        "orchestrator_oli",
        390,
        "#dagster GIVEAWAY: free crypto for everyone who follows and reposts!",
    ),
    (
        "demo-48",
        "brand",
        360,
        "Office hours recap is on the blog, with the asset checks demo. #dagster",
    ),
)

# A reply inside the seeded data, so threads exist before the pipeline posts anything.
DEMO_REPLIES: tuple[tuple[str, str, int, str, str], ...] = (
    (
        "demo-41",
        "etl_ed",
        1100,
        "demo-08",
        "@analytics_amy we had that when the daemon heartbeat was stale. Restarting the "
        "daemon twice fixed it, which is not an answer but it worked.",
    ),
)


def demo_posts() -> dict[str, Any]:
    """The payload for `POST /_sandbox/seed` (or `SandboxProcess.seed(...)["posts"]`)."""
    posts: list[dict[str, Any]] = [
        {"key": key, "author": author, "age_minutes": age, "text": text, "language": "en"}
        for key, author, age, text in DEMO_POSTS
    ]
    posts.extend(
        {
            "key": key,
            "author": author,
            "age_minutes": age,
            "text": text,
            "language": "en",
            "in_reply_to_key": parent,
        }
        for key, author, age, parent, text in DEMO_REPLIES
    )
    return {"posts": posts}
