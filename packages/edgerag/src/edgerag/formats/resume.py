"""Resume a document's sections from a position: how a large file is ingested in slices.

The ingest worker processes a large document as a sequence of queue messages, each handling a bounded
slice and recording where the next one starts (ingest/cursor.py). That position is a
:data:`Position`, a short tuple of integers that the format chooses and only the format reads back:

* PDF: ``(page index,)`` -- the next slice opens the file and starts at that page, without
  extracting the pages before it;
* CSV/TSV: ``(character offset of the record, record number, data rows before it)`` -- the reader
  re-reads the header, then jumps straight to the record;
* XLSX: ``(sheet index, row element index, record number, data rows before it)`` -- the sheet's XML
  is parsed again up to the row (a deflate stream cannot be seeked) but rows before it are not
  rendered;
* every other format: ``(section index,)`` -- their text is small and in memory anyway, so the
  sections before it are produced and skipped.

:func:`positioned_sections` yields ``(position, section)`` pairs from a position (``None``: the
start). A position is JSON-able (a list of ints once stored) and deterministic: the same file and
position give the same sections, which is what makes a re-run slice write exactly what a crashed one
would have.

To make a format resumable cheaply: give its lazy sections object a ``resume(position)`` method
returning such pairs (see :class:`Resumable`).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Protocol, runtime_checkable

from edgerag.extract import ExtractedDocument, Section

__all__ = ["Position", "Resumable", "positioned_sections"]

Position = tuple[int, ...]


@runtime_checkable
class Resumable(Protocol):
    def resume(self, position: Position | None) -> Iterator[tuple[Position, Section]]:
        """The sections from ``position`` (``None``: the first), each with its own position."""
        ...


def positioned_sections(
    document: ExtractedDocument, position: Sequence[int] | None = None
) -> Iterator[tuple[Position, Section]]:
    """``document``'s sections from ``position`` on, each with the position it starts at."""
    start = tuple(position) if position is not None else None
    sections = document.sections
    if not document.text and isinstance(sections, Resumable):
        return sections.resume(start)
    return _by_index(document, start[0] if start else 0)


def _by_index(document: ExtractedDocument, skip: int) -> Iterator[tuple[Position, Section]]:
    for index, section in enumerate(document.iter_sections()):
        if index >= skip:
            yield (index,), section
