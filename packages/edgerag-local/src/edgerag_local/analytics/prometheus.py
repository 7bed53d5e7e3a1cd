"""The local ``GET /metrics``: the workers' Analytics Engine points as Prometheus counters.

:class:`MetricsAggregator` subscribes to the local datasets (:class:`~.binding.AnalyticsStore`) and
folds every data point written in the layout of :mod:`edgerag.observability.metrics` into counters
and a latency histogram; :meth:`MetricsAggregator.render` adds the gauges read at scrape time
(ingest queue depth from the broker, documents by status from D1) and writes the Prometheus text
exposition format with ``prometheus_client``. What is exposed:

==============================  =========  ===================================================
metric                          type       labels
==============================  =========  ===================================================
``requests_total``              counter    worker, kind (request/message/cron), route, method,
                                           status, tenant
``errors_total``                counter    worker, kind, route, status, tenant (5xx; failed,
                                           retried or dropped messages)
``request_latency_seconds``     histogram  worker, kind, route
``ai_tokens_in_total``          counter    model, provider, tenant (dedalus's model calls only:
``ai_tokens_out_total``                    the gateway's lines repeat them for the log)
``vectorize_queries_total``     counter    worker, tenant
``cache_hits_total``            counter    worker, tenant
``cache_misses_total``          counter    worker, tenant
``cache_hit_rate``              gauge      (none): hits / lookups since start, absent before any
``rate_limited_total``          counter    route, tenant (requests answered 429)
``ingest_queue_depth``          gauge      queue (stored messages, delayed and in flight included)
``documents``                   gauge      tenant, status
==============================  =========  ===================================================

Gauge points the gateway's cron writes (for the edge) are skipped here: the scrape-time readings
are fresher.
"""

from __future__ import annotations

import threading
from collections import Counter, defaultdict
from collections.abc import Iterator, Mapping
from typing import Any

from edgerag.observability.metrics import decode_point
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector

from edgerag_local.analytics.binding import DataPoint

__all__ = ["CONTENT_TYPE", "LATENCY_BUCKETS_S", "MetricsAggregator"]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
LATENCY_BUCKETS_S = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)

_REQUEST_LABELS = ("worker", "kind", "route", "method", "status", "tenant")
_ERROR_LABELS = ("worker", "kind", "route", "status", "tenant")
_LATENCY_LABELS = ("worker", "kind", "route")
_TOKEN_LABELS = ("model", "provider", "tenant")
_WORKER_TENANT = ("worker", "tenant")
_RATE_LABELS = ("route", "tenant")


class _Histogram:
    def __init__(self) -> None:
        self.buckets = [0] * len(LATENCY_BUCKETS_S)
        self.count = 0
        self.sum = 0.0

    def observe(self, seconds: float) -> None:
        self.count += 1
        self.sum += seconds
        for i, bound in enumerate(LATENCY_BUCKETS_S):
            if seconds <= bound:
                self.buckets[i] += 1


class MetricsAggregator:
    """Thread-safe: points arrive from the serving loop and the consumer threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._requests: Counter[tuple[str, ...]] = Counter()
        self._errors: Counter[tuple[str, ...]] = Counter()
        self._latency: defaultdict[tuple[str, ...], _Histogram] = defaultdict(_Histogram)
        self._tokens_in: Counter[tuple[str, ...]] = Counter()
        self._tokens_out: Counter[tuple[str, ...]] = Counter()
        self._vectorize: Counter[tuple[str, ...]] = Counter()
        self._hits: Counter[tuple[str, ...]] = Counter()
        self._misses: Counter[tuple[str, ...]] = Counter()
        self._rate_limited: Counter[tuple[str, ...]] = Counter()

    def add(self, point: DataPoint) -> None:
        decoded = decode_point(point.as_dict())
        b, d = decoded.blobs, decoded.doubles
        tenant = "" if decoded.index in ("", "-") else decoded.index
        if b["kind"] == "gauge" or not b["worker"]:
            return
        with self._lock:
            self._requests[(b["worker"], b["kind"], b["route"], b["method"], b["status"], tenant)] += int(
                d["count"]
            )
            if d["error"]:
                self._errors[(b["worker"], b["kind"], b["route"], b["status"], tenant)] += 1
            self._latency[(b["worker"], b["kind"], b["route"])].observe(d["latency_ms"] / 1000)
            if b["worker"] == "dedalus" and (d["tokens_in"] or d["tokens_out"]):
                self._tokens_in[(b["model"], b["provider"], tenant)] += int(d["tokens_in"])
                self._tokens_out[(b["model"], b["provider"], tenant)] += int(d["tokens_out"])
            if d["vectorize_queries"]:
                self._vectorize[(b["worker"], tenant)] += int(d["vectorize_queries"])
            if d["cache_hits"]:
                self._hits[(b["worker"], tenant)] += int(d["cache_hits"])
            if d["cache_misses"]:
                self._misses[(b["worker"], tenant)] += int(d["cache_misses"])
            if d["rate_limited"]:
                self._rate_limited[(b["route"], tenant)] += 1

    def render(
        self,
        *,
        queue_depth: Mapping[str, int] | None = None,
        documents: Mapping[tuple[str, str], int] | None = None,
    ) -> bytes:
        """The Prometheus text exposition of everything counted so far plus the given gauges."""
        registry = CollectorRegistry(auto_describe=False)
        registry.register(_Snapshot(self._families(dict(queue_depth or {}), dict(documents or {}))))
        return generate_latest(registry)

    def _families(self, queue_depth: dict[str, int], documents: dict[tuple[str, str], int]) -> list[Any]:
        with self._lock:
            families: list[Any] = [
                _counter("requests", "Requests and queue messages handled.", _REQUEST_LABELS, self._requests),
                _counter(
                    "errors",
                    "5xx answers and failed, retried or dropped messages.",
                    _ERROR_LABELS,
                    self._errors,
                ),
                _counter(
                    "ai_tokens_in", "Prompt tokens of model calls (dedalus).", _TOKEN_LABELS, self._tokens_in
                ),
                _counter(
                    "ai_tokens_out",
                    "Completion tokens of model calls (dedalus).",
                    _TOKEN_LABELS,
                    self._tokens_out,
                ),
                _counter("vectorize_queries", "Vectorize queries made.", _WORKER_TENANT, self._vectorize),
                _counter("cache_hits", "Cache lookups answered from KV.", _WORKER_TENANT, self._hits),
                _counter("cache_misses", "Cache lookups that missed.", _WORKER_TENANT, self._misses),
                _counter("rate_limited", "Requests answered 429.", _RATE_LABELS, self._rate_limited),
            ]
            latency = HistogramMetricFamily(
                "request_latency_seconds",
                "Time to handle a request or message.",
                labels=list(_LATENCY_LABELS),
            )
            for labels, hist in sorted(self._latency.items()):
                cumulative = [
                    (_bound(bound), n) for bound, n in zip(LATENCY_BUCKETS_S, hist.buckets, strict=True)
                ]
                latency.add_metric(list(labels), [*cumulative, ("+Inf", hist.count)], hist.sum)
            families.append(latency)
            hits, misses = sum(self._hits.values()), sum(self._misses.values())
        rate = GaugeMetricFamily("cache_hit_rate", "Cache hits / lookups since the stack started.")
        if hits + misses:
            rate.add_metric([], hits / (hits + misses))
        depth = GaugeMetricFamily("ingest_queue_depth", "Messages stored in the queue.", labels=["queue"])
        for queue, n in sorted(queue_depth.items()):
            depth.add_metric([queue], n)
        docs = GaugeMetricFamily("documents", "Documents by status.", labels=["tenant", "status"])
        for (tenant, status), n in sorted(documents.items()):
            docs.add_metric([tenant, status], n)
        return [*families, rate, depth, docs]


def _bound(bound: float) -> str:
    return repr(float(bound))


def _counter(name: str, doc: str, labels: tuple[str, ...], values: Mapping[tuple[str, ...], int]) -> Any:
    family = CounterMetricFamily(name, doc, labels=list(labels))
    for key, value in sorted(values.items()):
        family.add_metric(list(key), value)
    return family


class _Snapshot(Collector):
    def __init__(self, families: list[Any]) -> None:
        self._families = families

    def collect(self) -> Iterator[Any]:
        yield from self._families
