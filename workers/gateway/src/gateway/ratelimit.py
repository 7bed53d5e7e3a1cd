"""The per-tenant request rate limit and the ``Retry-After`` it answers with.

The ``RATE_LIMITER`` binding (``[[ratelimits]]`` in the gateway's wrangler config, ``simple = {limit,
period}``) only answers ``{"success": bool}``: it does not say when its window ends. So the gateway is
told the binding's period (the ``RATE_LIMIT_PERIOD`` var, kept equal to ``simple.period`` by a test
over the configs and by the tenant renderer) and computes ``Retry-After`` as the whole seconds until
the current window ends, for windows aligned to the epoch (``floor(now / period)``), which is how
miniflare and the local emulator count them: ``ceil(period - now % period)``, between 1 and
``period``. The edge's counters are per location and eventually consistent, so this is the honest
best estimate, never more than one period.

To change the limit itself, change the binding (and the tenant files' ``[rate_limits]``), not this.
"""

from __future__ import annotations

import math
from typing import Any

from edgerag.problems import RateLimited

__all__ = ["enforce_rate_limit", "seconds_until_window_end"]


def seconds_until_window_end(period: int, now: float) -> int:
    """Whole seconds (rounded up, so waiting them is enough) until the ``period`` window ends."""
    if period <= 0:
        raise ValueError("period must be positive")
    return max(1, math.ceil(period - now % period))


async def enforce_rate_limit(limiter: Any, key: str, *, period: int, now: float) -> None:
    """Count one request for ``key``; raise :class:`RateLimited` (429) if the binding refuses it."""
    outcome = await limiter.limit({"key": key})
    if not outcome["success"]:
        raise RateLimited(
            f"the tenant's request rate limit is exceeded; the window resets in "
            f"{seconds_until_window_end(period, now)} s",
            retry_after=seconds_until_window_end(period, now),
        )
