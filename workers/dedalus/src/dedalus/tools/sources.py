"""What tools read: a stored document's text (tenant-scoped) or text the model passed, and the model's
JSON answers.

:func:`document_text` goes through :class:`~edgerag.store.documents.DocumentStore` with the caller's
tenant, so another tenant's document id is "no document" (404-style), exactly as the gateway answers.
:func:`json_answer` validates what a tool asked the model for; an answer that is not the JSON asked for
is a :class:`~dedalus.tools.registry.ToolError` (the tool reports it rather than guessing).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, Final, TypeVar

from edgerag.llm.types import ChatMessage
from edgerag.store.documents import DocumentStore
from pydantic import BaseModel, ValidationError

from dedalus.tools.registry import ToolError
from dedalus.turns import ToolContext

__all__ = [
    "MAX_SOURCE_CHARS",
    "MAX_TEXT_CHARS",
    "Source",
    "document_text",
    "json_answer",
    "prompt",
    "source_text",
]

# What a tool sends a model from one document (about 6k tokens): enough to summarise or tag, and a
# bound on the cost of one call. Longer documents are cut, and the result says so.
MAX_SOURCE_CHARS: Final = 24_000
MAX_TEXT_CHARS: Final = 24_000  # the schema bound on text passed in by the model
_FENCE = re.compile(r"^```[A-Za-z0-9_-]*\s*\n(?P<body>.*)\n```$", re.DOTALL)

M = TypeVar("M", bound=BaseModel)


@dataclass(frozen=True)
class Source:
    text: str
    document_id: str | None = None
    title: str | None = None
    truncated: bool = False

    def describe(self) -> dict[str, Any]:
        if self.document_id is None:
            return {"kind": "text", "truncated": self.truncated}
        return {
            "kind": "document",
            "document_id": self.document_id,
            "title": self.title,
            "truncated": self.truncated,
        }


async def document_text(ctx: ToolContext, document_id: str) -> Source:
    """The text of the tenant's document (its chunks in order), cut to :data:`MAX_SOURCE_CHARS`."""
    store = DocumentStore(ctx.env.DB)
    tenant = ctx.call.tenant_id
    record = await store.find(tenant, document_id)
    if record is None:
        raise ToolError(f"no document {document_id}", code="not_found")
    if record.status != "ready":
        raise ToolError(
            f"document {document_id} is not searchable yet (status: {record.status})", code="not_ready"
        )
    ids = await store.chunk_ids(tenant, document_id)
    chunks = await store.chunks_by_ids(tenant, ids)
    text = "\n\n".join(chunks[i].text for i in ids if i in chunks)
    return Source(text[:MAX_SOURCE_CHARS], document_id, record.title, len(text) > MAX_SOURCE_CHARS)


async def source_text(ctx: ToolContext, arguments: dict[str, Any]) -> Source:
    """``text`` or ``document_id`` from the arguments: exactly one of them (the schema cannot say so
    at the top level without ``oneOf``, which Anthropic rejects)."""
    text, document_id = arguments.get("text"), arguments.get("document_id")
    if (text is None) == (document_id is None):
        raise ToolError("give exactly one of 'text' or 'document_id'", code="invalid_arguments")
    if document_id is not None:
        return await document_text(ctx, str(document_id))
    text = str(text)
    if not text.strip():
        raise ToolError("the text is empty", code="invalid_arguments")
    return Source(text)


def json_answer(answer: str, model: type[M]) -> M:
    """The model's answer as ``model``; a ```json fence around it is accepted, anything else is not."""
    body = answer.strip()
    fenced = _FENCE.match(body)
    if fenced:
        body = fenced.group("body").strip()
    try:
        data = json.loads(body)
    except ValueError:
        raise ToolError("the model did not answer with JSON", code="model_answer_invalid") from None
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ToolError(
            f"the model's JSON answer does not have the expected shape ({exc.error_count()} error(s))",
            code="model_answer_invalid",
        ) from None


def prompt(system: str, user: str) -> list[ChatMessage]:
    return [ChatMessage(role="system", content=system), ChatMessage(role="user", content=user)]
