"""Exactly once against the real sandbox: unknown outcomes, quotas, open circuits."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from pydantic import SecretStr

from social_pipelines.campaigns import AccountConfig
from social_pipelines.delivery import Deliverer, Outcome
from social_pipelines.models import DeliveryKind, DeliveryState, Draft, delivery_id
from social_pipelines.resilience.guards import Guards
from social_pipelines.sandbox.process import SandboxProcess
from social_pipelines.store import StateStore
from social_pipelines.store.ledger import QuotaRule
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
    guards = Guards(store, bucket_path=tmp_path / "buckets.db", overrides={"mastodon": FAST})
    account = AccountConfig(
        name="brand", platform="mastodon", instance_url=sandbox.url, token_env="T"
    )
    platform = guards.connect(account, sandbox_token(), timeout=1.0)
    seeded = sandbox.seed(
        [{"key": f"p{i}", "author": "datadiana", "text": f"dagster question {i}"} for i in range(6)]
    )
    yield {
        "store": store,
        "guards": guards,
        "platform": platform,
        "targets": seeded["statuses"],
        "identity": platform.whoami(),
    }
    platform.close()
    guards.limits.close()


def sandbox_token() -> SecretStr:
    return SecretStr("sandbox-token-brand")


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


def test_timeout_after_creation_never_posts_twice(world: dict, sandbox: SandboxProcess) -> None:  # noqa: F811
    deliverer = Deliverer(world["store"].ledger, world["platform"])
    target = world["targets"][0]
    # Every create is processed, then answered too late for the client's 1 s timeout.
    sandbox.set_faults(timeout_after=1.0, timeout_delay=1.5, seed=1)

    first = deliverer.deliver(draft_for(world, target))
    assert first.outcome == Outcome.UNKNOWN

    sandbox.clear_faults()
    second = deliverer.deliver(draft_for(world, target, text="a changed template"))

    assert second.outcome in (Outcome.RECONCILED, Outcome.ALREADY_SENT)
    posted = sandbox.posted()
    assert len(posted) == 1 and posted[0]["in_reply_to_id"] == target
    record = world["store"].ledger.get(first.delivery_id)
    assert record.state == DeliveryState.SENT and record.remote_id == posted[0]["id"]


def test_connection_reset_after_creation_is_reconciled_not_resent(
    world: dict,
    sandbox: SandboxProcess,  # noqa: F811
) -> None:
    deliverer = Deliverer(world["store"].ledger, world["platform"])
    target = world["targets"][1]
    sandbox.set_faults(reset_after=1.0, seed=2)
    assert deliverer.deliver(draft_for(world, target)).outcome == Outcome.UNKNOWN
    sandbox.clear_faults()
    assert deliverer.deliver(draft_for(world, target)).outcome == Outcome.RECONCILED
    assert len(sandbox.posted()) == 1


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
    snapshot = world["guards"].breaker("mastodon", "brand").snapshot()
    assert snapshot.is_open and snapshot.reset_at is not None
