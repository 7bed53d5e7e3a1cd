"""The gateway's cron triggers (``[triggers] crons`` in its wrangler config): periodic upkeep.

``entry.py``'s ``scheduled`` handler calls :func:`handle_scheduled` with the trigger's cron
expression and scheduled time. Every job runs on every tick and must be idempotent and bounded (a
tick that fails or is skipped is caught up by the next). To add a job: write it as
``async def job(env, now) -> int`` (what it did, for the log) and list it in :data:`JOBS`.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from edgerag.direct_uploads import sweep_pending_uploads
from edgerag.observability.gauges import write_gauges
from edgerag.settings import load_settings

from gateway.routes.uploads import DirectUploadSettings

__all__ = ["JOBS", "handle_scheduled"]

log = logging.getLogger("edgerag.gateway.cron")


async def sweep_uploads(env: Any, now: datetime) -> int:
    """Pending direct uploads never completed: their R2 objects and D1 rows go."""
    settings = load_settings(DirectUploadSettings, env)
    return await sweep_pending_uploads(env.DB, env.FILES, now=now, grace_seconds=settings.pending_grace)


async def metrics_gauges(env: Any, now: datetime) -> int:
    """Documents by status and the ingest backlog, as Analytics Engine gauge points."""
    return await write_gauges(env)


JOBS: dict[str, Callable[[Any, datetime], Awaitable[int]]] = {
    "sweep_uploads": sweep_uploads,
    "metrics_gauges": metrics_gauges,
}


async def handle_scheduled(env: Any, cron: str, scheduled_time_ms: float) -> dict[str, int]:
    """Run every job for the tick scheduled at ``scheduled_time_ms`` (epoch milliseconds).

    A failing job is logged and re-raised after the others ran, so the platform records the failure.
    """
    now = datetime.fromtimestamp(float(scheduled_time_ms) / 1000, UTC)
    done: dict[str, int] = {}
    failure: Exception | None = None
    for name, job in JOBS.items():
        try:
            done[name] = await job(env, now)
        except Exception as exc:
            log.exception("cron %r: job %s failed", cron, name)
            failure = failure or exc
    if failure is not None:
        raise failure
    return done
