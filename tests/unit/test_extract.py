"""edgerag.extract: content-type resolution, decoding, plain text, Markdown, and the registry."""

from __future__ import annotations

import codecs

import pytest
from edgerag.extract import (
    SUPPORTED_CONTENT_TYPES,
    BinaryContent,
    ExtractedDocument,
    ExtractionError,
    ExtractorRegistry,
    UndecodableText,
    UnknownCharset,
    UnsupportedContentType,
    declared_charset,
    decode_text,
    default_registry,
    extract_text,
    markdown_to_text,
    normalize_content_type,
    sniff_content_type,
)
from hypothesis import given
from hypothesis import strategies as st

# -- content types -------------------------------------------------------------------------------


def test_supported_types() -> None:
    assert {
        "text/plain",
        "text/markdown",
        "application/pdf",
        "text/csv",
        "text/html",
    } <= SUPPORTED_CONTENT_TYPES
    assert default_registry().content_types == SUPPORTED_CONTENT_TYPES


@pytest.mark.parametrize(
    ("filename", "expected"),
    [
        ("notes.txt", "text/plain"),
        ("a.TEXT", "text/plain"),
        ("README.md", "text/markdown"),
        ("doc.markdown", "text/markdown"),
        ("archive.tar.md", "text/markdown"),
        ("x.pdf", "application/pdf"),
        ("sheet.CSV", "text/csv"),
        ("x.exe", None),
        ("noextension", None),
        (None, None),
        ("", None),
    ],
)
def test_sniffing_by_extension(filename: str | None, expected: str | None) -> None:
    assert sniff_content_type(filename) == expected


@pytest.mark.parametrize(
    ("declared", "expected"),
    [
        ("Text/Markdown; charset=UTF-8", "text/markdown"),
        ("text/x-markdown", "text/markdown"),
        (" text/plain ", "text/plain"),
    ],
)
def test_normalize_content_type(declared: str, expected: str) -> None:
    assert normalize_content_type(declared) == expected


def test_generic_declared_types_defer_to_the_filename() -> None:
    assert extract_text(b"# Hi", "application/octet-stream", "x.md").text == "Hi"
    assert extract_text(b"# Hi", "", "x.txt").text == "# Hi"


@pytest.mark.parametrize(
    ("content_type", "filename"),
    [("image/png", "x.png"), ("application/rtf", None), ("", None), ("application/octet-stream", "x.exe")],
)
def test_unsupported_types_raise(content_type: str, filename: str | None) -> None:
    with pytest.raises(UnsupportedContentType) as raised:
        extract_text(b"data", content_type, filename)
    assert raised.value.supported == tuple(sorted(SUPPORTED_CONTENT_TYPES))
    assert isinstance(raised.value, ExtractionError)
    assert "supported: application/json, application/pdf" in str(raised.value)


def test_a_declared_type_wins_over_the_extension() -> None:
    with pytest.raises(UnsupportedContentType, match="image/png"):
        extract_text(b"x", "image/png", "notes.txt")


# -- decoding ------------------------------------------------------------------------------------


def test_utf8_with_and_without_bom_and_line_endings() -> None:
    assert extract_text("Grüße\r\nzwei\rdrei".encode(), "text/plain").text == "Grüße\nzwei\ndrei"
    assert extract_text(codecs.BOM_UTF8 + "Grüße".encode(), "text/plain").text == "Grüße"


@pytest.mark.parametrize("codec", ["utf-16-le", "utf-16-be"])
def test_utf16_with_bom(codec: str) -> None:
    bom = codecs.BOM_UTF16_LE if codec.endswith("le") else codecs.BOM_UTF16_BE
    assert extract_text(bom + "naïve 日本".encode(codec), "text/plain").text == "naïve 日本"


def test_declared_charset_is_honoured() -> None:
    data = "café crème".encode("latin-1")
    assert extract_text(data, "text/plain; charset=ISO-8859-1").text == "café crème"
    assert extract_text(data, 'text/markdown; charset="latin-1"').text == "café crème"


def test_undecodable_bytes_raise_a_clear_error() -> None:
    with pytest.raises(ExtractionError, match=r"not valid utf-8 text \(first bad byte at offset 3\)"):
        extract_text("café".encode("latin-1"), "text/plain")


def test_unknown_charset_raises() -> None:
    with pytest.raises(ExtractionError, match="unknown charset 'klingon'"):
        extract_text(b"x", "text/plain; charset=klingon")


def test_binary_data_is_rejected() -> None:
    with pytest.raises(ExtractionError, match="binary"):
        extract_text(b"PK\x03\x04\x00\x00", "text/plain")


# -- plain text ----------------------------------------------------------------------------------


def test_plain_text_is_kept_and_a_short_first_line_is_the_title() -> None:
    doc = extract_text(b"\n  Quarterly report  \n\nRevenue grew.", "text/plain")
    assert doc.text == "\n  Quarterly report  \n\nRevenue grew."
    assert doc.title_hint == "Quarterly report"


@pytest.mark.parametrize("text", [b"Just one sentence.", b"x" * 500, b"   "])
def test_plain_text_without_a_title_like_first_line(text: bytes) -> None:
    assert extract_text(text, "text/plain").title_hint is None


# -- markdown ------------------------------------------------------------------------------------


def _md(source: str) -> str:
    return markdown_to_text(source)[0]


def test_front_matter_is_dropped_and_gives_the_title() -> None:
    text, title = markdown_to_text('---\ntitle: "Launch plan"\ntags: [a]\n---\n# Heading\n\nBody.')
    assert (text, title) == ("Heading\n\nBody.", "Launch plan")
    text, title = markdown_to_text("+++\ntitle = 'Toml'\n+++\nBody.")
    assert (text, title) == ("Body.", "Toml")


def test_a_leading_thematic_break_is_not_front_matter() -> None:
    assert _md("---\nJust prose here.\n---\nMore.") == "Just prose here.\n\nMore."


def test_headings_lose_their_markers_and_the_first_is_the_title() -> None:
    text, title = markdown_to_text("intro\n## Second level ##\ntext\n#hashtag stays")
    assert title == "Second level"
    assert text == "intro\n\nSecond level\n\ntext\n#hashtag stays"
    assert markdown_to_text("Setext title\n============\n\nbody") == ("Setext title\n\nbody", "Setext title")


def test_emphasis_markers_are_removed_but_not_intraword_underscores() -> None:
    assert _md("Some **bold**, *italic*, ***both***, __strong__, _em_ and ~~gone~~.") == (
        "Some bold, italic, both, strong, em and gone."
    )
    assert _md("snake_case_name and 2 * 3 * 4") == "snake_case_name and 2 * 3 * 4"


def test_links_and_images_keep_their_text_and_lose_their_targets() -> None:
    source = 'See [the docs](https://example.com/docs "Docs") and ![a diagram](img/d.png), [ref][1].\n\n[1]: https://x.y'
    assert _md(source) == "See the docs and a diagram, ref."
    assert _md("Mail <someone@example.com> or visit <https://example.com/a>.") == (
        "Mail someone@example.com or visit https://example.com/a."
    )


def test_code_is_kept_verbatim() -> None:
    code = "def f(x):  # **not bold** [a](b)\n    return x"
    source = f"Call `parse_**args**()` first.\n\n```python\n{code}\n```\nafter"
    assert _md(source) == f"Call parse_**args**() first.\n\n{code}\nafter"
    assert _md("~~~\nunclosed fence **kept**") == "unclosed fence **kept**"


def test_lists_quotes_tables_html_and_escapes() -> None:
    source = (
        "> quoted\n> - nested item\n\n- [x] done\n* star\n10. tenth\n\n"
        "| Name | Role |\n|:-----|-----:|\n| Ada  | math |\n\n"
        '<div class="note">inside<br>html</div> <!-- hidden -->\n<!-- multi\nline -->after\n<!--\n-->\n'
        "\\*literal stars\\* &amp; entities"
    )
    assert _md(source) == (
        "quoted\nnested item\n\ndone\nstar\ntenth\n\nName  Role\nAda  math\n\n"
        "inside html\nafter\n*literal stars* & entities"
    )


def test_thematic_breaks_become_paragraph_breaks() -> None:
    assert _md("one\n\n***\n\ntwo") == "one\n\ntwo"


def test_markdown_extraction_through_the_registry() -> None:
    doc = extract_text(b"# Title\n\nBody with **bold**.", "text/markdown", "notes.md")
    assert doc == ExtractedDocument(text="Title\n\nBody with bold.", title_hint="Title")


@given(st.text(max_size=300))
def test_markdown_never_raises_and_keeps_plain_words(source: str) -> None:
    text, title = markdown_to_text(source)
    assert isinstance(text, str)
    assert title is None or isinstance(title, str)


def test_plain_prose_passes_through_markdown_unchanged() -> None:
    prose = "The quick brown fox jumps over the lazy dog.\n\nA second paragraph, with commas; and more."
    assert _md(prose) == prose


# -- registry ------------------------------------------------------------------------------------


def test_registering_an_extractor_for_a_new_type() -> None:
    calls: list[tuple[bytes, str | None]] = []

    def fake_rtf(data: bytes, charset: str | None) -> ExtractedDocument:
        calls.append((data, charset))
        return ExtractedDocument(text="rtf text", title_hint=None)

    registry = default_registry()
    registry.register("application/rtf", fake_rtf, extensions=(".rtf",))
    assert registry.sniff("Paper.RTF") == "application/rtf"
    doc = extract_text(b"{\\rtf1", "application/octet-stream", "paper.rtf", registry=registry)
    assert doc.text == "rtf text"
    assert calls == [(b"{\\rtf1", None)]
    # The default registry is untouched: registries are per caller.
    with pytest.raises(UnsupportedContentType):
        extract_text(b"{\\rtf1", "application/rtf")


def test_an_empty_registry_supports_nothing() -> None:
    with pytest.raises(UnsupportedContentType, match=r"supported: $"):
        ExtractorRegistry().extract(b"x", "text/plain")


# -- charsets and why decoding failed -------------------------------------------------------------


@pytest.mark.parametrize(
    ("content_type", "charset"),
    [
        ("text/plain; charset=ISO-8859-1", "iso-8859-1"),
        ('text/plain;charset="Shift_JIS"', "shift_jis"),
        ("text/markdown ; Charset = utf-16-le", "utf-16-le"),
        ("text/plain", None),
        (None, None),
    ],
)
def test_declared_charset_reads_the_parameter(content_type: str | None, charset: str | None) -> None:
    assert declared_charset(content_type) == charset


@pytest.mark.parametrize(
    ("charset", "text"),
    [
        ("iso-8859-1", "Genève café"),
        ("windows-1252", "“Smörgåsbord”"),
        ("shift_jis", "東京 富士山"),
        ("utf-16-le", "Straßenbahn"),
    ],
)
def test_extraction_decodes_with_the_charset_in_the_content_type(charset: str, text: str) -> None:
    doc = extract_text(text.encode(charset), f"text/plain; charset={charset}")
    assert doc.text == text


def test_decode_failures_say_why_with_their_own_types() -> None:
    with pytest.raises(UndecodableText, match="not valid utf-8"):
        decode_text("café".encode("latin-1"))
    with pytest.raises(UnknownCharset, match="klingon"):
        decode_text(b"x", "klingon")
    with pytest.raises(BinaryContent, match="NUL"):
        decode_text(b"a\x00b")
    # All are extraction errors, which the ingest consumer treats as permanent.
    assert all(issubclass(kind, ExtractionError) for kind in (UndecodableText, UnknownCharset, BinaryContent))
