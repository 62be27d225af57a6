"""Exactly once against the real sandbox: unknown outcomes, quotas, open circuits."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from social_pipelines.delivery import Deliverer, Outcome
from social_pipelines.models import DeliveryKind, DeliveryState, Draft, delivery_id
from social_pipelines.platforms.mastodon import MastodonAccount
from social_pipelines.resilience.connector import Connector
from social_pipelines.sandbox.process import SandboxProcess
from social_pipelines.store import QuotaRule, StateStore
from social_pipelines_tests.sandbox.fixtures import sandbox, sandbox_server  # noqa: F401

FAST = {
    "retry_attempts": 2,
    "retry_initial_seconds": 0.01,
    "retry_max_seconds": 3,
    "breaker_fail_max": 3,
    "breaker_reset_seconds": 30,
}


@pytest.fixture
def world(sandbox: SandboxProcess, tmp_path: Path) -> Iterator[dict]:  # noqa: F811
    store = StateStore(f"sqlite:///{tmp_path / 'state.db'}")
    connector = Connector(store, bucket_path=tmp_path / "buckets.db", overrides={"mastodon": FAST})
    account = MastodonAccount(
        name="brand", platform="mastodon", instance_url=sandbox.url, token_env="T"
    )
    platform = connector.connect(account, variables={"T": "sandbox-token-brand"}, timeout=1.0)
    seeded = sandbox.seed(
        [{"key": f"p{i}", "author": "datadiana", "text": f"dagster question {i}"} for i in range(6)]
    )
    yield {
        "store": store,
        "connector": connector,
        "platform": platform,
        "targets": seeded["statuses"],
        "identity": platform.whoami(),
    }
    platform.close()
    connector.rate_limits.close()


def draft_for(world: dict, target: str, text: str = "thanks!") -> Draft:
    identity = world["identity"]
    return Draft(
        delivery_id=delivery_id("mastodon", identity.stable_key, DeliveryKind.REPLY, target),
        campaign="c",
        account="brand",
        platform="mastodon",
        account_key=identity.stable_key,
        subject=target,
        text=text,
    )


CREATES = ["POST /api/v1/statuses"]
SETTLE = timedelta(seconds=0.3)


@pytest.mark.parametrize("honoured", [True, False], ids=["keys_honoured", "keys_ignored"])
def test_timeout_after_creation_never_posts_twice(
    world: dict,
    sandbox: SandboxProcess,  # noqa: F811
    honoured: bool,
) -> None:
    """The Takahē case: the answer to a create is lost, and the server may ignore the key.

    Every create is processed, then answered too late for the client's 1 s timeout; the
    post is found among the account's own posts after the settle time, never sent again.
    """
    sandbox.set_idempotency(honoured=honoured)
    deliverer = Deliverer(world["store"].ledger, world["platform"], settle=SETTLE)
    target = world["targets"][0]
    sandbox.set_faults(timeout_after=1.0, timeout_delay=1.5, seed=1, endpoints=CREATES)

    first = deliverer.deliver(draft_for(world, target))

    assert first.outcome == Outcome.RECONCILED
    posted = sandbox.posted()
    assert len(posted) == 1 and posted[0]["in_reply_to_id"] == target
    record = world["store"].ledger.get(first.delivery_id)
    assert record.state == DeliveryState.SENT and record.remote_id == posted[0]["id"]
    attempts = world["store"].ledger.attempts(first.delivery_id)
    assert [row.outcome for row in attempts] == ["unknown", "reconciled"]
    # A changed template later changes nothing either.
    again = deliverer.deliver(draft_for(world, target, text="a changed template"))
    assert again.outcome == Outcome.ALREADY_SENT and len(sandbox.posted()) == 1


@pytest.mark.parametrize("honoured", [True, False], ids=["keys_honoured", "keys_ignored"])
def test_connection_reset_after_creation_is_reconciled_not_resent(
    world: dict,
    sandbox: SandboxProcess,  # noqa: F811
    honoured: bool,
) -> None:
    sandbox.set_idempotency(honoured=honoured)
    deliverer = Deliverer(world["store"].ledger, world["platform"], settle=SETTLE)
    target = world["targets"][1]
    sandbox.set_faults(reset_after=1.0, seed=2, endpoints=CREATES)
    assert deliverer.deliver(draft_for(world, target)).outcome == Outcome.RECONCILED
    assert len(sandbox.posted()) == 1


def test_a_create_that_did_not_land_is_sent_again_after_a_miss(
    world: dict,
    sandbox: SandboxProcess,  # noqa: F811
) -> None:
    """A gateway timeout before processing looks the same to the client as one after: the
    miss is what allows the second create, and only one."""
    sandbox.set_idempotency(honoured=False)
    deliverer = Deliverer(world["store"].ledger, world["platform"], settle=SETTLE)
    target = world["targets"][2]
    # The first create is turned away with a 504 (nothing created); later ones go through.
    sandbox.set_faults(timeout_before=0.5, timeout_delay=0.1, seed=1, endpoints=CREATES)
    result = deliverer.deliver(draft_for(world, target))
    assert result.outcome == Outcome.SENT
    posted = sandbox.posted()
    assert len(posted) == 1 and posted[0]["in_reply_to_id"] == target
    outcomes = [row.outcome for row in world["store"].ledger.attempts(result.delivery_id)]
    assert outcomes == ["unknown", "sent"]


def test_used_up_quota_defers_without_a_request(world: dict, sandbox: SandboxProcess) -> None:  # noqa: F811
    quota = [QuotaRule(2, timedelta(hours=1))]
    deliverer = Deliverer(world["store"].ledger, world["platform"], quotas=quota)
    outcomes = [deliverer.deliver(draft_for(world, t)).outcome for t in world["targets"][:3]]

    assert outcomes == [Outcome.SENT, Outcome.SENT, Outcome.DEFERRED]
    assert len(sandbox.posted()) == 2
    deferred = world["store"].ledger.get(draft_for(world, world["targets"][2]).delivery_id)
    assert deferred.state == DeliveryState.PLANNED
    assert deferred.not_before is not None and deferred.not_before > datetime.now(UTC)


def test_open_circuit_defers_and_sends_nothing(world: dict, sandbox: SandboxProcess) -> None:  # noqa: F811
    deliverer = Deliverer(world["store"].ledger, world["platform"])
    sandbox.set_faults(error_503=1.0, seed=3)
    results = [deliverer.deliver(draft_for(world, t)) for t in world["targets"][:4]]
    requests_when_open = sandbox.stats()["requests"]
    later = deliverer.deliver(draft_for(world, world["targets"][4]))

    assert later.outcome == Outcome.DEFERRED and later.not_before is not None
    assert sandbox.stats()["requests"] == requests_when_open  # fail fast, nothing sent
    assert {r.outcome for r in results} <= {Outcome.FAILED, Outcome.DEFERRED}
    assert sandbox.posted() == []
    snapshot = world["connector"].breaker("mastodon", "brand").snapshot()
    assert snapshot.is_open and snapshot.reset_at is not None
