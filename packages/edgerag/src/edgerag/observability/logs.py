"""Structured log lines: one JSON object per line on standard output.

At the edge a Python Worker's standard output is what ``console.log`` writes, which is what Workers
Logs collects (``[observability] enabled = true`` in each wrangler config) and what ``wrangler tail``
shows; Workers Logs indexes the fields of a JSON line. Locally the same lines appear on the terminal
of ``edgerag dev``, and tests read them from captured stdout.

Two kinds of line (``event``):

- ``request`` / ``message`` / ``cron``: one per unit of work, from :func:`unit_record` —
  ``ts, level, event, worker, request_id, tenant, route, method, status, latency_ms`` and, when they
  happened, ``model, provider, tokens_in, tokens_out, cache_hit, cache_hits, cache_misses,
  vectorize_queries, error`` plus the unit's free-form fields;
- ``span``: one per step (search, embed, rerank, model call, tool call, D1 batch), from
  :mod:`edgerag.observability.spans` — ``span, duration_ms, outcome`` and the step's fields.

What never appears: only the fields named above and free-form fields of scalar values are written;
a free-form field whose name says it carries content or credentials (:data:`REDACTED_NAMES`) is
replaced by ``"[redacted]"``, and strings are cut at :data:`MAX_STRING` characters. Callers pass ids,
counts, names and codes — never a message, a document, a prompt, a header or an exception's text.
"""

from __future__ import annotations

import datetime as dt
import json
import sys
import time
from collections.abc import Mapping
from typing import Any, TextIO

from edgerag.observability.context import Observation

__all__ = ["MAX_STRING", "REDACTED_NAMES", "clean_fields", "emit", "level_for", "timestamp", "unit_record"]

MAX_STRING = 200
REDACTED = "[redacted]"
# Substrings of field names whose values are never written.
REDACTED_NAMES = (
    "authorization",
    "body",
    "content",
    "cookie",
    "document",
    "key",
    "message",
    "password",
    "prompt",
    "secret",
    "text",
    "token",
)
_ALLOWED_NAMES = frozenset({"tokens_in", "tokens_out", "key_id", "message_id", "document_id"})


def timestamp(now: float | None = None) -> str:
    moment = dt.datetime.fromtimestamp(time.time() if now is None else now, dt.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _scalar(value: Any) -> Any:
    if value is None or isinstance(value, (bool, int, float)):
        return value
    text = str(value)
    return text if len(text) <= MAX_STRING else text[:MAX_STRING] + "..."


def clean_fields(fields: Mapping[str, Any]) -> dict[str, Any]:
    """Free-form fields as they may be written: scalars only, content- and secret-named ones redacted."""
    out: dict[str, Any] = {}
    for name, value in fields.items():
        lowered = name.lower()
        if lowered not in _ALLOWED_NAMES and any(word in lowered for word in REDACTED_NAMES):
            out[name] = REDACTED
        elif isinstance(value, Mapping):
            out[name] = {str(k): _scalar(v) for k, v in list(value.items())[:32]}
        else:
            out[name] = _scalar(value)
    return out


def level_for(status: int | str | None) -> str:
    if isinstance(status, int):
        return "error" if status >= 500 else "warn" if status >= 400 else "info"
    return "error" if status in ("failed", "error") else "warn" if status == "retried" else "info"


def unit_record(obs: Observation, *, now: float | None = None) -> dict[str, Any]:
    """The log line of a finished unit of work."""
    record: dict[str, Any] = {
        "ts": timestamp(now),
        "level": level_for(obs.status),
        "event": obs.kind,
        "worker": obs.worker,
        "request_id": obs.request_id,
        "tenant": obs.tenant,
        "route": obs.route,
        "method": obs.method,
        "status": obs.status,
        "latency_ms": obs.latency_ms(),
    }
    if obs.model is not None:
        record.update(model=obs.model, provider=obs.provider)
    if obs.tokens_in or obs.tokens_out or obs.model is not None:
        record.update(tokens_in=obs.tokens_in, tokens_out=obs.tokens_out)
    hit = obs.cache_hit()
    if hit is not None:
        record.update(cache_hit=hit, cache_hits=obs.cache_hits(), cache_misses=obs.cache_misses())
    for name, n in sorted(obs.counts.items()):
        if not name.startswith("cache_"):
            record[name] = n
    if obs.error is not None:
        record["error"] = _scalar(obs.error)
    for name, value in clean_fields(obs.fields).items():
        record.setdefault(name, value)
    return record


def emit(record: Mapping[str, Any], stream: TextIO | None = None) -> None:
    """Write ``record`` as one JSON line (never raises: a log line must not fail the work)."""
    try:
        line = json.dumps(record, separators=(",", ":"), ensure_ascii=False, default=str)
        print(line, file=stream or sys.stdout, flush=True)
    except Exception:
        return
