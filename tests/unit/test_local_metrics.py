"""edgerag_local.analytics.prometheus: data points in, Prometheus text out (parsed back to check it)."""

from __future__ import annotations

from edgerag.observability import Observation
from edgerag.observability.metrics import gauge_point, unit_point
from edgerag_local.analytics import AnalyticsStore, LocalAnalyticsEngineDataset, MetricsAggregator
from prometheus_client.parser import text_string_to_metric_families


def _samples(text: bytes) -> dict[str, list[tuple[dict[str, str], float]]]:
    out: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(text.decode()):
        for sample in family.samples:
            out.setdefault(sample.name, []).append((dict(sample.labels), sample.value))
    return out


def _sum(samples: dict[str, list[tuple[dict[str, str], float]]], name: str, **labels: str) -> float:
    return sum(v for have, v in samples.get(name, []) if all(have.get(k) == w for k, w in labels.items()))


def _unit(worker: str, status: int | str, latency_s: float, **fields: object) -> Observation:
    obs = Observation(
        worker, "message" if isinstance(status, str) else "request", "r", route="/v1/x", method="GET"
    )
    obs.status, obs.tenant = status, "tnt_1"
    obs.started -= latency_s
    for name, value in fields.items():
        setattr(obs, name, value)
    return obs


def test_points_become_counters_a_histogram_and_gauges() -> None:
    aggregator = MetricsAggregator()
    store = AnalyticsStore("edgerag_metrics")
    store.subscribe(aggregator.add)
    dataset = LocalAnalyticsEngineDataset(store)
    ok = _unit("gateway", 200, 0.02, tokens_in=9, tokens_out=9, model="m", provider="p")
    ok.counts.update({"vectorize_queries": 1, "cache_hit:search": 1, "cache_miss:embedding": 3})
    for obs in (
        ok,
        _unit("gateway", 429, 0.001),
        _unit("gateway", 503, 2.0),
        _unit("dedalus", 200, 0.3, tokens_in=11, tokens_out=4, model="m", provider="p"),
        _unit("ingest", "retried", 0.5),
    ):
        dataset.writeDataPoint(unit_point(obs))
    dataset.writeDataPoint(
        gauge_point("gateway", "documents", "ready", 5, "tnt_1")
    )  # skipped: read at scrape

    text = aggregator.render(queue_depth={"edgerag-ingest": 3}, documents={("tnt_1", "ready"): 2})
    samples = _samples(text)
    assert _sum(samples, "requests_total") == 5
    assert _sum(samples, "requests_total", worker="gateway", status="429", route="/v1/x", tenant="tnt_1") == 1
    assert _sum(samples, "errors_total") == 2  # the 503 and the retried message
    assert _sum(samples, "errors_total", worker="ingest", kind="message", status="retried") == 1
    assert _sum(samples, "rate_limited_total", route="/v1/x", tenant="tnt_1") == 1
    # Tokens count once, from dedalus (the gateway's line repeats them for its log).
    assert _sum(samples, "ai_tokens_in_total", model="m", provider="p") == 11
    assert _sum(samples, "ai_tokens_out_total") == 4
    assert _sum(samples, "vectorize_queries_total", worker="gateway") == 1
    assert (_sum(samples, "cache_hits_total"), _sum(samples, "cache_misses_total")) == (1, 3)
    assert _sum(samples, "cache_hit_rate") == 0.25
    assert _sum(samples, "ingest_queue_depth", queue="edgerag-ingest") == 3
    assert _sum(samples, "documents", tenant="tnt_1", status="ready") == 2
    bucket = "request_latency_seconds_bucket"
    assert _sum(samples, bucket, worker="gateway", le="0.025") == 2  # 20 ms and 1 ms
    assert _sum(samples, bucket, worker="gateway", le="1.0") == 2
    assert _sum(samples, bucket, worker="gateway", le="+Inf") == 3
    assert _sum(samples, "request_latency_seconds_count", worker="gateway") == 3
    assert 2.0 < _sum(samples, "request_latency_seconds_sum", worker="gateway") < 2.1


def test_an_empty_aggregator_renders_valid_text_without_a_hit_rate() -> None:
    samples = _samples(MetricsAggregator().render())
    assert "cache_hit_rate" not in samples and _sum(samples, "requests_total") == 0


def test_label_values_are_escaped() -> None:
    aggregator = MetricsAggregator()
    obs = _unit("gateway", 200, 0.0)
    obs.route = 'odd "route"\\with\nnewline'
    aggregator.add(AnalyticsStore("d").add(**_as_add(unit_point(obs))))
    samples = _samples(aggregator.render())
    assert _sum(samples, "requests_total", route='odd "route"\\with\nnewline') == 1


def _as_add(point: dict[str, object]) -> dict[str, object]:
    indexes = point["indexes"]
    assert isinstance(indexes, list)
    return {"blobs": point["blobs"], "doubles": point["doubles"], "index": indexes[0]}
