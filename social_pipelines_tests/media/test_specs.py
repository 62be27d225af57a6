from __future__ import annotations

import pytest

from social_pipelines.errors import ConfigError
from social_pipelines.media import MediaSpec, spec_for, variants
from social_pipelines.media.geometry import plan


def test_every_platform_has_a_spec():
    for name in ("mastodon", "bluesky", "x", "instagram", "linkedin", "facebook"):
        spec = spec_for(name)
        assert spec.platform == name
        assert spec.variant is None
    assert spec_for("bluesky").max_bytes == 1_000_000
    assert spec_for("mastodon").max_bytes == 16 * 1024 * 1024
    assert variants("instagram") == (None, "landscape", "portrait", "square")


def test_unknown_platform_and_variant_name_what_is_allowed():
    with pytest.raises(ConfigError, match=r"'myspace'.*allowed: bluesky, facebook, instagram"):
        spec_for("myspace")
    with pytest.raises(ConfigError, match=r"'wide'.*'instagram'.*landscape, portrait, square"):
        spec_for("instagram", "wide")
    with pytest.raises(ConfigError, match=r"'square'.*'x'.*allowed: none"):
        spec_for("x", "square")


def test_spec_is_hashable_and_fingerprint_deterministic():
    a = spec_for("x")
    b = MediaSpec.model_validate_json(a.model_dump_json())
    assert a == b and hash(a) == hash(b)
    assert a.fingerprint == b.fingerprint
    assert a.fingerprint != a.model_copy(update={"max_bytes": 4_000_000}).fingerprint
    assert len({spec_for("instagram", v).fingerprint for v in variants("instagram")}) == 4


def test_spec_refuses_inconsistent_ranges():
    with pytest.raises(ValueError, match="min_aspect"):
        MediaSpec(platform="p", max_bytes=10_000, min_aspect=2, max_aspect=1)


@pytest.mark.parametrize(
    ("variant", "source", "expected"),
    [
        ("square", (4000, 3000), (1080, 1080)),
        ("portrait", (4000, 3000), (1080, 1350)),
        ("landscape", (4000, 3000), (1080, 566)),
        (None, (3000, 1000), (1080, 566)),  # 3:1 panorama cropped to 1.91:1
        (None, (1000, 3000), (1000, 1250)),  # 1:3 tall image cropped to 4:5, never grown
        (None, (2000, 1500), (1080, 810)),  # inside the range: aspect kept
    ],
)
def test_instagram_plans(variant, source, expected):
    result = plan(spec_for("instagram", variant), *source)
    assert (result.width, result.height) == expected


def test_limits_of_long_edge_and_pixels():
    assert (plan(spec_for("x"), 8000, 2000).width, plan(spec_for("x"), 8000, 2000).height) == (
        4096,
        1024,
    )
    mastodon = plan(spec_for("mastodon"), 4032, 3024)
    assert mastodon.width * mastodon.height <= 8_294_400
    assert plan(spec_for("bluesky"), 100, 50).region == (0.0, 0.0, 1.0, 1.0)
