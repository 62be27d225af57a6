"""Known secret values replaced by `***` in log records: belt and braces.

Nothing the project logs is meant to carry a credential (tokens go in headers, errors keep
a summary of what the platform said, never a request header), and the secret test looks
for every credential in every log. This filter is the second guard, for what nobody
foresaw: a platform that echoes a token in an error page, a URL someone signed with a key.

It changes the record in place, so handlers after the one it sits on see the redacted text
too, and formats `msg % args` once (a secret may hide in either).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable

MASK = "***"
# Shorter values are not credentials worth the name, and masking them would garble text.
MIN_SECRET_LENGTH = 6
# Query parameters that carry a credential when a URL is signed (S3's X-Amz-Signature,
# GCS's X-Goog-Signature, Azure's sig, a bearer in `access_token=`): their values are
# masked wherever a URL is logged.
_SIGNED_QUERY = re.compile(
    r"(?i)([?&](?:[\w.-]*(?:signature|sig|token|secret|password|credential|api[_-]?key))=)"
    r"[^&#\s\"']*"
)


def mask_signed_query(text: str) -> str:
    """`https://h/p?X-Amz-Signature=abc&x=1` -> `https://h/p?X-Amz-Signature=***&x=1`."""
    return _SIGNED_QUERY.sub(lambda m: m.group(1) + MASK, text)


class RedactSecrets(logging.Filter):
    """Masks every known secret value (and signed-URL query values) in a record's message
    and exception text. Never drops a record."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        self._secrets: tuple[str, ...] = ()
        self.add(secrets)

    @property
    def secrets(self) -> tuple[str, ...]:
        return self._secrets

    def add(self, secrets: Iterable[str]) -> None:
        """More values to mask (longest first, so a secret inside another goes whole)."""
        known = set(self._secrets) | {s for s in secrets if len(s) >= MIN_SECRET_LENGTH}
        self._secrets = tuple(sorted(known, key=len, reverse=True))

    def redact(self, text: str) -> str:
        for secret in self._secrets:
            if secret in text:
                text = text.replace(secret, MASK)
        return mask_signed_query(text)

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = self.redact(message)
        if redacted != message or record.args:
            record.msg, record.args = redacted, ()
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self.redact(record.exc_text)
        meta = getattr(record, "dagster_meta", None)
        if isinstance(meta, dict) and isinstance(meta.get("orig_message"), str):
            # A Dagster record: its message as the op logged it is kept beside `msg`.
            record.dagster_meta = {**meta, "orig_message": self.redact(meta["orig_message"])}
        return True
