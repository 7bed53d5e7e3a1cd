"""Turn an uploaded file's bytes into plain text for chunking, one extractor per content type.

An :class:`ExtractorRegistry` maps content types to extractors (``bytes, charset -> document``) and
filename extensions to content types. :func:`default_registry` knows ``text/plain`` (.txt, .text) and
``text/markdown`` (.md, .markdown); :func:`extract_text` resolves the content type (the declared one,
or the filename's when the client sent none or ``application/octet-stream``) and extracts.

Decoding never guesses: a byte-order mark (UTF-8/UTF-16) wins, then a declared ``charset``, else the
bytes must be UTF-8. Anything else raises :class:`ExtractionError`, because a wrong guess would index
mojibake that no query can ever match. Line endings become ``\\n``. The subclasses say why, so the
gateway can refuse a file at upload time with the right status: :class:`UnknownCharset`,
:class:`UndecodableText` (not valid in its charset), :class:`BinaryContent` (NUL characters). The
charset travels inside the content type (``text/plain; charset=shift_jis``): :func:`declared_charset`
reads it back.

Markdown is reduced to the text a reader sees, because markup hurts retrieval (``**``, ``](https://``
and ``#`` are noise tokens for both the keyword index and the embedding): front matter is dropped (its
``title`` becomes the title hint), heading, emphasis, blockquote, list and table markup and HTML tags
are removed, links and images keep their text and lose their targets, code keeps its content.

Structured formats (PDF, DOCX, HTML, CSV/XLSX, JSON, e-mail) live in :mod:`edgerag.formats`, one
module each, and :func:`default_registry` registers them. They return their text as
:class:`Section` s with provenance (page, heading path or sheet, row range) instead of one string:
``ExtractedDocument.sections`` may be lazy (a PDF page or a batch of rows is extracted when the
consumer asks for it), so a large file never has all its text in memory at once. Old callers read
:meth:`ExtractedDocument.full_text`; the pipeline iterates :meth:`ExtractedDocument.iter_sections`.

To add a format: write ``def extract_x(data: bytes, charset: str | None) -> ExtractedDocument`` in its
own module under :mod:`edgerag.formats` and register it in :func:`edgerag.formats.register_formats`.
"""

from __future__ import annotations

import codecs
import html
import re
from bisect import bisect_right
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from edgerag.formats import FormatLimits

__all__ = [
    "SUPPORTED_CONTENT_TYPES",
    "BinaryContent",
    "ExtractedDocument",
    "ExtractionError",
    "Extractor",
    "ExtractorRegistry",
    "Section",
    "UndecodableText",
    "UnknownCharset",
    "UnsupportedContentType",
    "declared_charset",
    "decode_text",
    "default_registry",
    "extract_text",
    "markdown_to_text",
    "normalize_content_type",
    "sniff_content_type",
]

SUPPORTED_CONTENT_TYPES: frozenset[str] = frozenset(
    {
        "text/plain",
        "text/markdown",
        "text/html",
        "text/csv",
        "text/tab-separated-values",
        "application/json",
        "message/rfc822",
        "application/pdf",
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    }
)

# Declared types that mean "unknown": the filename's extension decides instead.
_GENERIC_TYPES = frozenset({"", "application/octet-stream", "binary/octet-stream"})
_ALIASES: Mapping[str, str] = {
    "text/x-markdown": "text/markdown",
    "text/md": "text/markdown",
    "application/xhtml+xml": "text/html",
    "application/csv": "text/csv",
    "text/x-csv": "text/csv",
    "text/json": "application/json",
}
_TITLE_MAX_CHARS = 120


@dataclass(frozen=True)
class Section:
    """A run of a document's text that a chunk never crosses, with where it came from.

    ``page`` is a PDF page (1-based); ``section`` names the place in the document's structure (a
    heading path "Setup > Install", a sheet or table name, a JSON path, an e-mail part); a table
    section holds rows ``row_start`` .. ``row_start + len(row_offsets) - 1`` (spreadsheet numbering:
    the header is row 1), row ``row_start + i`` beginning at ``text[row_offsets[i]:]``.
    """

    text: str
    page: int | None = None
    section: str | None = None
    row_start: int | None = None
    row_offsets: tuple[int, ...] = ()

    def rows_between(self, start: int, end: int) -> tuple[int, int] | None:
        """The rows ``text[start:end]`` touches (first, last), for a table section; else None."""
        if self.row_start is None or not self.row_offsets:
            return None
        first = bisect_right(self.row_offsets, start) - 1
        last = bisect_right(self.row_offsets, max(start, end - 1)) - 1
        return self.row_start + max(first, 0), self.row_start + max(last, 0)


@dataclass(frozen=True)
class ExtractedDocument:
    """The extracted text and, when the content suggests one, a title.

    Plain text and Markdown fill ``text``. Structured formats fill ``sections`` instead (``text``
    stays empty), possibly with a lazy iterable that extracts each section when it is reached, and
    ``metadata`` with what the format says about itself (an e-mail's from/to/subject/date).
    """

    text: str = ""
    title_hint: str | None = None
    sections: Iterable[Section] = ()
    metadata: Mapping[str, str] = field(default_factory=dict)

    def iter_sections(self) -> Iterator[Section]:
        """The sections in order; a plain document is one section without provenance."""
        if self.text or not self.sections:
            yield Section(self.text)
            return
        yield from self.sections

    def full_text(self) -> str:
        """All the text at once, sections separated by a blank line (for small documents and tests)."""
        return SECTION_SEPARATOR.join(s.text for s in self.iter_sections())


SECTION_SEPARATOR = "\n\n"  # between sections in full_text(); chunk offsets count it too


class ExtractionError(ValueError):
    """The file claims a supported type but cannot be read as one (undecodable, binary)."""


class UnknownCharset(ExtractionError):  # noqa: N818 - reads as the condition, like UnsupportedContentType
    """The declared charset is not one Python can decode."""


class UndecodableText(ExtractionError):  # noqa: N818
    """The bytes are not valid text in their (declared or default UTF-8) charset."""


class BinaryContent(ExtractionError):  # noqa: N818
    """The decoded text contains NUL characters: the file is binary, whatever it was declared as."""


class UnsupportedContentType(ExtractionError):  # noqa: N818 - the name the API documents
    """No extractor is registered for the content type."""

    def __init__(self, content_type: str, supported: Iterable[str]) -> None:
        self.content_type = content_type
        self.supported = tuple(sorted(supported))
        super().__init__(
            f"cannot extract text from {content_type or 'an untyped file'}; "
            f"supported: {', '.join(self.supported)}"
        )


# extractor(data, charset): charset is the one declared with the content type, if any.
Extractor = Callable[[bytes, str | None], ExtractedDocument]


class ExtractorRegistry:
    """Content type -> extractor, and filename extension -> content type."""

    def __init__(self) -> None:
        self._extractors: dict[str, Extractor] = {}
        self._extensions: dict[str, str] = {}

    def register(self, content_type: str, extractor: Extractor, *, extensions: Iterable[str] = ()) -> None:
        key = normalize_content_type(content_type)
        self._extractors[key] = extractor
        for extension in extensions:
            self._extensions[extension.lower()] = key

    @property
    def content_types(self) -> frozenset[str]:
        return frozenset(self._extractors)

    def sniff(self, filename: str | None) -> str | None:
        """The content type registered for ``filename``'s extension, if any."""
        if not filename or "." not in filename:
            return None
        return self._extensions.get(filename[filename.rfind(".") :].lower())

    def resolve(self, content_type: str | None, filename: str | None) -> str:
        """The registered content type to extract with; raises :class:`UnsupportedContentType`."""
        declared = normalize_content_type(content_type or "")
        resolved = (self.sniff(filename) or declared) if declared in _GENERIC_TYPES else declared
        if resolved not in self._extractors:
            raise UnsupportedContentType(resolved, self._extractors)
        return resolved

    def extract(
        self, data: bytes, content_type: str | None, filename: str | None = None
    ) -> ExtractedDocument:
        extractor = self._extractors[self.resolve(content_type, filename)]
        return extractor(data, declared_charset(content_type))


def default_registry(limits: FormatLimits | None = None) -> ExtractorRegistry:
    """A registry with every built-in extractor (a new one per call, so callers may extend it).

    ``limits`` are the per-format caps (pages, rows, ZIP sizes); the defaults when omitted.
    """
    from edgerag.formats import register_formats  # the formats import this module

    registry = ExtractorRegistry()
    registry.register("text/plain", extract_plain_text, extensions=(".txt", ".text"))
    registry.register("text/markdown", extract_markdown, extensions=(".md", ".markdown"))
    register_formats(registry, limits)
    return registry


def extract_text(
    data: bytes,
    content_type: str | None,
    filename: str | None = None,
    *,
    registry: ExtractorRegistry | None = None,
) -> ExtractedDocument:
    """Extract the text of an uploaded file (see the module docstring)."""
    return (registry or default_registry()).extract(data, content_type, filename)


def sniff_content_type(filename: str | None) -> str | None:
    """The built-in content type implied by ``filename``'s extension (.txt, .md, .pdf, .csv, ...)."""
    return default_registry().sniff(filename)


def normalize_content_type(content_type: str) -> str:
    """``"Text/X-Markdown; charset=UTF-8"`` -> ``"text/markdown"``: parameters dropped, aliases resolved."""
    base = content_type.split(";", 1)[0].strip().lower()
    return _ALIASES.get(base, base)


def decode_text(data: bytes, charset: str | None = None) -> str:
    """Decode text bytes (BOM, else ``charset``, else UTF-8) and normalise line endings to ``\\n``."""
    encoding = charset or "utf-8"
    if data.startswith(codecs.BOM_UTF8):
        encoding = "utf-8-sig"
    elif data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        encoding = "utf-16"  # reads the BOM to pick the byte order, and drops it
    try:
        text = data.decode(encoding)
    except LookupError as exc:
        raise UnknownCharset(f"unknown charset {charset!r}") from exc
    except UnicodeDecodeError as exc:
        raise UndecodableText(
            f"the file is not valid {encoding} text (first bad byte at offset {exc.start}); "
            "upload it as UTF-8 or declare its charset in the content type"
        ) from exc
    if "\x00" in text:
        raise BinaryContent("the file contains NUL characters: it is binary, not text")
    return text.replace("\r\n", "\n").replace("\r", "\n")


def extract_plain_text(data: bytes, charset: str | None) -> ExtractedDocument:
    text = decode_text(data, charset)
    first_line = next((line.strip() for line in text.split("\n") if line.strip()), "")
    # A short first line that is not a sentence reads as a title ("Annual report 2024").
    looks_like_title = 0 < len(first_line) <= _TITLE_MAX_CHARS and first_line[-1] not in ".!?;,:"
    return ExtractedDocument(text=text, title_hint=first_line if looks_like_title else None)


def extract_markdown(data: bytes, charset: str | None) -> ExtractedDocument:
    text, title = markdown_to_text(decode_text(data, charset))
    return ExtractedDocument(text=text, title_hint=title)


def declared_charset(content_type: str | None) -> str | None:
    """The ``charset`` parameter of a content type, lower-cased (``None`` if there is none)."""
    match = re.search(r";\s*charset\s*=\s*\"?([\w.:-]+)\"?", content_type or "", re.IGNORECASE)
    return match.group(1).lower() if match else None


# -- Markdown ------------------------------------------------------------------------------------
# Line-based, not a full CommonMark parser: the goal is retrieval text, so constructs are removed
# the way a reader would see them and anything unrecognised stays as written. Spans are bounded
# ({1,300} and the like) so hostile input cannot make the regexes backtrack quadratically.

_FRONT_MATTER_OPEN = {"---": ("---", "..."), "+++": ("+++",)}
_FRONT_MATTER_MAX_LINES = 200
_FRONT_MATTER_KEY = re.compile(r"^[\w-]+\s*[:=]")
_FRONT_MATTER_TITLE = re.compile(r"^title\s*[:=]\s*(.+?)\s*$", re.IGNORECASE)
_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
_ATX_HEADING = re.compile(r"^ {0,3}#{1,6}(?:[ \t]+(.*?))?(?:[ \t]+#+)?[ \t]*$")
_SETEXT_UNDERLINE = re.compile(r"^ {0,3}(?:=+|-+)[ \t]*$")
_THEMATIC_BREAK = re.compile(r"^ {0,3}([-*_])(?:[ \t]*\1){2,}[ \t]*$")
_LINK_DEFINITION = re.compile(r"^ {0,3}\[[^\]\n]{1,500}\]:[ \t]*\S.*$")
_TABLE_DELIMITER = re.compile(r"^ *\|?(?: *:?-+:? *\|)+ *(?::?-+:?)? *$")
_BLOCKQUOTE = re.compile(r"^ {0,3}(?:> ?)+")
_LIST_MARKER = re.compile(r"^([ \t]*)(?:[-*+]|\d{1,9}[.)])[ \t]+(?:\[[ xX]\][ \t]+)?")
_INLINE_CODE = re.compile(r"(`+)(.{1,2000}?)\1")
_ESCAPED = re.compile(r"\\([!-/:-@\[-`{-~])")
_IMAGE = re.compile(r"!\[([^\]\n]{0,500})\]\([^)\n]{0,2000}\)")
_LINK = re.compile(r"\[([^\]\n]{0,500})\](?:\([^)\n]{0,2000}\)|\[[^\]\n]{0,500}\])")
_AUTOLINK = re.compile(r"<((?:https?|ftp|mailto):[^>\s]{1,2000}|[^>\s@]{1,200}@[^>\s]{1,200})>")
_HTML_COMMENT = re.compile(r"<!--.*?-->")
_LINE_BREAK_TAG = re.compile(r"<br\s*/?>", re.IGNORECASE)
_HTML_TAG = re.compile(r"</?[A-Za-z][A-Za-z0-9-]{0,30}(?:\s[^<>]{0,1000})?/?>")
_EMPHASIS = (
    re.compile(r"(\*{1,3})(?=\S)(.{1,300}?)(?<=\S)\1"),
    re.compile(r"(?<!\w)(_{1,3})(?=\S)(.{1,300}?)(?<=\S)\1(?!\w)"),
    re.compile(r"(~~)(?=\S)(.{1,300}?)(?<=\S)\1"),
)
_EMPHASIS_DEPTH = 3
_ESCAPE_BASE = 0xF0000  # Supplementary Private Use Area: never present in real text


def markdown_to_text(source: str) -> tuple[str, str | None]:
    """The readable text of a Markdown document and its title (front matter, else first heading)."""
    lines = source.split("\n")
    title, lines = _strip_front_matter(lines)
    out: list[str] = []
    fence: str | None = None
    in_comment = False
    for index, line in enumerate(lines):
        if fence is not None:
            if line.strip().startswith(fence) and not line.strip().strip(fence[0]):
                fence = None
            else:
                out.append(line)  # code is kept verbatim: identifiers are what people search for
            continue
        had_text = bool(line.strip())
        if in_comment:
            end = line.find("-->")
            if end < 0:
                continue
            line, in_comment = line[end + 3 :], False
        opened = _FENCE.match(line)
        if opened:
            fence = opened.group(1)
            continue
        line = _HTML_COMMENT.sub("", line)
        if "<!--" in line:
            line, in_comment = line[: line.index("<!--")], True
        if had_text and not line.strip():
            continue  # a line that held only a comment is not a paragraph break
        if _THEMATIC_BREAK.match(line) or _SETEXT_UNDERLINE.match(line):
            if title is None and _SETEXT_UNDERLINE.match(line) and out and out[-1].strip():
                title = out[-1].strip()
            out.append("")
            continue
        if _LINK_DEFINITION.match(line) or _TABLE_DELIMITER.match(line):
            continue
        heading = _ATX_HEADING.match(line)
        if heading:
            line = _inline(heading.group(1) or "")
            if title is None and line.strip():
                title = line.strip()
            out.extend(("", line, ""))  # a heading is its own paragraph for the chunker
            continue
        line = _LIST_MARKER.sub(r"\1", _BLOCKQUOTE.sub("", line))
        if line.lstrip().startswith("|") or (line.count("|") >= 2 and _is_table_row(lines, index)):
            line = "  ".join(cell.strip() for cell in line.strip().strip("|").split("|"))
        out.append(_inline(line))
    text = "\n".join(part.rstrip() for part in out)
    text = re.sub(r"\n{3,}", "\n\n", text).strip("\n")
    return text, title


def _strip_front_matter(lines: list[str]) -> tuple[str | None, list[str]]:
    closers = _FRONT_MATTER_OPEN.get(lines[0].strip()) if lines else None
    if closers is None:
        return None, lines
    for end in range(1, min(len(lines), _FRONT_MATTER_MAX_LINES)):
        if lines[end].strip() in closers:
            first = next((line.strip() for line in lines[1:end] if line.strip()), "")
            if not _FRONT_MATTER_KEY.match(first):
                return None, lines  # "---" then prose: a thematic break, not metadata
            title = None
            for line in lines[1:end]:
                found = _FRONT_MATTER_TITLE.match(line.strip())
                if found:
                    title = found.group(1).strip().strip("\"'").strip() or None
                    break
            return title, lines[end + 1 :]
    return None, lines  # never closed: it was a thematic break, not front matter


def _is_table_row(lines: list[str], index: int) -> bool:
    """A pipe row without a leading pipe is a table row only next to a delimiter row."""
    neighbours = lines[max(0, index - 2) : index + 2]
    return any(_TABLE_DELIMITER.match(line) and "-" in line for line in neighbours)


def _inline(line: str) -> str:
    """Inline markup of one line; code spans keep their content untouched."""
    parts: list[str] = []
    position = 0
    for code in _INLINE_CODE.finditer(line):
        parts.append(_inline_text(line[position : code.start()]))
        parts.append(code.group(2).strip() if code.group(2).strip() else code.group(2))
        position = code.end()
    parts.append(_inline_text(line[position:]))
    return "".join(parts)


def _inline_text(text: str) -> str:
    # Escaped punctuation is hidden in private-use characters first, so "\*" never opens emphasis.
    text = _ESCAPED.sub(lambda m: chr(_ESCAPE_BASE + ord(m.group(1))), text)
    text = _IMAGE.sub(r"\1", text)
    text = _LINK.sub(r"\1", text)
    text = _AUTOLINK.sub(r"\1", text)
    text = _HTML_TAG.sub("", _LINE_BREAK_TAG.sub(" ", text))
    for pattern in _EMPHASIS:
        for _ in range(_EMPHASIS_DEPTH):  # nested emphasis ("***a* b**") unwraps a layer per pass
            text, found = pattern.subn(r"\2", text)
            if not found:
                break
    text = html.unescape(text)
    return re.sub(r"[\U000F0000-\U000F007F]", lambda m: chr(ord(m.group()) - _ESCAPE_BASE), text)
