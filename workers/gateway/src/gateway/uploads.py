"""Reading and vetting an upload before anything is stored: what the documents routes accept.

``POST /v1/documents`` takes a multipart file (``file``, optional ``title`` and ``metadata``) or JSON
text (:class:`TextDocument`); ``POST /v1/documents/batch`` takes :class:`DocumentBatch`. The handlers
read the raw request (so the gateway's own size limits apply before parsing), and
:data:`UPLOAD_BODY` / :data:`BATCH_BODY` describe those bodies in the OpenAPI schema.

A file is refused at upload time whenever ingestion could only fail later (:func:`vet_file`):

* 415 when its bytes are another type than text (magic numbers: PDF, PNG, ZIP, DOCX, ...; NUL bytes:
  binary), when its type is not one the extractors know (the detail names what the file IS, from its
  bytes or its extension, not the ``application/octet-stream`` a browser may have sent), or when its
  declared charset is unknown;
* 422 when a text file does not decode in its declared charset (UTF-8 when none is declared).

A declared charset is kept: the stored content type is ``text/plain; charset=shift_jis`` and the
ingest consumer decodes with it.

Binary formats (PDF, DOCX, XLSX: :data:`edgerag.formats.BINARY_CONTENT_TYPES`) are accepted when
their bytes are what they claim (magic number, ZIP members), and refused with 415 naming what they
really are otherwise; whether they can be parsed is the ingest worker's call (a damaged or
password-protected PDF ends ``failed`` with that reason). Every other registered type is text (HTML,
CSV, JSON, e-mail, plain, Markdown) and gets the decode check.

To accept another format: register its extractor in :func:`edgerag.extract.default_registry` (the
check here follows the registry) and decide whether its bytes need a decode check like text.
"""

from __future__ import annotations

import codecs
import json
import re
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from edgerag.extract import (
    BinaryContent,
    UndecodableText,
    UnknownCharset,
    UnsupportedContentType,
    declared_charset,
    decode_text,
    default_registry,
)
from edgerag.formats import BINARY_CONTENT_TYPES
from edgerag.problems import BadRequest, PayloadTooLarge, UnsupportedMediaType, ValidationFailed
from edgerag.sniff import detect_type
from fastapi import Request
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, field_validator
from starlette.datastructures import UploadFile

from gateway.url_documents import UrlDocument

__all__ = [
    "BATCH_BODY",
    "MAX_BATCH_DOCUMENTS",
    "UPLOAD_BODY",
    "DocumentBatch",
    "TextDocument",
    "Upload",
    "base_type",
    "read_batch",
    "read_upload",
]

MAX_BATCH_DOCUMENTS = 100  # one queue sendBatch holds at most 100 messages
_MULTIPART_OVERHEAD = 64 * 1024  # boundaries and form fields around the file itself
_FORM_FIELDS = frozenset({"file", "title", "metadata"})
# Text with something to index (a character that is not whitespace as str.isspace sees it: the
# chunker trims exactly that) and no NUL (which no text extractor accepts). The same rule is published
# in the schema so that generated clients know it, spelled out because each regex dialect has its own \s.
_SPACE = (
    "\\t\\n\\u000b\\u000c\\r\\u001c-\\u001f \\u0085\\u00a0\\u1680\\u2000-\\u200a"
    "\\u2028\\u2029\\u202f\\u205f\\u3000"
)
_INDEXABLE_TEXT = f"^[^\\u0000]*[^\\u0000{_SPACE}][^\\u0000]*$"
_CHARSET_NAME = re.compile(r"[a-z0-9][a-z0-9_.:-]{0,39}")
# Charsets whose text is full of NUL bytes: the binary sniff must not judge their bytes.
_WIDE_CHARSETS = ("utf-16", "utf-32", "utf16", "utf32", "ucs-2", "ucs2")

Metadata = Annotated[dict[str, str | int | float | bool], Field(max_length=32)]
_METADATA: TypeAdapter[dict[str, str | int | float | bool]] = TypeAdapter(Metadata)


class TextDocument(BaseModel):
    """A document sent as JSON text."""

    model_config = ConfigDict(extra="forbid")
    title: str = Field(min_length=1, max_length=500, description="Shown in search results")
    text: str = Field(
        min_length=1,
        json_schema_extra={"pattern": _INDEXABLE_TEXT},
        description="The document's text (at most MAX_UPLOAD_BYTES once UTF-8 encoded); not blank, no NUL",
    )
    content_type: Literal["text/plain", "text/markdown"] = Field(
        "text/plain", description="text/markdown is reduced to the text a reader sees before indexing"
    )
    metadata: Metadata = Field(default_factory=dict, description="Up to 32 client-chosen key/value pairs")

    @field_validator("text")
    @classmethod
    def _indexable(cls, value: str) -> str:
        if "\x00" in value:
            raise ValueError("the text contains NUL characters")
        if not value.strip():
            raise ValueError("the text is blank")
        return value


class DocumentBatch(BaseModel):
    """Up to 100 JSON text documents, accepted together or not at all."""

    model_config = ConfigDict(extra="forbid")
    documents: list[TextDocument] = Field(min_length=1, max_length=MAX_BATCH_DOCUMENTS)


@dataclass(frozen=True)
class Upload:
    data: bytes
    title: str
    filename: str | None
    content_type: str  # the stored one: extractable type, plus "; charset=..." when one was declared
    metadata: dict[str, Any]

    @classmethod
    def from_text(cls, doc: TextDocument) -> Upload:
        return cls(doc.text.encode("utf-8"), doc.title, None, doc.content_type, dict(doc.metadata))


def base_type(content_type: str | None) -> str:
    return (content_type or "").split(";", 1)[0].strip().lower()


def _check_declared_length(request: Request, limit: int, what: str) -> None:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"{what} is {declared} bytes; the limit is {limit} bytes")


def check_size(upload: Upload, limit: int, where: str = "the document") -> None:
    if len(upload.data) > limit:
        raise PayloadTooLarge(f"{where} exceeds the {limit}-byte limit")
    if not upload.data.strip():
        raise ValidationFailed(
            f"{where} is empty", errors=[{"loc": ["body"], "msg": "empty", "type": "empty"}]
        )


async def read_upload(request: Request, limit: int) -> Upload:
    """The one document of a multipart or JSON upload, vetted (size, type, charset, decodability)."""
    _check_declared_length(request, limit + _MULTIPART_OVERHEAD, "the upload")
    kind = base_type(request.headers.get("content-type"))
    if kind == "application/json":
        try:
            doc = TextDocument.model_validate_json(await request.body())
        except ValidationError as exc:
            raise ValidationFailed.from_pydantic(exc) from exc
        upload = Upload.from_text(doc)
        check_size(upload, limit)
        return upload
    if kind == "multipart/form-data":
        async with request.form(max_files=1, max_fields=8, max_part_size=limit + 1) as form:
            part = form.get("file")
            if isinstance(part, UploadFile):
                data = await part.read(limit + 1)
                declared, filename = part.content_type, part.filename
            elif isinstance(part, str):  # a form field, not a file: its text, which multipart sends as UTF-8
                data, declared, filename = part.encode("utf-8"), "text/plain", None
            else:
                raise BadRequest("multipart uploads need a 'file' part")
            unknown = sorted(set(form.keys()) - _FORM_FIELDS)
            if unknown:  # like JSON uploads (extra="forbid"): a misspelt field is an error, not ignored
                raise ValidationFailed(
                    f"unknown form field(s): {', '.join(map(repr, unknown))}",
                    errors=[
                        {"loc": ["body", name], "msg": "unknown field", "type": "extra_forbidden"}
                        for name in unknown
                    ],
                )
            title_field, raw_metadata = form.get("title"), form.get("metadata")
        title = _title(title_field, filename)
        upload = Upload(data, title, filename, "", _metadata(raw_metadata))
        check_size(upload, limit)
        return Upload(data, upload.title, filename, vet_file(data, declared, filename), upload.metadata)
    raise UnsupportedMediaType("send multipart/form-data with a 'file' part, or application/json text")


async def read_batch(request: Request, limit: int) -> list[Upload]:
    """The documents of a batch request, each within ``limit`` bytes."""
    if base_type(request.headers.get("content-type")) != "application/json":
        raise UnsupportedMediaType('send application/json: {"documents": [{"title", "text"}, ...]}')
    _check_declared_length(request, limit * 2, "the batch")
    try:
        batch = DocumentBatch.model_validate_json(await request.body())
    except ValidationError as exc:
        raise ValidationFailed.from_pydantic(exc) from exc
    uploads = [Upload.from_text(doc) for doc in batch.documents]
    for index, upload in enumerate(uploads):
        check_size(upload, limit, f"documents[{index}]")
    return uploads


def _title(field: Any, filename: str | None) -> str:
    """The title field (at most 500 characters, like JSON uploads'), else the file name (cut to fit)."""
    if isinstance(field, str) and field.strip():
        if len(field) > 500:
            raise ValidationFailed(
                "the title is longer than 500 characters",
                errors=[
                    {"loc": ["body", "title"], "msg": "at most 500 characters", "type": "string_too_long"}
                ],
            )
        return field.strip()
    return (filename or "untitled").strip()[:500] or "untitled"


def _metadata(raw: Any) -> dict[str, Any]:
    if not isinstance(raw, str) or not raw.strip():
        return {}
    try:
        metadata = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise BadRequest(f"'metadata' must be a JSON object: {exc}") from exc
    if not isinstance(metadata, dict):
        raise BadRequest("'metadata' must be a JSON object")
    try:  # the same rule as JSON uploads' metadata
        return dict(_METADATA.validate_python(metadata, strict=True))
    except ValidationError as exc:
        raise ValidationFailed.from_pydantic(exc) from exc


def vet_file(data: bytes, declared: str | None, filename: str | None) -> str:
    """The content type to store for an uploaded file, or the 415/422 problem that refuses it."""
    registry = default_registry()
    try:
        resolved = registry.resolve(declared, filename)
    except UnsupportedContentType as exc:
        detected = detect_type(data, filename)
        what = str(detected) if detected is not None else (exc.content_type or "an untyped file")
        supported = ", ".join(exc.supported)
        raise UnsupportedMediaType(
            f"the file is {what}; this API extracts text from {supported} only"
        ) from exc
    if resolved in BINARY_CONTENT_TYPES:
        return _vet_binary(data, resolved)
    charset = declared_charset(declared)
    if charset is not None:
        try:
            codecs.lookup(charset)
        except LookupError:
            raise UnsupportedMediaType(f"unknown charset {charset!r} in the declared content type") from None
        if not _CHARSET_NAME.fullmatch(charset):
            raise UnsupportedMediaType(f"unsupported charset name {charset!r}")
    detected = detect_type(data)
    wide = charset is not None and charset.startswith(_WIDE_CHARSETS)
    if detected is not None and not (wide and detected.media_type == "application/octet-stream"):
        raise UnsupportedMediaType(f"the file is {detected}, not {resolved} text")
    try:
        text = decode_text(data, charset)
    except UnknownCharset as exc:
        raise UnsupportedMediaType(str(exc)) from exc
    except BinaryContent as exc:
        raise UnsupportedMediaType(f"the file is binary data (NUL characters), not {resolved} text") from exc
    except UndecodableText as exc:
        raise ValidationFailed(
            str(exc), errors=[{"loc": ["body", "file"], "msg": str(exc), "type": "text_encoding"}]
        ) from exc
    if not text.strip():
        raise ValidationFailed(
            "the file has no text, only whitespace",
            errors=[{"loc": ["body", "file"], "msg": "only whitespace", "type": "empty"}],
        )
    return f"{resolved}; charset={charset}" if charset else resolved


def _vet_binary(data: bytes, resolved: str) -> str:
    detected = detect_type(data)
    if detected is None or detected.media_type != resolved:
        what = str(detected) if detected is not None else "text or unrecognised data"
        raise UnsupportedMediaType(f"the file is {what}, not {resolved}")
    return resolved


# -- the request bodies, as the OpenAPI schema describes them -------------------------------------


def _inline(model: type[BaseModel]) -> dict[str, Any]:
    """``model``'s JSON schema with its ``$defs`` put in place (a requestBody cannot use ``#/$defs``)."""
    schema = model.model_json_schema()
    defs = schema.pop("$defs", {})

    def resolve(node: Any) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith("#/$defs/"):
                return resolve(defs[ref.removeprefix("#/$defs/")])
            return {key: resolve(value) for key, value in node.items()}
        if isinstance(node, list):
            return [resolve(item) for item in node]
        return node

    resolved: dict[str, Any] = resolve(schema)
    return resolved


_MULTIPART_SCHEMA: dict[str, Any] = {
    "title": "FileUpload",
    "type": "object",
    "required": ["file"],
    "additionalProperties": False,
    "properties": {
        # contentMediaType (OpenAPI 3.1) makes Swagger UI offer a file picker; the pattern tells
        # generated requests what a text file must contain (see _INDEXABLE_TEXT).
        "file": {
            "type": "string",
            "contentMediaType": "text/plain",
            "pattern": _INDEXABLE_TEXT,
            "description": "The file: text/plain or text/markdown, by its part's content type or, when "
            "sent as application/octet-stream, by a .txt/.md name. A charset parameter "
            "(text/plain; charset=shift_jis) is honoured; without one the bytes must be UTF-8. A plain "
            "form field named 'file' is taken as UTF-8 text/plain.",
        },
        "title": {"type": "string", "maxLength": 500, "description": "Defaults to the file name"},
        "metadata": {
            **TextDocument.model_json_schema()["properties"]["metadata"],
            "description": 'A JSON object of up to 32 key/value pairs, e.g. {"team": "docs"}',
        },
    },
}

UPLOAD_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "oneOf": [
                        {**_inline(TextDocument), "title": "TextDocument"},
                        {**_inline(UrlDocument), "title": "UrlDocument"},
                    ]
                }
            },
            "multipart/form-data": {
                "schema": _MULTIPART_SCHEMA,
                "encoding": {
                    "file": {"contentType": "text/plain, text/markdown"},
                    "metadata": {"contentType": "application/json"},
                },
            },
        },
    }
}

BATCH_BODY: dict[str, Any] = {
    "requestBody": {"required": True, "content": {"application/json": {"schema": _inline(DocumentBatch)}}}
}
