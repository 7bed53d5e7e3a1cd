"""``ingest_document``: queue text for ingestion into the caller's knowledge base.

It stores exactly like the gateway's ``POST /v1/documents`` with JSON text — the same
:func:`edgerag.intake.store_and_enqueue` (R2 object, D1 row, queue message, all or nothing; the same
duplicate rule) — under the call context's tenant. It needs the ``write`` scope and, as a write tool,
is off unless the tenant enables it (``tenant_tools``; see :mod:`dedalus.tools.registry`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Final

from edgerag.intake import store_and_enqueue
from edgerag.settings import load_settings, positive_int, var

from dedalus.tools.registry import Tool, ToolError
from dedalus.turns import ToolContext

__all__ = ["INGEST_DOCUMENT"]

MAX_TEXT_CHARS: Final = 100_000  # what a model may file in one call (the gateway's byte limit also applies)


@dataclass(frozen=True)
class _Limits:
    max_upload_bytes: int = var("MAX_UPLOAD_BYTES", positive_int, 10 * 1024 * 1024)


@dataclass(frozen=True)
class _TextDocument:
    """A JSON-text document as the gateway stores it (UTF-8 bytes, no file name)."""

    data: bytes
    title: str
    content_type: str
    metadata: dict[str, Any] = field(default_factory=dict)
    filename: str | None = None


_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "title": {
            "type": "string",
            "minLength": 1,
            "maxLength": 500,
            "description": "shown in search results",
        },
        "text": {"type": "string", "minLength": 1, "maxLength": MAX_TEXT_CHARS},
        "content_type": {"enum": ["text/plain", "text/markdown"], "default": "text/plain"},
        "metadata": {
            "type": "object",
            "maxProperties": 32,
            "additionalProperties": {"type": ["string", "number", "boolean"]},
            "description": "key/value pairs stored with the document",
        },
    },
    "required": ["title", "text"],
    "additionalProperties": False,
}


async def ingest_document(arguments: dict[str, Any], ctx: ToolContext) -> dict[str, Any]:
    text: str = arguments["text"]
    if "\x00" in text:
        raise ToolError("the text contains NUL characters", code="invalid_arguments")
    if not text.strip():
        raise ToolError("the text is blank", code="invalid_arguments")
    data = text.encode("utf-8")
    limit = load_settings(_Limits, ctx.env).max_upload_bytes
    if len(data) > limit:
        raise ToolError(f"the text exceeds the {limit}-byte upload limit", code="invalid_arguments")
    doc = _TextDocument(
        data,
        arguments["title"],
        arguments.get("content_type", "text/plain"),
        dict(arguments.get("metadata", {})),
    )
    env = ctx.env
    (stored,) = await store_and_enqueue(env.DB, env.FILES, env.INGEST_QUEUE, ctx.call.tenant_id, [doc])
    return {
        "document_id": stored.record.id,
        "title": stored.record.title,
        "status": stored.record.status,
        "duplicate": stored.duplicate,
    }


INGEST_DOCUMENT = Tool(
    name="ingest_document",
    description=(
        "Add a text document to the knowledge base (queued for indexing; searchable once ready). "
        "Re-adding identical text returns the existing document."
    ),
    parameters=_SCHEMA,
    scope="write",
    run=ingest_document,
)
