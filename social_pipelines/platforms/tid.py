"""AT Protocol timestamp identifiers (TIDs), and the one a delivery's post is created under.

A TID is a 64-bit integer (top bit 0, 53 bits of microseconds since the UNIX epoch, a
10-bit clock identifier) written in base32-sortable (`234567abcdefghijklmnopqrstuvwxyz`),
always 13 characters [atproto-website: specs/tid]. `app.bsky.feed.post` records are keyed
by TIDs, and a client may choose the key: `tid_for` derives it from the delivery, so every
attempt of one delivery, in any process on any machine, creates the same record key, and a
second create collides instead of posting twice (platforms.md §2.5).
"""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, datetime, timedelta

ALPHABET = "234567abcdefghijklmnopqrstuvwxyz"
LENGTH = 13
# The spec's reference regex: the first character carries the top bits (the high bit 0).
TID_PATTERN = re.compile(r"^[234567abcdefghij][234567abcdefghijklmnopqrstuvwxyz]{12}$")
CLOCK_BITS = 10
TIMESTAMP_BITS = 53
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_SECOND = 1_000_000  # microseconds


def encode(value: int) -> str:
    """`value` (0 <= value < 2**63) as 13 base32-sortable characters."""
    if not 0 <= value < 1 << 63:
        raise ValueError(f"a TID is a 63-bit non-negative integer, not {value}")
    digits = []
    for _ in range(LENGTH):
        value, digit = divmod(value, 32)
        digits.append(ALPHABET[digit])
    return "".join(reversed(digits))


def decode(tid: str) -> int:
    """The integer of a valid TID (`ValueError` for anything else)."""
    if not TID_PATTERN.match(tid):
        raise ValueError(f"{tid!r} is not a TID")
    value = 0
    for char in tid:
        value = value * 32 + ALPHABET.index(char)
    return value


def is_tid(value: str) -> bool:
    return bool(TID_PATTERN.match(value))


def make(microseconds: int, clock_id: int) -> str:
    """The TID of a timestamp (microseconds since the epoch) and a clock identifier."""
    if not 0 <= microseconds < 1 << TIMESTAMP_BITS:
        raise ValueError(f"timestamp {microseconds} does not fit a TID's 53 bits")
    if not 0 <= clock_id < 1 << CLOCK_BITS:
        raise ValueError(f"clock id {clock_id} does not fit a TID's 10 bits")
    return encode(microseconds << CLOCK_BITS | clock_id)


def timestamp(tid: str) -> datetime:
    """When a TID says it was made (its microseconds, UTC)."""
    return _EPOCH + timedelta(microseconds=decode(tid) >> CLOCK_BITS)


def clock_id(tid: str) -> int:
    return decode(tid) & ((1 << CLOCK_BITS) - 1)


def tid_for(delivery_id: str, planned_at: datetime) -> str:
    """The record key of a delivery's post: the same for every attempt, everywhere.

    The timestamp is the plan time's whole seconds (the ledger's, fixed at plan time; only
    its seconds, so a store that keeps less precision, or a round trip through a string,
    gives the same key) plus a sub-second offset, and the clock identifier, both from a hash
    of the delivery id: two deliveries planned in the same second get different keys (a
    collision needs the same 30 hash bits). A naive `planned_at` is taken as UTC.
    """
    when = planned_at if planned_at.tzinfo is not None else planned_at.replace(tzinfo=UTC)
    seconds = (when - _EPOCH) // timedelta(seconds=1)
    digest = int.from_bytes(hashlib.sha256(delivery_id.encode("utf-8")).digest()[:8], "big")
    sub_second = (digest >> CLOCK_BITS) % _SECOND
    return make(seconds * _SECOND + sub_second, digest & ((1 << CLOCK_BITS) - 1))
