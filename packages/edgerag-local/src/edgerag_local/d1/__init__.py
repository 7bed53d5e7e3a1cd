"""The local D1 binding on SQLite (with FTS5).

- :mod:`.binding`: :class:`LocalD1` and its prepared statements, the ``env.DB`` binding;
- :mod:`.engine`: the SQLite connection D1 statements run on;
- :mod:`.sql`, :mod:`.values`: statement splitting and D1's value conversions;
- :mod:`.limits`: D1's documented limits; :mod:`.errors`: ``D1_ERROR`` messages;
- :mod:`.migrations`: applying ``migrations/*.sql`` as wrangler does.
"""

from __future__ import annotations

from .binding import (
    D1Limits,
    LocalD1Database,
    LocalD1PreparedStatement,
)
from .errors import (
    D1Error,
)

__all__ = [
    "D1Error",
    "D1Limits",
    "LocalD1Database",
    "LocalD1PreparedStatement",
]
