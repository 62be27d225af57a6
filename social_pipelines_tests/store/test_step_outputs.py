"""Step outputs kept in the state store, on both backends: one row per run, step, output
and mapping key; a retried step replaces its row; old runs are pruned."""

from __future__ import annotations

from social_pipelines.store.state import StateStore
from social_pipelines_tests.store.helpers import FakeClock


def test_each_output_is_kept_by_run_step_name_and_mapping_key(store: StateStore) -> None:
    outputs = store.step_outputs
    outputs.put("run-1", "plan_campaigns", "result", "brand", b"brand plan")
    outputs.put("run-1", "plan_campaigns", "result", "news", b"news plan")
    outputs.put("run-1", "search_posts[brand]", "result", "", b"found")
    outputs.put("run-2", "search_posts[brand]", "result", "", b"found again")

    assert outputs.get("run-1", "plan_campaigns", "result", "brand") == b"brand plan"
    assert outputs.get("run-1", "plan_campaigns", "result", "news") == b"news plan"
    assert outputs.get("run-1", "search_posts[brand]", "result", "") == b"found"
    assert outputs.get("run-2", "search_posts[brand]", "result", "") == b"found again"
    assert outputs.get("run-1", "search_posts[brand]", "other", "") is None
    assert outputs.get("run-3", "search_posts[brand]", "result", "") is None


def test_a_retried_step_replaces_what_it_stored(store: StateStore) -> None:
    outputs = store.step_outputs
    outputs.put("run-1", "post_replies[brand]", "result", "", b"first attempt")
    outputs.put("run-1", "post_replies[brand]", "result", "", b"second attempt")

    assert outputs.get("run-1", "post_replies[brand]", "result", "") == b"second attempt"
    assert outputs.run_ids() == {"run-1"}


def test_outputs_are_pruned_by_run_and_by_age(store: StateStore, clock: FakeClock) -> None:
    outputs = store.step_outputs
    big = bytes(range(256)) * 4096  # a megabyte, every byte value: stored as bytes
    outputs.put("old", "a", "result", "", big)
    clock.advance(days=10)
    cutoff = clock.advance(seconds=1)
    outputs.put("kept", "a", "result", "", b"kept")
    outputs.put("gone", "a", "result", "", b"gone")
    outputs.put("gone", "b", "result", "x", b"gone too")

    assert outputs.get("old", "a", "result", "") == big
    assert outputs.delete_runs(["gone", "never-stored"]) == 2
    assert outputs.delete_before(cutoff) == 1
    assert outputs.run_ids() == {"kept"}
