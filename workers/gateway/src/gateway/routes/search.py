"""``POST /v1/search``: hybrid (keyword + vector) search over the caller's documents.

The query is searched whole by the keyword retriever and, cut to the embedding model's input limit
(:func:`edgerag.embedding.truncate_to_tokens`), by the vector retriever: a long query is never a model
error. A failing model or Vectorize call answers 502, never 500.

Caches (:mod:`edgerag.cache`, tenant-scoped KV): the query's embedding is cached by model and text,
and the whole result by the canonical request under the tenant's cache generation, which every
document change bumps; ``cached`` says whether the results came from the cache. A cache failure is a
miss. Hits and misses are counted for ``GET /v1/usage``.
"""

from __future__ import annotations

import time
from typing import Any, Literal

from edgerag.cache import RESULT_TTL_S, CachedEmbedder, TenantCache, read_generation
from edgerag.counters import UsageCounters
from edgerag.embedding import Embedder
from edgerag.filters import parse_filter
from edgerag.retrieval.hybrid import SearchRequest, hybrid_search
from edgerag.store.tenants import Principal
from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from gateway.budgets import get_counters
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
    # The filter language is edgerag.filters: validated there so that the 422 names the failing path.
    metadata: dict[str, Any] | None = Field(
        None,
        description='Filter on the documents\' metadata: {"team": "search", "year": {"$gte": 2024}}; '
        "operators $eq $ne $in $nin $lt $lte $gt $gte, type-strict; a document without the field "
        "passes only $ne/$nin. At most 10 fields and 30 values.",
    )
    content_type: Any = Field(
        default=None, description='built-in: the type without charset, e.g. "application/pdf"'
    )
    created_at: Any = Field(
        default=None, description='built-in: ISO-8601 UTC text, e.g. {"$gte": "2026-01-01"}'
    )
    title: Any = Field(default=None, description="built-in: the document's title")


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


class Provenance(BaseModel):
    """Where a chunk is in its document; a field is null when the format has no such thing."""

    page_start: int | None = Field(default=None, description="first PDF page of the chunk (from 1)")
    page_end: int | None = Field(default=None, description="last PDF page of the chunk")
    section: str | None = Field(
        default=None,
        description="heading path ('Setup > Install'), sheet or table, JSON path, or e-mail part",
    )
    row_start: int | None = Field(
        default=None, description="first table row (spreadsheet numbering: header = 1)"
    )
    row_end: int | None = Field(default=None, description="last table row")
    char_start: int | None = Field(
        default=None, description="offset of the chunk in the document's extracted text"
    )
    char_end: int | None = Field(default=None, description="end offset (exclusive) in the extracted text")


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
    provenance: Provenance = Field(
        default_factory=lambda: Provenance(), description="where the chunk came from"
    )


class SearchResponse(BaseModel):
    query: str
    mode: Literal["hybrid", "keyword", "vector"]
    results: list[SearchResultItem]
    timings_ms: dict[str, float] = Field(description="keyword_ms, embed_ms, vector_ms, fusion_ms, total_ms")
    cached: bool = Field(
        default=False,
        description="true when the results came from the tenant's search cache (timings: total_ms)",
    )


@router.post("/search", responses=problems(401, 403, 422, 429, 502))
async def search(
    body: SearchBody,
    principal: Principal = Depends(READER),
    env: Any = Depends(get_env),
    settings: GatewaySettings = Depends(get_settings),
    counters: UsageCounters = Depends(get_counters),
) -> SearchResponse:
    document_ids = body.filters.document_ids if body.filters else None
    if document_ids is not None and not document_ids:
        # An explicit empty filter selects no documents: answer that without searching.
        return SearchResponse(query=body.query, mode=body.mode, results=[], timings_ms={"total_ms": 0.0})
    flt = body.filters
    doc_filter = (
        parse_filter(
            flt.metadata, {"content_type": flt.content_type, "created_at": flt.created_at, "title": flt.title}
        )
        if flt
        else parse_filter()
    )
    request = SearchRequest(
        tenant_id=principal.tenant_id,
        query=body.query,
        top_k=body.top_k or settings.search_default_top_k,
        mode=body.mode,
        document_ids=tuple(document_ids or ()),
        filter=doc_filter,
    )
    weights = {"keyword": settings.keyword_weight, "vector": settings.vector_weight}
    began = time.perf_counter()
    cache = TenantCache(env.CACHE, principal.tenant_id, counters)
    generation = await read_generation(env.DB, principal.tenant_id)
    key = {
        "query": request.query,
        "top_k": request.top_k,
        "mode": request.mode,
        "document_ids": sorted(set(request.document_ids)),
        "filter": doc_filter.canonical(),
        "model": settings.embedding_model,
        "weights": weights,
        "rrf_k": settings.rrf_k,
    }
    if generation is not None:
        hit = await cache.get_json("search", generation, key)
        results = _cached_results(hit)
        if results is not None:
            total = round((time.perf_counter() - began) * 1000, 2)
            return SearchResponse(
                query=body.query, mode=body.mode, results=results, timings_ms={"total_ms": total}, cached=True
            )
    embedder = CachedEmbedder(Embedder(env.AI, settings.embedding_model, truncate=True), cache)
    result = await hybrid_search(env.DB, env.VECTORS, request, embedder, weights, settings.rrf_k)
    items = [
        SearchResultItem(
            document_id=h.document_id,
            title=h.title,
            chunk_id=h.chunk_id,
            seq=h.seq,
            snippet=h.snippet,
            score=round(h.score, 6),
            retrievers=h.retrievers,
            provenance=Provenance.model_validate(h.provenance),
        )
        for h in result.hits
    ]
    if generation is not None:
        value = [item.model_dump() for item in items]
        await cache.put_json("search", generation, key, value, ttl=RESULT_TTL_S)
    return SearchResponse(query=body.query, mode=body.mode, results=items, timings_ms=result.timings_ms)


def _cached_results(value: Any) -> list[SearchResultItem] | None:
    """The cached results, or None (a miss) when the value is not a list of valid items."""
    if not isinstance(value, list):
        return None
    try:
        return [SearchResultItem.model_validate(item) for item in value]
    except ValidationError:
        return None
