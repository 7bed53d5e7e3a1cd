"""The local text-generation stand-in (edgerag_local.ai.textgen): what it answers and how it counts.

The shapes are pinned in tests/contract/test_ai.py; these tests pin the extractive behaviour the module
docstring documents (source parsing, ranking, citations, refusals, max_tokens, token counts), that it
serves every chat model the configuration names, and that its stream is produced piece by piece.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from edgerag_local.ai import CONTEXT_WINDOWS, LLAMA_33_70B, LocalAi, default_registry
from edgerag_local.ai.errors import AiError
from edgerag_local.ai.textgen import (
    NO_ANSWER,
    NO_SOURCES,
    ExtractiveResponder,
    answer,
    completion_tokens,
    prompt_tokens,
)

ROOT = Path(__file__).resolve().parents[2]
SOURCES = (
    "Use only these sources.\n"
    "[1] Rocket engines\n"
    "Liquid rocket engines burn propellant to produce thrust. The first one flew in 1926.\n"
    "[2] Jet engines\n"
    "Jet engines breathe air. Turbofans are quieter than turbojets.\n"
    "[3] Solid rockets\n"
    "Solid rocket motors produce thrust from a cast propellant grain."
)


def chat(question: str, sources: str = SOURCES) -> list[dict[str, str]]:
    return [{"role": "system", "content": sources}, {"role": "user", "content": question}]


def run(inputs: dict[str, Any], model: str = LLAMA_33_70B) -> Any:
    return default_registry().get(model).run(inputs)


# ------------------------------------------------------------------------------------ answers


def test_it_quotes_the_best_matching_sentences_best_first_with_their_markers() -> None:
    text = answer(chat("How do rocket engines produce thrust?"))
    assert text == (
        "Liquid rocket engines burn propellant to produce thrust [1]. "
        "Solid rocket motors produce thrust from a cast propellant grain [3]."
    )


def test_a_weak_partial_match_is_left_out() -> None:
    # "Jet engines breathe air" shares only "engines" with the question: under half the best score.
    assert "[2]" not in answer(chat("How do rocket engines produce thrust?"))


def test_stemming_matches_inflected_forms() -> None:
    assert answer(chat("Which turbofan is quiet?")) == "Turbofans are quieter than turbojets [2]."
    assert "[1]" in answer(chat("when did it fly first"))


def test_titles_are_not_quoted_but_one_line_blocks_are() -> None:
    assert answer(chat("rocket engines")) != "Rocket engines [1]."
    one_line = "[1] Liquid rocket engines burn propellant.\n[2] Jets breathe air."
    assert answer(chat("what burns propellant", one_line)) == "Liquid rocket engines burn propellant [1]."


def test_equal_scores_keep_source_order() -> None:
    sources = "[1] A\nThe pump moves water.\n[2] B\nThe pump moves water."
    assert answer(chat("what moves water", sources)) == "The pump moves water [1]. The pump moves water [2]."


def test_sources_may_follow_the_question_in_the_user_message() -> None:
    messages = [{"role": "user", "content": "What do turbofans do?\n" + SOURCES.split("\n", 1)[1]}]
    assert answer(messages) == "Turbofans are quieter than turbojets [2]."


def test_the_question_is_the_last_user_message() -> None:
    messages = [*chat("How do rocket engines produce thrust?"), {"role": "assistant", "content": "..."}]
    messages.append({"role": "user", "content": "Are turbofans quieter?"})
    assert answer(messages) == "Turbofans are quieter than turbojets [2]."


def test_markers_only_count_at_the_start_of_a_line() -> None:
    assert answer(chat("What is in the list?", "Our list [1] of things is short.")) == NO_SOURCES


def test_no_sources_and_no_match_are_said_plainly() -> None:
    assert answer([{"role": "user", "content": "What is the capital of France?"}]) == NO_SOURCES
    assert answer(chat("What is the capital of France?")) == NO_ANSWER
    assert answer(chat("the of and")) == NO_ANSWER  # only stop words: nothing to match


def test_the_same_input_gives_the_same_output() -> None:
    inputs = {"messages": chat("How do rocket engines produce thrust?")}
    assert run(inputs) == run(inputs) == LocalAi().registry.get(LLAMA_33_70B).run(inputs)


# ------------------------------------------------------------------------------- tokens, limits


def test_usage_counts_prompt_and_completion_with_the_documented_estimate() -> None:
    messages = chat("How do rocket engines produce thrust?")
    result = run({"messages": messages})
    assert result["usage"]["prompt_tokens"] == prompt_tokens(messages)
    assert result["usage"]["completion_tokens"] == completion_tokens(result["response"])


def test_max_tokens_cuts_before_the_piece_that_would_pass_it() -> None:
    messages = chat("How do rocket engines produce thrust?")
    full = run({"messages": messages})["response"]
    for limit in range(1, completion_tokens(full) + 2):
        result = run({"messages": messages, "max_tokens": limit})
        assert result["usage"]["completion_tokens"] <= limit
        assert full.startswith(result["response"])
        assert result["finish_reason"] == ("stop" if result["response"] == full else "length")
    # The pieces' estimates add up to the whole text's, so the cut is exact.
    assert run({"messages": messages, "max_tokens": completion_tokens(full)})["response"] == full


def test_the_default_max_tokens_is_256() -> None:
    sources = "[1] Notes\n" + " ".join(f"Pumps move water number {i}." for i in range(400))
    result = run({"messages": chat("pumps move water", sources)})
    assert result["usage"]["completion_tokens"] <= 256


def test_a_prompt_at_the_window_is_accepted_and_one_past_it_is_5021() -> None:
    model = ExtractiveResponder("@local/test", context_window=100)
    messages = [{"role": "user", "content": "hi"}]
    room = 100 - prompt_tokens(messages)
    result: Any = model.run({"messages": messages, "max_tokens": room})
    assert result["response"]
    with pytest.raises(AiError, match=r"^AiError: 5021: .*\(101\) exceeded this model context window limit"):
        model.run({"messages": messages, "max_tokens": room + 1})


# ---------------------------------------------------------------------------------- validation


@pytest.mark.parametrize(
    ("inputs", "fragment"),
    [
        ({"messages": [], "prompt": "hi"}, "either 'prompt' or 'messages'"),
        ({"messages": [{"role": "user", "content": None}]}, "'/messages/0'"),
        ({"messages": [{"role": 3, "content": "x"}]}, "'/messages/0/role'"),
        ({"prompt": "hi", "temperature": 9}, "'/temperature'"),
        ({"prompt": "hi", "temperature": "hot"}, "'number'"),
        ({"prompt": "hi", "seed": 1.5}, "'/seed'"),
        ({"prompt": "hi", "max_tokens": 0}, "minimum 1"),
        ({"prompt": "hi", "tools": {"name": "x"}}, "'/tools'"),
        ({"prompt": "hi", "tools": [{"name": "x"}]}, "'/tools/0'"),
        ({"prompt": "hi", "tools": [{"type": "function", "function": {"name": "x"}}]}, "'/tools/0/function'"),
        ({"prompt": "hi", "lora": "adapter"}, "lora"),
        ("hi", "'string' not in 'object'"),
    ],
)
def test_invalid_inputs_are_5006(inputs: Any, fragment: str) -> None:
    with pytest.raises(AiError) as caught:
        run(inputs)
    assert str(caught.value).startswith("AiError: 5006: Error: ")
    assert fragment in str(caught.value)


def test_sampling_parameters_and_tools_are_accepted_and_change_nothing() -> None:
    messages = chat("How do rocket engines produce thrust?")
    tools = [{"name": "search", "description": "Search", "parameters": {"type": "object", "properties": {}}}]
    tuned = {"temperature": 0.2, "top_p": 0.9, "top_k": 5, "seed": 7, "tools": tools, "raw": False}
    assert run({"messages": messages, **tuned}) == run({"messages": messages})


# ------------------------------------------------------------------------------------- stream


async def test_the_stream_is_produced_piece_by_piece() -> None:
    stream = run({"messages": chat("How do rocket engines produce thrust?"), "stream": True})
    iterator = aiter(stream)
    first = await anext(iterator)
    assert json.loads(first.decode().removeprefix("data: ")) == {"response": "Liquid"}
    rest = [chunk async for chunk in iterator]
    assert rest[-1] == b"data: [DONE]\n\n"
    assert all(chunk.startswith(b"data: ") and chunk.endswith(b"\n\n") for chunk in rest)


# ------------------------------------------------------------------------------- configuration


def configured_workers_ai_models() -> set[str]:
    """Every Workers AI model id (``@cf/...``, ``@hf/...``) named anywhere in the tenant files and the
    workers' wrangler configuration, whatever the key (chat, fallbacks, per-purpose, catalogs)."""
    found: set[str] = set()
    for path in [*(ROOT / "tenants").glob("*.toml"), *(ROOT / "workers").glob("*/wrangler.toml")]:
        found.update(re.findall(r"@(?:cf|hf)/[A-Za-z0-9._/-]+", path.read_text()))
    return found


def test_every_configured_workers_ai_model_is_served_locally() -> None:
    configured = configured_workers_ai_models()
    assert LLAMA_33_70B in configured  # the scan found the configuration
    assert configured <= set(default_registry().ids())
    assert {m for m in configured if "bge" not in m} <= set(CONTEXT_WINDOWS)  # chat ids: text generation
