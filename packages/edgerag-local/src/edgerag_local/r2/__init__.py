"""The local R2 binding and R2's S3-compatible presigned URLs.

- :mod:`.binding`: the ``R2Bucket`` binding; :mod:`.object`: ``R2Object``/``R2ObjectBody``;
- :mod:`.store`: objects on disk; :mod:`.validate`: argument and limit checks;
- :mod:`.presigned`: presigned PUT/GET served on loopback (SigV4, expiry, length);
- :mod:`.errors`: R2's error messages.
"""

from __future__ import annotations

from .binding import (
    LocalR2Bucket,
    R2Checksums,
    R2Limits,
    R2Object,
    R2ObjectBody,
)
from .errors import (
    R2Error,
)

__all__ = [
    "LocalR2Bucket",
    "R2Checksums",
    "R2Error",
    "R2Limits",
    "R2Object",
    "R2ObjectBody",
]
