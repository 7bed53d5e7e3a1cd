"""``GET /metrics`` on the local host after a scenario: the counts are what the scenario did.

The workers write Analytics Engine data points (``env.METRICS``) through the local emulator; the
host folds them into Prometheus counters and reads queue depth and documents by status at scrape
time. The text is parsed with ``prometheus_client``'s own parser, so a malformed exposition fails.
Token counters are checked against the ``llm_calls`` rows dedalus wrote for the same calls.
"""

from __future__ import annotations

from typing import Any

from edgerag.store.d1 import fetch_one
from prometheus_client.parser import text_string_to_metric_families

from .conftest import StackHarness

ROCKETS = "Liquid rocket engines burn kerosene and liquid oxygen. The nozzle accelerates the exhaust."
BREAD = "Sourdough bread rises with wild yeast and lactic bacteria. It is baked in a hot oven."


async def _scrape(harness: StackHarness) -> dict[str, list[tuple[dict[str, str], float]]]:
    response = await harness.admin.get("/metrics")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    samples: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples.setdefault(sample.name, []).append((dict(sample.labels), sample.value))
    return samples


def _value(samples: dict[str, list[tuple[dict[str, str], float]]], name: str, **labels: str) -> float:
    return sum(v for have, v in samples.get(name, []) if all(have.get(k) == w for k, w in labels.items()))


async def test_metrics_count_what_the_scenario_did(harness: StackHarness) -> None:
    acme = await harness.tenant("acme")
    tenant: Any = acme.id
    for title, text in (("Rockets", ROCKETS), ("Bread", BREAD)):
        created = await acme.client.post("/v1/documents", json={"title": title, "text": text})
        assert created.status_code == 202, created.text

    before = await _scrape(harness)
    assert _value(before, "ingest_queue_depth", queue="edgerag-ingest") == 2
    assert _value(before, "documents", tenant=tenant, status="queued") == 2

    assert await harness.ingest() == 2
    for _ in range(2):  # the second one is answered from the search cache
        found = await acme.client.post("/v1/search", json={"query": "rocket nozzle"})
        assert found.status_code == 200 and found.json()["results"]
    answer = await acme.client.post("/v1/answer", json={"question": "What do rocket engines burn?"})
    assert answer.status_code == 200, answer.text
    assert (await acme.client.get("/v1/documents/doc_00000000000000000000000000")).status_code == 404

    after = await _scrape(harness)
    requests = "requests_total"
    assert _value(after, requests, worker="gateway", route="/v1/search", status="200", tenant=tenant) == 2
    assert _value(after, requests, worker="gateway", route="/v1/documents", status="202", tenant=tenant) == 2
    assert _value(after, requests, worker="gateway", route="/v1/answer", status="200", tenant=tenant) == 1
    assert _value(after, requests, worker="ingest", kind="message", status="acked", tenant=tenant) == 2
    assert _value(after, requests, worker="dedalus", route="/v1/chat", status="200", tenant=tenant) == 1
    assert _value(after, requests, worker="gateway", status="404") == 1
    assert _value(after, "errors_total") == 0 and _value(after, "rate_limited_total") == 0
    hist = "request_latency_seconds_count"
    assert _value(after, hist, worker="gateway", route="/v1/search") == 2
    assert (
        _value(after, "request_latency_seconds_bucket", worker="gateway", route="/v1/search", le="+Inf") == 2
    )

    # Vectorize: the first search and the answer's retrieval; the cached search made none.
    assert _value(after, "vectorize_queries_total", worker="gateway", tenant=tenant) == 2
    hits, misses = _value(after, "cache_hits_total"), _value(after, "cache_misses_total")
    assert hits >= 1 and misses >= 1
    assert _value(after, "cache_hit_rate") == hits / (hits + misses)

    usage = await fetch_one(
        harness.stack.pool.d1(_database_id(harness)),
        "SELECT SUM(prompt_tokens) AS i, SUM(completion_tokens) AS o FROM llm_calls WHERE tenant_id = ?1",
        tenant,
    )
    assert usage is not None and usage["i"] > 0
    assert _value(after, "ai_tokens_in_total", tenant=tenant) == usage["i"]
    assert _value(after, "ai_tokens_out_total", tenant=tenant) == usage["o"]

    assert _value(after, "ingest_queue_depth", queue="edgerag-ingest") == 0
    assert _value(after, "documents", tenant=tenant, status="ready") == 2
    assert _value(after, "documents", tenant=tenant, status="queued") == 0


def _database_id(harness: StackHarness) -> str:
    return harness.stack.workers["gateway"].config.d1[0].database_id
