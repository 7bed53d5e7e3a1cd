"""POST /v1/search with the rerank stage, the operator syntax and the score thresholds, through the
whole local stack (the local AI binding's reranker stand-in answers ``@cf/baai/bge-reranker-base``).

A reranker that hangs or fails keeps the fused order and says so; no new path shows another tenant's
chunks."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from .conftest import StackHarness, Tenant, open_harness

RERANKER = "@cf/baai/bge-reranker-base"
DOCS = {
    "Rocket engines": "Liquid rocket engines burn kerosene and liquid oxygen. The nozzle makes thrust.",
    "Solid rockets": "Solid rocket motors burn a cast propellant grain; a solid motor cannot be throttled.",
    "Jet engines": "Turbofan jet engines burn kerosene with air from the compressor, not liquid oxygen.",
    "Sourdough": "Sourdough bread rises with wild yeast and lactic acid bacteria in a starter.",
}
SECRET = "Classified rocket kerosene memo: the globex nozzle test passed."


async def _ingest(harness: StackHarness, tenant: Tenant, docs: dict[str, str]) -> dict[str, str]:
    ids = {}
    for title, text in docs.items():
        reply = await tenant.client.post("/v1/documents", json={"title": title, "text": text})
        assert reply.status_code == 202, reply.text
        ids[reply.json()["document"]["id"]] = title
    await harness.ingest()
    return ids


async def _two_tenants(harness: StackHarness) -> tuple[Tenant, dict[str, str], Tenant]:
    acme = await harness.tenant("acme")
    globex = await harness.tenant("globex")
    titles = await _ingest(harness, acme, DOCS)
    await _ingest(harness, globex, {"Globex memo": SECRET})
    return acme, titles, globex


def _titles(reply: Any, titles: dict[str, str]) -> list[str]:
    return [titles[r["document_id"]] for r in reply.json()["results"]]


class RecordingAi:
    """Stands in front of the gateway's AI binding's ``run``: records reranker calls and answers them
    as told (every other model goes to the real binding)."""

    def __init__(self, real_run: Any, behaviour: str = "pass") -> None:
        self.real_run = real_run
        self.behaviour = behaviour
        self.rerank_inputs: list[dict[str, Any]] = []
        self.never = asyncio.Event()

    async def run(self, model: str, inputs: Any, **options: Any) -> Any:
        if model != RERANKER:
            return await self.real_run(model, inputs, **options)
        self.rerank_inputs.append(inputs)
        if self.behaviour == "hang":
            await self.never.wait()
        if self.behaviour == "fail":
            raise RuntimeError("InferenceUpstreamError: 3040: capacity exceeded")
        if self.behaviour == "garbage":
            return {"response": [{"id": 99, "score": 1.0}]}
        return await self.real_run(model, inputs, **options)


def _wrap_ai(harness: StackHarness, monkeypatch: pytest.MonkeyPatch, behaviour: str) -> RecordingAi:
    ai = harness.stack.workers["gateway"].env.AI
    recorder = RecordingAi(ai.run, behaviour)
    monkeypatch.setattr(ai, "run", recorder.run)
    return recorder


async def test_rerank_applied_reorders_the_pool_with_the_real_call_shape(
    harness: StackHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    acme, titles, _globex = await _two_tenants(harness)
    ai = _wrap_ai(harness, monkeypatch, "pass")
    body = {"query": "liquid oxygen rocket", "top_k": 3, "rerank": {"top_n": 4}}
    reply = await acme.client.post("/v1/search", json=body)
    assert reply.status_code == 200, reply.text
    data = reply.json()
    assert data["rerank"]["applied"] is True and data["rerank"]["reason"] is None
    assert data["rerank"]["model"] == RERANKER and data["rerank"]["candidates"] <= 4
    results = data["results"]
    assert len(results) == 3 and all(r["rerank_score"] is not None for r in results)
    scores = [r["rerank_score"] for r in results]
    assert scores == sorted(scores, reverse=True)
    assert "rerank_ms" in data["timings_ms"]
    (sent,) = ai.rerank_inputs
    assert set(sent) == {"query", "contexts", "top_k"} and sent["query"] == "liquid oxygen rocket"
    assert sent["top_k"] == len(sent["contexts"]) == data["rerank"]["candidates"]
    assert all(set(c) == {"text"} for c in sent["contexts"])
    # The contexts are acme's chunks only (title + text), never globex's.
    assert not any("globex" in c["text"].lower() for c in sent["contexts"])
    assert set(_titles(reply, titles)) <= set(DOCS)


FALLBACKS = [("hang", "timeout"), ("fail", "model_error"), ("garbage", "model_error")]


async def test_a_hanging_or_failing_reranker_keeps_the_fused_order(
    harness: StackHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    acme, *_ = await _two_tenants(harness)
    plain = await acme.client.post("/v1/search", json={"query": "kerosene rocket", "top_k": 3})
    ai = _wrap_ai(harness, monkeypatch, "pass")
    for behaviour, reason in FALLBACKS:
        ai.behaviour = behaviour
        await _assert_fallback(acme, plain, reason)


async def _assert_fallback(acme: Tenant, plain: Any, reason: str) -> None:
    body = {
        "query": "kerosene rocket",
        "top_k": 3,
        "rerank": {"top_n": 3, "timeout_ms": 20},
        "min_rerank_score": 0.99,
    }
    reply = await acme.client.post("/v1/search", json=body)
    assert reply.status_code == 200, reply.text
    data = reply.json()
    assert data["rerank"]["applied"] is False and data["rerank"]["reason"] == reason
    # Fused order, unfiltered by the rerank threshold it could not judge.
    assert [r["chunk_id"] for r in data["results"]] == [r["chunk_id"] for r in plain.json()["results"]]
    assert all(r["rerank_score"] is None for r in data["results"])
    assert "capacity" not in reply.text
    # A fallback is not cached: the next request tries the reranker again.
    again = await acme.client.post("/v1/search", json=body)
    assert again.json()["cached"] is False


async def test_rerank_options_out_of_bounds_are_422(harness: StackHarness) -> None:
    acme = await harness.tenant("acme")
    for rerank in ({"top_n": -1}, {"top_n": 101}, {"timeout_ms": 0}, {"timeout_ms": 5001}, {"top": 3}, 5):
        reply = await acme.client.post("/v1/search", json={"query": "rocket", "rerank": rerank})
        assert reply.status_code == 422, (rerank, reply.text)
        assert reply.headers["content-type"] == "application/problem+json"
    for edge in ({"top_n": 0}, {"top_n": 100}, {"timeout_ms": 1}, {"timeout_ms": 5000}, {}):
        reply = await acme.client.post("/v1/search", json={"query": "rocket", "rerank": edge})
        assert reply.status_code == 200, (edge, reply.text)


async def test_the_tenant_setting_turns_rerank_on_and_a_request_turns_it_off(tmp_path: Path) -> None:
    async with open_harness(tmp_path, {"gateway": {"RERANK_TOP_N": "2"}}) as harness:
        acme = await harness.tenant("acme")
        await _ingest(harness, acme, DOCS)
        default = await acme.client.post("/v1/search", json={"query": "rocket engines", "top_k": 4})
        rerank = default.json()["rerank"]
        assert rerank["applied"] is True and rerank["top_n"] == 2 and rerank["candidates"] == 2
        results = default.json()["results"]
        assert [r["rerank_score"] is not None for r in results] == [True, True] + [False] * (len(results) - 2)
        off = await acme.client.post("/v1/search", json={"query": "rocket engines", "rerank": {"top_n": 0}})
        assert off.json()["rerank"] is None
        assert all(r["rerank_score"] is None for r in off.json()["results"])


async def test_thresholds_drop_results_below_them(harness: StackHarness) -> None:
    acme, *_ = await _two_tenants(harness)
    await _assert_min_score(acme)
    body: dict[str, Any] = {"query": "liquid oxygen", "top_k": 4, "rerank": {"top_n": 4}}
    everything = (await acme.client.post("/v1/search", json=body)).json()["results"]
    cut = sorted(r["rerank_score"] for r in everything)[len(everything) // 2]
    kept = (await acme.client.post("/v1/search", json={**body, "min_rerank_score": cut})).json()["results"]
    assert kept and all(r["rerank_score"] >= cut for r in kept)
    assert len(kept) < len(everything)


async def _assert_min_score(acme: Tenant) -> None:
    everything = (await acme.client.post("/v1/search", json={"query": "kerosene oxygen"})).json()["results"]
    best = everything[0]["score"]
    kept = (
        await acme.client.post("/v1/search", json={"query": "kerosene oxygen", "min_score": best - 1e-6})
    ).json()
    assert [r["chunk_id"] for r in kept["results"]] == [
        r["chunk_id"] for r in everything if r["score"] >= best
    ]
    for bad in (-1, "high", None):
        reply = await acme.client.post("/v1/search", json={"query": "kerosene", "min_score": bad})
        assert reply.status_code == (200 if bad is None else 422), reply.text


async def test_operators_hold_in_every_result_whichever_retriever_found_it(harness: StackHarness) -> None:
    acme, titles, _globex = await _two_tenants(harness)
    for mode in ("hybrid", "keyword", "vector"):
        await _assert_operators(acme, titles, mode)
    reply = await acme.client.post("/v1/search", json={"query": "-jet engines", "mode": "keyword"})
    assert "Jet engines" in _titles(reply, titles), "plain syntax (the default) reads operators as text"


async def _assert_operators(acme: Tenant, titles: dict[str, str], mode: str) -> None:

    async def search(query: str) -> list[str]:
        reply = await acme.client.post(
            "/v1/search", json={"query": query, "mode": mode, "syntax": "operators", "top_k": 10}
        )
        assert reply.status_code == 200, reply.text
        return _titles(reply, titles)

    excluded = await search("engines burn -jet")
    assert excluded and "Jet engines" not in excluded
    if mode == "keyword":
        assert set(excluded) == {"Rocket engines", "Solid rockets"}
    assert set(await search('"liquid oxygen"')) == {"Rocket engines", "Jet engines"}
    assert set(await search("+kerosene -turbofan engines")) == {"Rocket engines"}
    assert await search("-rocket") == []  # exclusions only: nothing to look for
    assert set(await search("+globex rocket")) == set()  # another tenant's word finds nothing here


HOSTILE = [
    '"',
    '""',
    '"+-"',
    "+",
    "-",
    '- + "',
    '+"" -""',
    "-(",
    "NEAR(a b)",
    '"a" NOT "b"',
    "a:b*",
    "^x",
    '+"rocket',
    "--rocket",
    "+-+rocket",
    '"' * 101,
    "rocket " + "-x " * 300,
    "-" * 2000,
]


async def test_hostile_operator_queries_never_500(harness: StackHarness) -> None:
    acme, *_ = await _two_tenants(harness)
    for query in HOSTILE:
        for mode in ("hybrid", "keyword"):
            body = {"query": query, "mode": mode, "syntax": "operators"}
            reply = await acme.client.post("/v1/search", json=body)
            assert reply.status_code in (200, 422), (query, reply.text)


async def test_numbers_are_numbers_not_booleans(tmp_path: Path) -> None:
    """JSON true/false or a fraction is not a count or a score (pydantic's lax mode would read true as 1)."""
    async with open_harness(tmp_path) as harness:
        acme = await harness.tenant("acme")
        for field in (
            {"top_k": True},
            {"top_k": 2.5},
            {"min_score": False},
            {"min_rerank_score": False},
            {"rerank": {"top_n": True}},
            {"rerank": {"timeout_ms": True}},
        ):
            reply = await acme.client.post("/v1/search", json={"query": "anything", **field})
            assert reply.status_code == 422, (field, reply.text)
        ok = await acme.client.post("/v1/search", json={"query": "anything", "top_k": 3, "min_score": 0})
        assert ok.status_code == 200, ok.text


class ReversingAi(RecordingAi):
    """Answers the reranker with the fused order reversed (the last candidate scores highest)."""

    async def run(self, model: str, inputs: Any, **options: Any) -> Any:
        if model != RERANKER:
            return await self.real_run(model, inputs, **options)
        self.rerank_inputs.append(inputs)
        count = len(inputs["contexts"])
        return {"response": [{"id": i, "score": float(i + 1)} for i in range(count)][::-1]}


async def test_answers_chat_and_openai_sources_follow_the_tenants_rerank(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """RERANK_TOP_N applies wherever the gateway retrieves: the sources of /v1/answer, of a chat
    turn and of /v1/chat/completions come in the reranker's order, and without the setting no
    reranker is called."""
    question = "Which engines burn kerosene with liquid oxygen?"
    async with open_harness(tmp_path, {"gateway": {"RERANK_TOP_N": "3"}}) as harness:
        acme = await harness.tenant("acme", scopes=("read", "write", "chat"))
        await _ingest(harness, acme, DOCS)
        ai = harness.stack.workers["gateway"].env.AI
        fused = await acme.client.post("/v1/search", json={"query": question, "rerank": {"top_n": 0}})
        fused_titles = [r["title"] for r in fused.json()["results"]]
        reversing = ReversingAi(ai.run)
        monkeypatch.setattr(ai, "run", reversing.run)

        answer = await acme.client.post("/v1/answer", json={"question": question, "cache": False})
        assert answer.status_code == 200, answer.text
        sources = [s["title"] for s in answer.json()["sources"]]
        [sent] = reversing.rerank_inputs
        pool = [c["text"].split("\n", 1)[0] for c in sent["contexts"]]
        assert pool == fused_titles[: len(pool)] and len(pool) >= 2
        assert sources[: len(pool)] == [t for t in pool[::-1] if t in sources][: len(pool)]
        assert sources[0] == pool[-1] != fused_titles[0]

        session = (await acme.client.post("/v1/chat/sessions", json={})).json()["id"]
        turn = await acme.client.post(f"/v1/chat/sessions/{session}/messages", json={"content": question})
        assert turn.status_code == 200, turn.text
        completion = await acme.client.post(
            "/v1/chat/completions",
            json={
                "model": "@cf/meta/llama-3.1-8b-instruct",
                "messages": [{"role": "user", "content": question}],
            },
        )
        assert completion.status_code == 200, completion.text
        assert len(reversing.rerank_inputs) == 3  # answer, chat turn, completion: one rerank each

    async with open_harness(tmp_path / "off") as harness:
        acme = await harness.tenant("acme", scopes=("read", "write", "chat"))
        await _ingest(harness, acme, DOCS)
        recording = _wrap_ai(harness, monkeypatch, "pass")
        assert (await acme.client.post("/v1/answer", json={"question": question})).status_code == 200
        assert recording.rerank_inputs == []
