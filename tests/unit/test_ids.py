"""edgerag.ids: new ids (format, time order, injectable clock and randomness), chunk and vector ids."""

from __future__ import annotations

import re

import pytest
from edgerag.ids import MAX_VECTOR_ID_BYTES, chunk_id, new_id, vector_id


def test_new_id_format() -> None:
    assert re.fullmatch(r"doc_[0-9a-hjkmnp-tv-z]{26}", new_id("doc"))


def test_new_id_layout_is_time_then_randomness() -> None:
    value = new_id("doc", clock=lambda: 1.0, randbits=lambda bits: (1 << bits) - 1)
    assert value == "doc_" + "00000000z8" + "z" * 16  # 1000 ms = 0b11111_01000 -> "z8"


def _id_at(seconds: float) -> str:
    return new_id("doc", clock=lambda: seconds, randbits=lambda bits: 0)


def test_ids_sort_by_creation_time() -> None:
    times = [1_700_000_000.0, 1_700_000_000.001, 1_700_000_001.5, 1_800_000_000.0]
    ids = [_id_at(t) for t in reversed(times)]
    assert sorted(ids) == list(reversed(ids))


def test_randomness_is_drawn_per_call() -> None:
    assert len({new_id("key", clock=lambda: 5.0) for _ in range(100)}) == 100


@pytest.mark.parametrize("prefix", ["", "Doc", "doc_", "1doc", "a" * 17, "dóc"])
def test_bad_prefixes(prefix: str) -> None:
    with pytest.raises(ValueError, match="prefix"):
        new_id(prefix)


def test_clock_out_of_range() -> None:
    with pytest.raises(ValueError, match="48-bit"):
        new_id("doc", clock=lambda: -1.0)


def test_chunk_ids_are_deterministic() -> None:
    assert chunk_id("doc_01abc", 0) == chunk_id("doc_01abc", 0) == "doc_01abc:0"
    assert chunk_id("doc_01abc", 12) != chunk_id("doc_01abd", 12)
    assert len(chunk_id(new_id("doc"), 10**9).encode()) <= MAX_VECTOR_ID_BYTES


@pytest.mark.parametrize(("document_id", "seq"), [("", 0), ("doc_1", -1), ("doc_1", True), ("doc_1", 1.0)])
def test_chunk_id_validation(document_id: str, seq: int) -> None:
    with pytest.raises(ValueError):
        chunk_id(document_id, seq)


def test_vector_ids_fit_vectorize() -> None:
    short = chunk_id(new_id("doc"), 3)
    assert vector_id(short) == short
    long_id = "d" * 60 + "é" * 3 + ":1"  # 68 bytes in UTF-8
    hashed = vector_id(long_id)
    assert hashed == vector_id(long_id) != vector_id(long_id + "0")
    assert hashed.startswith("h:") and len(hashed.encode()) <= MAX_VECTOR_ID_BYTES
    assert vector_id("x" * 64) == "x" * 64
