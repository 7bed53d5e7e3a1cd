"""Extractors for structured formats: PDF, DOCX, HTML, CSV/TSV, XLSX, JSON and e-mail.

Each module turns one format's bytes into an :class:`~edgerag.extract.ExtractedDocument` whose
``sections`` carry provenance (PDF page, heading path, sheet and row range, JSON path, e-mail part),
and fails with an :class:`~edgerag.extract.ExtractionError` whose message is the reason a user reads
on the ``failed`` document ("the PDF is password-protected"). Everything here is pure Python (stdlib
``zipfile``/``xml.etree``/``html.parser``/``csv``/``email``, plus pypdf for PDF, a pure-Python wheel)
so that it runs in Pyodide; pypdf is imported only when a PDF is extracted, so a worker that only
resolves content types (the gateway) does not load it.

Large files are extracted lazily: PDF pages and batches of table rows are produced as the ingest
pipeline reaches them, so at most one page or row batch of not-yet-chunked text exists at a time.
:class:`FormatLimits` caps what one file may make us do (pages, rows, ZIP entries and uncompressed
size); the ingest worker reads them from its env (see ingest/settings.py).

To add a format: a module with ``extract_x(data, charset, limits) -> ExtractedDocument``, a line in
:func:`register_formats`, the type in :data:`edgerag.extract.SUPPORTED_CONTENT_TYPES`, and (for a
binary format) its media type in :data:`BINARY_CONTENT_TYPES` so uploads check its magic number
instead of decoding it as text.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING

from edgerag.sniff import DOCX, XLSX

if TYPE_CHECKING:
    from edgerag.extract import ExtractorRegistry

__all__ = ["BINARY_CONTENT_TYPES", "DOCX", "PDF", "XLSX", "FormatLimits", "register_formats"]

PDF = "application/pdf"
# Formats whose bytes are not text: uploads check they are what they claim by their magic number.
BINARY_CONTENT_TYPES: frozenset[str] = frozenset({PDF, DOCX, XLSX})


@dataclass(frozen=True)
class FormatLimits:
    """Per-file caps; a file over one fails with a reason naming the limit (env var in parentheses)."""

    max_pdf_pages: int = 2_000  # MAX_PDF_PAGES
    max_table_rows: int = 100_000  # MAX_TABLE_ROWS: data rows of a CSV/TSV or of all sheets of an XLSX
    max_zip_entries: int = 2_000  # MAX_ZIP_ENTRIES: members of a DOCX/XLSX container
    max_zip_uncompressed_bytes: int = 100 * 1024 * 1024  # MAX_ZIP_UNCOMPRESSED_BYTES
    row_batch: int = 500  # rows per table section: the unit of streaming (chunks end at a batch)


def register_formats(registry: ExtractorRegistry, limits: FormatLimits | None = None) -> None:
    """Register every structured-format extractor in ``registry`` with ``limits``."""
    from edgerag.formats import docx, email, html, jsondoc, pdf, tabular

    caps = limits or FormatLimits()
    registry.register(PDF, partial(pdf.extract_pdf, limits=caps), extensions=(".pdf",))
    registry.register(DOCX, partial(docx.extract_docx, limits=caps), extensions=(".docx",))
    registry.register(XLSX, partial(tabular.extract_xlsx, limits=caps), extensions=(".xlsx",))
    registry.register("text/csv", partial(tabular.extract_csv, limits=caps), extensions=(".csv",))
    registry.register(
        "text/tab-separated-values", partial(tabular.extract_tsv, limits=caps), extensions=(".tsv", ".tab")
    )
    registry.register("text/html", html.extract_html, extensions=(".html", ".htm", ".xhtml"))
    registry.register("application/json", jsondoc.extract_json, extensions=(".json",))
    registry.register("message/rfc822", email.extract_email, extensions=(".eml",))
