"""The policy a platform account runs under: its adapter's row with settings overrides.

The rows themselves live in the adapter modules (`platforms/<name>.py`, `POLICY`), so a new
platform brings its own; settings may change any field per platform
(`SOCIAL_POLICIES__MASTODON__BREAKER_RESET_SECONDS=30`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from social_pipelines.errors import ConfigError
from social_pipelines.platforms.catalog import spec_for
from social_pipelines.platforms.policy import PlatformPolicy


def policy_for(
    platform: str, overrides: Mapping[str, Mapping[str, Any]] | None = None
) -> PlatformPolicy:
    """The adapter's row for `platform`, with any overrides applied and validated.

    Raises ConfigError for a platform no adapter speaks, and pydantic's ValidationError for
    an override a policy cannot take (settings turns it into a sentence naming the field).
    """
    try:
        base = spec_for(platform).policy
    except KeyError as error:
        raise ConfigError(str(error.args[0])) from None
    change = (overrides or {}).get(platform)
    if not change:
        return base
    return PlatformPolicy.model_validate({**base.model_dump(), **change})
