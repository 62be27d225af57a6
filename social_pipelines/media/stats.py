"""Counters of the work a render did, so a caller (or a test) can see what was skipped.

Passed in by the caller and added to, never global: two renders in one process (or two
tests) never mix their counts.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class RenderStats:
    """What `render_for_targets` did: `decodes` counts sources decoded (once per call at
    most), `rendered` targets resized and encoded, `cache_hits` targets read from the
    cache instead, `encodes` every encoder run (the quality search tries several), and
    `draft_scale` the last JPEG draft reduction (1, 2, 4 or 8)."""

    decodes: int = 0
    rendered: int = 0
    cache_hits: int = 0
    encodes: int = 0
    draft_scale: int = 1
