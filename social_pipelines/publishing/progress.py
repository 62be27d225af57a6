"""After a posting step: which posts are done, and when the sensor should look again.

Each step checks the posts it worked on after its own sends are committed, so whichever
step of a post finishes last sees every target settled and marks the post done, whatever
order (or process) the steps ran in. A post still waiting (a deferred target, an unknown
outcome) is looked at again when its earliest delivery may go.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta

from social_pipelines.models import PostState
from social_pipelines.publishing.states import SETTLED_TARGETS, post_view
from social_pipelines.store.outbox import Outbox, OutboxStatus

# A post with nothing scheduled to wake it (a failed target whose step gave up) is looked at
# again after this.
RECHECK = timedelta(minutes=5)


def settle_posts(outbox: Outbox, post_ids: Iterable[str]) -> dict[str, PostState]:
    """Mark the posts whose every target is settled done; push the others' next look."""
    records = outbox.get_many(post_ids)
    deliveries = outbox.deliveries(records.values())
    now = outbox.clock()
    states: dict[str, PostState] = {}
    for post_id, record in records.items():
        view = post_view(record, deliveries[post_id], now)
        states[post_id] = view.state
        if record.status != OutboxStatus.OPEN:
            continue
        if all(target.state in SETTLED_TARGETS for target in view.targets):
            outbox.set_status(post_id, OutboxStatus.DONE, reason=str(view.state))
            continue
        waits = [
            target.delivery.not_before
            for target in view.targets
            if target.delivery is not None and target.delivery.not_before is not None
        ]
        outbox.check_again_at([post_id], max(min(waits), now) if waits else now + RECHECK)
    return states
