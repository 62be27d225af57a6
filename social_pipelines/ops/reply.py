"""The reply job's ops: plan -> search -> select -> write -> post, per campaign, -> summary.

Each op is a thin shell over the plain-Python layers; it adds what Dagster is for: typed
config in the launchpad, fan-out per campaign (one failing account never blocks the
others), retries, and metadata that shows what happened.
"""

from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime

from dagster import (
    Backoff,
    Config,
    DynamicOut,
    DynamicOutput,
    Failure,
    Jitter,
    MetadataValue,
    OpExecutionContext,
    RetryPolicy,
    op,
)
from pydantic import Field

from social_pipelines.campaigns import CampaignBook, CampaignProblem, source_of
from social_pipelines.delivery import NEW, Deliverer, DeliveryResult, Outcome
from social_pipelines.errors import ConfigError
from social_pipelines.models import DeliveryKind, Draft, SearchResult, delivery_id
from social_pipelines.ops.settle import (
    config_failure,
    platform_errors,
    retried_unless_interrupted,
    settle_or_retry,
)
from social_pipelines.partitions import last_complete_window, reply_windows
from social_pipelines.platforms.capabilities import Source
from social_pipelines.platforms.mastodon import NAME as MASTODON
from social_pipelines.replies.selection import age_cutoff, choose_posts
from social_pipelines.replies.steps import (
    CampaignPlan,
    CampaignReport,
    Drafted,
    Found,
    PostedReply,
    Selected,
)
from social_pipelines.resources import (
    PlatformsResource,
    ReplyWriterResource,
    StateStoreResource,
)
from social_pipelines.runnable import held_accounts

# For failures nothing else caught (a bug, a lost database connection), by the op itself
# (`retried_unless_interrupted`: never an interrupt). Known platform outcomes are retried
# per platform by `settle_or_retry`.
POSTING_RETRY = RetryPolicy(
    max_retries=3, delay=10, backoff=Backoff.EXPONENTIAL, jitter=Jitter.PLUS_MINUS
)


# How many refused campaign entries a failure's description lists (metadata holds 100).
REFUSALS_SHOWN = 20


class ReplyRunConfig(Config):
    """What a run may change; empty fields keep each campaign's own settings."""

    campaigns: list[str] = Field(
        default_factory=list, description="Only these campaigns (default: every enabled one)."
    )
    query: str | None = Field(default=None, description="Search this instead of each query.")
    max_replies: int | None = Field(
        default=None, ge=0, le=100, description="At most this many replies per campaign."
    )
    dry_run: bool = Field(default=False, description="Post nothing; say what would be posted.")


def _window(context: OpExecutionContext) -> tuple[datetime, datetime]:
    if context.has_partition_key:
        window = context.partition_time_window
    else:
        key = last_complete_window()
        if key is None:
            raise Failure("no reply window has ended yet (windows start 2026-01-01)")
        window = reply_windows.time_window_for_partition_key(key)
    return window.start.astimezone(UTC), window.end.astimezone(UTC)


@op(out=DynamicOut(CampaignPlan), tags={"kind": "plan"})
def plan_campaigns(
    context: OpExecutionContext, config: ReplyRunConfig, platforms: PlatformsResource
) -> Iterator[DynamicOutput[CampaignPlan]]:
    """Fan out one branch per campaign of this window.

    Campaign entries the file refused are never dropped in silence: with good ones beside
    them, the good ones run and every output's metadata names the refused; when nothing is
    left to run, the step fails (without retries: a person must fix the file) naming each.
    """
    try:
        book = platforms.campaigns()
        campaigns = book.enabled(config.campaigns or None)
    except ConfigError as error:
        # An unreadable file, a bad account, an unknown campaign asked for by name.
        raise config_failure(error) from None
    refused = book.problems
    for problem in refused:
        context.log.warning(f"skipped campaign: {problem}")
    held = held_accounts(platforms.wiring())
    for campaign in [c for c in campaigns if c.account in held]:
        # Answered later: the next window looks back max_age_hours once it is accepted.
        context.log.warning(f"skipped campaign {campaign.name}: {held[campaign.account]}")
    campaigns = [c for c in campaigns if c.account not in held]
    start, end = _window(context)
    if refused and not campaigns:
        raise Failure(
            description=_nothing_to_run(book),
            metadata=_refusal_metadata(refused),
            allow_retries=False,
        )
    context.log.info(
        f"window {start:%Y-%m-%d %H:%M}-{end:%H:%M} UTC: {len(campaigns)} campaign(s)"
        + (" (dry run)" if config.dry_run else "")
        + (f"; {len(refused)} refused and skipped" if refused else "")
    )
    metadata = _refusal_metadata(refused) if refused else {}
    if held:
        metadata["held_accounts"] = MetadataValue.json(held)
    for campaign in campaigns:
        overrides: dict[str, object] = {}
        if config.query:
            overrides["query"] = config.query
        if config.max_replies is not None:
            overrides["max_replies"] = config.max_replies
        yield DynamicOutput(
            CampaignPlan(
                campaign=campaign.model_copy(update=overrides),
                window_start=start,
                window_end=end,
                dry_run=config.dry_run,
            ),
            mapping_key=campaign.name,
            metadata=metadata,
        )


def _nothing_to_run(book: CampaignBook) -> str:
    refused = book.problems
    if book.campaigns:
        head = (
            f"no campaign to run: the valid ones in {book.path} are all disabled, "
            f"and {len(refused)} refused:"
        )
    else:
        head = f"every campaign in {book.path} was refused ({len(refused)}); nothing to run:"
    lines = [head, *(f"- {problem}" for problem in refused[:REFUSALS_SHOWN])]
    if len(refused) > REFUSALS_SHOWN:
        lines.append(f"(and {len(refused) - REFUSALS_SHOWN} more in the metadata)")
    return "\n".join(lines)


def _refusal_metadata(refused: list[CampaignProblem]) -> dict[str, MetadataValue]:
    return {
        "refused_campaigns": MetadataValue.int(len(refused)),
        "refused": MetadataValue.json([problem.as_metadata() for problem in refused[:100]]),
    }


@op
@retried_unless_interrupted(POSTING_RETRY)
def search_posts(
    context: OpExecutionContext, plan: CampaignPlan, platforms: PlatformsResource
) -> Found:
    """Read the campaign's source back to the oldest post it may answer, up to the end of
    the window (later posts are the next window's, and must not use up `search_limit`);
    say so when a limit stopped the search first, or when it found nothing.

    The age cutoff counts from now: a window replayed long after it ended (a backfill)
    loses the part of it written before the cutoff, and one that ended before the cutoff
    is not searched at all. Either is a limit that stopped work, said in the log and the
    metadata (`age_cutoff`, `window_past_age_cutoff`), never left to look like a quiet
    window."""
    campaign = plan.campaign
    account = platforms.account(campaign.account)
    source = source_of(campaign, account.platform)
    cutoff = age_cutoff(
        campaign, window_start=plan.window_start, window_end=plan.window_end, now=datetime.now(UTC)
    )
    since = cutoff.oldest
    with (
        platform_errors(context, platforms.policy(account)),
        platforms.connect(account, log=context.log) as platform,
    ):
        identity = platform.whoami()
        result = (
            SearchResult(posts=[])
            if cutoff.whole_window
            else platform.search(
                campaign.query,
                limit=campaign.search_limit,
                since=since,
                until=plan.window_end,
                source=source,
            )
        )
    if cut := cutoff.warning(campaign.name):
        context.log.warning(cut)
    # A window past the cutoff was not searched: the cutoff's warning is all there is.
    if not cutoff.whole_window and (
        short := _search_warning(
            plan, result, since=since, source=source, platform=account.platform
        )
    ):
        context.log.warning(short)
    context.add_output_metadata(
        {
            "source": str(source),
            "query": campaign.query,
            "found": len(result.posts),
            "searched_back_to": "not searched: the window is past the age cutoff"
            if cutoff.whole_window
            else f"{since:%Y-%m-%d %H:%M:%S} UTC",
            "searched_up_to": f"{plan.window_end:%Y-%m-%d %H:%M:%S} UTC",
            "age_cutoff": f"{cutoff.oldest:%Y-%m-%d %H:%M:%S} UTC",
            "window_past_age_cutoff": cutoff.extent,
            "window_minutes_past_age_cutoff": round(cutoff.cut.total_seconds() / 60),
            "pages": result.pages,
            "own_posts_skipped": result.own_skipped,
            "search_complete": result.complete,
            "search_stopped_by": result.stopped_by or "nothing",
            "not_examined": result.not_examined,
            "more_beyond": result.more_beyond,
        }
    )
    return Found(plan=plan, identity=identity, posts=result.posts, search=result)


def _search_warning(
    plan: CampaignPlan, result: SearchResult, *, since: datetime, source: Source, platform: str
) -> str | None:
    """What the log says when a limit stopped the search early, or it found nothing."""
    campaign = plan.campaign
    what = _searched(source, campaign.query)
    if not result.complete:
        return (
            f"{campaign.name}: {what} stopped at {result.stopped_by} "
            f"before reaching {since:%Y-%m-%d %H:%M} UTC: {result.not_examined} match(es) "
            "already fetched were not examined"
            + (", and the platform has more" if result.more_beyond else "")
            + "; raise search_limit or narrow the query"
        )
    if not result.posts:
        return (
            f"{campaign.name}: {what} found no posts of other accounts "
            f"from {since:%Y-%m-%d %H:%M} to {plan.window_end:%Y-%m-%d %H:%M} UTC "
            f"({result.own_skipped} of our own)"
            + (
                "; on Mastodon, full-text search needs the server's Elasticsearch and "
                "covers only posts whose authors opted in: a hashtag timeline "
                '(source = "hashtag") or the mentions (source = "mentions") are dependable'
                if source == Source.SEARCH and platform == MASTODON
                else ""
            )
        )
    return None


def _searched(source: Source, query: str) -> str:
    """What was read, for a warning: the search, the tag timeline or the mentions."""
    if source == Source.HASHTAG:
        return f"the #{query.strip().removeprefix('#')} timeline"
    if source == Source.MENTIONS:
        return f"mentions matching {query!r}"
    return f"search for {query!r}"


@op
def select_candidates(
    context: OpExecutionContext, found: Found, state_store: StateStoreResource
) -> Selected:
    plan, identity = found.plan, found.identity
    states = state_store.open().ledger.states_of_subjects(
        identity.platform,
        identity.stable_key,
        str(DeliveryKind.REPLY),
        [post.id for post in found.posts],
    )
    selection = choose_posts(
        found.posts,
        campaign=plan.campaign,
        identity=identity,
        ledger_states=states,
        window_end=plan.window_end,
        now=datetime.now(UTC),
        max_replies=plan.campaign.max_replies,
    )
    left = selection.skipped.get("over_max_replies", 0)
    if left:
        context.log.warning(
            f"{plan.campaign.name}: {left} post(s) worth answering left over by max_replies="
            f"{plan.campaign.max_replies}; the next window finds them again while they are "
            f"younger than {plan.campaign.max_age_hours:g} h"
        )
    context.add_output_metadata(
        {
            "candidates": len(selection.candidates),
            **{f"skipped_{reason}": n for reason, n in selection.skipped.items()},
        }
    )
    return Selected(
        plan=plan,
        identity=identity,
        candidates=selection.candidates,
        skipped=dict(selection.skipped),
        found=len(found.posts),
    )


@op
def write_replies(
    context: OpExecutionContext,
    selected: Selected,
    platforms: PlatformsResource,
    reply_writer: ReplyWriterResource,
) -> Drafted:
    """Each reply written once per delivery (a retry reuses the stored draft), by the
    campaign's writer; the metadata says who wrote what, and why the template stood in."""
    plan, identity = selected.plan, selected.identity
    campaign = plan.campaign
    account = platforms.account(campaign.account)
    with (
        platform_errors(context, platforms.policy(account)),
        platforms.connect(account, log=context.log) as platform,
        reply_writer.drafter(platforms, platform, log=context.log) as drafter,
    ):
        ids = {
            post.id: delivery_id(
                identity.platform, identity.stable_key, DeliveryKind.REPLY, post.id
            )
            for post in selected.candidates
        }
        report = drafter.write(
            campaign,
            [(ids[post.id], post) for post in selected.candidates],
            max_length=platform.content_rules().max_characters,
            dry_run=plan.dry_run,
        )
    drafts = [
        Draft(
            delivery_id=stored.delivery_id,
            campaign=campaign.name,
            account=campaign.account,
            platform=identity.platform,
            account_key=identity.stable_key,
            kind=DeliveryKind.REPLY,
            subject=post.id,
            text=stored.text,
            in_reply_to=post,
        )
        for post, stored in zip(selected.candidates, report.drafts, strict=True)
    ]
    context.log.info(f"{campaign.name}: {len(drafts)} draft(s), writer: {report.writer}")
    context.add_output_metadata(
        {
            "drafts": len(drafts),
            "writer": report.writer,
            **{f"drafts_{name}": n for name, n in sorted(report.counts.items())},
            **(
                {"llm_fallback_reasons": MetadataValue.json(report.fallback_reasons)}
                if report.fallback_reasons
                else {}
            ),
        }
    )
    return Drafted(plan=plan, drafts=drafts, skipped=selected.skipped, found=selected.found)


@op(tags={"kind": "post"})
@retried_unless_interrupted(POSTING_RETRY)
def post_replies(
    context: OpExecutionContext,
    drafted: Drafted,
    platforms: PlatformsResource,
    state_store: StateStoreResource,
) -> CampaignReport:
    """Send each draft through the ledger: a post is answered at most once, ever."""
    plan = drafted.plan
    account = platforms.account(plan.campaign.account)
    if plan.dry_run:
        replies = [_dry_run(context, draft) for draft in drafted.drafts]
    else:
        with (
            platforms.connect(account, log=context.log) as platform,
            platforms.deliverer(
                account, platform, run_id=context.run_id, log=context.log
            ) as deliverer,
        ):
            replies = [_post(context, deliverer, draft) for draft in drafted.drafts]
    report = CampaignReport(
        campaign=plan.campaign.name,
        account=plan.campaign.account,
        dry_run=plan.dry_run,
        found=drafted.found,
        replies=replies,
        skipped=drafted.skipped,
    )
    deliveries = report.deliveries
    deferred = deliveries.deferred_until
    context.add_output_metadata(
        {
            **{f"replies_{outcome}": n for outcome, n in deliveries.outcomes().items()},
            "already_answered": report.already_answered,
            **({"deferred_until": f"{deferred:%Y-%m-%d %H:%M:%S} UTC"} if deferred else {}),
            **{
                f"reply_{index}": MetadataValue.url(reply.url)
                for index, reply in enumerate(replies, 1)
                if reply.url
            },
        }
    )
    settle_or_retry(context, deliveries, platforms.policy(account), what=plan.campaign.name)
    return report


def _target(draft: Draft) -> str:
    return draft.in_reply_to.url if draft.in_reply_to else draft.subject


def _dry_run(context: OpExecutionContext, draft: Draft) -> PostedReply:
    context.log.info(f"dry run: would reply to {_target(draft)}: {draft.text!r}")
    result = DeliveryResult(draft.delivery_id, Outcome.DRY_RUN, label=_target(draft))
    return PostedReply(result=result, in_reply_to_url=_target(draft), text=draft.text)


def _post(context: OpExecutionContext, deliverer: Deliverer, draft: Draft) -> PostedReply:
    result = replace(deliverer.deliver(draft), label=_target(draft))
    if result.outcome in NEW:
        context.log.info(f"replied: {result.url}")
    elif result.error:
        context.log.warning(f"{result.outcome}: {result.error}")
    in_reply_to = draft.in_reply_to.url if draft.in_reply_to else ""
    return PostedReply(result=result, in_reply_to_url=in_reply_to, text=draft.text)


@op
def summarize(context: OpExecutionContext, reports: list[CampaignReport]) -> list[CampaignReport]:
    new = sum(report.new for report in reports)
    already = sum(report.already_answered for report in reports)
    metadata: dict[str, object] = {
        "campaigns": len(reports),
        "replies_new": new,
        "already_answered": already,
        "dry_run_drafts": sum(report.count(Outcome.DRY_RUN) for report in reports),
    }
    for report in reports:
        for index, reply in enumerate(report.replies, 1):
            if reply.url:
                metadata[f"{report.campaign}_{index}"] = MetadataValue.url(reply.url)
    context.add_output_metadata(metadata)
    context.log.info(f"replies: {new} new, {already} already answered")
    return sorted(reports, key=lambda report: report.campaign)
