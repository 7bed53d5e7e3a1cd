"""Contract suite for the Workers AI binding (edgerag.ports.Ai).

Runs against every backend in ``LOCAL_BACKENDS`` (Miniflare has no local Workers AI). Locally that is
:class:`edgerag_local.ai.LocalAi`, whose
embedding models are WordLlama (packaged in its wheel) behind the bge ids, mapped isometrically to their
dimensions. Inside workerd the same calls would go to a test worker whose ``AI`` binding is real, driven
over RPC (``await env.AI_PROBE.run(model, inputs)``); the shape, normalisation, batch-limit, validation,
unknown-model and reranker assertions hold there as written.

Text generation (the last section) pins the shapes of the Workers AI model pages: ``{"response", "usage"}``
for a plain call, and for ``stream: true`` a stream of ``data: {"response": ...}`` events, a last one
with ``usage``, then ``data: [DONE]``; the context-window error (5021) and unknown models (5007). Locally
the text-generation ids are served by the extractive stand-in (:mod:`edgerag_local.ai.textgen`), so
answers are checked for shape, never for wording, except in ``local_`` tests.

Some tests only make sense for the emulator and say so in their name (``local_``): they use the honest
``@local/wordllama-l2-supercat-256`` id (to check the isometry against the base model and faithfulness to
WordLlama's own code), lower the limits, or pin the local token-limit policy (an error unless
``truncate_inputs``), which the edge does not document for bge. A workerd run skips them.
"""

from __future__ import annotations

import itertools
import json
import math
import random
from typing import Any

import numpy as np
import pytest
from edgerag.ports import Ai
from edgerag.sse import SseParser
from edgerag_local.ai import (
    BGE_BASE,
    BGE_LARGE,
    BGE_RERANKER,
    BGE_SMALL,
    CONTEXT_WINDOWS,
    EXTRACTIVE_RESPONDER,
    LLAMA_31_8B,
    LLAMA_33_70B,
    WORDLLAMA,
    AiLimits,
    LocalAi,
    count_tokens,
    default_registry,
    isometry,
    load_wordllama,
)
from edgerag_local.ai.errors import AiError

from tests.contract.conftest import LOCAL_BACKENDS

BGE_DIMS = {BGE_SMALL: 384, BGE_BASE: 768, BGE_LARGE: 1024}
EMBEDDING_DIMS = {**BGE_DIMS, WORDLLAMA: 256}
TEXT_GENERATION = list(CONTEXT_WINDOWS)
UNKNOWN_MODEL = "@cf/example/no-such-model"

SENTENCES = [
    "a cat sits on the mat",
    "a kitten on a rug",
    "stock market crash",
    "the central bank raised interest rates again",
    "how to bake sourdough bread at home",
    "vector databases index embeddings for similarity search",
    "the football match ended in a draw",
    "quarterly earnings beat analyst expectations",
]


@pytest.fixture(params=LOCAL_BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def ai(backend: str) -> Any:
    if backend == "local":
        return LocalAi()
    pytest.skip(f"backend {backend!r} needs a deployed test worker")


def local_only(backend: str) -> None:
    if backend != "local":
        pytest.skip("emulator-only behaviour")


def local_ai(limits: AiLimits) -> LocalAi:
    return LocalAi(default_registry(limits))


def vectors(result: Any) -> np.ndarray[Any, np.dtype[np.float64]]:
    return np.asarray(result["data"], dtype=np.float64)


def cosine(a: np.ndarray[Any, Any], b: np.ndarray[Any, Any]) -> float:
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


async def expect_ai_error(coro: Any, *fragments: str) -> str:
    with pytest.raises(AiError) as caught:
        await coro
    message = str(caught.value)
    for fragment in fragments:
        assert fragment in message, message
    return message


# ----------------------------------------------------------------------------------- shapes, dims


def test_local_binding_satisfies_the_port(ai: Any) -> None:
    assert isinstance(ai, Ai)


@pytest.mark.parametrize("model", list(BGE_DIMS))
async def test_single_string_gives_one_row_of_the_model_dimension(ai: Any, model: str) -> None:
    result = await ai.run(model, {"text": "hello world"})
    assert result.shape == [1, BGE_DIMS[model]]
    assert len(result.data) == 1 and len(result.data[0]) == BGE_DIMS[model]
    assert all(isinstance(x, float) for x in result.data[0])
    assert result.pooling == "mean"


@pytest.mark.parametrize("model", list(BGE_DIMS))
async def test_batch_gives_one_row_per_text_in_order(ai: Any, model: str) -> None:
    batch = await ai.run(model, {"text": SENTENCES})
    assert batch["shape"] == [len(SENTENCES), BGE_DIMS[model]]
    single = await ai.run(model, {"text": SENTENCES[3]})
    np.testing.assert_allclose(vectors(batch)[3], vectors(single)[0], atol=1e-6)


async def test_empty_batch_gives_empty_data(ai: Any) -> None:
    result = await ai.run(BGE_BASE, {"text": []})
    assert result.shape == [0, 768]
    assert result.data == []


async def test_local_wordllama_id_is_256_dimensional(ai: Any, backend: str) -> None:
    local_only(backend)
    result = await ai.run(WORDLLAMA, {"text": SENTENCES[:2]})
    assert result.shape == [2, 256]


@pytest.mark.parametrize("model", list(BGE_DIMS))
async def test_rows_are_l2_normalised(ai: Any, model: str) -> None:
    norms = np.linalg.norm(vectors(await ai.run(model, {"text": SENTENCES})), axis=1)
    np.testing.assert_allclose(norms, 1.0, atol=1e-5)


# ------------------------------------------------------------------------------------ semantics


@pytest.mark.parametrize("model", list(BGE_DIMS))
async def test_similar_sentences_are_closer_than_unrelated_ones(ai: Any, model: str) -> None:
    cat, kitten, crash = vectors(await ai.run(model, {"text": SENTENCES[:3]}))
    assert cosine(cat, kitten) > cosine(cat, crash) + 0.2


async def test_a_finance_sentence_is_closer_to_finance_than_to_baking(ai: Any) -> None:
    # Deliberately modest: WordLlama is a bag of token vectors, and e.g. "interest rates" vs "earnings"
    # does NOT beat "interest rates" vs "sourdough bread" with it (checked; a real bge would pass).
    rows = vectors(await ai.run(BGE_BASE, {"text": SENTENCES}))
    crash, bread, earnings = rows[2], rows[4], rows[7]
    assert cosine(earnings, crash) > cosine(earnings, bread)


# --------------------------------------------------------------------------- isometry, determinism


@pytest.mark.parametrize("model", list(BGE_DIMS))
async def test_local_stand_in_preserves_wordllama_geometry(ai: Any, backend: str, model: str) -> None:
    local_only(backend)
    stand_in = vectors(await ai.run(model, {"text": SENTENCES}))
    base = vectors(await ai.run(WORDLLAMA, {"text": SENTENCES}))
    for i, j in itertools.combinations(range(len(SENTENCES)), 2):
        assert stand_in[i] @ stand_in[j] == pytest.approx(base[i] @ base[j], abs=1e-5)
        assert np.linalg.norm(stand_in[i] - stand_in[j]) == pytest.approx(
            np.linalg.norm(base[i] - base[j]), abs=1e-5
        )


async def test_local_stand_in_preserves_geometry_on_random_texts(ai: Any, backend: str) -> None:
    local_only(backend)
    rng = random.Random(7)
    words = " ".join(SENTENCES).split()
    texts = [" ".join(rng.choice(words) for _ in range(rng.randint(1, 30))) for _ in range(40)]
    stand_in = vectors(await ai.run(BGE_LARGE, {"text": texts}))
    base = vectors(await ai.run(WORDLLAMA, {"text": texts}))
    pairs = [(rng.randrange(40), rng.randrange(40)) for _ in range(200)]
    for i, j in pairs:
        assert cosine(stand_in[i], stand_in[j]) == pytest.approx(cosine(base[i], base[j]), abs=1e-5)


def test_local_isometry_has_orthonormal_columns_and_depends_only_on_the_seed() -> None:
    q = isometry(768, 256, seed=42)
    assert q.shape == (768, 256)
    np.testing.assert_allclose(q.T @ q, np.eye(256), atol=1e-10)
    np.testing.assert_array_equal(q, isometry(768, 256, seed=42))
    assert not np.allclose(q, isometry(768, 256, seed=43))


async def test_results_are_deterministic_across_binding_instances(ai: Any, backend: str) -> None:
    local_only(backend)
    first = await ai.run(BGE_BASE, {"text": SENTENCES})
    second = await LocalAi().run(BGE_BASE, {"text": SENTENCES})
    assert first.data == second.data


async def test_local_embedding_matches_wordllama_own_inference(backend: str) -> None:
    """The pooling here is WordLlama's: tokenise, average the token rows, normalise."""
    local_only(backend)
    from edgerag_local.ai.wordllama_base import wordllama_files
    from safetensors import safe_open
    from tokenizers import Tokenizer
    from wordllama.inference import WordLlamaInference  # type: ignore[import-untyped]

    weights, tokenizer = wordllama_files()
    with safe_open(str(weights), framework="np") as handle:
        table = handle.get_tensor("embedding.weight")
    reference = WordLlamaInference(table, Tokenizer.from_file(str(tokenizer)))
    texts = [*SENTENCES, "héllo 🙂 世界", " ", "x" * 300]
    expected = reference.embed(texts, norm=True)
    np.testing.assert_allclose(load_wordllama().embed(texts), expected, atol=1e-6)


# ------------------------------------------------------------------------------------ pooling


async def test_cls_pooling_is_reported_and_not_interchangeable_with_mean(ai: Any) -> None:
    mean = await ai.run(BGE_BASE, {"text": SENTENCES[:3]})
    cls = await ai.run(BGE_BASE, {"text": SENTENCES[:3], "pooling": "cls"})
    assert cls.pooling == "cls" and cls.shape == [3, 768]
    m, c = vectors(mean), vectors(cls)
    # The same text embedded with the two poolings is not the same vector ...
    assert cosine(m[0], c[0]) < 0.9
    # ... but each pooling is internally consistent: similar texts stay similar.
    assert cosine(c[0], c[1]) > cosine(c[0], c[2])


async def test_local_cls_pooling_keeps_wordllama_similarities(ai: Any, backend: str) -> None:
    local_only(backend)
    cls = vectors(await ai.run(BGE_SMALL, {"text": SENTENCES, "pooling": "cls"}))
    base = vectors(await ai.run(WORDLLAMA, {"text": SENTENCES}))
    assert cls[0] @ cls[1] == pytest.approx(base[0] @ base[1], abs=1e-5)


# ------------------------------------------------------------------------------- batch limit


async def test_a_hundred_texts_are_accepted_and_a_hundred_and_one_rejected(ai: Any) -> None:
    texts = [f"text number {i}" for i in range(101)]
    result = await ai.run(BGE_SMALL, {"text": texts[:100]})
    assert result.shape == [100, 384]
    await expect_ai_error(ai.run(BGE_SMALL, {"text": texts}), "5006", "'/text'", "100")


async def test_local_lowered_batch_limit_is_enforced(backend: str) -> None:
    local_only(backend)
    ai = local_ai(AiLimits(max_texts_per_call=3))
    assert (await ai.run(BGE_BASE, {"text": SENTENCES[:3]})).shape == [3, 768]
    await expect_ai_error(ai.run(BGE_BASE, {"text": SENTENCES[:4]}), "5006", "maxItems 3")


# ------------------------------------------------------------------------------- token limit


def _text_of_tokens(model: str, tokens: int) -> str:
    """A text that counts exactly ``tokens`` against ``model``'s limit (words are one token each)."""
    words: list[str] = []
    while count_tokens(model, " ".join(words)) < tokens:
        words.append("cat")
    text = " ".join(words)
    assert count_tokens(model, text) == tokens
    return text


def test_local_token_count_includes_bert_special_tokens_for_bge_ids(backend: str) -> None:
    local_only(backend)
    text = "a cat sits on the mat"
    base = count_tokens(WORDLLAMA, text)
    assert base == 7
    for model in BGE_DIMS:
        assert count_tokens(model, text) == base + 2


def test_local_count_tokens_rejects_models_without_a_token_limit(backend: str) -> None:
    local_only(backend)
    with pytest.raises(AiError):
        count_tokens(BGE_RERANKER, "text")


async def test_local_input_at_the_token_limit_is_accepted_and_one_more_rejected(backend: str) -> None:
    local_only(backend)
    ai = LocalAi()
    at_limit = _text_of_tokens(BGE_BASE, 512)
    assert (await ai.run(BGE_BASE, {"text": at_limit})).shape == [1, 768]
    over = at_limit + " cat"
    await expect_ai_error(
        ai.run(BGE_BASE, {"text": ["short", over]}), "5006", "'/text/1'", "513 tokens", "512"
    )


async def test_local_truncate_inputs_cuts_to_the_limit(backend: str) -> None:
    local_only(backend)
    ai = local_ai(AiLimits(max_input_tokens=5))
    long_text = "the quick brown fox jumps over the lazy dog"
    truncated = await ai.run(WORDLLAMA, {"text": long_text, "truncate_inputs": True})
    base = load_wordllama()
    first_five = base.token_ids([long_text])[0][:5]
    np.testing.assert_allclose(vectors(truncated)[0], base.embed_ids([first_five])[0], atol=1e-6)
    untruncated = vectors(await LocalAi().run(WORDLLAMA, {"text": long_text}))[0]
    assert cosine(vectors(truncated)[0], untruncated) < 0.999
    await expect_ai_error(ai.run(WORDLLAMA, {"text": long_text}), "5006", "truncate_inputs")


# ------------------------------------------------------------------------------- validation


@pytest.mark.parametrize(
    ("inputs", "fragments"),
    [
        ({}, ("5006", "required properties at '/' are 'text'")),
        ({"prompt": "hi"}, ("5006", "required properties at '/' are 'text'")),
        ({"text": ""}, ("5006", "'/text'", "minLength 1")),
        ({"text": ["ok", ""]}, ("5006", "'/text/1'", "minLength 1")),
        ({"text": 42}, ("5006", "oneOf at '/text' not met", "'integer' not in 'string'")),
        ({"text": ["ok", 3]}, ("5006", "Type mismatch of '/text/1'", "'integer' not in 'string'")),
        ({"text": "ok", "pooling": "max"}, ("5006", "enum max not in mean,cls at '/pooling'")),
        ({"text": "ok", "truncate_inputs": "yes"}, ("5006", "'/truncate_inputs'", "'boolean'")),
    ],
)
async def test_invalid_embedding_inputs_are_rejected(
    ai: Any, inputs: dict[str, Any], fragments: tuple[str, ...]
) -> None:
    message = await expect_ai_error(ai.run(BGE_BASE, inputs), *fragments)
    assert message.startswith("AiError: 5006: Error: ")


async def test_local_unknown_input_property_is_rejected(backend: str) -> None:
    """The edge ignores unknown properties; locally a typo fails loudly."""
    local_only(backend)
    await expect_ai_error(LocalAi().run(BGE_BASE, {"text": "ok", "pooling_": "cls"}), "5006", "pooling_")


async def test_inputs_must_be_an_object(ai: Any) -> None:
    await expect_ai_error(ai.run(BGE_BASE, ["text"]), "5006", "'array' not in 'object'")


# ----------------------------------------------------------------------------- unknown models


async def test_unknown_model_error_lists_the_served_models(ai: Any, backend: str) -> None:
    message = await expect_ai_error(
        ai.run(UNKNOWN_MODEL, {"prompt": "hi"}),
        "5007",
        f"No such model {UNKNOWN_MODEL}",
    )
    if backend == "local":
        for model in [*BGE_DIMS, WORDLLAMA, BGE_RERANKER, *TEXT_GENERATION]:
            assert model in message


async def test_local_options_accept_gateway_and_reject_others(backend: str) -> None:
    local_only(backend)
    ai = LocalAi()
    result = await ai.run(BGE_SMALL, {"text": "ok"}, gateway={"id": "my-gateway"})
    assert result.shape == [1, 384]
    result = await ai.run(BGE_SMALL, {"text": "ok"}, {"gateway": {"id": "g"}})
    assert result.shape == [1, 384]
    with pytest.raises(TypeError, match="returnRawResponse"):
        await ai.run(BGE_SMALL, {"text": "ok"}, returnRawResponse=True)


async def test_local_model_listing_names_every_model_and_flags_stand_ins(backend: str) -> None:
    local_only(backend)
    ai = LocalAi()
    listed = {m.id: m for m in ai.registry.models()}
    assert set(listed) == {*BGE_DIMS, WORDLLAMA, BGE_RERANKER, *TEXT_GENERATION}
    for model in BGE_DIMS:
        assert listed[model].task == "Text Embeddings"
        assert "STAND-IN" in listed[model].description
    assert "STAND-IN" in listed[BGE_RERANKER].description
    embeddings = await ai.models({"task": "Text Embeddings"})
    assert {m.name for m in embeddings} == {*BGE_DIMS, WORDLLAMA}
    base = next(m for m in embeddings if m.name == BGE_BASE)
    props = {p["property_id"]: p["value"] for p in base.properties}
    assert props["dimensions"] == "768" and props["max_input_tokens"] == "512"
    assert "STAND-IN" in props["implementation"]


# ---------------------------------------------------------------------------------- reranker


async def test_reranker_orders_contexts_by_relevance(ai: Any) -> None:
    contexts = [{"text": t} for t in (SENTENCES[2], SENTENCES[1], SENTENCES[4])]
    result = await ai.run(BGE_RERANKER, {"query": "a cat sits on the mat", "contexts": contexts})
    ranked = result.response
    assert sorted(r["id"] for r in ranked) == [0, 1, 2]
    assert all(isinstance(r["id"], int) for r in ranked)
    assert ranked[0]["id"] == 1
    scores = [r["score"] for r in ranked]
    assert scores == sorted(scores, reverse=True)
    assert all(0.0 <= s <= 1.0 for s in scores)


async def test_reranker_top_k_keeps_the_best(ai: Any) -> None:
    contexts = [{"text": t} for t in SENTENCES]
    full = (await ai.run(BGE_RERANKER, {"query": "bank interest rates", "contexts": contexts})).response
    top = (
        await ai.run(BGE_RERANKER, {"query": "bank interest rates", "contexts": contexts, "top_k": 2})
    ).response
    assert top == full[:2]
    assert full[0]["id"] == 3


@pytest.mark.parametrize(
    ("inputs", "fragments"),
    [
        ({"contexts": [{"text": "a"}]}, ("5006", "required properties at '/' are 'query'")),
        ({"query": "q"}, ("5006", "required properties at '/' are 'contexts'")),
        ({"query": "", "contexts": [{"text": "a"}]}, ("5006", "'/query'")),
        ({"query": "q", "contexts": "a"}, ("5006", "'/contexts'", "'array'")),
        ({"query": "q", "contexts": [{"text": "a"}], "top_k": 0}, ("5006", "'/top_k'", "minimum 1")),
        ({"query": "q", "contexts": [{"text": "a"}, {}]}, ("5006", "'/contexts/1'", "'text'")),
    ],
)
async def test_invalid_reranker_inputs_are_rejected(
    ai: Any, inputs: dict[str, Any], fragments: tuple[str, ...]
) -> None:
    await expect_ai_error(ai.run(BGE_RERANKER, inputs), *fragments)


def test_reranker_scores_are_a_squashed_cosine(backend: str) -> None:
    """Local stand-in contract: score = (1 + cosine) / 2 of the WordLlama vectors."""
    local_only(backend)
    registry = default_registry()
    result = registry.get(BGE_RERANKER).run({"query": SENTENCES[0], "contexts": [{"text": SENTENCES[1]}]})
    q, c = load_wordllama().embed([SENTENCES[0], SENTENCES[1]])
    assert result["response"][0]["score"] == pytest.approx((1 + float(q @ c)) / 2, abs=1e-6)
    assert not math.isnan(result["response"][0]["score"])


# --------------------------------------------------------------------------- text generation

SOURCES = (
    "Answer from the sources.\n"
    "[1] Rocket engines\nLiquid rocket engines burn propellant to produce thrust. They were first flown "
    "in 1926.\n"
    "[2] Jet engines\nTurbofans are quieter than turbojets."
)
CHAT = [
    {"role": "system", "content": SOURCES},
    {"role": "user", "content": "How do rocket engines produce thrust?"},
]


async def read_stream(stream: Any) -> list[str]:
    """The data of every event of a Workers AI stream (bytes chunks, or Uint8Array with to_bytes)."""
    parser = SseParser()
    data: list[str] = []
    async for chunk in stream:
        raw = chunk.to_bytes() if hasattr(chunk, "to_bytes") else bytes(chunk)
        data.extend(event.data for event in parser.feed(raw))
    assert parser.close() is False, "the stream ended in the middle of an event"
    return data


def assert_usage(usage: Any) -> None:
    assert usage["prompt_tokens"] > 0 and usage["completion_tokens"] > 0
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]


@pytest.mark.parametrize("model", [LLAMA_33_70B, LLAMA_31_8B])
async def test_text_generation_answers_messages_with_response_and_usage(ai: Any, model: str) -> None:
    result = await ai.run(model, {"messages": CHAT})
    assert isinstance(result["response"], str) and result["response"].strip()
    assert_usage(result["usage"])
    assert result.response == result["response"]  # attribute access, as the SDK's JsDict allows


async def test_text_generation_accepts_a_bare_prompt(ai: Any) -> None:
    result = await ai.run(LLAMA_33_70B, {"prompt": "What is a rocket engine?"})
    assert isinstance(result["response"], str) and result["response"].strip()


async def test_text_generation_stream_is_response_events_then_usage_then_done(ai: Any) -> None:
    stream = await ai.run(LLAMA_33_70B, {"messages": CHAT, "stream": True})
    data = await read_stream(stream)
    assert data[-1] == "[DONE]"
    events = [json.loads(d) for d in data[:-1]]
    assert all(isinstance(e["response"], str) for e in events)
    assert sum(1 for e in events if e["response"]) > 1, "text arrives in several events"
    assert_usage(events[-1]["usage"])
    assert "".join(e["response"] for e in events).strip()


async def test_max_tokens_bounds_the_completion(ai: Any) -> None:
    result = await ai.run(LLAMA_33_70B, {"messages": CHAT, "max_tokens": 5})
    assert 0 < result["usage"]["completion_tokens"] <= 5


async def test_a_prompt_past_the_context_window_is_rejected(ai: Any) -> None:
    words = "word " * (CONTEXT_WINDOWS[LLAMA_33_70B] + 1000)
    message = await expect_ai_error(
        ai.run(LLAMA_33_70B, {"messages": [{"role": "user", "content": words}]}),
        "5021",
        "exceeded this model context window limit",
    )
    assert str(CONTEXT_WINDOWS[LLAMA_33_70B]) in message


async def test_text_generation_for_an_unknown_model_is_5007(ai: Any) -> None:
    await expect_ai_error(ai.run(UNKNOWN_MODEL, {"messages": CHAT}), "5007", f"No such model {UNKNOWN_MODEL}")


@pytest.mark.parametrize(
    ("inputs", "fragments"),
    [
        ({}, ("5006", "'prompt'", "'messages'")),
        ({"prompt": ""}, ("5006", "'/prompt'")),
        ({"messages": "hi"}, ("5006", "'/messages'", "'array'")),
        ({"messages": [{"role": "user"}]}, ("5006", "'/messages/0'", "'content'")),
        (
            {"messages": [{"role": "user", "content": [{"type": "text", "text": "hi"}]}]},
            ("5006", "Type mismatch of '/messages/0/content'", "'array' not in 'string'"),
        ),
        ({"messages": CHAT, "stream": "yes"}, ("5006", "'/stream'", "'boolean'")),
        ({"messages": CHAT, "max_tokens": "many"}, ("5006", "'/max_tokens'", "'integer'")),
    ],
)
async def test_invalid_text_generation_inputs_are_rejected(
    ai: Any, inputs: dict[str, Any], fragments: tuple[str, ...]
) -> None:
    message = await expect_ai_error(ai.run(LLAMA_33_70B, inputs), *fragments)
    assert message.startswith("AiError: 5006: Error: ")


async def test_local_text_generation_never_calls_the_offered_tools(ai: Any, backend: str) -> None:
    """A real model may call a tool here; the local stand-in answers in text, always."""
    local_only(backend)
    tools = [
        {
            "type": "function",
            "function": {
                "name": "search_knowledge_base",
                "description": "Search the knowledge base",
                "parameters": {
                    "type": "object",
                    "properties": {"query": {"type": "string", "description": "what to search for"}},
                },
            },
        },
        {"name": "get_weather", "description": "Weather", "parameters": {"type": "object", "properties": {}}},
    ]
    result = await ai.run(LLAMA_33_70B, {"messages": CHAT, "tools": tools})
    assert not result.get("tool_calls")
    assert result["finish_reason"] == "stop"
    assert result["response"] == "Liquid rocket engines burn propellant to produce thrust [1]."


async def test_local_stream_carries_the_same_text_and_usage_as_the_plain_call(ai: Any, backend: str) -> None:
    local_only(backend)
    plain = await ai.run(LLAMA_31_8B, {"messages": CHAT})
    events = [
        json.loads(d)
        for d in (await read_stream(await ai.run(LLAMA_31_8B, {"messages": CHAT, "stream": True})))[:-1]
    ]
    assert "".join(e["response"] for e in events) == plain["response"]
    assert events[-1]["usage"] == plain["usage"]
    assert events[-1]["finish_reason"] == "stop"


async def test_local_cut_by_max_tokens_reports_length(ai: Any, backend: str) -> None:
    local_only(backend)
    result = await ai.run(LLAMA_33_70B, {"messages": CHAT, "max_tokens": 5})
    assert result["finish_reason"] == "length"
    assert result["response"] and "Liquid rocket engines burn propellant to produce thrust [1].".startswith(
        result["response"]
    )


async def test_local_context_window_counts_prompt_plus_max_tokens(ai: Any, backend: str) -> None:
    local_only(backend)
    model = "@cf/mistral/mistral-7b-instruct-v0.1"
    window = CONTEXT_WINDOWS[model]
    prompt = [{"role": "user", "content": "hello"}]
    used = (await ai.run(model, {"messages": prompt, "max_tokens": 1}))["usage"]["prompt_tokens"]
    assert (await ai.run(model, {"messages": prompt, "max_tokens": window - used}))["response"]
    await expect_ai_error(
        ai.run(model, {"messages": prompt, "max_tokens": window - used + 1}),
        "5021",
        f"({window + 1}) exceeded this model context window limit ({window})",
    )


async def test_local_text_generation_rejects_unknown_roles_and_properties(ai: Any, backend: str) -> None:
    local_only(backend)
    await expect_ai_error(
        ai.run(LLAMA_33_70B, {"messages": [{"role": "human", "content": "hi"}]}),
        "5006",
        "enum human not in system,user,assistant,tool at '/messages/0/role'",
    )
    await expect_ai_error(
        ai.run(LLAMA_33_70B, {"messages": CHAT, "response_format": {"type": "json_object"}}),
        "5006",
        "response_format",
    )


def test_local_text_generation_ids_describe_themselves_as_stand_ins(backend: str) -> None:
    local_only(backend)
    registry = default_registry()
    for model in TEXT_GENERATION:
        info = registry.info(model)
        assert info.task == "Text Generation"
        assert "LOCAL STAND-IN" in info.description and "not a language model" in info.description
        described = registry.get(model).describe()
        assert described["implementation"].startswith("LOCAL STAND-IN, not a language model: extractive")
        assert described["context_window"] == CONTEXT_WINDOWS[model]
    assert EXTRACTIVE_RESPONDER in TEXT_GENERATION
