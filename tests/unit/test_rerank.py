"""edgerag.retrieval.rerank against a fake Ai port that records each call: the request shape sent to
``@cf/baai/bge-reranker-base``, the answer parsed, and every way the stage falls back."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

import pytest
from edgerag.retrieval.rerank import (
    CONTEXT_TOKENS,
    DEFAULT_RERANK_MODEL,
    MAX_RERANK_TOP_N,
    Reranker,
    rerank_order,
    rerank_top_n,
)
from edgerag.tokens import estimate_tokens


class FakeAi:
    """An Ai port: answers with ``answer`` (or raises it, or never answers) and records the calls."""

    def __init__(self, answer: Any = None, *, hang: bool = False) -> None:
        self.answer = answer
        self.hang = hang
        self.calls: list[tuple[str, Mapping[str, Any]]] = []

    async def run(self, model: str, inputs: Mapping[str, Any], **options: Any) -> Any:
        self.calls.append((model, inputs))
        if self.hang:
            await asyncio.Event().wait()
        if isinstance(self.answer, Exception):
            raise self.answer
        if self.answer is None:  # score by how often the context mentions "rocket"
            scores = [c["text"].count("rocket") for c in inputs["contexts"]]
            order = sorted(range(len(scores)), key=lambda i: -scores[i])[: inputs["top_k"]]
            return {"response": [{"id": i, "score": float(scores[i])} for i in order]}
        return self.answer


CONTEXTS = ["a jet", "rocket rocket rocket", "bread", "rocket"]


async def test_the_call_shape_and_the_reordering() -> None:
    ai = FakeAi()
    order, report = await rerank_order(Reranker(ai), "rocket", CONTEXTS, top_n=3)
    [(model, inputs)] = ai.calls
    assert model == DEFAULT_RERANK_MODEL
    assert inputs == {"query": "rocket", "contexts": [{"text": t} for t in CONTEXTS[:3]], "top_k": 3}
    assert order == [(1, 3.0), (0, 0.0), (2, 0.0)]  # ties keep the fused order
    assert report.applied and report.reason is None and report.candidates == 3 and report.top_n == 3


async def test_long_inputs_are_cut_to_the_model_window() -> None:
    ai = FakeAi()
    long_text = "rocket " * 2000
    await Reranker(ai).scores("rocket " * 500, [long_text])
    inputs = ai.calls[0][1]
    sent = inputs["contexts"][0]["text"]
    assert long_text.startswith(sent) and estimate_tokens(sent) <= CONTEXT_TOKENS
    dense = "漢字" * 3000  # many tokens per character: the token estimate still holds it to the window
    await Reranker(ai).scores("q", [dense])
    assert estimate_tokens(ai.calls[1][1]["contexts"][0]["text"]) <= CONTEXT_TOKENS
    assert len(inputs["query"]) < len("rocket " * 500)


async def test_a_timeout_keeps_the_fused_order() -> None:
    order, report = await rerank_order(Reranker(FakeAi(hang=True), timeout_s=0.01), "q", CONTEXTS, 4)
    assert order is None and not report.applied and report.reason == "timeout"


@pytest.mark.parametrize(
    "answer",
    [
        RuntimeError("InferenceUpstreamError: 3040"),
        {"result": []},
        {"response": "nope"},
        {"response": [{"id": 0}]},
        {"response": [{"id": 7, "score": 1.0}]},
        {"response": [{"id": True, "score": 1.0}]},
        {"response": [{"id": 0, "score": 1.0}, {"id": 0, "score": 0.5}]},
        {"response": [{"id": 0, "score": float("nan")}]},
        {"response": [{"id": 0, "score": 1.0}]},  # scored 1 of 2 contexts
        None.__class__,  # not even a mapping
    ],
)
async def test_model_errors_and_malformed_answers_keep_the_fused_order(answer: Any) -> None:
    order, report = await rerank_order(Reranker(FakeAi(answer)), "q", ["a", "b"], 2)
    assert order is None and not report.applied and report.reason == "model_error"


async def test_no_candidates_makes_no_call() -> None:
    ai = FakeAi()
    order, report = await rerank_order(Reranker(ai), "q", [], 5)
    assert order is None and report.reason == "no_candidates" and ai.calls == []


def test_bounds() -> None:
    assert rerank_top_n("0") == 0 and rerank_top_n(str(MAX_RERANK_TOP_N)) == MAX_RERANK_TOP_N
    for bad in ("-1", str(MAX_RERANK_TOP_N + 1), "x"):
        with pytest.raises(ValueError):
            rerank_top_n(bad)
    with pytest.raises(ValueError):
        Reranker(FakeAi(), timeout_s=0)
