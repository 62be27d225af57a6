"""Step outputs of Dagster runs, as bytes, keyed by run, step, output and mapping key.

The state store is what every run worker on every machine already reaches, so outputs kept
here can be read by a re-execution anywhere; files under one machine's `$DAGSTER_HOME`
(Dagster's default) cannot. What the bytes are (a pickle) is the IO manager's business.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

import sqlalchemy as sa

from social_pipelines.clock import Clock, utcnow
from social_pipelines.store.engine import for_writing
from social_pipelines.store.schema import step_outputs
from social_pipelines.store.sql import insert_missing

_o = step_outputs.c


class StepOutputs:
    def __init__(self, engine: sa.Engine, *, clock: Clock = utcnow) -> None:
        self.engine = engine
        self.writer = for_writing(engine)
        self.clock = clock

    def put(
        self, run_id: str, step_key: str, output_name: str, mapping_key: str, payload: bytes
    ) -> None:
        """Keep `payload`, replacing what an earlier attempt of the same step stored."""
        key = {
            "run_id": run_id,
            "step_key": step_key,
            "output_name": output_name,
            "mapping_key": mapping_key,
        }
        now = self.clock()
        with self.writer.begin() as connection:
            if not insert_missing(
                connection, step_outputs, {**key, "payload": payload, "created_at": now}
            ):
                connection.execute(
                    step_outputs.update()
                    .where(*(step_outputs.c[name] == value for name, value in key.items()))
                    .values(payload=payload, created_at=now)
                )

    def get(self, run_id: str, step_key: str, output_name: str, mapping_key: str) -> bytes | None:
        with self.engine.connect() as connection:
            return connection.execute(
                sa.select(_o.payload).where(
                    _o.run_id == run_id,
                    _o.step_key == step_key,
                    _o.output_name == output_name,
                    _o.mapping_key == mapping_key,
                )
            ).scalar()

    def run_ids(self) -> set[str]:
        with self.engine.connect() as connection:
            return set(connection.execute(sa.select(_o.run_id).distinct()).scalars())

    def delete_runs(self, run_ids: Iterable[str]) -> int:
        """Forget every output of these runs; how many outputs that was."""
        ids = list(dict.fromkeys(run_ids))
        deleted = 0
        with self.writer.begin() as connection:
            for start in range(0, len(ids), 500):  # bounded IN lists
                batch = ids[start : start + 500]
                deleted += connection.execute(
                    step_outputs.delete().where(_o.run_id.in_(batch))
                ).rowcount
        return deleted

    def delete_before(self, cutoff: datetime) -> int:
        """Forget every output stored before `cutoff`; how many that was."""
        with self.writer.begin() as connection:
            return connection.execute(step_outputs.delete().where(_o.created_at < cutoff)).rowcount
