"""Making dead or failed targets due again, by hand (`social-pipelines retry`).

Never a second copy: each delivery becomes unknown, so its next attempt first looks for it
among the account's own posts (a dead delivery may have gone out after all) and sends only
on a miss. Its post is opened again for the due-posts sensor; a reply or a publish that
the redelivery sensor finds due is sent by `redeliver_job` as well, the ledger keeping the
two from sending it twice.
"""

from __future__ import annotations

from social_pipelines.models import DeliveryKind, DeliveryState
from social_pipelines.publishing.prepare import split_reference
from social_pipelines.publishing.states import post_view
from social_pipelines.store.outbox import OutboxStatus
from social_pipelines.store.records import DeliveryRecord
from social_pipelines.store.state import StateStore

RETRYABLE = (DeliveryState.DEAD, DeliveryState.FAILED)


def retry(store: StateStore, post_or_delivery: str) -> list[DeliveryRecord] | None:
    """Make the post's dead or failed targets (or the one delivery) due again; the rows
    made due, or None when the id names neither a post nor a delivery."""
    outbox, ledger = store.outbox, store.ledger
    record = outbox.get(post_or_delivery)
    if record is not None:
        view = post_view(record, outbox.deliveries([record])[record.post_id], outbox.clock())
        candidates = [
            target.delivery
            for target in view.targets
            if target.delivery is not None and target.delivery.state in RETRYABLE
        ]
    else:
        delivery = ledger.get(post_or_delivery)
        if delivery is None:
            return None
        candidates = [delivery]
    revived = [row for c in candidates if (row := ledger.make_due_again(c.delivery_id))]
    for row in revived:
        if row.kind == DeliveryKind.PUBLISH:
            post_id = split_reference(row.reference or row.subject)[0]
            outbox.set_status(
                post_id,
                OutboxStatus.OPEN,
                next_check_at=outbox.clock(),
                only_if=(OutboxStatus.DONE, OutboxStatus.OPEN),
            )
    return revived
