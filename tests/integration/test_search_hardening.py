"""Search under hostile input and failing platform services: long queries, empty filters, model and
index outages. None of them may answer 500."""

from __future__ import annotations

from typing import Any

import pytest
from edgerag.embedding import input_token_limit, truncate_to_tokens
from edgerag.tokens import estimate_tokens

from .conftest import StackHarness, Tenant

DOCS = {
    "Rocket engines": "Liquid rocket engines burn kerosene and liquid oxygen. The nozzle makes thrust.",
    "Sourdough": "Sourdough bread rises with wild yeast and lactic acid bacteria in a starter.",
}


async def _ready(harness: StackHarness) -> tuple[Tenant, dict[str, str]]:
    acme = await harness.tenant("acme")
    ids = {}
    for title, text in DOCS.items():
        reply = await acme.client.post("/v1/documents", json={"title": title, "text": text})
        assert reply.status_code == 202, reply.text
        ids[title] = reply.json()["document"]["id"]
    await harness.ingest()
    return acme, ids


def _long_query() -> str:
    # 520 short words within the 2,000-character limit: far past bge's 512-token input limit.
    words = [f"Q{n % 10}" for n in range(519)] + ["nozzle"]
    query = " ".join(words)
    assert len(query) <= 2000 and estimate_tokens(query) > 512
    return query


@pytest.mark.parametrize("mode", ["hybrid", "vector"])
async def test_a_query_past_the_model_input_limit_is_searched_not_a_500(
    harness: StackHarness, mode: str
) -> None:
    acme, _ids = await _ready(harness)
    reply = await acme.client.post("/v1/search", json={"query": _long_query(), "mode": mode})
    assert reply.status_code == 200, reply.text
    assert reply.json()["results"], "the truncated query still finds documents"


async def test_the_keyword_retriever_still_sees_the_whole_long_query(harness: StackHarness) -> None:
    acme, ids = await _ready(harness)
    # "nozzle" is the last word: past the point where the vector query is cut, still searched by FTS5.
    reply = await acme.client.post("/v1/search", json={"query": _long_query(), "mode": "keyword"})
    assert reply.status_code == 200, reply.text
    assert [r["document_id"] for r in reply.json()["results"]] == [ids["Rocket engines"]]


def test_truncation_fits_the_limit_and_keeps_whole_words() -> None:
    text = _long_query()
    limit = input_token_limit("@cf/baai/bge-base-en-v1.5")
    cut = truncate_to_tokens(text, limit)
    assert estimate_tokens(cut) <= limit < estimate_tokens(text)
    assert text.startswith(cut) and text[len(cut)] == " "  # cut at a word boundary
    assert truncate_to_tokens("short query", limit) == "short query"
    unbroken = "x" * 5000  # no boundary at all: cut inside the word rather than return nothing
    assert 0 < len(truncate_to_tokens(unbroken, limit)) < 5000


async def test_an_empty_document_filter_matches_nothing(harness: StackHarness) -> None:
    acme, _ids = await _ready(harness)
    everything = await acme.client.post("/v1/search", json={"query": "nozzle thrust"})
    assert everything.json()["results"]
    for filters in ({"document_ids": None}, {}):
        unfiltered = await acme.client.post("/v1/search", json={"query": "nozzle thrust", "filters": filters})
        assert unfiltered.json()["results"] == everything.json()["results"]
    for mode in ("hybrid", "keyword", "vector"):
        none = await acme.client.post(
            "/v1/search", json={"query": "nozzle thrust", "mode": mode, "filters": {"document_ids": []}}
        )
        assert none.status_code == 200, none.text
        assert none.json()["results"] == []


@pytest.mark.parametrize("binding", ["AI", "VECTORS"])
async def test_a_failing_model_or_index_answers_502_problem(
    harness: StackHarness, monkeypatch: pytest.MonkeyPatch, binding: str
) -> None:
    acme, _ids = await _ready(harness)
    target = getattr(harness.stack.workers["gateway"].env, binding)

    async def down(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("InferenceUpstreamError: 3040: capacity exceeded")

    monkeypatch.setattr(target, "run" if binding == "AI" else "query", down)
    reply = await acme.client.post("/v1/search", json={"query": "nozzle thrust"})
    assert reply.status_code == 502, reply.text
    assert reply.headers["content-type"] == "application/problem+json"
    assert reply.json()["type"] == "https://edgerag.dev/problems/upstream"
    assert "capacity" not in reply.text  # the platform's message stays in the logs
    keyword = await acme.client.post("/v1/search", json={"query": "nozzle thrust", "mode": "keyword"})
    assert keyword.status_code == 200  # the keyword retriever needs neither
