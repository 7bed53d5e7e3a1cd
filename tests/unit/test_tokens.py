"""edgerag.tokens.estimate_tokens: the rules, monotonicity, and the upper-bound claim on real text.

The corpus check tokenises every chunk the chunker makes of SciFact with the Llama-2 tokenizer that
the local embedding stand-in (wordllama) ships, and asserts the estimate is never below it and wastes
well under 2x. It is skipped when the dataset or the tokenizer is not on the machine.
"""

from __future__ import annotations

import importlib.util
import json
import statistics
from pathlib import Path

import pytest
from edgerag.chunking import ChunkingSettings, chunk_text
from edgerag.tokens import BASE_TOKENS, estimate_tokens
from hypothesis import given
from hypothesis import strategies as st

SCIFACT = Path(__file__).resolve().parents[3] / "shared" / "datasets" / "scifact-train" / "corpus.jsonl"


def test_empty_text_costs_only_the_base() -> None:
    assert estimate_tokens("") == BASE_TOKENS


@pytest.mark.parametrize(
    ("text", "units"),
    [
        ("abc", 1),  # lower case: one token per 3 letters
        ("abcd", 2),
        ("the cat", 2),  # the space before a letter merges into the word
        ("Human", 3),  # "H" + "uma" + "n"
        ("GAPDH", 4),  # capitals: per 2 letters, +1 for the run
        ("2016", 4),  # every digit
        ("a, b", 3),  # "a" + "," + (" b": free space) "b"
        ("x  y", 3),  # the first of two spaces is not before a letter
        ("é", 2),  # non-ASCII: its UTF-8 bytes
        ("日本", 6),
        ("🎉", 4),
        ("\n\n", 2),
    ],
)
def test_rules(text: str, units: int) -> None:
    assert estimate_tokens(text) == BASE_TOKENS + units


def test_a_lone_surrogate_is_counted_not_an_error() -> None:
    assert estimate_tokens("a\ud800b") == BASE_TOKENS + 1 + 3 + 1


@given(st.text(), st.text())
def test_appending_text_never_lowers_the_estimate(head: str, tail: str) -> None:
    assert estimate_tokens(head + tail) >= estimate_tokens(head)


def _llama_tokenizer() -> object:
    tokenizers = pytest.importorskip("tokenizers")
    spec = importlib.util.find_spec("wordllama")
    if spec is None or spec.origin is None:
        pytest.skip("wordllama is not installed")
    path = Path(spec.origin).parent / "tokenizers" / "l2_supercat_tokenizer_config.json"
    if not path.is_file():
        pytest.skip(f"no Llama-2 tokenizer at {path}")
    return tokenizers.Tokenizer.from_file(str(path))


@pytest.mark.slow
@pytest.mark.parametrize(
    "settings",
    [ChunkingSettings(), ChunkingSettings(max_tokens=128, overlap_tokens=32)],
    ids=["default", "small"],
)
def test_estimate_bounds_the_llama2_count_of_every_scifact_chunk(settings: ChunkingSettings) -> None:
    if not SCIFACT.is_file():
        pytest.skip(f"dataset not present: {SCIFACT}")
    tokenizer = _llama_tokenizer()
    texts = []
    with SCIFACT.open(encoding="utf-8") as handle:
        for line in handle:
            row = json.loads(line)
            texts.append(f"{row['title']}\n\n{row['text']}")
    chunks = [chunk for text in texts for chunk in chunk_text(text, settings)]
    actual = [len(e.ids) for e in tokenizer.encode_batch([c.text for c in chunks])]  # type: ignore[attr-defined]

    pairs = list(zip(chunks, actual, strict=True))
    under = [(c.token_estimate, a, c.text[:80]) for c, a in pairs if c.token_estimate < a]
    assert under == []
    ratios = [c.token_estimate / a for c, a in pairs]
    assert sum(c.token_estimate for c in chunks) / sum(actual) < 1.7
    assert statistics.median(ratios) < 1.7
    assert max(actual) <= settings.hard_limit_tokens
