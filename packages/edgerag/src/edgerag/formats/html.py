"""HTML -> the text a reader sees, in sections by heading; ``<title>`` is the title hint.

Parsed with the stdlib's tolerant ``html.parser``. Dropped: scripts, styles, templates, SVG, forms'
machinery and the page's chrome (``nav``, ``header``, ``footer``, ``aside``, and elements whose ARIA
role is navigation/banner/contentinfo), because that boilerplate repeats on every page and matches
every query. Block elements end a paragraph; ``h1``..``h6`` start a section named by its heading
path; list items become "- item" lines and table rows one line with cells separated by " | ".

A page with nothing readable left (only scripts, say) fails: "no readable text". :func:`html_to_text`
is the same reduction for callers that want one string (e-mail bodies).

To drop more boilerplate: add the tag to ``_SKIP`` or the role to ``_SKIP_ROLES``.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser

from edgerag.extract import ExtractedDocument, ExtractionError, Section, decode_text

__all__ = ["extract_html", "html_sections", "html_to_text"]

_SKIP = frozenset(
    {"script", "style", "noscript", "template", "svg", "nav", "header", "footer", "aside", "head"}
    | {"select", "button", "iframe", "object", "canvas", "math"}
)
_SKIP_ROLES = frozenset({"navigation", "banner", "contentinfo", "complementary", "search"})
_VOID = frozenset(
    {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}
)
_BLOCK = frozenset(
    {"p", "div", "section", "article", "main", "blockquote", "pre", "ul", "ol", "dl", "dt", "dd", "table"}
    | {"form", "fieldset", "figure", "figcaption", "address", "details", "summary", "hr", "body", "html"}
)
_HEADINGS = {f"h{n}": n for n in range(1, 7)}
_SPACES = re.compile(r"[ \t\r\f\v\u00a0]+")
_TITLE_MAX_CHARS = 120


class _Reader(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.sections: list[Section] = []
        self.title: str | None = None
        self._path: list[tuple[int, str]] = []
        self._lines: list[str] = []
        self._line: list[str] = []
        self._skip: list[str] = []  # open elements whose content is dropped
        self._in_title = False
        self._title_parts: list[str] = []
        self._heading: int | None = None
        self._cells: list[str] | None = None

    # -- structure --------------------------------------------------------------------------------

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _VOID:
            if tag == "br" and not self._skip:
                self._end_line()
            return
        if tag == "body" and self._skip[:1] == ["head"]:
            self._skip.clear()  # an unclosed <head> ends where the body begins
        role = next((value for name, value in attrs if name == "role"), None) or ""
        if self._skip or tag in _SKIP or role.lower() in _SKIP_ROLES:
            if tag == "title" and self._skip == ["head"]:
                self._in_title = True  # <title> lives in <head>, which is skipped
            self._skip.append(tag)
            return
        if tag == "title":
            self._in_title = True
        elif tag in _HEADINGS:
            self._end_paragraph()
            self._heading = _HEADINGS[tag]
        elif tag == "li":
            self._end_line()
            self._line.append("- ")
        elif tag == "tr":
            self._end_line()
            self._cells = []
        elif tag in ("td", "th") and self._cells is not None:
            self._cells.append("")
        elif tag in _BLOCK:
            self._end_paragraph()

    def handle_endtag(self, tag: str) -> None:
        if tag == "title":
            self._in_title = False
        if self._skip:
            if tag in self._skip:
                while self._skip and self._skip.pop() != tag:
                    pass
            return
        if tag in _HEADINGS and self._heading is not None:
            text = _SPACES.sub(" ", "".join(self._line)).strip()
            self._line.clear()
            level, self._heading = self._heading, None
            if text:
                self._end_section()
                while self._path and self._path[-1][0] >= level:
                    self._path.pop()
                self._path.append((level, text))
                self._lines.extend((text, ""))
        elif tag == "tr" and self._cells is not None:
            cells = [_SPACES.sub(" ", cell).strip() for cell in self._cells]
            self._cells = None
            if any(cells):
                self._lines.append(" | ".join(cells))
        elif tag == "li":
            self._end_line()
        elif tag in _BLOCK:
            self._end_paragraph()

    def handle_data(self, data: str) -> None:
        if self._in_title:
            self._title_parts.append(data)
            return
        if self._skip:
            return
        if self._cells is not None:
            if self._cells:
                self._cells[-1] += data
            return
        self._line.append(data.replace("\n", " "))

    # -- output -----------------------------------------------------------------------------------

    def _end_line(self) -> None:
        text = _SPACES.sub(" ", "".join(self._line)).strip()
        self._line.clear()
        if text and text != "-":
            self._lines.append(text)

    def _end_paragraph(self) -> None:
        self._end_line()
        if self._lines and self._lines[-1]:
            self._lines.append("")

    def _end_section(self) -> None:
        self._end_line()
        text = "\n".join(self._lines).strip()
        self._lines.clear()
        if text:
            self.sections.append(Section(text, section=" > ".join(t for _, t in self._path) or None))

    def finish(self) -> None:
        self.close()
        self._end_section()
        title = _SPACES.sub(" ", "".join(self._title_parts)).strip()
        self.title = title[:_TITLE_MAX_CHARS] if title else None


def html_sections(source: str) -> tuple[list[Section], str | None]:
    """The readable sections of an HTML document and its ``<title>``."""
    reader = _Reader()
    reader.feed(source)
    reader.finish()
    return reader.sections, reader.title


def html_to_text(source: str) -> str:
    """The readable text of an HTML document as one string."""
    sections, _ = html_sections(source)
    return "\n\n".join(s.text for s in sections)


def extract_html(data: bytes, charset: str | None) -> ExtractedDocument:
    """The readable sections of a web page (see the module docstring)."""
    sections, title = html_sections(decode_text(data, charset))
    if not sections:
        raise ExtractionError("no readable text: the page has only scripts, styles or navigation")
    first_heading = next((s.section for s in sections if s.section), None)
    return ExtractedDocument(title_hint=title or first_heading, sections=tuple(sections))
