"""Rendering a post's images to each platform's spec, with Pillow, in plain Python.

`load_source` reads the bytes (a local path or an https URL, capped), `spec_for` names a
platform's target, `render_for_targets` decodes a source once for all its targets and
returns one `Rendering` each (upright, sRGB, metadata stripped, under the byte cap),
optionally through a `RenderCache`. Every problem with an image is a `MediaError`.
"""

from social_pipelines.errors import MediaError
from social_pipelines.media.cache import RenderCache
from social_pipelines.media.preview import write_previews
from social_pipelines.media.renderer import Rendering, render, render_for_targets
from social_pipelines.media.source import ImageSource, load_source
from social_pipelines.media.spec import RENDERER_VERSION, MediaSpec
from social_pipelines.media.stats import RenderStats
from social_pipelines.media.targets import platforms, spec_for, variants

__all__ = [
    "RENDERER_VERSION",
    "ImageSource",
    "MediaError",
    "MediaSpec",
    "RenderCache",
    "RenderStats",
    "Rendering",
    "load_source",
    "platforms",
    "render",
    "render_for_targets",
    "spec_for",
    "variants",
    "write_previews",
]
