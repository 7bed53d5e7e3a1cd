"""What a file really is, from its first bytes and its name: cheap checks done before anything is stored.

The gateway asks :func:`detect_type` when a file is not something it can ingest (to say what it IS in
the 415 problem, instead of the ``application/octet-stream`` a browser sent) and before accepting a
file declared as text (a PDF renamed to ``.txt`` is still a PDF). Detection reads at most
:data:`SNIFF_BYTES` bytes for magic numbers; a ZIP container is told apart (DOCX, XLSX, PPTX, ODF,
EPUB) by the member names in its first local headers and central directory, without decompressing.

Nothing here decodes text: whether text bytes are valid in their charset is
:func:`edgerag.extract.decode_text`'s job.

To recognise another format: add its magic number to ``_MAGIC`` (or a ZIP member prefix to
``_ZIP_MEMBERS``), and its extension to ``_EXTENSIONS``.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["SNIFF_BYTES", "DetectedType", "detect_type", "type_from_extension"]

SNIFF_BYTES = 8 * 1024

DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
PPTX = "application/vnd.openxmlformats-officedocument.presentationml.presentation"


@dataclass(frozen=True)
class DetectedType:
    """A media type and the name people know it by, e.g. ``("application/pdf", "a PDF document")``."""

    media_type: str
    label: str

    def __str__(self) -> str:
        return f"{self.label} ({self.media_type})"


# (offset, magic bytes, type). Ordered: the first match wins.
_MAGIC: tuple[tuple[int, bytes, DetectedType], ...] = (
    (0, b"%PDF-", DetectedType("application/pdf", "a PDF document")),
    (0, b"\x89PNG\r\n\x1a\n", DetectedType("image/png", "a PNG image")),
    (0, b"\xff\xd8\xff", DetectedType("image/jpeg", "a JPEG image")),
    (0, b"GIF87a", DetectedType("image/gif", "a GIF image")),
    (0, b"GIF89a", DetectedType("image/gif", "a GIF image")),
    (8, b"WEBP", DetectedType("image/webp", "a WebP image")),
    (0, b"II*\x00", DetectedType("image/tiff", "a TIFF image")),
    (0, b"MM\x00*", DetectedType("image/tiff", "a TIFF image")),
    (0, b"\x1f\x8b", DetectedType("application/gzip", "a gzip archive")),
    (0, b"BZh", DetectedType("application/x-bzip2", "a bzip2 archive")),
    (0, b"\xfd7zXZ\x00", DetectedType("application/x-xz", "an xz archive")),
    (0, b"7z\xbc\xaf\x27\x1c", DetectedType("application/x-7z-compressed", "a 7-Zip archive")),
    (0, b"Rar!\x1a\x07", DetectedType("application/vnd.rar", "a RAR archive")),
    (
        0,
        b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1",
        DetectedType("application/msword", "an OLE2 (legacy Office) file"),
    ),
    (0, b"{\\rtf", DetectedType("application/rtf", "an RTF document")),
    (0, b"\x7fELF", DetectedType("application/x-executable", "an ELF executable")),
    (0, b"MZ", DetectedType("application/vnd.microsoft.portable-executable", "a Windows executable")),
    (0, b"\x00asm", DetectedType("application/wasm", "a WebAssembly module")),
    (0, b"SQLite format 3\x00", DetectedType("application/vnd.sqlite3", "an SQLite database")),
    (0, b"ID3", DetectedType("audio/mpeg", "an MP3 audio file")),
    (0, b"OggS", DetectedType("audio/ogg", "an Ogg media file")),
    (0, b"fLaC", DetectedType("audio/flac", "a FLAC audio file")),
    (4, b"ftyp", DetectedType("video/mp4", "an MP4/QuickTime media file")),
)
_RIFF_WAVE = DetectedType("audio/wav", "a WAV audio file")
_ZIP = DetectedType("application/zip", "a ZIP archive")
# Member-name prefixes that identify what a ZIP container holds.
_ZIP_MEMBERS: tuple[tuple[bytes, DetectedType], ...] = (
    (b"word/", DetectedType(DOCX, "a Word document (DOCX)")),
    (b"xl/", DetectedType(XLSX, "an Excel workbook (XLSX)")),
    (b"ppt/", DetectedType(PPTX, "a PowerPoint presentation (PPTX)")),
)
_ZIP_MIMETYPE = b"mimetype"  # ODF and EPUB store their media type as the first member, uncompressed
_BINARY = DetectedType("application/octet-stream", "binary data")

_EXTENSIONS: dict[str, DetectedType] = {
    ".csv": DetectedType("text/csv", "a CSV file"),
    ".tsv": DetectedType("text/tab-separated-values", "a TSV file"),
    ".html": DetectedType("text/html", "an HTML page"),
    ".htm": DetectedType("text/html", "an HTML page"),
    ".json": DetectedType("application/json", "a JSON file"),
    ".xml": DetectedType("application/xml", "an XML file"),
    ".rtf": DetectedType("application/rtf", "an RTF document"),
    ".pdf": DetectedType("application/pdf", "a PDF document"),
    ".docx": DetectedType(DOCX, "a Word document (DOCX)"),
    ".doc": DetectedType("application/msword", "a legacy Word document"),
    ".xlsx": DetectedType(XLSX, "an Excel workbook (XLSX)"),
    ".xls": DetectedType("application/vnd.ms-excel", "a legacy Excel workbook"),
    ".pptx": DetectedType(PPTX, "a PowerPoint presentation (PPTX)"),
    ".odt": DetectedType("application/vnd.oasis.opendocument.text", "an OpenDocument text"),
    ".epub": DetectedType("application/epub+zip", "an EPUB book"),
    ".zip": _ZIP,
    ".png": DetectedType("image/png", "a PNG image"),
    ".jpg": DetectedType("image/jpeg", "a JPEG image"),
    ".jpeg": DetectedType("image/jpeg", "a JPEG image"),
    ".gif": DetectedType("image/gif", "a GIF image"),
}


def detect_type(data: bytes, filename: str | None = None) -> DetectedType | None:
    """The type ``data`` evidently is (magic number, else NUL bytes = binary), else the filename's.

    ``None`` means nothing contradicts the file being text. Only the first :data:`SNIFF_BYTES` bytes
    are read, except that a ZIP's central directory (at its end) is scanned for member names.
    """
    head = bytes(data[:SNIFF_BYTES])
    found = _magic(head) or (_zip_kind(data) if head.startswith(b"PK\x03\x04") else None)
    if found is not None:
        return found
    if b"\x00" in head and not _looks_utf16(head):
        return _BINARY
    return type_from_extension(filename)


def type_from_extension(filename: str | None) -> DetectedType | None:
    """The type a filename's extension names (``report.csv`` -> text/csv), if it is a known one."""
    if not filename or "." not in filename:
        return None
    return _EXTENSIONS.get(filename[filename.rfind(".") :].lower())


def _magic(head: bytes) -> DetectedType | None:
    for offset, magic, kind in _MAGIC:
        if head[offset : offset + len(magic)] == magic:
            return kind
    if head.startswith(b"RIFF") and head[8:12] == b"WAVE":
        return _RIFF_WAVE
    return None


def _zip_kind(data: bytes) -> DetectedType:
    names = _zip_member_names(data)
    if names[:1] == [_ZIP_MIMETYPE]:
        # ODF and EPUB: the first member, stored uncompressed, holds the media type.
        name_length = int.from_bytes(data[26:28], "little")
        extra = int.from_bytes(data[28:30], "little")
        start = 30 + name_length + extra
        declared = bytes(data[start : start + 80]).split(b"PK", 1)[0].strip()
        if declared.startswith(b"application/"):
            media_type = declared.decode("ascii", "replace")
            label = "an EPUB book" if media_type == "application/epub+zip" else "an OpenDocument file"
            return DetectedType(media_type, label)
    for prefix, kind in _ZIP_MEMBERS:
        if any(name.startswith(prefix) for name in names):
            return kind
    return _ZIP


_MAX_ZIP_MEMBERS = 4096


def _zip_member_names(data: bytes) -> list[bytes]:
    """Member names: the central directory's (found through the end record), else the first local one."""
    names: list[bytes] = []
    end = data.rfind(b"PK\x05\x06", max(0, len(data) - 66 * 1024))
    if end >= 0 and end + 22 <= len(data):
        count = int.from_bytes(data[end + 10 : end + 12], "little")
        position = int.from_bytes(data[end + 16 : end + 20], "little")
        for _ in range(min(count, _MAX_ZIP_MEMBERS)):
            if data[position : position + 4] != b"PK\x01\x02":
                break
            name_length = int.from_bytes(data[position + 28 : position + 30], "little")
            extra = int.from_bytes(data[position + 30 : position + 32], "little")
            comment = int.from_bytes(data[position + 32 : position + 34], "little")
            names.append(bytes(data[position + 46 : position + 46 + name_length]))
            position += 46 + name_length + extra + comment
    first = bytes(data[30 : 30 + int.from_bytes(data[26:28], "little")])
    if not names or names[0] != first:
        names.insert(0, first)
    return names


_TEXT_CONTROLS = frozenset("\t\n\x0b\x0c\r")


def _looks_utf16(head: bytes) -> bool:
    """UTF-16 text is full of NUL bytes: a BOM, or NULs in one byte lane only that decode (in the
    byte order that lane implies) to text without control characters, say it is text after all."""
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        return True
    sample = head[: len(head) - len(head) % 2]
    even_nuls, odd_nuls = sample[0::2].count(0), sample[1::2].count(0)
    if min(even_nuls, odd_nuls) != 0:
        return False  # binary data of any size has NULs in both lanes
    text = sample.decode("utf-16-be" if even_nuls else "utf-16-le", "replace")
    body = text[:-1]  # the window may end inside a surrogate pair
    return "\ufffd" not in body and not any(ch < " " and ch not in _TEXT_CONTROLS for ch in body)
