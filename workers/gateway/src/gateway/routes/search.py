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
from typing import Annotated, Any, Literal

from edgerag.cache import RESULT_TTL_S, CachedEmbedder, TenantCache, read_generation
from edgerag.counters import UsageCounters
from edgerag.embedding import Embedder
from edgerag.filters import parse_filter
from edgerag.retrieval.fts_query import QuerySyntax
from edgerag.retrieval.hybrid import SearchRequest, SearchResult, hybrid_search
from edgerag.retrieval.rerank import MAX_RERANK_TOP_N
from edgerag.store.tenants import Principal
from fastapi import APIRouter, Depends
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictFloat,
    ValidationError,
    field_validator,
)

from gateway.budgets import get_counters
from gateway.deps import READER, get_env, get_settings
from gateway.openapi import json_integer, problems
from gateway.settings import GatewaySettings

router = APIRouter(prefix="/v1", tags=["search"])

MAX_QUERY_CHARS = 2000
# The pool a request's {"rerank": {}} gets when the tenant has no RERANK_TOP_N of its own.
REQUEST_RERANK_TOP_N = 20
MAX_RERANK_TIMEOUT_MS = 5000
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


# JSON integers with their bounds first (gateway.openapi.json_integer): true/false and 2.5 are refused.
_RerankTopN = Annotated[int, Field(ge=0, le=MAX_RERANK_TOP_N), BeforeValidator(json_integer)]
_RerankTimeoutMs = Annotated[int, Field(ge=1, le=MAX_RERANK_TIMEOUT_MS), BeforeValidator(json_integer)]
_TopK = Annotated[int, Field(ge=1, le=100), BeforeValidator(json_integer)]


class RerankOptions(BaseModel):
    """Rerank the best fused candidates with a cross-encoder (Workers AI ``@cf/baai/bge-reranker-base``)."""

    model_config = ConfigDict(extra="forbid")
    top_n: _RerankTopN | None = Field(
        None,
        description="How many of the best fused candidates to rerank (0: no rerank). Default: the "
        f"tenant's RERANK_TOP_N, or {REQUEST_RERANK_TOP_N} when the tenant has none. Results past top_n "
        "follow the reranked ones in fused order.",
    )
    timeout_ms: _RerankTimeoutMs | None = Field(
        None,
        description="How long the reranker may take before the fused order is kept "
        "(default: the tenant's RERANK_TIMEOUT_MS, 1000)",
    )


class SearchBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    query: str = Field(
        max_length=MAX_QUERY_CHARS,
        pattern=_SEARCHABLE,
        description="Free text (up to 2,000 characters; cut to the embedding model's limit for vectors)",
    )
    top_k: _TopK | None = Field(None, description="Results to return (default: SEARCH_DEFAULT_TOP_K)")
    mode: Literal["hybrid", "keyword", "vector"] = "hybrid"
    filters: SearchFilters | None = None
    syntax: QuerySyntax = Field(
        "plain",
        description='"plain": every character is text. "operators": "exact phrase" and +term must '
        'appear, -term / -"phrase" must not (in every result, whichever retriever found it); a query '
        "of exclusions only finds nothing.",
    )
    rerank: RerankOptions | None = Field(
        None,
        description="Rerank options; omitted: the tenant's default (RERANK_TOP_N, usually off). A "
        'timeout or model error keeps the fused order and says so in the response\'s "rerank".',
    )
    min_score: StrictFloat | None = Field(
        None,
        ge=0,
        allow_inf_nan=False,
        description="Drop results whose fused score is below this (fused scores are rank-based: "
        "weight / (FUSION_RRF_K + rank) summed over the retrievers)",
    )
    min_rerank_score: StrictFloat | None = Field(
        None,
        allow_inf_nan=False,
        description="When the results were reranked: drop those whose rerank_score is below this "
        "(and the un-reranked ones past top_n). Not applied when the rerank fell back.",
    )

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
    rerank_score: float | None = Field(
        default=None, description="the reranker's relevance score (higher is better); null: not reranked"
    )


class RerankInfo(BaseModel):
    """What the rerank stage did (present when a rerank was asked for)."""

    applied: bool = Field(description="false: the results are in fused order")
    reason: Literal["timeout", "model_error", "no_candidates"] | None = Field(
        default=None, description="why the rerank was not applied; null when it was"
    )
    model: str
    top_n: int = Field(description="the pool size asked for")
    candidates: int = Field(description="candidates sent to the reranker")
    ms: float = Field(description="time spent in the rerank stage")


class SearchResponse(BaseModel):
    query: str
    mode: Literal["hybrid", "keyword", "vector"]
    results: list[SearchResultItem]
    timings_ms: dict[str, float] = Field(
        description="keyword_ms, embed_ms, vector_ms (the keyword and vector retrievers run concurrently), "
        "retrieve_ms (both), fusion_ms, resolve_ms, rerank_ms, total_ms"
    )
    rerank: RerankInfo | None = Field(default=None, description="null: no rerank was asked for")
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
        syntax=body.syntax,
        rerank_top_n=_rerank_top_n(body.rerank, settings),
        min_score=body.min_score,
        min_rerank_score=body.min_rerank_score,
    )
    timeout_ms = body.rerank.timeout_ms if body.rerank else None
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
        "syntax": request.syntax,
        "rerank": [request.rerank_top_n, settings.rerank_model] if request.rerank_top_n else None,
        "min_score": request.min_score,
        "min_rerank_score": request.min_rerank_score,
    }
    if generation is not None:
        cached = _cached_results(await cache.get_json("search", generation, key))
        if cached is not None:
            total = round((time.perf_counter() - began) * 1000, 2)
            return SearchResponse(
                query=body.query,
                mode=body.mode,
                results=cached[0],
                timings_ms={"total_ms": total},
                cached=True,
                rerank=cached[1],
            )
    embedder = CachedEmbedder(Embedder(env.AI, settings.embedding_model, truncate=True), cache)
    reranker = settings.reranker(env.AI, timeout_ms)
    result = await hybrid_search(
        env.DB, env.VECTORS, request, embedder, weights, settings.rrf_k, reranker=reranker
    )
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
            rerank_score=None if h.rerank_score is None else round(h.rerank_score, 6),
        )
        for h in result.hits
    ]
    rerank = _rerank_info(result)
    # A fallback is not cached: the next request should get the reranked order again.
    if generation is not None and (rerank is None or rerank.applied):
        value = {"results": [item.model_dump() for item in items], "rerank": rerank and rerank.model_dump()}
        await cache.put_json("search", generation, key, value, ttl=RESULT_TTL_S)
    return SearchResponse(
        query=body.query, mode=body.mode, results=items, timings_ms=result.timings_ms, rerank=rerank
    )


def _rerank_top_n(options: RerankOptions | None, settings: GatewaySettings) -> int:
    if options is None:
        return settings.rerank_top_n
    if options.top_n is not None:
        return options.top_n
    return settings.rerank_top_n or REQUEST_RERANK_TOP_N


def _rerank_info(result: SearchResult) -> RerankInfo | None:
    report = result.rerank
    if report is None:
        return None
    return RerankInfo(
        applied=report.applied,
        reason=report.reason,
        model=report.model,
        top_n=report.top_n,
        candidates=report.candidates,
        ms=report.ms,
    )


def _cached_results(value: Any) -> tuple[list[SearchResultItem], RerankInfo | None] | None:
    """The cached results and rerank report, or None (a miss) when the value is not valid."""
    if not isinstance(value, dict) or not isinstance(value.get("results"), list):
        return None
    try:
        items = [SearchResultItem.model_validate(item) for item in value["results"]]
        rerank = None if value.get("rerank") is None else RerankInfo.model_validate(value["rerank"])
    except ValidationError:
        return None
    return items, rerank
