"""edgerag.chunking stays linear in its input on the inputs an attacker (or a bad export) can send.

No wall clock: a recording counter adds up how many characters the chunker asks it to count, and the
total must stay within a constant factor of the input at two sizes (so doubling the input at most
doubles the work). The regular-expression passes are invisible to a counter, so a run of punctuation
is checked in a child interpreter with a timeout that only guards against a hang.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from itertools import islice

import pytest
from edgerag.chunking import Chunk, ChunkingSettings, chunk_text, iter_chunks
from edgerag.tokens import estimate_tokens

# Characters counted per input character. The chunker counts each paragraph, sentence and word
# about once and each chunk a few times while searching; 12 leaves room without admitting growth.
WORK_PER_CHARACTER = 12

PATHOLOGICAL: dict[str, Callable[[int], str]] = {
    "one giant word": lambda n: "a" * n,
    "one giant sentence of words": lambda n: "word " * (n // 5),
    "one giant paragraph of sentences": lambda n: "A short sentence here. " * (n // 23),
    "many tiny paragraphs": lambda n: "a\n\n" * (n // 3),
    "all punctuation": lambda n: "." * n,
    "punctuation words": lambda n: ".!? " * (n // 4),
    "CJK without spaces": lambda n: "日本語の文章" * (n // 6),
    "a long run of newlines": lambda n: "x" + "\n" * n + "y",
    "many short lines": lambda n: "ab\n" * (n // 3),
    "capitals": lambda n: "ABCDEFG" * (n // 7),
    "base64 blob": lambda n: "QmFzZTY0IGJsb2I" * (n // 15),
}


class RecordingCounter:
    """The default estimator, recording how many characters it was asked to count."""

    def __init__(self) -> None:
        self.characters = 0
        self.calls = 0

    def __call__(self, text: str) -> int:
        self.characters += len(text)
        self.calls += 1
        return estimate_tokens(text)


def _work(text: str) -> RecordingCounter:
    counter = RecordingCounter()
    chunks = chunk_text(text, count=counter)
    assert chunks and all(c.token_estimate <= ChunkingSettings().max_tokens for c in chunks)
    return counter


@pytest.mark.parametrize("make", PATHOLOGICAL.values(), ids=PATHOLOGICAL.keys())
def test_counting_work_is_linear_in_the_input(make: Callable[[int], str]) -> None:
    small, large = make(40_000), make(80_000)
    small_work, large_work = _work(small), _work(large)
    assert small_work.characters <= WORK_PER_CHARACTER * len(small)
    assert large_work.characters <= WORK_PER_CHARACTER * len(large)
    # Doubling the input at most doubles the work (5% for how the last chunk falls).
    assert large_work.characters <= 2.1 * small_work.characters


def test_an_over_long_word_is_cut_into_pieces_that_fit() -> None:
    text = "x" * 50_000
    settings = ChunkingSettings(max_tokens=100, overlap_tokens=0, hard_limit_tokens=100)
    chunks = chunk_text(text, settings)
    assert "".join(c.text for c in chunks) == text
    assert all(c.token_estimate == estimate_tokens(c.text) <= 100 for c in chunks)
    # The longest pieces that fit: every cut but the last leaves no room for one more character.
    assert all(estimate_tokens(c.text + "x") > 100 for c in chunks[:-1])


def test_iter_chunks_yields_the_same_chunks_lazily() -> None:
    text = "First sentence here. Second one follows.\n\n" * 500
    settings = ChunkingSettings(max_tokens=40, overlap_tokens=10, hard_limit_tokens=40)
    assert list(iter_chunks(text, settings)) == chunk_text(text, settings)
    counter = RecordingCounter()
    first: list[Chunk] = list(islice(iter_chunks(text, settings, count=counter), 3))
    assert first == chunk_text(text, settings)[:3]
    # Stopping after three chunks counted only the start of the document.
    assert counter.characters < len(text) // 10


def test_a_run_of_punctuation_is_split_without_rescanning_the_run() -> None:
    # Before: every dot restarted the sentence-end match and rescanned the run (hours for this).
    script = (
        "from edgerag.chunking import chunk_text\n"
        "for text in ('.' * 400_000 + ' a', '!?' * 200_000 + '\\n' + ')' * 100_000):\n"
        "    chunks = chunk_text(text)\n"
        "    assert ''.join(c.text for c in chunks).replace(' ', '').replace('\\n', '') "
        "== text.replace(' ', '').replace('\\n', '')\n"
    )
    completed = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert completed.returncode == 0, completed.stderr
