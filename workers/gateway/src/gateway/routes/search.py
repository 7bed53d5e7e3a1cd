"""``POST /v1/search``: hybrid (keyword + vector) search over the caller's documents.

The query is searched whole by the keyword retriever and, cut to the embedding model's input limit
(:func:`edgerag.embedding.truncate_to_tokens`), by the vector retriever: a long query is never a model
error. A failing model or Vectorize call answers 502, never 500.
"""

from __future__ import annotations

from typing import Any, Literal

from edgerag.embedding import Embedder
from edgerag.retrieval.hybrid import SearchRequest, hybrid_search
from edgerag.store.tenants import Principal
from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict, Field, field_validator

from gateway.deps import READER, get_env, get_settings
from gateway.openapi import problems
from gateway.settings import GatewaySettings

router = APIRouter(prefix="/v1", tags=["search"])

MAX_QUERY_CHARS = 2000
# A query must contain a letter or digit (in any script): Python's \w minus "_" is str.isalnum. The
# same pattern is published in the schema, so generated clients and schemathesis know the rule.
_SEARCHABLE = r"[^\W_]"


class SearchFilters(BaseModel):
    model_config = ConfigDict(extra="forbid")
    document_ids: list[str] | None = Field(
        None,
        max_length=50,
        description="Search only these documents. Omitted or null: all documents; [] matches nothing.",
    )


class SearchBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    query: str = Field(
        max_length=MAX_QUERY_CHARS,
        pattern=_SEARCHABLE,
        description="Free text (up to 2,000 characters; cut to the embedding model's limit for vectors)",
    )
    top_k: int | None = Field(
        None, ge=1, le=100, description="Results to return (default: SEARCH_DEFAULT_TOP_K)"
    )
    mode: Literal["hybrid", "keyword", "vector"] = "hybrid"
    filters: SearchFilters | None = None

    @field_validator("query")
    @classmethod
    def searchable(cls, value: str) -> str:
        stripped = value.strip()
        if not stripped:
            raise ValueError("the query is empty")
        if not any(ch.isalnum() for ch in stripped):
            raise ValueError("the query has no letters or digits to search for")
        return stripped


class SearchResultItem(BaseModel):
    document_id: str
    title: str
    chunk_id: str
    seq: int = Field(description="position of the chunk in its document, from 0")
    snippet: str = Field(description="a window of the chunk around the first query term it contains")
    score: float = Field(description="fused score (weighted reciprocal rank fusion); higher is better")
    retrievers: dict[str, int] = Field(
        description="rank (from 1) of the chunk in each retriever that found it"
    )


class SearchResponse(BaseModel):
    query: str
    mode: Literal["hybrid", "keyword", "vector"]
    results: list[SearchResultItem]
    timings_ms: dict[str, float] = Field(description="keyword_ms, embed_ms, vector_ms, fusion_ms, total_ms")


@router.post("/search", responses=problems(401, 403, 422, 429, 502))
async def search(
    body: SearchBody,
    principal: Principal = Depends(READER),
    env: Any = Depends(get_env),
    settings: GatewaySettings = Depends(get_settings),
) -> SearchResponse:
    document_ids = body.filters.document_ids if body.filters else None
    if document_ids is not None and not document_ids:
        # An explicit empty filter selects no documents: answer that without searching.
        return SearchResponse(query=body.query, mode=body.mode, results=[], timings_ms={"total_ms": 0.0})
    request = SearchRequest(
        tenant_id=principal.tenant_id,
        query=body.query,
        top_k=body.top_k or settings.search_default_top_k,
        mode=body.mode,
        document_ids=tuple(document_ids or ()),
    )
    embedder = Embedder(env.AI, settings.embedding_model, truncate=True)
    weights = {"keyword": settings.keyword_weight, "vector": settings.vector_weight}
    result = await hybrid_search(env.DB, env.VECTORS, request, embedder, weights, settings.rrf_k)
    return SearchResponse(
        query=body.query,
        mode=body.mode,
        results=[
            SearchResultItem(
                document_id=h.document_id,
                title=h.title,
                chunk_id=h.chunk_id,
                seq=h.seq,
                snippet=h.snippet,
                score=round(h.score, 6),
                retrievers=h.retrievers,
            )
            for h in result.hits
        ],
        timings_ms=result.timings_ms,
    )
