"""Observability shared by the three workers: request ids, structured log lines, spans, metrics.

A worker's boundary (the gateway's ASGI middleware, dedalus's HTTP app, the ingest consumer's loop)
opens an :class:`Observation` with :func:`observe`, lets the code below annotate it, and calls
:func:`finish` at the end: one JSON log line (:mod:`.logs`) and one Analytics Engine data point
(:mod:`.metrics`). Steps inside log their own lines with :func:`span`. Nothing here imports a
platform module or does I/O besides writing to standard output and to the metrics binding.

To add a field to every unit line: annotate it where it is known (``annotate(name=value)``); to add
a counter: ``count("name")`` (it lands in the log line; add a double to :mod:`.metrics` for a metric).
"""

from __future__ import annotations

from typing import Any

from edgerag.observability.context import (
    REQUEST_ID_HEADER,
    Observation,
    annotate,
    count,
    current,
    current_request_id,
    observe,
    request_id_from,
    sane_request_id,
)
from edgerag.observability.logs import emit, unit_record
from edgerag.observability.metrics import metrics_dataset, unit_point, write_point
from edgerag.observability.spans import span

__all__ = [
    "REQUEST_ID_HEADER",
    "Observation",
    "annotate",
    "count",
    "current",
    "current_request_id",
    "emit",
    "finish",
    "observe",
    "request_id_from",
    "sane_request_id",
    "span",
]


def finish(obs: Observation, env: Any = None) -> None:
    """Write the unit's log line and, when ``env`` binds ``METRICS``, its data point. Never raises."""
    emit(unit_record(obs))
    write_point(metrics_dataset(env), unit_point(obs))
