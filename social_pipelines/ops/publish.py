"""The publish job's ops: plan the due posts, publish per target account, summarize.

`plan_publishes` fans out one step per target account (one failing platform never blocks
the others), on an output per platform so each platform's steps run in that platform's
Dagster pool (which caps its concurrent calls across runs). Each step re-reads every post
right before sending it (`publishing/prepare.py`): a cancel or an edit made a second before
wins. The ledger, not the run, makes it exactly once: a post launched twice, a retried step,
a re-executed run all find what is out and send nothing again.
"""

import time
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta

from dagster import (
    Backoff,
    Config,
    DynamicOut,
    DynamicOutput,
    In,
    Jitter,
    MetadataValue,
    OpDefinition,
    OpExecutionContext,
    Out,
    Output,
    RetryPolicy,
    op,
)
from pydantic import Field

from social_pipelines.delivery import NEW, Deliverer, DeliveryResult, Outcome
from social_pipelines.errors import ConfigError
from social_pipelines.models import DeliveryKind, Draft, delivery_id, publish_subject
from social_pipelines.ops.settle import (
    config_failure,
    platform_errors,
    retried_unless_interrupted,
    settle_or_retry,
)
from social_pipelines.platforms.capabilities import Capability
from social_pipelines.platforms.catalog import SPECS
from social_pipelines.publishing.dispatch import too_late
from social_pipelines.publishing.images import PostImages
from social_pipelines.publishing.prepare import PublishPreparer
from social_pipelines.publishing.progress import settle_posts
from social_pipelines.publishing.steps import (
    AccountBatch,
    AccountReport,
    PublishedTarget,
    PublishPlan,
    TargetItem,
)
from social_pipelines.resources import PlatformsResource, StateStoreResource
from social_pipelines.runnable import held_accounts
from social_pipelines.store.outbox import Outbox, OutboxStatus, PostRecord

# For failures nothing else caught, by the op itself (`retried_unless_interrupted`: never
# an interrupt); platform outcomes are retried by `settle_or_retry`.
PUBLISH_RETRY = RetryPolicy(
    max_retries=3, delay=10, backoff=Backoff.EXPONENTIAL, jitter=Jitter.PLUS_MINUS
)
# The platforms that publish, each with its own output, step and pool.
PUBLISHING_PLATFORMS = tuple(
    sorted(name for name, spec in SPECS.items() if Capability.PUBLISH in spec.capabilities)
)
# A run may start this much before its posts fall due (the sensor's lead); a step waits for
# each post's time, but never longer than this: a post further ahead is left to its own run.
MAX_WAIT = timedelta(minutes=5)
# How long the sensor leaves a post a run took before it launches it again (a run that
# failed or was killed has not marked it done by then).
DISPATCH_LEASE = timedelta(minutes=10)
RUN_LIMIT = 1000


def pool_for(platform: str) -> str:
    return f"social_publish_{platform}"


class PublishRunConfig(Config):
    """Which posts, and how; empty `post_ids` means every post that is due now."""

    post_ids: list[str] = Field(
        default_factory=list, description="Only these posts (default: every due post)."
    )
    dry_run: bool = Field(default=False, description="Send nothing; say what would be sent.")
    force_late: bool = Field(
        default=False,
        description="Send posts even when they are more than SOCIAL_PUBLISH_MAX_LATENESS past "
        "their time (they are marked missed otherwise).",
    )


@op(
    out={
        "plan": Out(PublishPlan),
        **{name: DynamicOut(AccountBatch, is_required=False) for name in PUBLISHING_PLATFORMS},
    },
    tags={"kind": "plan"},
)
def plan_publishes(
    context: OpExecutionContext,
    config: PublishRunConfig,
    platforms: PlatformsResource,
    state_store: StateStoreResource,
) -> Iterator[Output[PublishPlan] | DynamicOutput[AccountBatch]]:
    """Read the posts, mark what is too late as missed, render their images for every
    platform they go to, and hand each target account its targets."""
    outbox = state_store.open().outbox
    wiring = platforms.wiring()
    now = outbox.clock()
    capped = False
    if config.post_ids:
        found = outbox.get_many(config.post_ids)
        for missing in sorted(set(config.post_ids) - set(found)):
            context.log.warning(f"post {missing!r} is not in the outbox; skipped")
        records = [found[post_id] for post_id in config.post_ids if post_id in found]
    else:
        records = outbox.due_by_time(until=now, limit=RUN_LIMIT)
        capped = len(records) == RUN_LIMIT
        if capped:
            context.log.warning(
                f"{RUN_LIMIT} due posts taken; the rest wait for the next run (the sensor "
                "launches it)"
            )
    try:
        book = wiring.accounts()
    except ConfigError as error:
        raise config_failure(error) from None
    plan = PublishPlan()
    held = held_accounts(wiring)
    batches: dict[str, list[TargetItem]] = defaultdict(list)
    deliveries = outbox.deliveries(records)
    images = wiring.images()
    for record in records:
        post = record.post
        if record.status == OutboxStatus.CANCELLED or (
            record.status == OutboxStatus.DONE and not _re_execution(context)
        ):
            plan.skipped.append(post.id)
            continue
        reason = too_late(record, deliveries[post.id], now, wiring.max_lateness)
        if reason is not None and not config.force_late:
            if not config.dry_run:  # a dry run records nothing
                outbox.set_status(post.id, OutboxStatus.MISSED, reason=reason)
            context.log.warning(f"post {post.id!r}: {reason}")
            plan.missed.append(post.id)
            continue
        if record.status == OutboxStatus.MISSED:
            if not config.force_late:
                plan.skipped.append(post.id)
                continue
            if not config.dry_run:  # sent on purpose: open again, so it is finished
                outbox.set_status(post.id, OutboxStatus.OPEN, only_if=(OutboxStatus.MISSED,))
        plan.post_ids.append(post.id)
        goes_to = [t for t in post.targets if t not in record.refused]
        if not goes_to:
            settle_posts(outbox, [post.id])  # every target refused: nothing can go
            continue
        for target in goes_to:
            batches[target].append(TargetItem(post_id=post.id, target=target, at=post.at))
        _prerender(
            context,
            images,
            record,
            [book.accounts[t].platform for t in goes_to if t in book.accounts],
        )
    yield Output(
        plan,
        output_name="plan",
        metadata={
            "posts": len(plan.post_ids),
            "missed": len(plan.missed),
            "skipped": len(plan.skipped),
            # Every due post was not taken: the rest wait for the next run.
            "capped_at": RUN_LIMIT if capped else 0,
            "held_accounts": MetadataValue.json(held),
        },
    )
    for name, items in sorted(batches.items()):
        account = book.accounts.get(name)
        if account is None:
            context.log.error(
                f"{len(items)} target(s) name account {name!r}, which the accounts file "
                f"{book.path} does not define; they stay scheduled"
            )
            continue
        if account.platform not in PUBLISHING_PLATFORMS:
            context.log.error(f"account {name!r} is on {account.platform}, which cannot publish")
            continue
        if name in held:
            # Nothing is planned for it: its targets stay due, and go once it is accepted.
            context.log.warning(
                f"{len(items)} target(s) of account {name!r} held: {held[name]}; they stay "
                "scheduled"
            )
            continue
        yield DynamicOutput(
            AccountBatch(
                account=name,
                platform=account.platform,
                items=sorted(items, key=lambda item: (item.at, item.post_id)),
                dry_run=config.dry_run,
                force_late=config.force_late,
            ),
            output_name=account.platform,
            mapping_key=name,
        )


def _re_execution(context: OpExecutionContext) -> bool:
    return context.dagster_run.parent_run_id is not None


def _prerender(
    context: OpExecutionContext, images: PostImages, record: PostRecord, names: list[str]
) -> None:
    """Every image of the post rendered for all its platforms at once (one decode each)."""
    if not record.post.images or not names:
        return
    for problem in images.prerender(record.post, names):
        context.log.warning(f"{problem}; the targets of post {record.post_id!r} refuse it")


def publish_op(platform: str) -> OpDefinition:
    """The posting step of one platform: one mapped step per account, in its pool."""

    @op(
        name=f"publish_{platform}",
        pool=pool_for(platform),
        tags={"kind": "post"},
        ins={"batch": In(AccountBatch)},
    )
    @retried_unless_interrupted(PUBLISH_RETRY)
    def publish(
        context: OpExecutionContext,
        batch: AccountBatch,
        platforms: PlatformsResource,
        state_store: StateStoreResource,
    ) -> AccountReport:
        """Send each of the account's targets once, at its time, through the ledger."""
        wiring = platforms.wiring()  # built once: accounts, policy and client from it
        account = wiring.accounts().get(batch.account)
        policy = wiring.policy(account)
        outbox = state_store.open().outbox
        results: list[PublishedTarget] = []
        with (
            platform_errors(context, policy),
            wiring.connect(account, log=context.log) as connected,
        ):
            preparer = PublishPreparer(
                outbox,
                connected,
                wiring.images(),
                platform=account.platform,
                max_lateness=wiring.max_lateness,
                force_late=batch.force_late,
                clock=outbox.clock,
            )
            key = connected.whoami().stable_key
            with wiring.deliverer(
                account, connected, run_id=context.run_id, log=context.log, prepare=preparer
            ) as deliverer:
                revive = _re_execution(context)
                for item in batch.items:
                    results.append(
                        _publish_one(
                            context, deliverer, outbox, item, batch, key=key, revive=revive
                        )
                    )
        states = settle_posts(outbox, [item.post_id for item in batch.items])
        # One event for the routine outcomes, not two per target: each log call is a write to
        # the run's event log (measured: about 7 ms each on SQLite, 1.4 s of a 4.4 s run of
        # 100 posts). Anything unusual is still logged as it happens, per target; each URL
        # is in the step's metadata too.
        published = [
            f"published {target.result.label}: {target.result.url}"
            for target in results
            if target.outcome in NEW
        ]
        settled = [f"post {post_id!r}: {state}" for post_id, state in sorted(states.items())]
        if published or settled:
            context.log.info("\n".join([*published, *settled]))
        report = AccountReport(account=batch.account, platform=batch.platform, targets=results)
        deliveries = report.deliveries
        context.add_output_metadata(
            {
                **{f"targets_{outcome}": n for outcome, n in deliveries.outcomes().items()},
                **{
                    f"{target.post_id}": MetadataValue.url(target.url)
                    for target in results
                    if target.url
                },
                **{
                    f"{target.post_id}_reason": target.result.error
                    for target in results
                    if target.result.error and target.outcome not in NEW
                },
            }
        )
        settle_or_retry(context, deliveries, policy, what=f"publishes of {batch.account}")
        return report

    return publish


def _publish_one(
    context: OpExecutionContext,
    deliverer: Deliverer,
    outbox: Outbox,
    item: TargetItem,
    batch: AccountBatch,
    *,
    key: str,
    revive: bool,
) -> PublishedTarget:
    ledger = deliverer.ledger
    subject = publish_subject(item.post_id, item.target)
    draft_id = delivery_id(batch.platform, key, DeliveryKind.PUBLISH, subject)
    wait = (item.at - ledger.clock()).total_seconds()
    if wait > MAX_WAIT.total_seconds():
        result = DeliveryResult(
            draft_id,
            Outcome.DEFERRED,
            label=subject,
            not_before=item.at,
            error=f"not due until {item.at:%Y-%m-%d %H:%M:%S} UTC; its own run sends it",
        )
        context.log.info(f"{subject}: {result.error}")
        return PublishedTarget(post_id=item.post_id, target=item.target, result=result)
    if wait > 0:
        time.sleep(wait)
    current = outbox.get(item.post_id)
    text = current.post.body_for(item.target) if current else ""
    if batch.dry_run:
        context.log.info(f"dry run: would publish {subject}: {text!r}")
        result = DeliveryResult(draft_id, Outcome.DRY_RUN, label=subject)
        return PublishedTarget(post_id=item.post_id, target=item.target, result=result, text=text)
    if revive:
        existing = ledger.get(draft_id)
        if existing is not None and ledger.make_due_again(draft_id) is not None:
            context.log.info(f"re-execution: {subject} ({existing.state}) made due again")
    draft = Draft(
        delivery_id=draft_id,
        campaign="publish",
        account=batch.account,
        platform=batch.platform,
        account_key=key,
        kind=DeliveryKind.PUBLISH,
        subject=subject,
        text=text,
        reference=subject,
    )
    result = replace(deliverer.deliver(draft), label=subject)
    if result.outcome not in NEW and result.error:
        context.log.warning(f"{result.outcome}: {subject}: {result.error}")
    return PublishedTarget(post_id=item.post_id, target=item.target, result=result, text=text)


PUBLISH_OPS = {platform: publish_op(platform) for platform in PUBLISHING_PLATFORMS}
