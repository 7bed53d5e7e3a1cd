"""The local Workers rate-limit binding (``env.LIMITER.limit({key})``).

- :mod:`.binding`: the binding and its windows; :mod:`.errors`: refused calls and configs.
"""

from __future__ import annotations

from .binding import (
    PERIODS,
    LocalRateLimit,
    RateLimitNamespace,
)
from .errors import RateLimitConfigError, RateLimitError

__all__ = [
    "PERIODS",
    "LocalRateLimit",
    "RateLimitConfigError",
    "RateLimitError",
    "RateLimitNamespace",
]
