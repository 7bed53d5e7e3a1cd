"""A tenant's usage per UTC day: model calls per model (``llm_calls``, written by dedalus) and the
gateway's counters (``usage_counters``, :mod:`edgerag.counters`).

Two grouped, tenant-filtered, index-backed queries over the date range, merged in Python; days with
nothing to report are left out. To report a new counter: add it to :class:`DayUsage` and to
:func:`_apply_counter`.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from edgerag.ports import D1Database
from edgerag.store.d1 import fetch_all

__all__ = ["CacheCounts", "DayUsage", "ModelUsage", "usage_report"]


@dataclass
class ModelUsage:
    model: str
    calls: int = 0
    failed_calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_prompt_tokens: int = 0
    cost_micro_usd: int = 0


@dataclass
class CacheCounts:
    hits: int = 0
    misses: int = 0


@dataclass
class DayUsage:
    date: str
    requests: int = 0
    rate_limited: int = 0
    models: list[ModelUsage] = field(default_factory=list)
    cache: dict[str, CacheCounts] = field(default_factory=dict)


def _apply_counter(day: DayUsage, name: str, value: int) -> None:
    if name == "requests":
        day.requests += value
    elif name == "rate_limited":
        day.rate_limited += value
    elif name.startswith(("cache_hit:", "cache_miss:")):
        outcome, kind = name.split(":", 1)
        counts = day.cache.setdefault(kind, CacheCounts())
        if outcome == "cache_hit":
            counts.hits += value
        else:
            counts.misses += value


async def usage_report(db: D1Database, tenant_id: str, start: dt.date, end: dt.date) -> list[DayUsage]:
    """Usage on each day from ``start`` to ``end`` inclusive (UTC), oldest first."""
    after_end = (end + dt.timedelta(days=1)).isoformat()
    days: dict[str, DayUsage] = {}

    def day_of(date: str) -> DayUsage:
        return days.setdefault(date, DayUsage(date))

    calls = await fetch_all(
        db,
        "SELECT substr(created_at, 1, 10) AS day, model, count(*) AS calls,"
        " sum(status != 'ok') AS failed, sum(prompt_tokens) AS prompt,"
        " sum(completion_tokens) AS completion, sum(cached_prompt_tokens) AS cached,"
        " sum(cost_micro_usd) AS cost FROM llm_calls"
        " WHERE tenant_id = ?1 AND created_at >= ?2 AND created_at < ?3"
        " GROUP BY day, model ORDER BY day, model",
        tenant_id,
        start.isoformat(),
        after_end,
    )
    for row in calls:
        day_of(row["day"]).models.append(
            ModelUsage(
                model=row["model"],
                calls=int(row["calls"]),
                failed_calls=int(row["failed"] or 0),
                prompt_tokens=int(row["prompt"] or 0),
                completion_tokens=int(row["completion"] or 0),
                cached_prompt_tokens=int(row["cached"] or 0),
                cost_micro_usd=int(row["cost"] or 0),
            )
        )
    counters = await fetch_all(
        db,
        "SELECT substr(hour, 1, 10) AS day, name, sum(value) AS value FROM usage_counters"
        " WHERE tenant_id = ?1 AND hour >= ?2 AND hour < ?3 GROUP BY day, name ORDER BY day, name",
        tenant_id,
        start.isoformat(),
        after_end,
    )
    for row in counters:
        _apply_counter(day_of(row["day"]), row["name"], int(row["value"] or 0))
    return [days[date] for date in sorted(days)]
