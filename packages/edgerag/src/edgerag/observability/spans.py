"""Span-like records: one log line per step of a unit of work, with its duration.

``async with span("search", mode="hybrid") as s: ...`` writes, when the block ends, a line
``{"event": "span", "span": "search", "duration_ms": ..., "outcome": "ok" | "error", ...}`` carrying
the current observation's worker, request id and tenant, so one request's steps can be found by its
id in every worker. ``s["hits"] = 3`` adds a field on the way (the same redaction rules as every log
line apply). An exception is recorded as ``outcome: "error"`` with its class name — never its text —
and propagates unchanged. Outside an observed unit of work a span still measures and logs (worker
and request id are then null), so library code can open spans unconditionally.

Span names used: ``search``, ``vectorize.query``, ``embed``, ``rerank``, ``model.call``,
``tool.call``, ``d1.batch``, ``ingest.document``.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator
from typing import Any

from edgerag.observability.context import current
from edgerag.observability.logs import clean_fields, emit, timestamp

__all__ = ["record_span", "span"]


def record_span(name: str, duration_ms: float, outcome: str = "ok", **fields: Any) -> None:
    """Log a span whose duration was measured elsewhere (a tool run, a model turn with retries)."""
    obs = current()
    record: dict[str, Any] = {
        "ts": timestamp(),
        "level": "info" if outcome == "ok" else "warn",
        "event": "span",
        "span": name,
        "worker": None if obs is None else obs.worker,
        "request_id": None if obs is None else obs.request_id,
        "tenant": None if obs is None else obs.tenant,
        "duration_ms": round(duration_ms, 3),
        "outcome": outcome,
    }
    for key, value in clean_fields(fields).items():
        record.setdefault(key, value)
    emit(record)


@contextlib.asynccontextmanager
async def span(name: str, **fields: Any) -> AsyncIterator[dict[str, Any]]:
    started = time.perf_counter()
    extra: dict[str, Any] = dict(fields)
    outcome, error = "ok", None
    try:
        yield extra
    except BaseException as exc:
        outcome, error = "error", type(exc).__name__
        raise
    finally:
        if error is not None:
            extra.setdefault("error", error)
        record_span(name, (time.perf_counter() - started) * 1000, outcome, **extra)
