"""Text extraction from uploaded files, one extractor per content type.

Supported now: ``text/plain`` and ``text/markdown``. Markdown is reduced to the text that helps
retrieval: front matter, heading and emphasis markers, link targets and HTML tags go; code stays as
text. To support a new type (e.g. PDF with pypdf), write an ``Extractor`` and add it to
``EXTRACTORS`` — and the extension to ``_EXTENSIONS`` if files arrive untyped.
"""

from __future__ import annotations

import codecs
import re
from collections.abc import Callable
from dataclasses import dataclass

__all__ = [
    "EXTRACTORS",
    "SUPPORTED_CONTENT_TYPES",
    "ExtractedDocument",
    "ExtractionError",
    "UnsupportedContentType",
    "extract_text",
    "sniff_content_type",
]


class UnsupportedContentType(ValueError):
    """No extractor for this content type."""


class ExtractionError(ValueError):
    """The file claims a supported type but its content cannot be read as one."""


@dataclass(frozen=True)
class ExtractedDocument:
    text: str
    title_hint: str | None = None


Extractor = Callable[[bytes], ExtractedDocument]


def _decode(data: bytes) -> str:
    if data.startswith(codecs.BOM_UTF8):
        data = data[len(codecs.BOM_UTF8):]
    elif data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        try:
            return data.decode("utf-16")
        except UnicodeDecodeError as exc:
            raise ExtractionError(f"the file is not valid UTF-16: {exc.reason}") from exc
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ExtractionError(f"the file is not UTF-8 text (byte {exc.start}: {exc.reason})") from exc
    if "\x00" in text:
        raise ExtractionError("the file contains NUL bytes: it is binary, not text")
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _plain(data: bytes) -> ExtractedDocument:
    return ExtractedDocument(_decode(data))


_FRONT_MATTER = re.compile(r"\A---\n.*?\n(?:---|\.\.\.)\n", re.DOTALL)
_HEADING = re.compile(r"^\s{0,3}#{1,6}\s+(.*?)\s*#*\s*$", re.MULTILINE)
_SETEXT = re.compile(r"^(=+|-+)\s*$", re.MULTILINE)
_IMAGE = re.compile(r"!\[([^\]]*)\]\([^)]*\)")
_LINK = re.compile(r"\[([^\]]+)\]\([^)]*\)")
_REF_LINK = re.compile(r"\[([^\]]+)\]\[[^\]]*\]")
_LINK_DEF = re.compile(r"^\s{0,3}\[[^\]]+\]:\s+\S+.*$", re.MULTILINE)
_EMPHASIS = re.compile(r"(\*{1,3}|_{1,3})(\S(?:.*?\S)?)\1")
_INLINE_CODE = re.compile(r"`([^`]+)`")
_FENCE = re.compile(r"^\s*(```|~~~).*$", re.MULTILINE)
_HTML_TAG = re.compile(r"</?[A-Za-z][^>]*>")
_QUOTE = re.compile(r"^\s{0,3}>\s?", re.MULTILINE)
_LIST_MARK = re.compile(r"^\s*(?:[-*+]|\d+[.)])\s+", re.MULTILINE)


def _markdown(data: bytes) -> ExtractedDocument:
    text = _decode(data)
    text = _FRONT_MATTER.sub("", text)
    first_heading = _HEADING.search(text)
    text = _FENCE.sub("", text)
    text = _HEADING.sub(r"\1", text)
    text = _SETEXT.sub("", text)
    text = _IMAGE.sub(r"\1", text)
    text = _LINK.sub(r"\1", text)
    text = _REF_LINK.sub(r"\1", text)
    text = _LINK_DEF.sub("", text)
    text = _INLINE_CODE.sub(r"\1", text)
    text = _EMPHASIS.sub(r"\2", text)
    text = _HTML_TAG.sub("", text)
    text = _QUOTE.sub("", text)
    text = _LIST_MARK.sub("", text)
    text = re.sub(r"\n{3,}", "\n\n", text).strip()
    return ExtractedDocument(text, first_heading.group(1) if first_heading else None)


EXTRACTORS: dict[str, Extractor] = {"text/plain": _plain, "text/markdown": _markdown}
SUPPORTED_CONTENT_TYPES = frozenset(EXTRACTORS)
_EXTENSIONS = {".txt": "text/plain", ".text": "text/plain", ".md": "text/markdown", ".markdown": "text/markdown"}


def sniff_content_type(filename: str | None) -> str | None:
    """The content type implied by a file name's extension, if it is one we extract."""
    if not filename or "." not in filename:
        return None
    return _EXTENSIONS.get(filename[filename.rfind("."):].lower())


def extract_text(data: bytes, content_type: str, filename: str | None = None) -> ExtractedDocument:
    base = content_type.split(";", 1)[0].strip().lower()
    extractor = EXTRACTORS.get(base)
    if extractor is None:
        raise UnsupportedContentType(
            f"cannot extract text from {base or 'an untyped file'}; supported: {', '.join(sorted(EXTRACTORS))}"
        )
    return extractor(data)
