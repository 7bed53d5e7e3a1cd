"""Hybrid search: FTS5 bm25 over the tenant's chunks + vector search in the tenant's namespace, fused
with weighted reciprocal rank fusion.

One implementation for every caller: the gateway's ``POST /v1/search`` and dedalus's
``search_knowledge_base`` tool both call :func:`hybrid_search`, so a tool answers exactly what the API
would. Callers pass the D1 and Vectorize ports and a :class:`QueryEmbedder` (an
:class:`~edgerag.embedding.Embedder`, optionally behind the tenant's cache); the tuning
knobs (:class:`SearchSettings`) are the same env vars in both workers.

Both retrievers are tenant-scoped below the caller: the keyword query filters ``chunks.tenant_id`` and
the vector query runs in the tenant's Vectorize namespace; vector hits are then resolved through D1 with
the tenant filter again, so an id that is not the tenant's (or a vector whose chunk no longer exists)
never reaches a response.

A failing embedding model or Vectorize call raises :class:`edgerag.problems.UpstreamFailure` (502) with
the cause chained: platform errors never surface as a 500.

Document filters (:mod:`edgerag.filters`, ``SearchRequest.filter``): the keyword retriever applies the
filter inside its SQL; the vector retriever gets ``document_id $in`` the matching documents when at most
:data:`~edgerag.filters.VECTOR_IN_LIMIT` match (``document_id`` is metadata-indexed), and otherwise its
candidates are post-filtered through D1 (exact, but only over its top 100).

To add a retriever: a ``*_candidates`` coroutine returning ranked chunk ids, a name in :data:`Mode`'s
routing below, and a weight in the caller's ``weights``.
"""

from __future__ import annotations

import asyncio
import functools
import json
import math
import re
import time
from collections.abc import Coroutine, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from edgerag.embedding import EmbeddingError
from edgerag.filters import VECTOR_IN_LIMIT, DocumentFilter
from edgerag.ports import D1Database
from edgerag.problems import UpstreamFailure
from edgerag.retrieval.fts_query import ParsedQuery, QuerySyntax, parse_query
from edgerag.retrieval.fusion import FusedHit, fuse
from edgerag.retrieval.rerank import (
    DEFAULT_RERANK_MODEL,
    DEFAULT_RERANK_TIMEOUT_MS,
    MAX_RERANK_TOP_N,
    Reranker,
    RerankReport,
    rerank_order,
    rerank_top_n,
)
from edgerag.settings import non_negative_float, positive_int, var
from edgerag.store.d1 import fetch_all, placeholders

__all__ = [
    "QueryEmbedder",
    "SearchHit",
    "SearchRequest",
    "SearchResult",
    "SearchSettings",
    "hybrid_search",
    "keyword_expression",
    "keyword_query",
    "resolve_chunks",
]

Mode = Literal["hybrid", "keyword", "vector"]
_CANDIDATES = 100  # per retriever; Vectorize allows topK <= 100 without values/metadata
_SNIPPET_CHARS = 240
# bm25 weight of a chunk's title column against its text (1.0): see benchmarks/bench_fts_terms.py.
TITLE_WEIGHT = 2.0
_PROVENANCE = ("page_start", "page_end", "section", "row_start", "row_end", "char_start", "char_end")


class QueryEmbedder(Protocol):
    """What search needs of an embedder: :class:`~edgerag.embedding.Embedder`, or
    :class:`edgerag.cache.CachedEmbedder` in front of one (the tenant's query-embedding cache)."""

    async def embed_one(self, text: str) -> list[float]: ...


@dataclass(frozen=True)
class SearchSettings:
    """The search knobs, read from the same env vars in every worker that searches
    (``load_settings(SearchSettings, env)``)."""

    embedding_model: str = var("EMBEDDING_MODEL")
    default_top_k: int = var("SEARCH_DEFAULT_TOP_K", positive_int, 10)
    keyword_weight: float = var("FUSION_KEYWORD_WEIGHT", non_negative_float, 1.0)
    vector_weight: float = var("FUSION_VECTOR_WEIGHT", non_negative_float, 2.0)
    rrf_k: int = var("FUSION_RRF_K", positive_int, 10)
    rerank_model: str = var("RERANK_MODEL", str, DEFAULT_RERANK_MODEL)
    rerank_top_n: int = var("RERANK_TOP_N", rerank_top_n, 0)
    rerank_timeout_ms: int = var("RERANK_TIMEOUT_MS", positive_int, DEFAULT_RERANK_TIMEOUT_MS)

    @property
    def weights(self) -> dict[str, float]:
        return {"keyword": self.keyword_weight, "vector": self.vector_weight}


@dataclass(frozen=True)
class SearchRequest:
    tenant_id: str
    query: str
    top_k: int
    mode: Mode = "hybrid"
    document_ids: tuple[str, ...] = ()
    filter: DocumentFilter = field(default_factory=DocumentFilter)
    # "operators": "exact phrase", +required and -excluded (see edgerag.retrieval.fts_query).
    syntax: QuerySyntax = "plain"
    # Rerank the best rerank_top_n fused candidates (0: no rerank; needs hybrid_search(reranker=...)).
    rerank_top_n: int = 0
    # Drop hits whose fused score / rerank score is below these (None: keep all).
    min_score: float | None = None
    min_rerank_score: float | None = None
    title_weight: float = TITLE_WEIGHT

    def __post_init__(self) -> None:
        if not 0 <= self.rerank_top_n <= MAX_RERANK_TOP_N:
            raise ValueError(f"rerank_top_n must be 0..{MAX_RERANK_TOP_N}, got {self.rerank_top_n}")
        if not (math.isfinite(self.title_weight) and self.title_weight >= 0):
            raise ValueError(f"title_weight must be a finite number >= 0, got {self.title_weight!r}")

    def parsed(self) -> ParsedQuery:
        return _parse_cached(self.query, self.syntax)


@functools.lru_cache(maxsize=64)
def _parse_cached(query: str, syntax: QuerySyntax) -> ParsedQuery:
    return parse_query(query, syntax=syntax)


@dataclass(frozen=True)
class SearchHit:
    chunk_id: str
    document_id: str
    title: str
    seq: int
    snippet: str
    score: float
    retrievers: dict[str, int]
    # Where the chunk is in its document: page_start/page_end, section, row_start/row_end,
    # char_start/char_end (only the ones the format has; see migrations/0009_chunk_provenance.sql).
    provenance: dict[str, int | str] = field(default_factory=dict)
    # The reranker's relevance score when the hit was reranked, else None.
    rerank_score: float | None = None


@dataclass
class SearchResult:
    hits: list[SearchHit]
    timings_ms: dict[str, float] = field(default_factory=dict)
    # What the rerank stage did; None when no rerank was asked for.
    rerank: RerankReport | None = None


def keyword_expression(request: SearchRequest) -> str | None:
    """The FTS5 MATCH expression the keyword retriever runs for ``request`` (None: nothing to match)."""
    return request.parsed().match_expression()


def keyword_query(request: SearchRequest, limit: int) -> tuple[str, list[Any]] | None:
    """The keyword retriever's SQL and parameters for ``request`` (None: nothing to match).

    Ranked with FTS5's ``rank`` column set per query to ``bm25(title_weight, 1.0)``: ordering by
    ``rank`` lets FTS5 sort inside the virtual table, so SQLite joins ``chunks`` (for the tenant) only
    until ``limit`` rows passed instead of for every match — the same order as ``ORDER BY bm25(...)``
    for about 25 % less CPU on SciFact (benchmarks/bench_fts_terms.py).
    """
    match = keyword_expression(request)
    if match is None:
        return None
    params: list[Any] = [match, request.tenant_id, f"bm25({float(request.title_weight)!r}, 1.0)"]
    doc_filter = ""
    if request.document_ids:
        doc_filter = f" AND c.document_id IN ({placeholders(request.document_ids, start=4)})"
        params += list(request.document_ids)
    if request.filter:
        fragment, values = request.filter.sql(start=len(params) + 1)
        doc_filter += (
            f" AND c.document_id IN (SELECT d.id FROM documents d WHERE d.tenant_id = ?2 AND {fragment})"
        )
        params += values
    params.append(limit)
    sql = (
        "SELECT c.id FROM chunks_fts JOIN chunks c ON c.rid = chunks_fts.rowid"
        f" WHERE chunks_fts MATCH ?1 AND chunks_fts.rank MATCH ?3 AND c.tenant_id = ?2{doc_filter}"
        f" ORDER BY chunks_fts.rank LIMIT ?{len(params)}"
    )
    return sql, params


async def keyword_candidates(db: D1Database, request: SearchRequest, limit: int) -> list[str]:
    query = keyword_query(request, limit)
    if query is None:
        return []
    rows = await fetch_all(db, query[0], *query[1])
    return [r["id"] for r in rows]


async def filtered_document_ids(db: D1Database, request: SearchRequest, limit: int) -> list[str]:
    """Up to ``limit`` of the tenant's documents that pass ``request.filter`` (and ``document_ids``)."""
    params: list[Any] = [request.tenant_id]
    clauses = ["d.tenant_id = ?1"]
    if request.document_ids:
        clauses.append(f"d.id IN ({placeholders(request.document_ids, start=2)})")
        params += list(request.document_ids)
    fragment, values = request.filter.sql(start=len(params) + 1)
    params += values
    params.append(limit)
    rows = await fetch_all(
        db,
        f"SELECT d.id FROM documents d WHERE {' AND '.join(clauses)} AND {fragment}"
        f" ORDER BY d.id LIMIT ?{len(params)}",
        *params,
    )
    return [r["id"] for r in rows]


async def _post_filter(db: D1Database, request: SearchRequest, chunk_ids: list[str]) -> list[str]:
    """The chunk ids (in order) whose documents pass ``request.filter``."""
    keep: set[str] = set()
    for start in range(0, len(chunk_ids), 50):  # 50 ids + the filter's 40 values < D1's 100
        part = chunk_ids[start : start + 50]
        fragment, values = request.filter.sql(start=len(part) + 2)
        rows = await fetch_all(
            db,
            "SELECT c.id FROM chunks c JOIN documents d ON d.id = c.document_id AND d.tenant_id = c.tenant_id"
            f" WHERE c.tenant_id = ?1 AND c.id IN ({placeholders(part, start=2)}) AND {fragment}",
            request.tenant_id,
            *part,
            *values,
        )
        keep.update(r["id"] for r in rows)
    return [i for i in chunk_ids if i in keep]


async def vector_candidates(
    vectors: Any,
    embedding: Sequence[float],
    request: SearchRequest,
    limit: int,
    db: D1Database | None = None,
) -> list[str]:
    options: dict[str, Any] = {"topK": limit, "namespace": request.tenant_id, "returnMetadata": "none"}
    document_ids = list(request.document_ids)
    post_filter = False
    if request.filter and db is not None:
        matching = await filtered_document_ids(db, request, VECTOR_IN_LIMIT + 1)
        if not matching:
            return []
        if len(matching) <= VECTOR_IN_LIMIT:
            document_ids = matching
        else:
            post_filter = True
    if document_ids:
        options["filter"] = {"document_id": {"$in": document_ids}}
    try:
        result = await vectors.query(list(embedding), options)
    except Exception as exc:  # the platform's error types are not importable here
        raise UpstreamFailure("the vector index failed to answer; try again or use mode 'keyword'") from exc
    found = [m["id"] for m in result["matches"]]
    return await _post_filter(db, request, found) if post_filter and db is not None else found


def snippet(text: str, query: str) -> str:
    """A window of the chunk around the first query term it contains."""
    terms = [t for t in re.findall(r"\w+", query.lower()) if len(t) > 2]
    lower = text.lower()
    positions = [p for p in (lower.find(t) for t in terms) if p >= 0]
    start = max(0, min(positions) - _SNIPPET_CHARS // 3) if positions else 0
    window = text[start : start + _SNIPPET_CHARS].strip()
    return ("…" if start > 0 else "") + window + ("…" if start + _SNIPPET_CHARS < len(text) else "")


async def resolve_chunks(
    db: D1Database, request: SearchRequest, chunk_ids: Sequence[str]
) -> dict[str, dict[str, Any]]:
    """The tenant's chunks among ``chunk_ids`` (others' ids and deleted chunks are absent), in one
    query whatever their number (the ids travel as one JSON parameter), with the documents' titles.
    With operator syntax, chunks that lack a required phrase or contain an excluded one are left out
    too: the keyword retriever's candidates satisfy both already, the vector retriever's may not."""
    if not chunk_ids:
        return {}
    parsed = request.parsed()
    params: list[Any] = [request.tenant_id, json.dumps(list(chunk_ids))]
    constraints = ""
    if (required := parsed.required_expression()) is not None:
        params.append(required)
        constraints += f" AND c.rid IN (SELECT rowid FROM chunks_fts WHERE chunks_fts MATCH ?{len(params)})"
    if (excluded := parsed.excluded_expression()) is not None:
        params.append(excluded)
        constraints += (
            f" AND c.rid NOT IN (SELECT rowid FROM chunks_fts WHERE chunks_fts MATCH ?{len(params)})"
        )
    columns = ", ".join(f"c.{name}" for name in _PROVENANCE)
    # CROSS JOIN fixes the loop order: one lookup by the unique chunk id per wanted id. Written as
    # "c.tenant_id = ? AND c.id IN (...)" SQLite preferred the tenant index and scanned every chunk
    # of the tenant (17 ms on 10k chunks, against 0.3 ms).
    rows = await fetch_all(
        db,
        f"SELECT c.id, c.document_id, c.seq, c.text, d.title, {columns}"
        " FROM json_each(?2) AS wanted CROSS JOIN chunks c ON c.id = wanted.value"
        " JOIN documents d ON d.id = c.document_id AND d.tenant_id = c.tenant_id"
        f" WHERE c.tenant_id = ?1{constraints}",
        *params,
    )
    return {r["id"]: r for r in rows}


async def hybrid_search(
    db: D1Database,
    vectors: Any,  # the VectorizeIndex port, called with the JS API's options dict
    request: SearchRequest,
    embedder: QueryEmbedder,
    weights: dict[str, float],
    rrf_k: int,
    *,
    reranker: Reranker | None = None,
) -> SearchResult:
    """Search ``request`` (see the module docstring). With ``reranker`` and ``request.rerank_top_n``
    > 0 the best fused candidates are reranked; :attr:`SearchResult.rerank` says whether that
    happened (a timeout or model error keeps the fused order)."""
    timings: dict[str, float] = {}
    began = time.perf_counter()
    parsed = request.parsed()
    if not parsed.searchable:  # empty, or exclusions only: nothing can match
        return SearchResult([], {"total_ms": round((time.perf_counter() - began) * 1000, 2)})

    async def keyword() -> list[str]:
        t = time.perf_counter()
        found = await keyword_candidates(db, request, _CANDIDATES)
        timings["keyword_ms"] = (time.perf_counter() - t) * 1000
        return found

    async def vector() -> list[str]:
        t = time.perf_counter()
        try:
            embedding = await embedder.embed_one(parsed.embedding_text or request.query)
        except EmbeddingError as exc:
            raise UpstreamFailure(
                "the embedding model failed to answer; try again or use mode 'keyword'"
            ) from exc
        timings["embed_ms"] = (time.perf_counter() - t) * 1000
        t = time.perf_counter()
        found = await vector_candidates(vectors, embedding, request, _CANDIDATES, db)
        timings["vector_ms"] = (time.perf_counter() - t) * 1000
        return found

    # The retrievers are independent remote calls (D1; Workers AI then Vectorize): run them at once,
    # so a hybrid search waits for the slower of the two instead of their sum. The vector side starts
    # first: its first call (the model) is the longer one, and an emulated D1 that answers inline
    # still overlaps with it. ``ranked`` keeps the keyword-then-vector order fusion has always seen.
    retrievers = {"vector": vector, "keyword": keyword}
    names = [name for name in retrievers if request.mode in ("hybrid", name)]
    found: dict[str, list[str]] = dict(
        zip(names, await _all([retrievers[name]() for name in names]), strict=True)
    )
    ranked: dict[str, list[str]] = {name: found[name] for name in ("keyword", "vector") if name in found}
    timings["retrieve_ms"] = (time.perf_counter() - began) * 1000
    t = time.perf_counter()
    active: dict[str, float] = {name: weights[name] for name in ranked}
    if request.mode != "hybrid" or not any(active.values()):
        active = {name: 1.0 for name in ranked}
    top_n = request.rerank_top_n if reranker is not None else 0
    # Resolve more candidates than asked so that ids dropped below (gone, not the tenant's, or failing
    # the operators) still leave top_k results, and at least the rerank pool.
    wanted = max(request.top_k * 2 + 10, top_n)
    fused = fuse(ranked, active, k=rrf_k, limit=min(len(set().union(*ranked.values())), wanted))
    timings["fusion_ms"] = (time.perf_counter() - t) * 1000
    t = time.perf_counter()
    rows = await resolve_chunks(db, request, [h.id for h in fused])
    timings["resolve_ms"] = (time.perf_counter() - t) * 1000
    text = parsed.embedding_text or request.query
    # (fused hit, rerank score) in result order; SearchHits (snippets) are built for the returned ones only.
    ranked_hits: list[tuple[FusedHit, float | None]] = [(h, None) for h in fused if h.id in rows]
    report: RerankReport | None = None
    if reranker is not None and top_n > 0:
        t = time.perf_counter()
        pool = ranked_hits[:top_n]
        contexts = [_context(rows[h.id]) for h, _ in pool]
        order, report = await rerank_order(reranker, text, contexts, top_n)
        if order is not None:
            reranked: list[tuple[FusedHit, float | None]] = [(pool[i][0], score) for i, score in order]
            if request.min_rerank_score is not None:
                # Only judged hits can pass a rerank threshold: the unreranked tail goes too.
                floor = request.min_rerank_score
                ranked_hits = [(h, score) for h, score in reranked if score is not None and score >= floor]
            else:
                ranked_hits = reranked + ranked_hits[len(pool) :]
        timings["rerank_ms"] = (time.perf_counter() - t) * 1000
    if request.min_score is not None:
        ranked_hits = [(h, score) for h, score in ranked_hits if h.score >= request.min_score]
    hits = [_hit(h, rows[h.id], text, score) for h, score in ranked_hits[: request.top_k]]
    timings["total_ms"] = (time.perf_counter() - began) * 1000
    return SearchResult(hits, {k: round(v, 2) for k, v in timings.items()}, report)


async def _all(calls: list[Coroutine[Any, Any, list[str]]]) -> list[list[str]]:
    """The results of ``calls`` run concurrently; when one fails the others are cancelled and its
    exception propagates as is (not as an ExceptionGroup: callers map problem types)."""
    if len(calls) == 1:
        return [await calls[0]]
    tasks = [asyncio.ensure_future(call) for call in calls]
    try:
        return list(await asyncio.gather(*tasks))
    except BaseException:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)  # settle them; the first failure wins
        raise


def _context(row: dict[str, Any]) -> str:
    """What the reranker reads of a chunk: its document's title, then its text."""
    return f"{row['title']}\n{row['text']}" if row["title"] else str(row["text"])


def _hit(fused: FusedHit, row: dict[str, Any], query: str, rerank_score: float | None) -> SearchHit:
    return SearchHit(
        chunk_id=fused.id,
        document_id=row["document_id"],
        title=row["title"],
        seq=row["seq"],
        snippet=snippet(row["text"], query),
        score=fused.score,
        retrievers=dict(fused.ranks),
        provenance={name: row[name] for name in _PROVENANCE if row[name] is not None},
        rerank_score=rerank_score,
    )
