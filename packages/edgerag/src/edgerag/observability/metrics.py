"""Metrics as Workers Analytics Engine data points: one per unit of work, written at its end.

Each worker binds a dataset as ``METRICS`` (``[[analytics_engine_datasets]]`` in its wrangler
config; the port is :class:`edgerag.ports.AnalyticsEngineDataset`). :func:`unit_point` turns a
finished :class:`~edgerag.observability.context.Observation` into ONE data point — far inside the
per-invocation limit (250) — and :func:`write_point` writes it without ever failing the work.

The layout is fixed, because Analytics Engine columns are positional (``blob1``..``blob20``,
``double1``..``double20``, ``index1``); :data:`BLOBS` and :data:`DOUBLES` name the positions, and
:func:`decode_point` reads a point back (the local ``/metrics`` aggregates with it):

=========  ===============================  ===========  ==========================================
column     meaning                          column       meaning
=========  ===============================  ===========  ==========================================
blob1      worker                           double1      count (1 per unit; the gauge's value)
blob2      kind: request/message/cron/gauge double2      latency_ms
blob3      route template (gauge: its name) double3      error (1: 5xx, or a failed/retried message)
blob4      method                           double4      tokens_in
blob5      status ("200", "acked", ...)     double5      tokens_out
blob6      model                            double6      vectorize_queries
blob7      provider                         double7      cache_hits
blob8      error code                       double8      cache_misses
blob9      request id                       double9      rate_limited (1: answered 429)
index1     tenant id ("-" when none)
=========  ===============================  ===========  ==========================================

Metric names (the SQL API and the local Prometheus text agree on them): ``requests_total`` =
``SUM(_sample_interval * double1)`` of kind ``request``; ``errors_total`` = the same over
``double3``; the latency histogram from ``double2``; ``ai_tokens_in/out`` from ``double4/5``;
``vectorize_queries_total`` from ``double6``; cache hit rate = ``double7 / (double7 + double8)``;
``rate_limited_total`` from ``double9``; documents by status are ``gauge`` points named
``documents`` (blob5 = status, double1 = how many) written by the gateway's cron. Queue depth is
not visible from inside a Worker: at the edge it is the Queues analytics (GraphQL
``queueBacklogAdaptiveGroups``), locally the broker's backlog.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from edgerag.observability.context import Observation

__all__ = [
    "BLOBS",
    "DOUBLES",
    "DecodedPoint",
    "decode_point",
    "gauge_point",
    "is_error",
    "metrics_dataset",
    "unit_point",
    "write_point",
]

log = logging.getLogger("edgerag.metrics")

BLOBS = ("worker", "kind", "route", "method", "status", "model", "provider", "error", "request_id")
DOUBLES = (
    "count",
    "latency_ms",
    "error",
    "tokens_in",
    "tokens_out",
    "vectorize_queries",
    "cache_hits",
    "cache_misses",
    "rate_limited",
)
_FAILED_STATUSES = frozenset({"failed", "retried", "dropped", "error"})
_MAX_BLOB = 256  # a label, never content; keeps a point far below the blob size limit


def is_error(status: int | str | None) -> bool:
    if isinstance(status, int):
        return status >= 500
    return status in _FAILED_STATUSES


def _blob(value: Any) -> str:
    return "" if value is None else str(value)[:_MAX_BLOB]


def unit_point(obs: Observation) -> dict[str, Any]:
    """The data point of a finished unit of work (the layout in the module docstring)."""
    blobs = [
        obs.worker,
        obs.kind,
        obs.route,
        obs.method,
        obs.status,
        obs.model,
        obs.provider,
        obs.error,
        obs.request_id,
    ]
    doubles = [
        1.0,
        obs.latency_ms(),
        1.0 if is_error(obs.status) else 0.0,
        float(obs.tokens_in),
        float(obs.tokens_out),
        float(obs.counts.get("vectorize_queries", 0)),
        float(obs.cache_hits()),
        float(obs.cache_misses()),
        1.0 if obs.status == 429 else 0.0,
    ]
    return {"blobs": [_blob(b) for b in blobs], "doubles": doubles, "indexes": [_blob(obs.tenant) or "-"]}


def gauge_point(worker: str, name: str, label: str, value: float, tenant: str | None) -> dict[str, Any]:
    """A gauge reading (``documents`` by status): blob3 = name, blob5 = label, double1 = value."""
    blobs = [worker, "gauge", name, "", label]
    return {"blobs": [_blob(b) for b in blobs], "doubles": [float(value)], "indexes": [_blob(tenant) or "-"]}


def write_point(dataset: Any, point: Mapping[str, Any]) -> bool:
    """``dataset.writeDataPoint(point)``; False (logged, never raised) when it is refused or unbound."""
    if dataset is None:
        return False
    try:
        dataset.writeDataPoint(dict(point))
    except Exception as exc:
        log.warning("metrics data point refused: %s", type(exc).__name__)
        return False
    return True


def metrics_dataset(env: Any) -> Any:
    """The worker's ``METRICS`` binding, or None where the config does not bind one."""
    try:
        return getattr(env, "METRICS", None)
    except Exception:
        return None


@dataclass(frozen=True)
class DecodedPoint:
    blobs: Mapping[str, str]
    doubles: Mapping[str, float]
    index: str


def decode_point(point: Mapping[str, Any]) -> DecodedPoint:
    """A data point read back by position (missing positions are "" and 0.0)."""
    blobs: Sequence[Any] = point.get("blobs") or ()
    doubles: Sequence[Any] = point.get("doubles") or ()
    indexes: Sequence[Any] = point.get("indexes") or ()
    named_blobs = {
        name: (str(blobs[i]) if i < len(blobs) and blobs[i] is not None else "")
        for i, name in enumerate(BLOBS)
    }
    named_doubles = {name: (float(doubles[i]) if i < len(doubles) else 0.0) for i, name in enumerate(DOUBLES)}
    return DecodedPoint(named_blobs, named_doubles, str(indexes[0]) if indexes else "")
