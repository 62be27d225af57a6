"""One due-posts sensor evaluation against a small and a large outbox, side by side: time
and peak memory must not grow with the posts that are not due.

For each size (default 10,000 and 100,000 posts) a fresh SQLite state store in a temporary
directory is filled fast (SQLAlchemy Core `executemany` on the `posts` table, each row as
`Outbox.save` writes it: the post as JSON, its content hash, revision 1, origin `cli`,
`next_check_at` = `at`): 1,000 open posts due in the last minutes, half of the rest done
(published in the past 30 days), half open and due in the next 30 days. Then, per size:

- `due_runs` (`publishing/dispatch.py`), what one tick does with the outbox: the indexed
  query for what falls due within the lead, their deliveries, the write pushing their next
  look past the lease, the grouping into runs. Timed `--repeats` times (median), the due
  posts made due again between repeats (outside the timing); peak memory in one more
  evaluation under tracemalloc (which slows Python, so it is never timed);
- the sensor itself, `due_posts_sensor` evaluated with `build_sensor_context` and the code
  location's resources (no calendar configured: the calendar-less path), the same way.

Last line: the time and peak memory at the large size over the small one.
Goal: an evaluation under 2 s at 100,000 posts, memory flat (ratio about 1).

    python bench/outbox_scale.py [--sizes 10000 100000] [--due 1000] [--repeats 3]
"""

from __future__ import annotations

import argparse
import gc
import statistics
import tempfile
import time
import tracemalloc
import warnings
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from dagster import DagsterInstance, SensorResult, build_sensor_context

from social_pipelines.definitions import build_definitions
from social_pipelines.models import Post
from social_pipelines.ops.publish import DISPATCH_LEASE
from social_pipelines.publishing.dispatch import due_runs
from social_pipelines.sensors import LEAD
from social_pipelines.settings import Settings
from social_pipelines.store import StateStore
from social_pipelines.store.outbox import Origin, OutboxStatus
from social_pipelines.store.schema import posts

GOAL_SECONDS = 2.0
BATCH = 5000


def fill(store: StateStore, size: int, due: int, now: datetime) -> list[str]:
    """`size` posts as `Outbox.save` writes them; returns the ids of the due ones."""
    due_ids: list[str] = []
    rows: list[dict[str, Any]] = []
    with store.engine.begin() as connection:
        for i in range(size):
            if i < due:
                at, status = now - timedelta(seconds=1 + i * 0.2), OutboxStatus.OPEN
            elif i % 2:
                at, status = now - timedelta(days=30) * (i / size), OutboxStatus.DONE
            else:
                at, status = (
                    now + timedelta(hours=1) + timedelta(days=30) * (i / size),
                    OutboxStatus.OPEN,
                )
            post = Post(
                id=f"post-{i:07d}",
                text=f"Scheduled post number {i}: what we shipped this week, and why.",
                link="https://example.com/blog/weekly",
                targets=("brand", "brand_news") if i % 3 == 0 else ("brand",),
                at=at,
            )
            if i < due:
                due_ids.append(post.id)
            rows.append(
                {
                    "post_id": post.id,
                    "revision": 1,
                    "latest_revision": 1,
                    "latest_hash": post.content_hash(),
                    "content": post.model_dump_json(),
                    "at": at,
                    "status": str(status),
                    "status_reason": "published" if status == OutboxStatus.DONE else None,
                    "origin": str(Origin.CLI),
                    "source": "",
                    "refused": "{}",
                    "next_check_at": at,
                    "created_at": now - timedelta(days=31),
                    "updated_at": now - timedelta(days=31),
                }
            )
            if len(rows) == BATCH:
                connection.execute(posts.insert(), rows)
                rows = []
        if rows:
            connection.execute(posts.insert(), rows)
    return due_ids


def make_due_again(store: StateStore, ids: list[str]) -> None:
    with store.engine.begin() as connection:
        for start in range(0, len(ids), 500):
            connection.execute(
                posts.update()
                .where(posts.c.post_id.in_(ids[start : start + 500]))
                .values(next_check_at=posts.c.at, status=str(OutboxStatus.OPEN))
            )


def measure(
    evaluate: Callable[[], int], reset: Callable[[], None], repeats: int
) -> tuple[float, float, int]:
    """Median seconds of `repeats` evaluations, peak MB of one more under tracemalloc,
    and the posts the last one launched."""
    times: list[float] = []
    launched = 0
    for _ in range(repeats):
        reset()
        gc.collect()
        started = time.perf_counter()
        launched = evaluate()
        times.append(time.perf_counter() - started)
    reset()
    gc.collect()
    tracemalloc.start()
    try:
        evaluate()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return statistics.median(times), peak / 1e6, launched


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs=2, default=[10_000, 100_000])
    parser.add_argument("--due", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    warnings.filterwarnings("ignore")  # Dagster's beta and resource notices, once per size
    results: dict[int, dict[str, tuple[float, float, int]]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-outbox-") as temporary:
        for size in args.sizes:
            work = Path(temporary) / str(size)
            work.mkdir()
            url = f"sqlite:///{work / 'state.db'}"
            store = StateStore(url)
            now = datetime.now(UTC)
            started = time.perf_counter()
            due_ids = fill(store, size, args.due, now)
            print(
                f"{size:,} posts inserted in {time.perf_counter() - started:.1f} s "
                f"({args.due:,} due)"
            )
            with store.engine.connect() as connection:
                plan = connection.exec_driver_sql(
                    "EXPLAIN QUERY PLAN SELECT * FROM posts WHERE status = 'open' AND "
                    "next_check_at <= '9999' ORDER BY next_check_at, post_id LIMIT 1000"
                ).fetchall()
            print("  due query plan: " + "; ".join(str(row[-1]) for row in plan))

            def reset(store: StateStore = store, ids: list[str] = due_ids) -> None:
                make_due_again(store, ids)

            def dispatch(store: StateStore = store) -> int:
                result = due_runs(
                    store.outbox, lead=LEAD, max_lateness=timedelta(hours=6), lease=DISPATCH_LEASE
                )
                return sum(len(run.post_ids) for run in result.runs)

            settings = Settings(_env_file=None, dagster_home=work, database_url=url)
            defs = build_definitions(settings)
            sensor = defs.get_sensor_def("due_posts_sensor")
            instance = DagsterInstance.ephemeral()

            def tick(defs: Any = defs, sensor: Any = sensor, instance: Any = instance) -> int:
                with build_sensor_context(instance=instance, resources=defs.resources) as context:
                    result = sensor(context)
                if not isinstance(result, SensorResult):
                    return 0
                return sum(
                    len(r.run_config["ops"]["plan_publishes"]["config"]["post_ids"])
                    for r in result.run_requests or []
                )

            tick()  # warm: resources, imports
            results[size] = {
                "due_runs": measure(dispatch, reset, args.repeats),
                "sensor": measure(tick, reset, args.repeats),
            }
            for name, (seconds, peak, launched) in results[size].items():
                print(
                    f"  {name:8s} {seconds * 1000:8.1f} ms (median of {args.repeats}), peak "
                    f"{peak:6.1f} MB, {launched} posts launched"
                )
            store.dispose()
            instance.dispose()
    small, large = args.sizes
    print(f"{'':10s}{small:>12,} posts {large:>12,} posts   time ratio   memory ratio")
    for name in ("due_runs", "sensor"):
        s, b = results[small][name], results[large][name]
        print(
            f"{name:10s}{s[0] * 1000:10.1f} ms {b[0] * 1000:10.1f} ms {b[0] / s[0]:10.2f}x "
            f"{s[1]:8.1f}/{b[1]:.1f} MB {b[1] / s[1]:.2f}x"
        )
    worst = max(results[large]["due_runs"][0], results[large]["sensor"][0])
    print(
        f"at {large:,} posts: sensor evaluation {results[large]['sensor'][0]:.3f} s "
        f"(goal < {GOAL_SECONDS:.0f} s), ratio {large:,}/{small:,}: time "
        f"{results[large]['sensor'][0] / results[small]['sensor'][0]:.2f}x, peak memory "
        f"{results[large]['sensor'][1] / results[small]['sensor'][1]:.2f}x (goal about 1); "
        f"due_runs time {results[large]['due_runs'][0] / results[small]['due_runs'][0]:.2f}x, "
        f"memory {results[large]['due_runs'][1] / results[small]['due_runs'][1]:.2f}x"
        + ("" if worst < GOAL_SECONDS else "  MISSED")
    )


if __name__ == "__main__":
    main()
