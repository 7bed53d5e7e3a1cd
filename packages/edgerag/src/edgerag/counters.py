"""Per-hour usage counters (``usage_counters``, migration 0007), accumulated per request.

A request adds to a :class:`UsageCounters` in memory (cache hits and misses, a rate-limited refusal)
and the gateway writes it once, at the end of the request, as ONE D1 batch of upserts
(:meth:`UsageCounters.flush`): a request that counted nothing writes nothing, and a request that
counted several things still writes once. That is the honest cost: one D1 write per request that used
a cache or was refused by the burst limiter (none otherwise). Batching across requests in isolate
memory would save writes but lose counts whenever an isolate is evicted, and an isolate may serve
requests for envs it cannot tell apart, so counts are not kept between requests.

The ``requests`` counter is not written here: the plan's hourly limit is enforced by one conditional
upsert of that row (:mod:`edgerag.budgets`), which is also what counts it.

Counter names: ``requests``, ``rate_limited``, ``cache_hit:<kind>``, ``cache_miss:<kind>`` (kinds:
``embedding``, ``search``, ``answer``). To add one: pick a name, ``add`` it, and sum it in
:func:`edgerag.budgets.usage_report`.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections import Counter

from edgerag.ports import D1Database
from edgerag.store.d1 import statement

__all__ = ["UsageCounters", "hour_of"]

log = logging.getLogger("edgerag.counters")


def hour_of(seconds: float) -> str:
    """The UTC hour ``seconds`` falls in, as stored: ``'2026-12-01T20'``."""
    return dt.datetime.fromtimestamp(seconds, dt.UTC).strftime("%Y-%m-%dT%H")


class UsageCounters:
    """Counts of one request, by (tenant, counter name)."""

    def __init__(self) -> None:
        self._counts: Counter[tuple[str, str]] = Counter()

    def add(self, tenant_id: str, name: str, n: int = 1) -> None:
        if n > 0:
            self._counts[(tenant_id, name)] += n

    def snapshot(self) -> dict[tuple[str, str], int]:
        return dict(self._counts)

    async def flush(self, db: D1Database, now: float) -> None:
        """Write the counts into the hour of ``now`` in one batch, then forget them.

        Never raises: losing a request's counters is better than failing the request that has already
        been answered (the failure is logged).
        """
        if not self._counts:
            return
        hour = hour_of(now)
        statements = [
            statement(
                db,
                "INSERT INTO usage_counters (tenant_id, hour, name, value) VALUES (?1, ?2, ?3, ?4)"
                " ON CONFLICT (tenant_id, hour, name) DO UPDATE SET value = value + excluded.value",
                tenant_id,
                hour,
                name,
                n,
            )
            for (tenant_id, name), n in sorted(self._counts.items())
        ]
        self._counts.clear()
        try:
            await db.batch(statements)
        except Exception:
            log.warning("usage counters could not be written", exc_info=True)
