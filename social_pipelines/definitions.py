"""The one Definitions object of the code location."""

import os

from dagster import Definitions, EnvVar

from social_pipelines.jobs import redeliver_job, reply_job
from social_pipelines.resources import (
    PlatformsResource,
    ReplyWriterResource,
    StateStoreResource,
)
from social_pipelines.schedules import reply_schedule
from social_pipelines.sensors import deferred_deliveries_sensor, release_failed_run_claims
from social_pipelines.settings import get_settings

# Validate every setting now: a bad value fails the code location at load, with a message
# naming the variable, instead of failing runs later.
get_settings()

state_store = StateStoreResource(
    # The URL may carry a password: pass it by name, never by value.
    database_url=EnvVar("SOCIAL_DATABASE_URL") if os.environ.get("SOCIAL_DATABASE_URL") else ""
)

defs = Definitions(
    jobs=[reply_job, redeliver_job],
    schedules=[reply_schedule],
    sensors=[deferred_deliveries_sensor, release_failed_run_claims],
    resources={
        "state_store": state_store,
        "platforms": PlatformsResource(state_store=state_store),
        "reply_writer": ReplyWriterResource(),
    },
)
