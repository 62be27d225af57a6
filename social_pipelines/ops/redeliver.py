"""Finishing what earlier runs left: deferred, failed and unknown deliveries.

Everything needed to send a reply is in the ledger row (text, account, what it answers), so
a delivery deferred past its quota window is sent even if search no longer finds its post.
A publish is prepared as the publish job prepares it: the post read again from the outbox
(a cancel wins, a post now too late is missed), its images rendered and uploaded.
"""

from collections import defaultdict
from collections.abc import Callable
from dataclasses import replace

from dagster import Config, MetadataValue, OpExecutionContext, op
from pydantic import Field

from social_pipelines.delivery import (
    NEW,
    Cancelled,
    DeliveryReport,
    DeliveryResult,
    Prepare,
    prepare_reply,
)
from social_pipelines.models import CreatePost, DeliveryKind
from social_pipelines.publishing.prepare import PublishPreparer, split_reference
from social_pipelines.publishing.progress import settle_posts
from social_pipelines.resources import PlatformsResource, StateStoreResource
from social_pipelines.store.records import DeliveryRecord


class RedeliverConfig(Config):
    limit: int = Field(default=500, ge=1, le=5000, description="At most this many deliveries.")


@op(tags={"kind": "post"})
def redeliver_due(
    context: OpExecutionContext,
    config: RedeliverConfig,
    platforms: PlatformsResource,
    state_store: StateStoreResource,
) -> DeliveryReport:
    ledger = state_store.open().ledger
    outbox = state_store.open().outbox
    wiring = platforms.wiring()
    book = wiring.accounts()
    published: list[str] = []
    images = wiring.images()
    by_account = defaultdict(list)
    for record in ledger.due(limit=config.limit):
        by_account[record.account].append(record)
    results: list[DeliveryResult] = []
    urls: dict[str, MetadataValue] = {}
    orphaned = 0
    for name, records in sorted(by_account.items()):
        account = book.accounts.get(name)
        if account is None:
            context.log.error(
                f"{len(records)} due deliveries belong to account {name!r}, which the "
                f"accounts file {book.path} no longer defines; they stay in the ledger"
            )
            orphaned += len(records)
            continue
        with wiring.connect(account, log=context.log) as platform:
            publishes = PublishPreparer(
                outbox,
                platform,
                images,
                platform=account.platform,
                max_lateness=wiring.max_lateness,
                clock=outbox.clock,
            )
            deliverer = wiring.deliverer(
                account,
                platform,
                run_id=context.run_id,
                log=context.log,
                prepare=by_kind(publishes),
            )
            with deliverer:
                for record in records:
                    result = replace(
                        deliverer.send(record.delivery_id), label=f"{name} {record.subject}"
                    )
                    results.append(result)
                    if result.outcome in NEW:
                        urls[f"{name}_{len(urls) + 1}"] = MetadataValue.url(result.url)
                    elif result.error:
                        context.log.warning(result.described())
                    if record.kind == DeliveryKind.PUBLISH:
                        published.append(split_reference(record.reference or record.subject)[0])
    settle_posts(outbox, published)
    report = DeliveryReport(tuple(results))
    outcomes = {str(outcome): n for outcome, n in report.outcomes().items()}
    context.add_output_metadata(
        {**outcomes, **({"orphaned": orphaned} if orphaned else {}), **urls}
    )
    context.log.info(
        f"redelivered: {outcomes}" + (f", {orphaned} of unknown accounts left" if orphaned else "")
    )
    return report


def by_kind(publishes: PublishPreparer) -> Prepare:
    """Replies from their row, publishes from the outbox."""

    def prepare(record: DeliveryRecord, stage: Callable[[str], None]) -> CreatePost | Cancelled:
        if record.kind == DeliveryKind.PUBLISH:
            return publishes(record, stage)
        return prepare_reply(record, stage)

    return prepare
