"""PDF extraction on PDFs the tests write: pages as sections, and each failure with its reason."""

from __future__ import annotations

import pytest
from edgerag.extract import ExtractionError, ExtractorRegistry, extract_text
from edgerag.formats import FormatLimits, register_formats

from tests.unit.format_samples import encrypt_pdf, make_pdf


def _sections(data: bytes, limits: FormatLimits | None = None):
    registry = ExtractorRegistry()
    register_formats(registry, limits)
    return list(registry.extract(data, "application/pdf").iter_sections())


def test_each_page_with_text_is_a_section_numbered_from_one() -> None:
    data = make_pdf([["Alpha page one.", "More alpha."], [], ["Zebras live on page three."]], title="Guide")
    doc = extract_text(data, "application/octet-stream", "guide.pdf")
    sections = list(doc.iter_sections())
    assert [(s.page, s.text) for s in sections] == [
        (1, "Alpha page one.\nMore alpha."),
        (3, "Zebras live on page three."),
    ]
    assert doc.title_hint == "Guide"


def test_a_password_protected_pdf_says_so() -> None:
    with pytest.raises(ExtractionError, match=r"^the PDF is password-protected$"):
        _sections(encrypt_pdf(make_pdf([["secret"]])))


@pytest.mark.parametrize("cut", ["garbage", "truncated"])
def test_a_damaged_pdf_says_so(cut: str) -> None:
    data = make_pdf([["some text"]] * 3)
    bad = b"%PDF-1.4\n" + b"\x00not a pdf" * 50 if cut == "garbage" else data[: len(data) // 2]
    with pytest.raises(ExtractionError, match=r"^the PDF is damaged"):
        _sections(bad)


def test_a_pdf_without_text_needs_ocr() -> None:
    with pytest.raises(ExtractionError, match=r"^no extractable text: scanned PDFs need OCR$"):
        _sections(make_pdf([[], []]))


def test_the_page_limit() -> None:
    with pytest.raises(ExtractionError, match=r"3 pages, more than the limit of 2 \(MAX_PDF_PAGES\)"):
        _sections(make_pdf([["a"], ["b"], ["c"]]), FormatLimits(max_pdf_pages=2))
