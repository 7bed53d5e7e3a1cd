"""Tools over the tenant's knowledge base: ``search_knowledge_base`` and ``tag_document``.

``search_knowledge_base`` runs :func:`edgerag.retrieval.hybrid.hybrid_search` — the very search the
gateway's ``POST /v1/search`` serves — with the tenant of the call context and the same settings vars
(:class:`~edgerag.retrieval.hybrid.SearchSettings`), so a tool finds exactly what the API would.
``tag_document`` reads one of the tenant's documents and asks the model for tags.
"""

from __future__ import annotations

import re
from typing import Any, Final

from edgerag.embedding import Embedder
from edgerag.retrieval.hybrid import SearchRequest, SearchSettings, hybrid_search
from edgerag.settings import SettingsError, load_settings
from pydantic import BaseModel, ConfigDict, Field

from dedalus.tools.registry import Tool, ToolError
from dedalus.tools.sources import document_text, json_answer, prompt
from dedalus.turns import ToolContext

__all__ = ["SEARCH_KNOWLEDGE_BASE", "TAG_DOCUMENT"]

MAX_TOP_K: Final = 20
_ID = {"type": "string", "minLength": 1, "maxLength": 64}

_SEARCH_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "query": {"type": "string", "minLength": 1, "maxLength": 2000, "description": "what to look for"},
        "top_k": {"type": "integer", "minimum": 1, "maximum": MAX_TOP_K, "default": 5},
        "document_ids": {
            "type": "array",
            "items": _ID,
            "minItems": 1,
            "maxItems": 50,
            "uniqueItems": True,
            "description": "search only these documents",
        },
    },
    "required": ["query"],
    "additionalProperties": False,
}


async def search_knowledge_base(arguments: dict[str, Any], ctx: ToolContext) -> dict[str, Any]:
    query = arguments["query"].strip()
    if not any(ch.isalnum() for ch in query):
        raise ToolError("the query has no letters or digits to search for", code="invalid_arguments")
    try:
        settings = load_settings(SearchSettings, ctx.env)
    except SettingsError as exc:
        raise ToolError(f"search is not configured in this worker: {exc}", code="configuration") from exc
    request = SearchRequest(
        tenant_id=ctx.call.tenant_id,
        query=query,
        top_k=int(arguments.get("top_k", 5)),
        document_ids=tuple(arguments.get("document_ids", ())),
    )
    embedder = Embedder(ctx.env.AI, settings.embedding_model, truncate=True)
    result = await hybrid_search(
        ctx.env.DB, ctx.env.VECTORS, request, embedder, settings.weights, settings.rrf_k
    )
    return {
        "query": query,
        "sources": [
            {
                "id": hit.chunk_id,
                "document_id": hit.document_id,
                "title": hit.title,
                "seq": hit.seq,
                "snippet": hit.snippet,
                "score": round(hit.score, 6),
            }
            for hit in result.hits
        ],
    }


SEARCH_KNOWLEDGE_BASE = Tool(
    name="search_knowledge_base",
    description=(
        "Search the knowledge base (keyword + semantic). Returns the best matching passages with their "
        "chunk id, document id, title, a snippet and a relevance score; cite sources by their ids."
    ),
    parameters=_SEARCH_SCHEMA,
    scope="read",
    run=search_knowledge_base,
)

_TAG = r"^[a-z0-9][a-z0-9 _-]{0,39}$"
_TAG_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "document_id": _ID,
        "max_tags": {"type": "integer", "minimum": 1, "maximum": 20, "default": 8},
        "vocabulary": {
            "type": "array",
            "items": {"type": "string", "minLength": 1, "maxLength": 40},
            "minItems": 1,
            "maxItems": 200,
            "uniqueItems": True,
            "description": "choose tags only from this list",
        },
    },
    "required": ["document_id"],
    "additionalProperties": False,
}


class _TagAnswer(BaseModel):
    model_config = ConfigDict(extra="ignore")
    tags: list[str] = Field(max_length=100)


def _normalise(tag: str) -> str:
    return re.sub(r"\s+", " ", tag.strip().lower())


async def tag_document(arguments: dict[str, Any], ctx: ToolContext) -> dict[str, Any]:
    source = await document_text(ctx, arguments["document_id"])
    max_tags = int(arguments.get("max_tags", 8))
    vocabulary = [_normalise(v) for v in arguments.get("vocabulary", [])]
    rule = (
        f"Choose only from this list: {', '.join(vocabulary)}."
        if vocabulary
        else "Tags are lower-case, 1 to 3 words, letters, digits, spaces or hyphens."
    )
    result = await ctx.llm(
        "classify",
        prompt(
            f"You suggest up to {max_tags} topical tags for a document. {rule} Answer only with JSON: "
            '{"tags": ["tag", ...]}, most relevant first.',
            f"Title: {source.title}\n\n<document>\n{source.text}\n</document>",
        ),
    )
    answer = json_answer(result.text, _TagAnswer)
    allowed = set(vocabulary)
    tags: list[str] = []
    for tag in map(_normalise, answer.tags):
        if tag in tags or (tag not in allowed if allowed else not re.match(_TAG, tag)):
            continue  # a tag outside the rules we asked for is dropped, not repaired
        tags.append(tag)
    if not tags:
        raise ToolError("the model suggested no usable tags", code="model_answer_invalid")
    return {
        "document_id": source.document_id,
        "title": source.title,
        "tags": tags[:max_tags],
        "truncated": source.truncated,
    }


TAG_DOCUMENT = Tool(
    name="tag_document",
    description="Suggest topical tags for one stored document of the knowledge base (by document id).",
    parameters=_TAG_SCHEMA,
    scope="chat",
    run=tag_document,
)
