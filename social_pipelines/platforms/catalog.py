"""Every platform the project speaks: one line per adapter module.

What the rest of the project learns about platforms (account models, policy rows,
capabilities) is read from here; only the resilience layer connects to one
(`platforms/registry.py`), so nothing reaches a platform around the breaker.
"""

from __future__ import annotations

from social_pipelines.platforms import bluesky, mastodon, x
from social_pipelines.platforms.capabilities import PlatformSpec

SPECS: dict[str, PlatformSpec] = {
    spec.name: spec
    for spec in (
        mastodon.SPEC,  # add a platform: its module, and its SPEC on a line here
        bluesky.SPEC,
        x.SPEC,
    )
}


def spec_for(platform: str) -> PlatformSpec:
    try:
        return SPECS[platform]
    except KeyError:
        raise KeyError(
            f"no adapter for platform {platform!r}; available: {', '.join(sorted(SPECS))}"
        ) from None
