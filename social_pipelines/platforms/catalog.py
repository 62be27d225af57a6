"""Every platform the project speaks: one line per adapter module.

What the rest of the project learns about platforms (account models, policy rows,
capabilities) is read from here; only the resilience layer connects to one
(`platforms/registry.py`), so nothing reaches a platform around the breaker.
"""

from __future__ import annotations

from typing import Annotated, Any, Union

from pydantic import Field, TypeAdapter

from social_pipelines.platforms import mastodon
from social_pipelines.platforms.capabilities import PlatformSpec

SPECS: dict[str, PlatformSpec] = {
    spec.name: spec
    for spec in (
        mastodon.SPEC,  # add a platform: its module, and its SPEC on a line here
    )
}


def spec_for(platform: str) -> PlatformSpec:
    try:
        return SPECS[platform]
    except KeyError:
        raise KeyError(
            f"no adapter for platform {platform!r}; available: {', '.join(sorted(SPECS))}"
        ) from None


def _account_union() -> Any:
    models = tuple(spec.account_model for spec in SPECS.values())
    if len(models) == 1:
        return models[0]
    # A tagged union on `platform`: an entry is validated against its own platform only.
    return Annotated[Union[models], Field(discriminator="platform")]  # noqa: UP007


# Validates one accounts-file entry into its platform's own model.
ACCOUNT: TypeAdapter[Any] = TypeAdapter(_account_union())
