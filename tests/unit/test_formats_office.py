"""DOCX and XLSX (ZIP containers read with the stdlib) and the zip-bomb guard."""

from __future__ import annotations

import pytest
from edgerag.extract import ExtractionError, ExtractorRegistry
from edgerag.formats import DOCX, XLSX, FormatLimits, register_formats

from tests.unit.format_samples import docx_paragraph, docx_table, make_docx, make_xlsx, make_zip


def _extract(data: bytes, content_type: str, limits: FormatLimits | None = None):
    registry = ExtractorRegistry()
    register_formats(registry, limits)
    doc = registry.extract(data, content_type)
    return doc, list(doc.iter_sections())


def test_docx_headings_make_sections_with_paths_and_keep_lists_and_tables() -> None:
    body = (
        docx_paragraph("Handbook", "Title")
        + docx_paragraph("Welcome aboard.")
        + docx_paragraph("Setup", "Heading1")
        + docx_paragraph("Install", "Heading2")
        + docx_paragraph("Get the installer", listed=True)
        + docx_table([["name", "role"], ["Ada", "engineer"]])
        + docx_paragraph("Usage", "Heading1")
        + docx_paragraph("Run it daily.")
    )
    doc, sections = _extract(make_docx(body), DOCX)
    assert doc.title_hint == "Handbook"
    assert [(s.section, s.text) for s in sections] == [
        ("Handbook", "Handbook\n\nWelcome aboard."),
        ("Setup > Install", "Setup\n\nInstall\n\n- Get the installer\nname | role\nAda | engineer"),
        ("Usage", "Usage\n\nRun it daily."),
    ]


def test_a_docx_that_is_not_a_zip_is_damaged() -> None:
    with pytest.raises(ExtractionError, match=r"^the DOCX file is damaged"):
        _extract(b"PK\x03\x04 truncated", DOCX)


def test_a_zip_bomb_is_refused_by_its_uncompressed_size() -> None:
    bomb = make_zip({"word/document.xml": "<a/>", "word/pad.bin": b"\x00" * 5_000_000})
    assert len(bomb) < 20_000  # it really is a bomb: tiny compressed
    with pytest.raises(ExtractionError, match=r"MAX_ZIP_UNCOMPRESSED_BYTES.*zip bomb"):
        _extract(bomb, DOCX, FormatLimits(max_zip_uncompressed_bytes=1_000_000))


def test_a_zip_with_too_many_entries_is_refused() -> None:
    many = make_zip({f"word/part{i}.xml": "<a/>" for i in range(30)})
    with pytest.raises(ExtractionError, match=r"30 entries, more than the limit of 10 \(MAX_ZIP_ENTRIES\)"):
        _extract(many, XLSX, FormatLimits(max_zip_entries=10))


def test_xlsx_rows_are_rendered_with_their_header_one_sheet_per_section() -> None:
    data = make_xlsx(
        {
            "People": [["name", "role", ""], ["Ada", "engineer"], ["Bob", "", "night", "extra"]],
            "Budget": [["item", "cost"], ["laptop", 1200]],
        }
    )
    _, sections = _extract(data, XLSX)
    assert [(s.section, s.row_start, s.text) for s in sections] == [
        ("People", 2, "name: Ada; role: engineer\nname: Bob; column_3: night; column_4: extra"),
        ("Budget", 2, "item: laptop; cost: 1200"),
    ]
    assert sections[0].rows_between(0, len(sections[0].text)) == (2, 3)
