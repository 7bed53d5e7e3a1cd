"""Identifiers: time-sortable random ids for new objects, deterministic ids for derived ones.

:func:`new_id` gives ``<prefix>_`` + 26 characters in the ULID layout (48-bit Unix milliseconds, then
80 random bits) written in lower-case Crockford base32. The alphabet is in ASCII order, so ids sort by
creation time as plain strings (D1 ``ORDER BY id``, R2 listings), and 80 random bits make a collision
within one millisecond negligible. Time and randomness are read at call time only: Python Workers
snapshot module state at deploy, so anything drawn at import would be shared by every isolate.

:func:`chunk_id` derives a chunk's id from its document and position, so a redelivered ingest message
rewrites the same chunks and vectors instead of adding duplicates. Chunk ids double as Vectorize ids;
:func:`vector_id` guarantees Vectorize's 64-byte limit for any input (ids made here always fit as is).

To add an id kind: pick a short lower-case prefix ("doc", "key", "tnt") and call :func:`new_id`.
"""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
import time
from collections.abc import Callable

__all__ = ["MAX_VECTOR_ID_BYTES", "chunk_id", "new_id", "vector_id"]

MAX_VECTOR_ID_BYTES = 64  # Vectorize's limit on vector ids
_CROCKFORD = "0123456789abcdefghjkmnpqrstvwxyz"
_PREFIX = re.compile(r"^[a-z][a-z0-9]{0,15}$")
_TIME_BITS, _RANDOM_BITS = 48, 80


def new_id(
    prefix: str,
    *,
    clock: Callable[[], float] = time.time,
    randbits: Callable[[int], int] = secrets.randbits,
) -> str:
    """``<prefix>_`` + 10 time characters + 16 random characters, e.g. ``doc_01jd4q8m2x...``.

    ``clock`` (seconds since the epoch) and ``randbits`` are injectable for tests.
    """
    if not _PREFIX.match(prefix):
        raise ValueError(f"id prefix must be 1-16 lower-case letters or digits, first a letter: {prefix!r}")
    millis = int(clock() * 1000)
    if not 0 <= millis < 1 << _TIME_BITS:
        raise ValueError(f"clock value out of the 48-bit millisecond range: {millis}")
    return f"{prefix}_{_base32(millis, 10)}{_base32(randbits(_RANDOM_BITS), 16)}"


def chunk_id(document_id: str, seq: int) -> str:
    """The id of chunk ``seq`` of ``document_id``: ``"<document_id>:<seq>"``, the same on every retry."""
    if not document_id:
        raise ValueError("document_id must not be empty")
    if isinstance(seq, bool) or not isinstance(seq, int) or seq < 0:
        raise ValueError(f"seq must be an int >= 0, got {seq!r}")
    return f"{document_id}:{seq}"


def vector_id(item_id: str) -> str:
    """``item_id`` if it fits Vectorize's 64-byte id limit, else a deterministic digest of it.

    The digest form is ``"h:" + 52 base32 characters of SHA-256`` (54 bytes). It cannot be turned back
    into the item id, so a caller that may exceed the limit must store the mapping (e.g. in D1).
    """
    if len(item_id.encode("utf-8")) <= MAX_VECTOR_ID_BYTES:
        return item_id
    digest = hashlib.sha256(item_id.encode("utf-8")).digest()
    return "h:" + base64.b32encode(digest).decode("ascii").rstrip("=").lower()


def _base32(value: int, length: int) -> str:
    chars = []
    for _ in range(length):
        chars.append(_CROCKFORD[value & 31])
        value >>= 5
    return "".join(reversed(chars))
