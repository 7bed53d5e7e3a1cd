"""The observation of one unit of work (an HTTP request, a queue message, a cron tick) and its id.

A worker opens one :class:`Observation` at its boundary (:func:`observe`) and everything below it
reads or annotates the current one through a context variable — the retrieval code counts a
Vectorize query, the cache a hit, the orchestrator a model's tokens — without any of them taking a
logging or metrics argument. Outside a unit of work :func:`current` is None and annotations are
no-ops, so library code never has to ask.

Request ids (:func:`request_id_from`): an incoming ``X-Request-Id`` that is a sane token (1-64 of
``A-Z a-z 0-9 _ . : -``, first a letter or digit — the same rule the call contracts use), else the
trace-id of a valid W3C ``traceparent``, else a new ``req_`` id. The id is accepted as is, so a
client that reuses ids sees its own ids reused in logs and usage rows; nothing relies on them being
unique. Context variables are per task, which is right on CPython and in Pyodide alike (a worker's
concurrent requests are separate tasks).
"""

from __future__ import annotations

import contextlib
import contextvars
import re
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from edgerag.ids import new_id

__all__ = [
    "REQUEST_ID_HEADER",
    "Observation",
    "annotate",
    "count",
    "current",
    "current_request_id",
    "observe",
    "request_id_from",
    "sane_request_id",
]

REQUEST_ID_HEADER = "x-request-id"
_SANE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$")
# W3C Trace Context: version-traceid-parentid-flags; version ff is invalid, all-zero ids are invalid.
_TRACEPARENT = re.compile(r"^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(?:-.*)?$")

_CURRENT: contextvars.ContextVar[Observation | None] = contextvars.ContextVar("edgerag_obs", default=None)


def sane_request_id(value: str | None) -> str | None:
    """``value`` if it may be used as a request id as it stands, else None."""
    if value is None:
        return None
    value = value.strip()
    return value if _SANE.match(value) else None


def _trace_id(traceparent: str | None) -> str | None:
    if not traceparent:
        return None
    match = _TRACEPARENT.match(traceparent.strip().lower())
    if match is None:
        return None
    version, trace_id, parent_id, _flags = match.groups()
    if version == "ff" or (version == "00" and len(traceparent.strip()) != 55):
        return None
    if trace_id == "0" * 32 or parent_id == "0" * 16:
        return None
    return trace_id


def request_id_from(headers: Mapping[str, str] | None, *, mint: Callable[[], str] | None = None) -> str:
    """The request id for a request with these (lower-case keyed) headers; see the module docstring."""
    headers = headers or {}
    incoming = sane_request_id(headers.get(REQUEST_ID_HEADER))
    if incoming is not None:
        return incoming
    trace = _trace_id(headers.get("traceparent"))
    if trace is not None:
        return trace
    return mint() if mint is not None else new_id("req")


@dataclass
class Observation:
    """What one unit of work did; :mod:`edgerag.observability.logs` turns it into its log line and
    :mod:`edgerag.observability.metrics` into its data point."""

    worker: str
    kind: str  # "request", "message" or "cron"
    request_id: str
    started: float = field(default_factory=time.perf_counter)
    tenant: str | None = None
    route: str | None = None
    method: str | None = None
    status: int | str | None = None
    model: str | None = None
    provider: str | None = None
    tokens_in: int = 0
    tokens_out: int = 0
    error: str | None = None  # a short error code, never a message that could quote input
    fields: dict[str, Any] = field(default_factory=dict)
    counts: Counter[str] = field(default_factory=Counter)

    def latency_ms(self, now: float | None = None) -> float:
        return round(((time.perf_counter() if now is None else now) - self.started) * 1000, 3)

    def cache_hits(self) -> int:
        return sum(n for name, n in self.counts.items() if name.startswith("cache_hit:"))

    def cache_misses(self) -> int:
        return sum(n for name, n in self.counts.items() if name.startswith("cache_miss:"))

    def cache_hit(self) -> bool | None:
        """True if every cache lookup hit, False if one missed, None if no cache was asked."""
        hits, misses = self.cache_hits(), self.cache_misses()
        if hits + misses == 0:
            return None
        return misses == 0


def current() -> Observation | None:
    return _CURRENT.get()


def current_request_id() -> str | None:
    obs = _CURRENT.get()
    return None if obs is None else obs.request_id


@contextlib.contextmanager
def observe(observation: Observation) -> Iterator[Observation]:
    """Make ``observation`` current for the block (and the tasks it starts)."""
    token = _CURRENT.set(observation)
    try:
        yield observation
    finally:
        _CURRENT.reset(token)


def annotate(**values: Any) -> None:
    """Set attributes of the current observation (``tenant=...``, ``model=...``) or free-form fields."""
    obs = _CURRENT.get()
    if obs is None:
        return
    for name, value in values.items():
        if name in _ATTRIBUTES:
            setattr(obs, name, value)
        else:
            obs.fields[name] = value


def count(name: str, n: int = 1) -> None:
    """Add ``n`` to a counter of the current observation (``vectorize_queries``, ``cache_hit:search``,
    ``tokens_in``/``tokens_out`` add to the token totals)."""
    obs = _CURRENT.get()
    if obs is None or n <= 0:
        return
    if name == "tokens_in":
        obs.tokens_in += n
    elif name == "tokens_out":
        obs.tokens_out += n
    else:
        obs.counts[name] += n


_ATTRIBUTES = frozenset({"tenant", "route", "method", "status", "model", "provider", "error"})
