"""Resuming a document's sections from a stored position gives exactly the rest of a full run.

This is what lets a sliced ingestion restart at its cursor (ingest/cursor.py): for every format, the
sections from the position of section k are the full run's sections k, k+1, ... with the same
positions, and a chunker started at an offset chunks the rest of the text with offsets in the text.
"""

from __future__ import annotations

import json

import pytest
from edgerag.chunking import ChunkingSettings, iter_chunks
from edgerag.extract import ExtractionError, default_registry
from edgerag.formats import FormatLimits
from edgerag.formats.resume import positioned_sections

from tests.unit.format_samples import make_pdf, make_xlsx

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
SMALL_BATCHES = FormatLimits(row_batch=3)


def _csv() -> bytes:
    rows = ["sku,note,qty", *(f'S{n},"line one\nline two of {n}",{n}' for n in range(1, 12))]
    rows.insert(6, "")  # a blank line: a gap in the numbering starts a new section
    return ("\n".join(rows) + "\n").encode()


def _xlsx() -> bytes:
    north: list[list[str | int | float]] = [["sku", "qty"], *([f"N{n}", n] for n in range(1, 9))]
    south: list[list[str | int | float]] = [
        ["", ""],
        ["sku", "colour"],
        *([f"S{n}", f"c{n}"] for n in range(1, 6)),
    ]
    return make_xlsx({"North": north, "South": south})


CASES = {
    "csv": (_csv(), "text/csv"),
    "xlsx": (_xlsx(), XLSX),
    "pdf": (make_pdf([[f"page {p} text"] if p != 3 else [] for p in range(1, 7)]), "application/pdf"),
    "generic (html, by section index)": (
        b"<html><body><h1>A</h1><p>one</p><h2>B</h2><p>two</p><h2>C</h2><p>three</p></body></html>",
        "text/html",
    ),
}


def _sections(
    data: bytes, content_type: str, position: list[int] | None = None
) -> list[tuple[tuple[int, ...], str]]:
    document = default_registry(SMALL_BATCHES).extract(data, content_type)
    # Positions go through JSON in the cursor: a list of ints comes back.
    return [(p, s.text) for p, s in positioned_sections(document, position)]


@pytest.mark.parametrize("kind", sorted(CASES))
def test_every_position_resumes_at_its_section(kind: str) -> None:
    data, content_type = CASES[kind]
    full = _sections(data, content_type)
    assert len(full) >= 3, full
    for index, (position, _) in enumerate(full):
        stored = json.loads(json.dumps(position))
        assert _sections(data, content_type, stored) == full[index:], (kind, index)


def test_csv_sections_keep_their_rows_and_the_row_budget_counts_rows_before_the_position() -> None:
    data, content_type = CASES["csv"]
    full = _sections(data, content_type)
    assert full[0][1].startswith("sku: S1; note: line one line two of 1")
    tight = FormatLimits(row_batch=3, max_table_rows=10)
    # 11 data rows: over the limit of 10, also when the run resumes from the last section.
    resumed = default_registry(tight).extract(data, content_type)
    with pytest.raises(ExtractionError, match="MAX_TABLE_ROWS"):
        list(positioned_sections(resumed, list(full[-1][0])))


def test_a_pdf_resumed_past_its_text_is_not_a_scanned_pdf() -> None:
    data, content_type = CASES["pdf"]
    last = _sections(data, content_type)[-1][0]
    assert _sections(data, content_type, list(last))[0][0] == last
    blank = make_pdf([[] for _ in range(3)])
    with pytest.raises(ExtractionError, match="scanned PDFs need OCR"):
        _sections(blank, "application/pdf")


def test_the_chunker_starts_at_an_offset_with_offsets_in_the_text() -> None:
    text = " ".join(f"Sentence {n} is about valve {n}." for n in range(400))
    settings = ChunkingSettings(max_tokens=60, overlap_tokens=10)
    full = list(iter_chunks(text, settings))
    third = full[3]
    resumed = list(iter_chunks(text, settings, start=third.char_start))
    assert resumed[0].char_start == third.char_start
    assert all(text[c.char_start : c.char_end] == c.text for c in resumed)
    assert resumed[-1].char_end == full[-1].char_end
    with pytest.raises(ValueError, match="outside the text"):
        next(iter_chunks(text, settings, start=len(text) + 1))
