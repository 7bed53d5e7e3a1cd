"""Retrieval for grounded answers: hybrid search, then the relevant hits as numbered :class:`Source`\\ s.

:func:`retrieve_sources` runs :func:`edgerag.retrieval.hybrid.hybrid_search` (tenant-scoped below
the caller), keeps the hits :func:`~edgerag.grounding.sources.is_relevant` accepts, loads their full
chunk text through D1 with the tenant filter again, and numbers them from 1 in ranking order.
Every surface that answers (``/v1/answer``, chat, the OpenAI routes) calls it, so "nothing relevant"
means the same everywhere: an empty list.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from edgerag.grounding.sources import Source, is_relevant
from edgerag.observability import span
from edgerag.ports import D1Database
from edgerag.retrieval.hybrid import QueryEmbedder, SearchRequest, SearchResult, hybrid_search
from edgerag.retrieval.rerank import Reranker
from edgerag.store.documents import DocumentStore

__all__ = ["MAX_SOURCE_CHARS", "retrieve_sources", "sources_from_hits"]

MAX_SOURCE_CHARS = 4000  # chunks are ~400 tokens; this only bounds a pathological one


async def sources_from_hits(db: D1Database, tenant_id: str, result: SearchResult) -> list[Source]:
    """The relevant hits of ``result`` as numbered sources with their full text."""
    hits = [hit for hit in result.hits if is_relevant(hit.retrievers)]
    rows = await DocumentStore(db).chunks_by_ids(tenant_id, [hit.chunk_id for hit in hits])
    sources: list[Source] = []
    for hit in hits:
        row = rows.get(hit.chunk_id)
        if row is None:  # deleted between search and now
            continue
        sources.append(
            Source(
                n=len(sources) + 1,
                chunk_id=hit.chunk_id,
                document_id=hit.document_id,
                title=hit.title,
                text=row.text[:MAX_SOURCE_CHARS],
                snippet=hit.snippet,
                score=round(hit.score, 6),
                retrievers=dict(hit.retrievers),
            )
        )
    return sources


async def retrieve_sources(
    db: D1Database,
    vectors: Any,
    request: SearchRequest,
    embedder: QueryEmbedder,
    weights: Mapping[str, float],
    rrf_k: int,
    *,
    reranker: Reranker | None = None,
) -> list[Source]:
    """Hybrid search for ``request``, as the sources a model may answer from ([] = nothing relevant).
    With ``reranker`` and ``request.rerank_top_n`` > 0 the fused candidates are reranked first (the
    tenant's RERANK_TOP_N); a rerank timeout or error keeps the fused order."""
    async with span("search", mode=request.mode, top_k=request.top_k) as step:  # edgerag.observability
        result = await hybrid_search(db, vectors, request, embedder, dict(weights), rrf_k, reranker=reranker)
        if result.rerank is not None:
            step["rerank"] = "applied" if result.rerank.applied else str(result.rerank.reason)
        sources = await sources_from_hits(db, request.tenant_id, result)
        step["sources"] = len(sources)
    return sources
