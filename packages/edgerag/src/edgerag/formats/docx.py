"""DOCX (Word) -> sections by heading, with paragraphs, list items and tables as text.

Read with stdlib ``zipfile`` (through :class:`~edgerag.formats.zipguard.GuardedZip`) and
``xml.etree``: ``word/document.xml``'s body is walked in order. A paragraph whose style is a heading
(``Heading1``..``Heading9``, ``Title``, or an outline level) starts a new section named by its heading
path ("Setup > Install"); list paragraphs (``w:numPr``) become "- item" lines; a table becomes one line
per row, cells separated by " | ". The first heading (or the core properties' title) is the title hint.

To recognise more structure (footnotes, headers): read the part and append its sections.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from typing import TYPE_CHECKING

from edgerag.extract import ExtractedDocument, ExtractionError, Section
from edgerag.formats.zipguard import GuardedZip

if TYPE_CHECKING:
    from edgerag.formats import FormatLimits

__all__ = ["extract_docx"]

_W = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}"
_HEADING_STYLE = re.compile(r"^(?:heading|überschrift|titre)\s*(\d)$", re.IGNORECASE)
_MAX_DEPTH = 9


def extract_docx(data: bytes, charset: str | None, *, limits: FormatLimits) -> ExtractedDocument:
    """The sections of a Word document (see the module docstring)."""
    archive = GuardedZip(data, "DOCX file", limits)
    try:
        xml = archive.read("word/document.xml")
    except KeyError:
        raise ExtractionError("the DOCX file is damaged: it has no word/document.xml") from None
    try:
        root = ET.fromstring(xml)
    except ET.ParseError as exc:
        raise ExtractionError(f"the DOCX file is damaged: word/document.xml is not XML ({exc})") from exc
    del xml
    body = root.find(f"{_W}body")
    if body is None:
        raise ExtractionError("the DOCX file is damaged: its document has no body")
    sections: list[Section] = []
    path: list[str] = []
    lines: list[str] = []
    title: str | None = None
    body_lines = 0  # lines under the current heading: a heading alone joins the next section

    def flush() -> None:
        text = "\n".join(lines).strip()
        if text and body_lines:
            sections.append(Section(text, section=" > ".join(path) or None))
            lines.clear()

    for element in body:
        if element.tag == f"{_W}p":
            text = _paragraph_text(element).strip()
            if not text:
                if lines and lines[-1]:
                    lines.append("")  # an empty paragraph separates paragraphs for the chunker
                continue
            level = _heading_level(element)
            if level is not None:
                flush()
                body_lines = 0 if not lines else body_lines
                del path[level - 1 :]
                path.append(text)
                title = title or text
                lines.extend((text, ""))
            elif element.find(f"{_W}pPr/{_W}numPr") is not None:
                lines.append(f"- {text}")
                body_lines += 1
            else:
                lines.extend((text, ""))
                body_lines += 1
        elif element.tag == f"{_W}tbl":
            lines.extend((*_table_lines(element), ""))
            body_lines += 1
    body_lines += 1  # the last section is kept even if it is only a heading
    flush()
    if not sections:
        raise ExtractionError("the DOCX file has no text")
    return ExtractedDocument(title_hint=title[:120] if title else None, sections=tuple(sections))


def _heading_level(paragraph: ET.Element) -> int | None:
    properties = paragraph.find(f"{_W}pPr")
    if properties is None:
        return None
    style = properties.find(f"{_W}pStyle")
    name = (style.get(f"{_W}val") or "") if style is not None else ""
    if name.lower() == "title":
        return 1
    match = _HEADING_STYLE.match(name)
    if match:
        return min(max(int(match.group(1)), 1), _MAX_DEPTH)
    outline = properties.find(f"{_W}outlineLvl")
    if outline is not None and (outline.get(f"{_W}val") or "").isdigit():
        return min(int(outline.get(f"{_W}val") or "0") + 1, _MAX_DEPTH)
    return None


def _paragraph_text(paragraph: ET.Element) -> str:
    parts: list[str] = []
    for node in paragraph.iter():
        if node.tag == f"{_W}t" and node.text:
            parts.append(node.text)
        elif node.tag == f"{_W}tab":
            parts.append("\t")
        elif node.tag in (f"{_W}br", f"{_W}cr"):
            parts.append("\n")
    return "".join(parts)


def _table_lines(table: ET.Element) -> list[str]:
    rows: list[str] = []
    for row in table.iter(f"{_W}tr"):
        cells = [
            " ".join(t for p in cell.iter(f"{_W}p") if (t := _paragraph_text(p).strip()))
            for cell in row.findall(f"{_W}tc")
        ]
        if any(cells):
            rows.append(" | ".join(cells))
    return rows
