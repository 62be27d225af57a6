"""Previews for the CLI: one file per platform target, to look at before a post goes out.

Every Instagram variant is written when `instagram` is named (the author picks one for
the post); other platforms have one target each.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from social_pipelines.media.renderer import render_for_targets
from social_pipelines.media.source import load_source
from social_pipelines.media.spec import MediaSpec
from social_pipelines.media.targets import spec_for, variants


def preview_specs(platforms: Sequence[str]) -> list[MediaSpec]:
    """The specs previews cover: each platform's variants (unknown names: `ConfigError`)."""
    return [spec_for(name, variant) for name in platforms for variant in variants(name)]


def write_previews(
    location: str, platforms: Sequence[str], out_dir: Path, *, base_dir: Path | None = None
) -> list[Path]:
    """Render `location` for every target of `platforms` (one decode) and write
    `<stem>.<platform>[-<variant>].<ext>` files into `out_dir`; returns their paths."""
    specs = preview_specs(platforms)  # before reading anything: a typo fails at once
    source = load_source(location, base_dir=base_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths: list[Path] = []
    for rendering in render_for_targets(source, specs):
        path = out_dir / f"{source.stem}.{rendering.spec.name}.{rendering.extension}"
        path.write_bytes(rendering.data)
        paths.append(path)
    return paths
