"""The one table of image targets per platform, each figure with its source.

Sources are the project's reference (`/work/shared/reference/platforms.md`, cited by
section) and, where it says unconfirmed, what we chose and why. Limits a platform reads out
at run time (Mastodon's `/api/v2/instance`) may be tighter on a given server: these are the
defaults.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from social_pipelines.errors import ConfigError
from social_pipelines.media.spec import MediaSpec

MB = 1_000_000
MIB = 1024 * 1024

# Instagram accepts 4:5 (0.8) to 1.91:1 [platforms.md §6.4: Meta's media requirements].
INSTAGRAM_MIN_ASPECT = 4 / 5
INSTAGRAM_MAX_ASPECT = 1.91

_SPECS: Mapping[str, Mapping[str | None, MediaSpec]] = MappingProxyType(
    {
        # Mastodon [§3.4, Instance.md]: image_size_limit 16,777,216 bytes, image_matrix_limit
        # 33,177,600 pixels. The matrix would allow 8K, but the server re-scales originals
        # to 8,294,400 pixels (3840x2160; IMAGE_STYLES original in media_attachment.rb, seen
        # in third-party copies of it, unconfirmed against upstream): anything larger only
        # costs upload time. So: 4096 long edge and that pixel count.
        "mastodon": {
            None: MediaSpec(
                platform="mastodon",
                max_long_edge=4096,
                max_pixels=8_294_400,
                max_bytes=16 * MIB,
                png_allowed=True,
            )
        },
        # Bluesky [§2.4, lexicon app/bsky/embed/images.json]: maxSize 1,000,000 bytes per
        # image, no dimension limit. Long edge 2000: what the official app sends
        # (POST_IMG_MAX = {width: 2000, height: 2000, size: 1000000} in social-app's
        # src/lib/constants.ts, seen in forks of it; unconfirmed against upstream HEAD).
        "bluesky": {
            None: MediaSpec(
                platform="bluesky",
                max_long_edge=2000,
                max_bytes=1_000_000,
                png_allowed=True,
                min_quality=40,
            )
        },
        # X [§1.4, best-practices.mdx]: JPG/PNG/GIF/WEBP, image <= 5 MB. No documented
        # dimension limit for stills (unconfirmed): 4096 long edge, what X itself serves
        # as its largest ("4096x4096") size.
        "x": {
            None: MediaSpec(platform="x", max_long_edge=4096, max_bytes=5 * MB, png_allowed=True)
        },
        # Instagram [§6.4]: aspect 4:5..1.91:1 (Meta); 8 MB and width 320..1440 (third-party,
        # unconfirmed); JPEG the only format widely cited for publishing (unconfirmed), so
        # JPEG only. Width 1080: Instagram's own feed size.
        "instagram": {
            None: MediaSpec(
                platform="instagram",
                max_width=1080,
                min_aspect=INSTAGRAM_MIN_ASPECT,
                max_aspect=INSTAGRAM_MAX_ASPECT,
                max_bytes=8 * MB,
            ),
            "square": MediaSpec(
                platform="instagram",
                variant="square",
                max_width=1080,
                max_height=1080,
                min_aspect=1.0,
                max_aspect=1.0,
                max_bytes=8 * MB,
            ),
            "portrait": MediaSpec(
                platform="instagram",
                variant="portrait",
                max_width=1080,
                max_height=1350,
                min_aspect=INSTAGRAM_MIN_ASPECT,
                max_aspect=INSTAGRAM_MIN_ASPECT,
                max_bytes=8 * MB,
            ),
            # 1080x566 exactly (1.908:1, inside the 1.91 bound): 1.91 itself gives 565.4.
            "landscape": MediaSpec(
                platform="instagram",
                variant="landscape",
                max_width=1080,
                max_height=566,
                min_aspect=1080 / 566,
                max_aspect=1080 / 566,
                max_bytes=8 * MB,
            ),
        },
        # LinkedIn [§4.4, third-party, unconfirmed primary]: JPG/GIF/PNG, < 36,152,320 pixels,
        # 5 MB (another third party says 8 MB: the lower one).
        "linkedin": {
            None: MediaSpec(
                platform="linkedin",
                max_long_edge=4096,
                max_pixels=36_152_320 - 1,
                max_bytes=5 * MB,
                png_allowed=True,
            )
        },
        # Facebook Pages [§5.4]: size and format limits unconfirmed. Conservative choices:
        # 4 MB and JPEG only (older Graph API photo docs, from memory, said 4 MB and PNG
        # under 1 MB: unconfirmed), 2048 long edge (the largest size Facebook displays,
        # unconfirmed).
        "facebook": {None: MediaSpec(platform="facebook", max_long_edge=2048, max_bytes=4 * MB)},
    }
)


def platforms() -> tuple[str, ...]:
    """Every platform with an image target, sorted."""
    return tuple(sorted(_SPECS))


def variants(platform: str) -> tuple[str | None, ...]:
    """A platform's variants, the default (`None`) first."""
    table = _table(platform)
    return (None, *sorted(name for name in table if name is not None))


def spec_for(platform: str, variant: str | None = None) -> MediaSpec:
    """The image target of a platform (and variant); `ConfigError` names what is allowed."""
    table = _table(platform)
    if variant not in table:
        allowed = ", ".join(sorted(name for name in table if name is not None)) or "none"
        raise ConfigError(
            f"unknown image variant {variant!r} for platform {platform!r}; allowed: {allowed}"
        )
    return table[variant]


def _table(platform: str) -> Mapping[str | None, MediaSpec]:
    table = _SPECS.get(platform)
    if table is None:
        raise ConfigError(
            f"unknown platform {platform!r} for images; allowed: {', '.join(platforms())}"
        )
    return table
