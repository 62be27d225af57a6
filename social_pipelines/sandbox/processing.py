"""Media that is still processing, as Mastodon answers while it transcodes an upload.

Off by default (every upload is processed at once, `200` with its URL). With
`processing_seconds` N > 0, each new upload is ready N seconds after it arrived: until then
`POST /api/v2/media` answers `202` with `url: null`, `GET /api/v1/media/:id` answers `206`,
and a status naming it is refused with Mastodon's 422. The time an upload becomes ready is
stored with it, so a later change of the setting does not move uploads already made. The
setting is persisted (it survives restarts) like the other switches.
"""

from __future__ import annotations

import math

from social_pipelines.sandbox.db import Database

SETTING = "media"
# Longer than any test or demo needs; a typo of hours would look like a hung server.
MAX_PROCESSING_SECONDS = 3600.0
NOT_FINISHED = "Cannot attach files that have not finished processing. Try again in a moment!"


class InvalidProcessing(ValueError):
    pass


def parse_seconds(value: object) -> float:
    """`processing_seconds` from JSON or the command line: a number from 0 to an hour."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidProcessing("processing_seconds must be a number of seconds")
    seconds = float(value)
    if not math.isfinite(seconds) or not 0 <= seconds <= MAX_PROCESSING_SECONDS:
        raise InvalidProcessing(
            f"processing_seconds must be from 0 (off) to {MAX_PROCESSING_SECONDS:g}"
        )
    return seconds


class MediaProcessing:
    def __init__(self, db: Database, *, seconds: float | None = None) -> None:
        """`seconds=None` keeps what the database remembers (default: 0, off); a value is
        applied and stored, and is what `reset` returns to."""
        self.db = db
        stored = db.get_setting(SETTING)
        if seconds is None:
            seconds = float(stored.get("processing_seconds", 0.0)) if stored else 0.0
        self.startup_seconds = seconds
        self.seconds = seconds
        if stored is None or stored.get("processing_seconds") != seconds:
            self.configure(seconds)

    def configure(self, seconds: float) -> None:
        """Uploads from now on take `seconds` to process (0: none); persisted."""
        self.seconds = seconds
        with self.db.transaction():
            self.db.set_setting(SETTING, {"processing_seconds": seconds})

    def to_json(self) -> dict[str, float]:
        return {"processing_seconds": self.seconds}

    def ready_at(self, uploaded_ms: int) -> int | None:
        """When an upload made now is processed (None: at once)."""
        if self.seconds <= 0:
            return None
        return uploaded_ms + math.ceil(self.seconds * 1000)
