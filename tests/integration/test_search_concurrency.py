"""POST /v1/search runs its two retrievers at once: the keyword query (D1) and the query embedding
(Workers AI, then Vectorize) are both in flight before either answers, so a hybrid search waits for the
slower one, not their sum. When one fails the other is abandoned and the failure keeps its problem type.

The proof is a rendezvous: the gateway's D1 holds the keyword query until the embedding call has
started, and the AI binding holds the embedding until the keyword query has started. Run one after the
other, the two would wait for each other forever (the test's timeout fails it)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from .conftest import StackHarness


class Rendezvous:
    """Wraps the gateway's D1 ``prepare`` and AI ``run``: each retriever's first call waits for the
    other retriever's call to have started (or fails, when told to)."""

    def __init__(self, db: Any, ai: Any, *, fail: str | None = None) -> None:
        self.real_prepare, self.real_run = db.prepare, ai.run
        self.keyword_started, self.embed_started = asyncio.Event(), asyncio.Event()
        self.fail = fail
        self.embed_cancelled = False

    def prepare(self, sql: str) -> Any:
        statement = self.real_prepare(sql)
        if "chunks_fts MATCH ?1 AND chunks_fts.rank" not in sql:
            return statement
        outer = self

        class Held:
            def bind(self, *values: Any) -> Any:
                bound = statement.bind(*values)

                class Run:
                    async def all(self) -> Any:
                        outer.keyword_started.set()
                        await outer.embed_started.wait()
                        if outer.fail == "keyword":
                            raise RuntimeError("D1_ERROR: Network connection lost.")
                        return await bound.all()

                return Run()

        return Held()

    async def run(self, model: str, inputs: Any, **options: Any) -> Any:
        if "bge" not in model or "reranker" in model:
            return await self.real_run(model, inputs, **options)
        self.embed_started.set()
        try:
            await self.keyword_started.wait()
            if self.fail == "keyword":
                await asyncio.Event().wait()  # never answers: must be cancelled
        except asyncio.CancelledError:
            self.embed_cancelled = True
            raise
        if self.fail == "embed":
            raise RuntimeError("InferenceUpstreamError: 3040: capacity exceeded")
        return await self.real_run(model, inputs, **options)


def _install(harness: StackHarness, monkeypatch: pytest.MonkeyPatch, fail: str | None = None) -> Rendezvous:
    env = harness.stack.workers["gateway"].env
    meeting = Rendezvous(env.DB, env.AI, fail=fail)
    monkeypatch.setattr(env.DB, "prepare", meeting.prepare)
    monkeypatch.setattr(env.AI, "run", meeting.run)
    return meeting


async def _ingested(harness: StackHarness) -> Any:
    acme = await harness.tenant("acme")
    for title, text in {
        "Rocket engines": "Liquid rocket engines burn kerosene and liquid oxygen.",
        "Sourdough": "Sourdough bread rises with wild yeast.",
    }.items():
        assert (
            await acme.client.post("/v1/documents", json={"title": title, "text": text})
        ).status_code == 202
    await harness.ingest()
    return acme


async def test_hybrid_search_runs_both_retrievers_at_once(
    harness: StackHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    acme = await _ingested(harness)
    meeting = _install(harness, monkeypatch)
    reply = await asyncio.wait_for(acme.client.post("/v1/search", json={"query": "rocket kerosene"}), 10)
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert body["results"][0]["title"] == "Rocket engines"
    assert set(body["results"][0]["retrievers"]) == {"keyword", "vector"}
    assert meeting.keyword_started.is_set() and meeting.embed_started.is_set()
    timings = body["timings_ms"]
    # Both branches are timed, and together they took no longer than the retrieval stage as a whole.
    assert {"keyword_ms", "embed_ms", "vector_ms", "retrieve_ms"} <= set(timings)
    assert (
        timings["retrieve_ms"]
        >= max(timings["keyword_ms"], timings["embed_ms"] + timings["vector_ms"]) - 0.05
    )


async def test_a_failing_retriever_cancels_the_other_and_keeps_its_problem(
    harness: StackHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    acme = await _ingested(harness)
    meeting = _install(harness, monkeypatch, fail="keyword")
    reply = await asyncio.wait_for(acme.client.post("/v1/search", json={"query": "rocket kerosene"}), 10)
    assert reply.status_code == 503, reply.text  # D1's transient failure, as without concurrency
    assert reply.headers["content-type"].startswith("application/problem+json")
    assert reply.headers["retry-after"] == "1"
    assert meeting.embed_cancelled  # the embedding that would never answer was not left waiting

    monkeypatch.undo()
    meeting = _install(harness, monkeypatch, fail="embed")
    reply = await asyncio.wait_for(acme.client.post("/v1/search", json={"query": "sourdough yeast"}), 10)
    assert reply.status_code == 502, reply.text
    assert "embedding model failed" in reply.json()["detail"]
