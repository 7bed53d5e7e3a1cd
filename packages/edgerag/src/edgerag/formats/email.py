"""E-mail (.eml, RFC 5322/MIME) -> a headers section, the body, and text attachments (stdlib ``email``).

The headers (from, to, cc, subject, date) become the document's ``metadata`` and its first section
("headers"), so a search for a sender or a subject finds the message. The body is the text/plain part
when there is one, else the HTML part reduced to readable text (:func:`~edgerag.formats.html.html_to_text`);
each attachment whose type is text (plain, Markdown, CSV, HTML) is a section named
"attachment: <filename>". Other attachments are listed by name in the headers section, not extracted.
The subject is the title hint.

To extract another attachment type: decode its payload and append a section in ``_attachments``.
"""

from __future__ import annotations

from collections.abc import Iterator
from email import policy
from email.message import EmailMessage, Message
from email.parser import BytesParser

from edgerag.extract import ExtractedDocument, ExtractionError, Section
from edgerag.formats.html import html_to_text

__all__ = ["extract_email"]

_HEADERS = ("from", "to", "cc", "subject", "date")
_TEXT_ATTACHMENTS = frozenset({"text/plain", "text/markdown", "text/csv", "text/html"})


def _text(part: Message) -> str:
    try:
        content = part.get_content() if isinstance(part, EmailMessage) else part.get_payload(decode=True)
    except (LookupError, ValueError, AssertionError):  # unknown charset, bad transfer encoding
        payload = part.get_payload(decode=True)
        content = payload.decode("utf-8", "replace") if isinstance(payload, bytes) else ""
    if isinstance(content, bytes):
        content = content.decode("utf-8", "replace")
    if not isinstance(content, str):
        return ""
    content = content.replace("\r\n", "\n").replace("\r", "\n").replace("\x00", "")
    return html_to_text(content) if part.get_content_type() == "text/html" else content.strip()


def _attachments(message: EmailMessage, skipped: list[str]) -> Iterator[Section]:
    for part in message.iter_attachments():
        name = part.get_filename() or part.get_content_type()
        if part.get_content_type() in _TEXT_ATTACHMENTS:
            text = _text(part)
            if text:
                yield Section(text, section=f"attachment: {name}")
        else:
            skipped.append(name)


def extract_email(data: bytes, charset: str | None) -> ExtractedDocument:
    """An e-mail's headers, body and text attachments (see the module docstring)."""
    message = BytesParser(policy=policy.default).parsebytes(data)
    assert isinstance(message, EmailMessage)  # policy.default makes EmailMessage objects
    metadata = {name: " ".join(str(message[name]).split()) for name in _HEADERS if message[name]}
    if not metadata:
        raise ExtractionError("the file is not an e-mail: it has none of From, To, Subject or Date")
    sections: list[Section] = []
    body = message.get_body(preferencelist=("plain", "html"))
    if body is not None:
        text = _text(body)
        if text:
            sections.append(Section(text, section="body"))
    skipped: list[str] = []
    sections.extend(_attachments(message, skipped))
    header_lines = [f"{name.capitalize()}: {value}" for name, value in metadata.items()]
    if skipped:
        header_lines.append(f"Attachments not indexed: {', '.join(skipped)}")
    sections.insert(0, Section("\n".join(header_lines), section="headers"))
    subject = metadata.get("subject")
    return ExtractedDocument(
        title_hint=subject[:120] if subject else None, sections=tuple(sections), metadata=metadata
    )
