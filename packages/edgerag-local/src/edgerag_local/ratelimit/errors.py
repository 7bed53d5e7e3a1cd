"""The errors the local rate-limit binding raises: a refused ``limit()`` call and a ``[[ratelimits]]``
table wrangler would refuse."""

from __future__ import annotations

from edgerag_local.core.errors import BindingError

__all__ = ["RateLimitConfigError", "RateLimitError"]


class RateLimitError(BindingError):
    """A ``limit()`` call the binding refuses (missing or non-string key)."""


class RateLimitConfigError(ValueError):
    """A ``[[ratelimits]]`` table that wrangler would refuse; the message names the field."""
