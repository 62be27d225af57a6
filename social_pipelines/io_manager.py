"""Step outputs in the state store, so that any machine can re-execute a run.

Dagster's default IO manager pickles each output to a file under `$DAGSTER_HOME/storage` of
the machine that ran the step: a run re-executed from failure on another machine (a run
retry under the Docker or Kubernetes launcher, a re-execution from the UI of another
webserver) finds no file and must do the succeeded steps again, searching and drafting
anew. The state store is what every run worker already reaches (SQLite under the home by
default, PostgreSQL in production), so the outputs are kept there, pickled like Dagster's
own: the values are this package's dataclasses and pydantic models, read by the same code.

dagster-postgres brings no IO manager for outputs (its maintainers point at the S3, GCS
and Azure ones, dagster#17932), and UPathIOManager needs a filesystem or object store that
every machine mounts: one more service, where the store is already shared.
"""

from __future__ import annotations

import pickle
from typing import Any

from dagster import ConfigurableIOManager, InputContext, OutputContext

from social_pipelines.resources import StateStoreResource
from social_pipelines.store.step_outputs import StepOutputs


class StateStoreIOManager(ConfigurableIOManager):
    """Every op output as a pickle in the state store's `step_outputs`, by run, step, output
    and mapping key; a step retried within its run replaces what it stored before."""

    state_store: StateStoreResource

    def _outputs(self) -> StepOutputs:
        return self.state_store.open().step_outputs

    def handle_output(self, context: OutputContext, obj: Any) -> None:
        payload = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
        self._outputs().put(
            context.run_id, context.step_key, context.name, context.mapping_key or "", payload
        )
        context.add_output_metadata({"stored_bytes": len(payload)})

    def load_input(self, context: InputContext) -> Any:
        upstream = context.upstream_output
        if upstream is None:
            raise ValueError(f"input {context.name!r} comes from no step output to load")
        run_id, step_key, name = upstream.run_id, upstream.step_key, upstream.name
        mapping_key = upstream.mapping_key or ""
        payload = self._outputs().get(run_id, step_key, name, mapping_key)
        if payload is None:
            shown = f"{step_key}:{name}" + (f"[{mapping_key}]" if mapping_key else "")
            raise FileNotFoundError(
                f"no stored output {shown} of run {run_id} in the state store: the run was "
                "made before outputs were kept there, or its outputs were pruned with it; "
                "re-execute every step of the run instead of from failure"
            )
        context.log.debug(f"loaded {step_key}:{name} of run {run_id} from the state store")
        return pickle.loads(payload)  # noqa: S301 - written by handle_output, same code
