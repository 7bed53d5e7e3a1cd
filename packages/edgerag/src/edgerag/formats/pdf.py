"""PDF -> one section per page (pypdf: pure Python, installable in Pyodide).

Pages are extracted lazily, one at a time, as the consumer iterates the sections: a 50 MB PDF is held
once (the bytes), and only the page being chunked exists as text. Pages without text are skipped. A
sliced ingestion resumes at a page (:meth:`_Pages.resume`) without extracting the pages before it.

Failures a user can act on, each an :class:`~edgerag.extract.ExtractionError` with this reason:

* encrypted with a password -> "the PDF is password-protected" (an owner-only password, which lets
  anyone read, is opened with the empty user password);
* not parseable, truncated, or a page that cannot be decoded -> "the PDF is damaged: ...";
* no page with text -> "no extractable text: scanned PDFs need OCR";
* more pages than ``MAX_PDF_PAGES``.
"""

from __future__ import annotations

import io
import logging
import re
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from edgerag.extract import ExtractedDocument, ExtractionError, Section

if TYPE_CHECKING:
    from edgerag.formats import FormatLimits

__all__ = ["extract_pdf"]

_SPACES_BEFORE_NEWLINE = re.compile(r"[ \t]+\n")
_BLANK_LINES = re.compile(r"\n{3,}")


class _Pages:
    """Re-iterable lazy sections: each iteration walks the pages again; :meth:`resume` starts at a page
    (positions are ``(page index,)``, see :mod:`edgerag.formats.resume`)."""

    def __init__(self, reader: Any) -> None:
        self._reader = reader

    def __iter__(self) -> Iterator[Section]:
        return (section for _, section in self.resume(None))

    def resume(self, position: tuple[int, ...] | None) -> Iterator[tuple[tuple[int, ...], Section]]:
        first = position[0] if position else 0
        found = False
        pages = self._reader.pages
        for index in range(first, len(pages)):  # pages[i] parses that page only
            number = index + 1
            try:
                text = pages[index].extract_text() or ""
            except Exception as exc:  # pypdf raises many types on a bad content stream
                raise ExtractionError(f"the PDF is damaged: page {number} cannot be read ({exc})") from exc
            text = _clean(text)
            if text:
                found = True
                yield (index,), Section(text, page=number)
        # A resumed run started at a page that had text, so only a run from the start can find none.
        if not found and first == 0:
            raise ExtractionError("no extractable text: scanned PDFs need OCR")


def _clean(text: str) -> str:
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\x00", "")
    return _BLANK_LINES.sub("\n\n", _SPACES_BEFORE_NEWLINE.sub("\n", text)).strip()


def extract_pdf(data: bytes, charset: str | None, *, limits: FormatLimits) -> ExtractedDocument:
    """The pages of a PDF as sections (see the module docstring)."""
    # Imported here: only the ingest worker extracts PDFs, and pypdf costs time to import.
    from pypdf import PasswordType, PdfReader
    from pypdf.errors import DependencyError

    logging.getLogger("pypdf").setLevel(logging.ERROR)  # its warnings on sloppy files are noise
    try:
        # BytesIO over bytes shares the buffer until written: no second copy of the file.
        reader = PdfReader(io.BytesIO(data), strict=False)
        if reader.is_encrypted:
            try:
                opened = reader.decrypt("")
            except DependencyError as exc:
                raise ExtractionError(
                    "the PDF is encrypted with AES and cannot be read here: save it without encryption"
                ) from exc
            if opened == PasswordType.NOT_DECRYPTED:
                raise ExtractionError("the PDF is password-protected")
        pages = len(reader.pages)
        title = _title(reader)
    except ExtractionError:
        raise
    except Exception as exc:  # PdfReadError, PdfStreamError, and KeyError/ValueError from bad objects
        raise ExtractionError(f"the PDF is damaged: {exc or type(exc).__name__}") from exc
    if pages == 0:
        raise ExtractionError("no extractable text: the PDF has no pages")
    if pages > limits.max_pdf_pages:
        raise ExtractionError(
            f"the PDF has {pages:,} pages, more than the limit of {limits.max_pdf_pages:,} (MAX_PDF_PAGES)"
        )
    return ExtractedDocument(title_hint=title, sections=_Pages(reader))


def _title(reader: Any) -> str | None:
    try:
        metadata = reader.metadata
        title = metadata.title if metadata is not None else None
    except Exception:  # a broken info dictionary is not worth failing the document for
        return None
    return title.strip()[:120] or None if isinstance(title, str) else None
