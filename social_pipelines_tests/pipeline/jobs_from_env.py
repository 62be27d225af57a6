"""Jobs Dagster can reconstruct by name (re-execution needs that), built from the settings
in the environment as the code location builds them."""

from __future__ import annotations

from dagster import JobDefinition

from social_pipelines.definitions import build_definitions
from social_pipelines.settings import load_settings


def publish_job_from_env() -> JobDefinition:
    return build_definitions(load_settings()).get_job_def("publish_job")


def reply_job_from_env() -> JobDefinition:
    return build_definitions(load_settings()).get_job_def("reply_job")
