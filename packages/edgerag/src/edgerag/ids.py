"""Identifiers: time-sortable random ids for new objects, deterministic ids for derived ones.

Chunk (and vector) ids derive from (document id, position), so a redelivered ingest message writes the
same ids again instead of duplicates. Vectorize caps ids at 64 bytes; ours stay under 40.
"""

from __future__ import annotations

import secrets
import time

__all__ = ["chunk_id", "new_id"]

_CROCKFORD = "0123456789abcdefghjkmnpqrstvwxyz"


def _base32(value: int, length: int) -> str:
    chars = []
    for _ in range(length):
        chars.append(_CROCKFORD[value & 31])
        value >>= 5
    return "".join(reversed(chars))


def new_id(prefix: str) -> str:
    """``<prefix>_`` + 26 characters: 48-bit millisecond time then 80 random bits (ULID layout)."""
    millis = int(time.time() * 1000)
    return f"{prefix}_{_base32(millis, 10)}{_base32(secrets.randbits(80), 16)}"


def chunk_id(document_id: str, seq: int) -> str:
    if seq < 0:
        raise ValueError("seq must be >= 0")
    return f"{document_id}:{seq}"
