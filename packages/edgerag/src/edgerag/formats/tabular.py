"""CSV, TSV and XLSX -> rows rendered with their header names, in batches of rows per section.

A row becomes one line, ``name: Ada; role: engineer``, so that it is retrievable by any of its values
and reads on its own in a search result. The first non-empty row is the header: a missing name becomes
``column_N`` (N counts from 1), cells beyond the header are kept under ``column_N`` too, and empty
cells are left out. Rows are numbered as a spreadsheet shows them (the header is row 1), and each
section holds up to ``row_batch`` rows of one table or sheet, named by the sheet ("Sheet1") or
"table" for a CSV, with where each row begins, so a chunk knows its row range.

Streaming: sections are produced lazily, batch by batch, from a CSV reader over the decoded text (one
copy) or an ``iterparse`` over the inflated sheet XML, so 100,000 rows never exist as rendered text
all at once. XLSX is read with stdlib ``zipfile`` + ``xml.etree`` through the zip-bomb guard; cell
values are the stored ones (shared strings, inline strings, numbers and booleans as written; dates are
spreadsheet serial numbers because styles are not read).

Slices (:mod:`edgerag.formats.resume`): every row carries the position a resumed run restarts
from, so the ingest worker's next slice jumps to the row batch it stopped at (a CSV by character
offset; an XLSX sheet re-parsed up to the row without rendering the rows before it).

To add a table format: produce ``(name, row number, cells, position)`` tuples from a start position
and hand them to :func:`_sections`.
"""

from __future__ import annotations

import csv
import re
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

from edgerag.extract import ExtractedDocument, ExtractionError, Section, decode_text
from edgerag.formats.zipguard import GuardedZip

if TYPE_CHECKING:
    from edgerag.formats import FormatLimits

__all__ = ["extract_csv", "extract_tsv", "extract_xlsx", "render_row"]

_MAIN = "{http://schemas.openxmlformats.org/spreadsheetml/2006/main}"
_REL = "{http://schemas.openxmlformats.org/officeDocument/2006/relationships}"
_PKG_REL = "{http://schemas.openxmlformats.org/package/2006/relationships}"
_CELL_REF = re.compile(r"([A-Z]{1,3})(\d+)")
_SPACES = re.compile(r"\s+")
_MAX_CELL_CHARS = 2_000  # a giant cell is cut, not allowed to make one row the whole chunk budget
_SNIFF_CHARS = 8 * 1024


def render_row(header: list[str], cells: list[str]) -> str:
    """``name: Ada; role: engineer`` for one row (empty cells left out)."""
    parts = []
    for index, cell in enumerate(cells):
        value = _SPACES.sub(" ", cell).strip()[:_MAX_CELL_CHARS]
        if value:
            name = header[index] if index < len(header) else f"column_{index + 1}"
            parts.append(f"{name}: {value}")
    return "; ".join(parts)


def _header(cells: list[str]) -> list[str]:
    names: list[str] = []
    seen: set[str] = set()
    for index, cell in enumerate(cells):
        name = _SPACES.sub(" ", cell).strip()[:200] or f"column_{index + 1}"
        if name in seen:
            name = f"{name}_{index + 1}"
        seen.add(name)
        names.append(name)
    return names


# (table or sheet name, row number, cells, where the row starts: the format's resume position)
Rows = Iterator[tuple[str, int, list[str], tuple[int, ...]]]
Position = tuple[int, ...]
RowSource = Callable[[Position | None], Rows]


class _Table:
    """Re-iterable lazy sections: each iteration reads the rows again from ``rows(start)``.

    A section's position (:mod:`edgerag.formats.resume`) is its first row's position plus the number
    of data rows before it, so that a resumed run counts ``MAX_TABLE_ROWS`` over the whole table.
    """

    def __init__(self, rows: RowSource, limits: FormatLimits) -> None:
        self._rows = rows
        self._limits = limits

    def __iter__(self) -> Iterator[Section]:
        return (section for _, section in self.resume(None))

    def resume(self, position: Position | None) -> Iterator[tuple[Position, Section]]:
        if position is None:
            return _sections(self._rows(None), self._limits, 0)
        return _sections(self._rows(position[:-1]), self._limits, position[-1], resumed=True)


def _sections(
    rows: Rows, limits: FormatLimits, rows_before: int, resumed: bool = False
) -> Iterator[tuple[Position, Section]]:
    header: list[str] | None = None
    sheet: str | None = None
    lines: list[str] = []
    offsets: list[int] = []
    first_row = 0
    first_position: Position = ()
    first_count = rows_before
    length = 0
    data_rows = rows_before

    def section() -> tuple[Position, Section]:
        text = "\n".join(lines)
        return (*first_position, first_count), Section(
            text, section=sheet, row_start=first_row, row_offsets=tuple(offsets)
        )

    for name, number, cells, position in rows:
        if name != sheet:
            if lines:
                yield section()
            sheet, header, lines, offsets, length = name, None, [], [], 0
        if header is None:
            if any(cell.strip() for cell in cells):
                header = _header(cells)
            continue
        line = render_row(header, cells)
        if not line:
            continue
        data_rows += 1
        if data_rows > limits.max_table_rows:
            raise ExtractionError(f"the table has more than {limits.max_table_rows:,} rows (MAX_TABLE_ROWS)")
        if lines and (number != first_row + len(lines) or len(lines) >= limits.row_batch):
            # A gap (blank rows) breaks the row numbering of a section: start a new one.
            yield section()
            lines, offsets, length = [], [], 0
        if not lines:
            first_row, first_position, first_count = number, position, data_rows - 1
        offsets.append(length)
        lines.append(line)
        length += len(line) + 1
    if lines:
        yield section()
    if data_rows == 0 and not resumed:
        raise ExtractionError("the table has no rows with values (only a header, or nothing)")


# -- CSV / TSV -------------------------------------------------------------------------------------


class _Lines:
    """The lines of ``text`` from ``position`` with their endings (what ``csv.reader`` wants), without
    splitting it all; ``position`` is where the next line starts, so a record's start is known."""

    def __init__(self, text: str, position: int = 0) -> None:
        self.text = text
        self.position = position

    def __iter__(self) -> Iterator[str]:
        return self

    def __next__(self) -> str:
        text, position = self.text, self.position
        if position >= len(text):
            raise StopIteration
        end = text.find("\n", position)
        end = len(text) if end < 0 else end + 1
        self.position = end
        return text[position:end]


def _csv_rows(text: str, delimiter: str | None, start: Position | None) -> Rows:
    """Records with their positions ``(character offset, record number)``; from ``start``, the header
    record is read first (``_sections`` needs it) and then the reader jumps to the record there."""
    if delimiter is None:
        try:
            delimiter = csv.Sniffer().sniff(text[:_SNIFF_CHARS], delimiters=",;\t|").delimiter
        except csv.Error:
            delimiter = ","
    lines = _Lines(text)
    reader = csv.reader(lines, delimiter=delimiter)
    number = 0
    try:
        record_start = 0
        for row in reader:
            number += 1
            yield "table", number, row, (record_start, number)
            record_start = lines.position  # csv.reader reads no further than the record's end
            if start is not None and any(cell.strip() for cell in row):
                break  # the header: now jump to where the run stopped
        else:
            return
        if start is not None:
            # csv.reader keeps no state between records, so a new one can start at a record.
            lines.position, number = start[0], start[1] - 1
            reader = csv.reader(lines, delimiter=delimiter)
        record_start = lines.position
        for row in reader:
            number += 1
            yield "table", number, row, (record_start, number)
            record_start = lines.position
    except csv.Error as exc:
        raise ExtractionError(f"the CSV cannot be parsed at record {number + 1}: {exc}") from exc


def extract_csv(
    data: bytes, charset: str | None, *, limits: FormatLimits, delimiter: str | None = None
) -> ExtractedDocument:
    """A CSV's rows as sections (the delimiter is sniffed among , ; tab | unless given)."""
    text = decode_text(data, charset)
    if not text.strip():
        raise ExtractionError("the CSV file is empty")
    return ExtractedDocument(sections=_Table(lambda start: _csv_rows(text, delimiter, start), limits))


def extract_tsv(data: bytes, charset: str | None, *, limits: FormatLimits) -> ExtractedDocument:
    return extract_csv(data, charset, limits=limits, delimiter="\t")


# -- XLSX ------------------------------------------------------------------------------------------


def extract_xlsx(data: bytes, charset: str | None, *, limits: FormatLimits) -> ExtractedDocument:
    """An Excel workbook's sheets as sections of rows (see the module docstring)."""
    archive = GuardedZip(data, "XLSX file", limits)
    sheets = _sheet_parts(archive)
    if not sheets:
        raise ExtractionError("the XLSX file is damaged: its workbook lists no sheets")
    strings = _shared_strings(archive)
    return ExtractedDocument(
        sections=_Table(lambda start: _xlsx_rows(archive, sheets, strings, start), limits)
    )


def _parse(archive: GuardedZip, name: str) -> ET.Element:
    try:
        return ET.fromstring(archive.read(name))
    except KeyError:
        raise ExtractionError(f"the XLSX file is damaged: it has no {name}") from None
    except ET.ParseError as exc:
        raise ExtractionError(f"the XLSX file is damaged: {name} is not XML ({exc})") from exc


def _sheet_parts(archive: GuardedZip) -> list[tuple[str, str]]:
    """(sheet name, part name) in workbook order."""
    workbook = _parse(archive, "xl/workbook.xml")
    rels = _parse(archive, "xl/_rels/workbook.xml.rels")
    targets = {rel.get("Id"): rel.get("Target") or "" for rel in rels.iter(f"{_PKG_REL}Relationship")}
    parts = []
    for sheet in workbook.iter(f"{_MAIN}sheet"):
        target = targets.get(sheet.get(f"{_REL}id"), "")
        if not target:
            continue
        part = target.lstrip("/") if target.startswith("/") else f"xl/{target}"
        parts.append((sheet.get("name") or part, part))
    return parts


def _shared_strings(archive: GuardedZip) -> list[str]:
    if "xl/sharedStrings.xml" not in archive.names:
        return []
    strings: list[str] = []
    with archive.open("xl/sharedStrings.xml") as stream:
        try:
            for _, element in ET.iterparse(stream):
                if element.tag == f"{_MAIN}si":
                    strings.append("".join(t.text or "" for t in element.iter(f"{_MAIN}t")))
                    element.clear()
        except ET.ParseError as exc:
            raise ExtractionError(f"the XLSX file is damaged: shared strings are not XML ({exc})") from exc
    return strings


def _column(ref: str | None, fallback: int) -> int:
    match = _CELL_REF.fullmatch(ref or "")
    if match is None:
        return fallback
    index = 0
    for letter in match.group(1):
        index = index * 26 + ord(letter) - 64
    return index - 1


def _xlsx_rows(
    archive: GuardedZip, sheets: list[tuple[str, str]], strings: list[str], start: Position | None
) -> Rows:
    """Rows with their positions ``(sheet index, row element index, row number)``; from ``start``,
    earlier sheets are skipped and the sheet's rows before it are parsed but not rendered (its header
    row still is: ``_sections`` needs it)."""
    first_sheet, skip_to = (start[0], start[1]) if start is not None else (0, 0)
    for sheet_index, (sheet_name, part) in enumerate(sheets):
        if sheet_index < first_sheet:
            continue
        if part not in archive.names:
            raise ExtractionError(f"the XLSX file is damaged: sheet {sheet_name!r} is missing")
        skip = skip_to if sheet_index == first_sheet else 0
        with archive.open(part) as stream:
            try:
                number = 0
                index = -1
                header_seen = False
                parent: ET.Element | None = None
                for event, element in ET.iterparse(stream, events=("start", "end")):
                    if event == "start":
                        if element.tag == f"{_MAIN}sheetData":
                            parent = element
                        continue
                    if element.tag != f"{_MAIN}row":
                        continue
                    index += 1
                    reported = element.get("r")
                    number = int(reported) if reported and reported.isdigit() else number + 1
                    if header_seen and index < skip:
                        if parent is not None:
                            parent.clear()
                        continue
                    cells: list[str] = []
                    for position, cell in enumerate(element.iter(f"{_MAIN}c")):
                        column = _column(cell.get("r"), position)
                        if column > 16_384:  # Excel's last column is XFD
                            continue
                        cells.extend([""] * (column + 1 - len(cells)))
                        cells[column] = _cell_value(cell, strings)
                    if parent is not None:
                        parent.clear()  # drop the rows read so far: memory stays one row deep
                    header_seen = header_seen or any(cell.strip() for cell in cells)
                    yield sheet_name, number, cells, (sheet_index, index, number)
            except ET.ParseError as exc:
                raise ExtractionError(
                    f"the XLSX file is damaged: sheet {sheet_name!r} is not XML ({exc})"
                ) from exc


def _cell_value(cell: ET.Element, strings: list[str]) -> str:
    kind = cell.get("t", "n")
    if kind == "inlineStr":
        return "".join(t.text or "" for t in cell.iter(f"{_MAIN}t"))
    value = cell.findtext(f"{_MAIN}v") or ""
    if kind == "s":
        try:
            return strings[int(value)]
        except (ValueError, IndexError):
            return ""
    if kind == "b":
        return "TRUE" if value == "1" else "FALSE"
    return value
