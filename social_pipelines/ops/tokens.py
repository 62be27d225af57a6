"""The token refresh job's op: a thin shell over `token_upkeep.upkeep`."""

from dagster import Failure, MetadataValue, OpExecutionContext, op

from social_pipelines.errors import ConfigError
from social_pipelines.ops.settle import config_failure
from social_pipelines.resources import PlatformsResource
from social_pipelines.token_upkeep import REFRESH_WITHIN, upkeep


@op(tags={"kind": "tokens"})
def refresh_tokens(context: OpExecutionContext, platforms: PlatformsResource) -> None:
    """Refresh every token expiring within the hour; verify accounts marked
    reconnect_needed (an accepted one is cleared). A refresh that failed on the way keeps
    the valid token and says so; an account the platform still refuses fails the step, so
    the run (and its alert) names it."""
    try:
        report = upkeep(platforms.wiring(), within=REFRESH_WITHIN, log=context.log)
    except ConfigError as error:
        raise config_failure(error) from None
    metadata: dict[str, MetadataValue | int] = {
        what: MetadataValue.json([note.line() for note in report.of(what)])
        for what in ("refreshed", "kept", "fresh", "cleared", "still_marked", "failed")
        if report.of(what)
    }
    metadata["accounts_checked"] = len(report.notes)
    context.add_output_metadata(metadata)
    if report.problems:
        raise Failure(
            description="accounts need attention: "
            + "; ".join(note.line() for note in report.problems),
            metadata=metadata,
            allow_retries=False,
        )
