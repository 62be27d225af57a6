from __future__ import annotations

from PIL import Image

from social_pipelines.media import (
    RenderCache,
    RenderStats,
    render_for_targets,
    spec_for,
    write_previews,
)
from social_pipelines_tests.media.images import jpeg_with_exif, noisy_photo

SPECS = [spec_for("x"), spec_for("instagram", "square"), spec_for("bluesky")]


def test_second_call_renders_nothing(tmp_path):
    data = jpeg_with_exif(noisy_photo(1200, 900, sigma=20), orientation=6)
    cache = RenderCache(tmp_path / "cache")
    first = RenderStats()
    rendered = render_for_targets(data, SPECS, cache=cache, stats=first)
    assert (first.decodes, first.rendered, first.cache_hits) == (1, 3, 0)
    again = RenderStats()
    cached = render_for_targets(data, SPECS, cache=cache, stats=again)
    assert (again.decodes, again.rendered, again.encodes, again.cache_hits) == (0, 0, 0, 3)
    assert all(c.from_cache for c in cached)
    assert [(c.data, c.width, c.height, c.mime_type, c.quality) for c in cached] == [
        (r.data, r.width, r.height, r.mime_type, r.quality) for r in rendered
    ]
    assert not list((tmp_path / "cache").glob(".tmp-*"))


def test_one_missing_spec_decodes_once_for_it_alone(tmp_path):
    data = jpeg_with_exif(noisy_photo(1200, 900, sigma=20))
    cache = RenderCache(tmp_path)
    render_for_targets(data, SPECS[:2], cache=cache)
    stats = RenderStats()
    render_for_targets(data, SPECS, cache=cache, stats=stats)
    assert (stats.decodes, stats.rendered, stats.cache_hits) == (1, 1, 2)


def test_damaged_entry_is_rendered_again(tmp_path):
    data = jpeg_with_exif(noisy_photo(300, 200))
    cache = RenderCache(tmp_path)
    (first,) = render_for_targets(data, SPECS[:1], cache=cache)
    cache.path(first.source_hash, SPECS[0]).write_bytes(b'{"bytes": 3}\nabcdef')
    stats = RenderStats()
    (again,) = render_for_targets(data, SPECS[:1], cache=cache, stats=stats)
    assert stats.rendered == 1 and again.data == first.data


def test_write_previews(tmp_path):
    source = tmp_path / "beach.jpg"
    source.write_bytes(jpeg_with_exif(noisy_photo(1600, 900, sigma=20)))
    paths = write_previews(str(source), ["bluesky", "instagram"], tmp_path / "out")
    assert [p.name for p in paths] == [
        "beach.bluesky.jpg",
        "beach.instagram.jpg",
        "beach.instagram-landscape.jpg",
        "beach.instagram-portrait.jpg",
        "beach.instagram-square.jpg",
    ]
    assert Image.open(paths[-1]).size == (900, 900)
