"""Gauges read at a moment: documents by status and the ingest queue's backlog.

Counters come from the units of work; these two are states, so they are read, not counted: at the
edge by the gateway's cron (:func:`write_gauges`, one ``gauge`` data point per reading, every 15
minutes), locally by ``GET /metrics`` at scrape time (:func:`document_counts`, the broker's backlog).

The backlog comes from the queue binding's ``metrics()`` (``{backlogCount, backlogBytes,
oldestMessageTimestamp}``), which workerd added to producer bindings in 2026 (UNCONFIRMED on every
account); where it is missing the reading is skipped, and the Queues dashboard (GraphQL
``queueBacklogAdaptiveGroups``) remains the source.
"""

from __future__ import annotations

import logging
from typing import Any

from edgerag.convert import to_py
from edgerag.observability.metrics import gauge_point, metrics_dataset, write_point
from edgerag.ports import D1Database
from edgerag.store.d1 import fetch_all

__all__ = ["MAX_GAUGE_POINTS", "document_counts", "queue_backlog", "write_gauges"]

log = logging.getLogger("edgerag.metrics")

# Analytics Engine takes at most 250 data points per invocation; leave room for the tick's own point.
MAX_GAUGE_POINTS = 200


async def document_counts(db: D1Database) -> dict[tuple[str, str], int]:
    """``{(tenant_id, status): documents}`` over every tenant (one grouped read)."""
    rows = await fetch_all(
        db, "SELECT tenant_id, status, COUNT(*) AS n FROM documents GROUP BY tenant_id, status ORDER BY 1, 2"
    )
    return {(str(r["tenant_id"]), str(r["status"])): int(r["n"]) for r in rows}


async def queue_backlog(queue: Any) -> int | None:
    """Messages waiting in ``queue`` (delayed and in-flight ones included), or None if unknown."""
    reader = getattr(queue, "metrics", None)
    if not callable(reader):
        return None
    try:
        reading = to_py(await reader())
        return int(reading["backlogCount"])
    except Exception:  # a reading that fails is a gap in the graph, not an error
        log.warning("the queue backlog could not be read", exc_info=True)
        return None


async def write_gauges(env: Any, worker: str = "gateway") -> int:
    """Write the gauges' data points to ``env.METRICS``; returns how many were written."""
    dataset = metrics_dataset(env)
    if dataset is None:
        return 0
    points = [
        gauge_point(worker, "documents", status, n, tenant)
        for (tenant, status), n in (await document_counts(env.DB)).items()
    ]
    if len(points) > MAX_GAUGE_POINTS:
        log.warning("documents gauge cut to %d of %d points", MAX_GAUGE_POINTS, len(points))
        points = points[:MAX_GAUGE_POINTS]
    backlog = await queue_backlog(getattr(env, "INGEST_QUEUE", None))
    if backlog is not None:
        points.append(gauge_point(worker, "queue_depth", "ingest", backlog, None))
    return sum(1 for point in points if write_point(dataset, point))
