"""edgerag.sniff: what a file is from its first bytes (and, failing that, its name)."""

from __future__ import annotations

import io
import zipfile

import pytest
from edgerag.sniff import DOCX, PPTX, XLSX, detect_type, type_from_extension
from hypothesis import given
from hypothesis import strategies as st


def zipped(*members: tuple[str, str], compress: int = zipfile.ZIP_DEFLATED) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=compress) as archive:
        for name, text in members:
            archive.writestr(name, text)
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("data", "media_type"),
    [
        (b"%PDF-1.4\n", "application/pdf"),
        (b"\x89PNG\r\n\x1a\n\x00\x00", "image/png"),
        (b"\xff\xd8\xff\xe0", "image/jpeg"),
        (b"GIF89a\x01\x00", "image/gif"),
        (b"RIFF\x00\x00\x00\x00WEBPVP8 ", "image/webp"),
        (b"\x1f\x8b\x08\x00", "application/gzip"),
        (b"\x7fELF\x02\x01", "application/x-executable"),
        (b"{\\rtf1\\ansi", "application/rtf"),
        (zipped(("[Content_Types].xml", "x"), ("word/document.xml", "<w/>")), DOCX),
        (zipped(("[Content_Types].xml", "x"), ("xl/workbook.xml", "<x/>")), XLSX),
        (zipped(("[Content_Types].xml", "x"), ("ppt/presentation.xml", "<p/>")), PPTX),
        (zipped(("notes.txt", "hello")), "application/zip"),
        (
            zipped(
                ("mimetype", "application/vnd.oasis.opendocument.text"),
                ("content.xml", "<x/>"),
                compress=zipfile.ZIP_STORED,
            ),
            "application/vnd.oasis.opendocument.text",
        ),
        (b"text then \x00\x01\x02\x03 binary \x00 bytes\xff\x00", "application/octet-stream"),
    ],
)
def test_magic_numbers_and_containers_are_recognised(data: bytes, media_type: str) -> None:
    detected = detect_type(data, "innocent.txt")
    assert detected is not None and detected.media_type == media_type
    assert media_type in str(detected)


def test_a_docx_is_recognised_by_its_central_directory_even_when_word_is_not_first() -> None:
    members = [(f"customXml/item{i}.xml", "<x/>" * 50) for i in range(40)] + [("word/document.xml", "<w/>")]
    assert detect_type(zipped(*members)).media_type == DOCX  # type: ignore[union-attr]


@pytest.mark.parametrize(
    "text", ["plain ASCII", "Genève café", "東京 の 天気", "emoji 🚀 and more", "Ärger über Straßenbahn"]
)
@pytest.mark.parametrize("encoding", ["utf-8", "utf-16-le", "utf-16-be", "utf-16"])
def test_text_in_any_of_its_encodings_is_not_called_binary(text: str, encoding: str) -> None:
    assert detect_type(text.encode(encoding)) is None


@given(st.text(st.characters(exclude_categories=("Cs", "Cc"))))
def test_no_utf8_text_is_taken_for_another_type(text: str) -> None:
    detected = detect_type(text.encode("utf-8"))
    # Only text that happens to start like a magic number (say "%PDF-") is another type.
    assert detected is None or text.startswith(
        ("%PDF-", "GIF8", "{\\rtf", "MZ", "BZh", "ID3", "OggS", "fLaC", "RIFF", "II*", "PK")
    ) or text[4:8] == "ftyp" or text[8:12] == "WEBP"  # fmt: skip


def test_the_name_decides_only_when_the_bytes_do_not() -> None:
    assert detect_type(b"a,b\n1,2\n", "Data.CSV").media_type == "text/csv"  # type: ignore[union-attr]
    assert detect_type(b"%PDF-1.7", "data.csv").media_type == "application/pdf"  # type: ignore[union-attr]
    assert detect_type(b"hello", "notes.txt") is None
    assert type_from_extension("report.docx").media_type == DOCX  # type: ignore[union-attr]
    assert type_from_extension("README") is None and type_from_extension(None) is None


def test_a_truncated_or_lying_zip_is_still_just_a_zip() -> None:
    whole = zipped(("word/document.xml", "<w/>"))
    assert detect_type(whole[:40]).media_type in {DOCX, "application/zip"}  # type: ignore[union-attr]
    broken_directory = whole[:-22] + b"PK\x05\x06" + b"\xff" * 18
    assert detect_type(broken_directory) is not None
    assert detect_type(b"PK\x03\x04").media_type == "application/zip"  # type: ignore[union-attr]
