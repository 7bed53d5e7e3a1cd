"""The local Workers KV binding.

- :mod:`.binding`: the ``KVNamespace`` binding, its limits and expiry;
- :mod:`.errors`: ``KV <OP> failed`` messages.
"""

from __future__ import annotations

from .binding import (
    KVLimits,
    LocalKVNamespace,
)
from .errors import (
    KVError,
)

__all__ = [
    "KVError",
    "KVLimits",
    "LocalKVNamespace",
]
