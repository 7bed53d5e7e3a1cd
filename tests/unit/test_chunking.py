"""edgerag.chunking: settings validation, boundary preferences, overlap, limits, and properties.

Most examples count tokens as words (``_words``) so expected chunks can be worked out by hand; the
property tests use the real estimator.
"""

from __future__ import annotations

import itertools

import pytest
from edgerag.chunking import Chunk, ChunkingSettings, ChunkTooLargeError, chunk_text
from edgerag.tokens import estimate_tokens
from hypothesis import given, settings
from hypothesis import strategies as st


def _words(text: str) -> int:
    return len(text.split())


def _check_slices(text: str, chunks: list[Chunk]) -> None:
    for chunk in chunks:
        assert text[chunk.char_start : chunk.char_end] == chunk.text


# -- settings ------------------------------------------------------------------------------------


def test_default_settings() -> None:
    assert ChunkingSettings() == ChunkingSettings(max_tokens=400, overlap_tokens=60, hard_limit_tokens=512)


@pytest.mark.parametrize(
    ("max_tokens", "overlap_tokens", "hard_limit_tokens"),
    [(100, 100, 512), (100, 150, 512), (100, -1, 512), (600, 60, 512), (0, 0, 512)],
)
def test_settings_must_be_ordered(max_tokens: int, overlap_tokens: int, hard_limit_tokens: int) -> None:
    with pytest.raises(ValueError, match="overlap_tokens < max_tokens <= hard_limit_tokens"):
        ChunkingSettings(max_tokens, overlap_tokens, hard_limit_tokens)


def test_settings_must_be_ints() -> None:
    with pytest.raises(TypeError, match="max_tokens"):
        ChunkingSettings(max_tokens=400.0)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="overlap_tokens"):
        ChunkingSettings(overlap_tokens=True)


# -- basic shapes --------------------------------------------------------------------------------


@pytest.mark.parametrize("text", ["", "   ", "\n\n\t \n"])
def test_blank_text_gives_no_chunks(text: str) -> None:
    assert chunk_text(text) == []


def test_short_text_is_one_trimmed_chunk() -> None:
    text = "\n  Hello there. General Kenobi!  \n"
    (chunk,) = chunk_text(text)
    assert chunk == Chunk(seq=0, text="Hello there. General Kenobi!", char_start=3, char_end=31,
                          token_estimate=estimate_tokens("Hello there. General Kenobi!"))
    _check_slices(text, [chunk])


def test_paragraph_boundaries_are_preferred() -> None:
    # Two 6-word paragraphs, then a 3-word one. max 10: the break falls between paragraphs even
    # though words of the second paragraph would have fitted in the first chunk.
    first = "One two three. Four five six."
    second = "Seven eight nine. Ten eleven twelve."
    third = "Thirteen fourteen fifteen."
    text = f"{first}\n\n{second}\n\n{third}"
    chunks = chunk_text(text, ChunkingSettings(10, 0, 10), count=_words)
    assert [c.text for c in chunks] == [first, f"{second}\n\n{third}"]
    _check_slices(text, chunks)


def test_long_paragraph_splits_at_sentences() -> None:
    sentences = [f"Sentence number {n} is here." for n in range(6)]  # 5 words each
    text = " ".join(sentences)
    chunks = chunk_text(text, ChunkingSettings(12, 0, 12), count=_words)
    assert [c.text for c in chunks] == [" ".join(sentences[i : i + 2]) for i in range(0, 6, 2)]


def test_sentence_rules() -> None:
    text = "See e.g. the appendix. Then “Quoted.” Next one? Yes!\nA line\n第一句。第二句。"
    chunks = chunk_text(text, ChunkingSettings(4, 0, 4), count=_words)
    assert [c.text for c in chunks] == [
        "See e.g. the appendix.",  # "e.g. the": a lower-case word does not start a sentence
        "Then “Quoted.” Next one?",
        "Yes!\nA line\n第一句。第二句。",  # line breaks end sentences: the packer may split there
    ]
    assert [c.text for c in chunk_text("第一句。第二句。", ChunkingSettings(5, 0, 5), count=len)] == [
        "第一句。",  # a CJK full stop ends a sentence without a following space
        "第二句。",
    ]
    lines = "first line\nsecond line\nthird line"
    assert [c.text for c in chunk_text(lines, ChunkingSettings(4, 0, 4), count=_words)] == [
        "first line\nsecond line",
        "third line",
    ]


def test_oversized_sentence_splits_at_words() -> None:
    text = " ".join(f"w{n}" for n in range(25)) + "."
    chunks = chunk_text(text, ChunkingSettings(10, 0, 10), count=_words)
    assert [c.text.split() for c in chunks] == [
        [f"w{n}" for n in range(10)],
        [f"w{n}" for n in range(10, 20)],
        [*(f"w{n}" for n in range(20, 24)), "w24."],
    ]


def test_pathological_word_splits_at_characters() -> None:
    blob = "x" * 10_000
    text = f"Before. {blob} After."
    chunks = chunk_text(text, ChunkingSettings(64, 0, 64))
    assert len(chunks) > 10
    assert all(c.token_estimate <= 64 for c in chunks)
    joined = "".join(c.text for c in chunks)
    assert joined.replace("Before.", "").replace("After.", "").replace(" ", "") == blob
    _check_slices(text, chunks)


# -- overlap -------------------------------------------------------------------------------------


def test_overlap_repeats_trailing_whole_sentences() -> None:
    sentences = [f"S{n} a b." for n in range(8)]  # 3 words each
    text = " ".join(sentences)
    chunks = chunk_text(text, ChunkingSettings(10, 4, 10), count=_words)
    # 3 sentences (9 words) fit; the next chunk starts again at the last one (3 words <= 4).
    assert [c.text for c in chunks] == [
        " ".join(sentences[0:3]),
        " ".join(sentences[2:5]),
        " ".join(sentences[4:7]),
        " ".join(sentences[6:8]),
    ]


def test_overlap_never_exceeds_its_budget() -> None:
    sentences = [f"S{n} a b." for n in range(8)]
    text = " ".join(sentences)
    chunks = chunk_text(text, ChunkingSettings(10, 2, 10), count=_words)
    # A 3-word sentence does not fit an overlap of 2: no overlap at all.
    assert [c.text for c in chunks] == [" ".join(sentences[i : i + 3]) for i in range(0, 8, 3)]


def test_no_overlap_after_a_chunk_that_ends_mid_sentence() -> None:
    text = "Short one. " + " ".join(f"w{n}" for n in range(30)) + "."
    chunks = chunk_text(text, ChunkingSettings(10, 5, 10), count=_words)
    for before, after in itertools.pairwise(chunks):
        assert after.char_start > before.char_end


def test_overlap_leaves_room_for_new_text() -> None:
    # The sentence after the overlap is 8 words: overlap (3) + 8 > 10, so the overlap is dropped
    # rather than the chunk overflowing.
    text = "A b c. D e f. G h i j k l m n."
    chunks = chunk_text(text, ChunkingSettings(10, 4, 10), count=_words)
    assert [c.text for c in chunks] == ["A b c. D e f.", "G h i j k l m n."]


# -- limits --------------------------------------------------------------------------------------


def test_a_piece_above_the_hard_limit_raises() -> None:
    def count(text: str) -> int:
        return 1000 if "X" in text else len(text)

    with pytest.raises(ChunkTooLargeError, match="hard limit of 20"):
        chunk_text("abc X def", ChunkingSettings(10, 0, 20), count=count)


def test_a_piece_between_max_and_hard_limit_is_kept_alone() -> None:
    def count(text: str) -> int:
        return 15 if "X" in text else len(text.split())

    chunks = chunk_text("a b X c d", ChunkingSettings(10, 0, 20), count=count)
    assert [c.text for c in chunks] == ["a b", "X", "c d"]


def test_chunking_is_deterministic() -> None:
    text = "Alpha beta. " * 300 + "\n\n" + "Gamma delta epsilon! " * 200
    assert chunk_text(text, ChunkingSettings(50, 10, 64)) == chunk_text(text, ChunkingSettings(50, 10, 64))


# -- properties ----------------------------------------------------------------------------------

_WORDS = st.sampled_from(
    ["the", "cat", "GAPDH", "IL-6", "2024", "e.g.", "x" * 300, "naïve", "日本語", "🎉", "Dr.", "a_b", "(n=7)"]
)
_GLUE = st.sampled_from([" ", " ", " ", ". ", "! ", "? ", "\n", "\n\n", "\n \n\n", ", ", "\t", "  "])


@st.composite
def _documents(draw: st.DrawFn) -> str:
    parts = draw(st.lists(st.tuples(_WORDS, _GLUE), max_size=120))
    noise = draw(st.text(max_size=40))
    return noise + "".join(word + glue for word, glue in parts)


@st.composite
def _settings(draw: st.DrawFn) -> ChunkingSettings:
    # A single character can cost up to BASE_TOKENS + 4 (an emoji): 10 keeps every piece splittable.
    max_tokens = draw(st.integers(10, 120))
    overlap = draw(st.integers(0, max_tokens - 1))
    return ChunkingSettings(max_tokens, overlap, max_tokens)


@settings(max_examples=150, deadline=None)
@given(_documents(), _settings())
def test_chunk_properties(text: str, chunking: ChunkingSettings) -> None:
    chunks = chunk_text(text, chunking)

    covered: set[int] = set()
    for index, chunk in enumerate(chunks):
        assert chunk.seq == index
        assert text[chunk.char_start : chunk.char_end] == chunk.text
        assert chunk.text == chunk.text.strip() and chunk.text
        assert chunk.token_estimate == estimate_tokens(chunk.text) <= chunking.max_tokens
        covered.update(range(chunk.char_start, chunk.char_end))
    # Coverage: every non-space character is in some chunk.
    assert all(i in covered for i, ch in enumerate(text) if not ch.isspace())
    # Order and overlap: chunks move forward; an overlap is within budget.
    for before, after in itertools.pairwise(chunks):
        assert after.char_start > before.char_start and after.char_end > before.char_end
        if after.char_start < before.char_end:
            assert estimate_tokens(text[after.char_start : before.char_end]) <= chunking.overlap_tokens
        else:
            assert text[before.char_end : after.char_start].strip() == ""
