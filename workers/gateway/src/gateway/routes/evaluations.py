"""``/v1/evaluations``: measure the tenant's retrieval quality on its own documents, store the run, and
compare runs before and after a configuration change.

``POST /v1/evaluations`` takes queries with relevance judgements (documents named by id or by exact
title, graded 0-10; 0 means judged not relevant) and runs every query through the real search path —
:func:`edgerag.retrieval.hybrid.hybrid_search` with the gateway's settings, exactly what
``POST /v1/search`` runs, the query cut to the embedding model's input limit the same way — in each
requested mode: ``keyword``, ``vector`` and ``hybrid`` never rerank (as ``/v1/search`` with
``"rerank": {"top_n": 0}``), ``hybrid_rerank`` reranks the best fused candidates (as ``/v1/search``
with ``"rerank": {}``: the tenant's ``RERANK_TOP_N``, else 20), so hybrid against hybrid_rerank is the
rerank's effect. ``search`` passes /v1/search's other options on (syntax, thresholds). A document's
rank is that of its best chunk among the top :data:`SEARCH_DEPTH` chunks (what a search can return).
The answer has nDCG@k, MRR@k and Recall@k per mode (:mod:`edgerag.evaluation`, the same code as
``benchmarks/eval_retrieval.py``) and per query, and the run is stored
(:mod:`edgerag.store.evaluations`). The search result cache is not used (every run searches); the
query-embedding cache is (keyed by model and text, it cannot go stale).

Runs are synchronous and bounded so that one answers within seconds and fits a Worker invocation: at
most :data:`MAX_QUERIES` queries and :data:`MAX_SEARCHES` searches (queries x modes) per run, each
search being 2 D1 queries (D1 allows 1,000 per invocation on Workers Paid) plus a Vectorize query and
a reranker call where the mode needs them; at most 100 judgements per query and :data:`MAX_JUDGEMENTS`
in all. Locally (benchmarks/bench_evaluations.py, 400 SciFact documents) a search costs ~12 ms of
CPU in keyword mode and ~34 ms in hybrid, so the largest run (200 queries, keyword + hybrid) needs
~17 s of CPU; at the edge the bindings' work is remote and the gateway's share is far smaller.
Larger test sets are split into several runs.

Judgements that name no document of the tenant — unknown ids, another tenant's documents (never
distinguishable from unknown ones), titles nobody has, or a title that several of the tenant's
documents share — are reported in ``unresolved`` and left out; a query left without a relevant known
document is reported but not searched or averaged. When no query is left to evaluate the answer is a
422 listing the unresolved judgements, and nothing is stored. Judged documents that are not ``ready``
are listed in ``not_ready`` (they cannot be found yet, so a run right after an upload says why it
scores low). A failing model or index answers 502 and stores nothing.

Scope: ``evaluate`` (implies ``read``; implied by ``admin``), for every route here.
"""

from __future__ import annotations

import re
import time
from typing import Any

from edgerag.cache import CachedEmbedder, TenantCache
from edgerag.counters import UsageCounters
from edgerag.embedding import Embedder
from edgerag.evaluation import Cutoffs, JudgedQuery, Ranking, compare, run_evaluation
from edgerag.keys import Scope
from edgerag.problems import ValidationFailed
from edgerag.retrieval.hybrid import SearchRequest, hybrid_search
from edgerag.retrieval.rerank import Reranker
from edgerag.store.evaluations import EvaluationQueryRecord, EvaluationRecord, EvaluationStore
from edgerag.store.tenants import Principal
from fastapi import APIRouter, Depends, Query, Response

from gateway.budgets import get_counters
from gateway.deps import Clock, get_clock, get_env, get_settings, require
from gateway.evaluation_models import (
    MAX_JUDGEMENTS,
    MAX_QUERIES,
    MAX_SEARCHES,
    RANKING_SHOWN,
    SEARCH_DEPTH,
    ConfigChange,
    Evaluation,
    EvaluationComparison,
    EvaluationList,
    EvaluationQuery,
    EvaluationSummary,
    ModeChanges,
    NewEvaluation,
    QueryDelta,
    SearchOptions,
    Unresolved,
)
from gateway.openapi import problems
from gateway.paging import CURSOR_QUERY, decode_cursor, encode_cursor, id_path
from gateway.routes.search import REQUEST_RERANK_TOP_N
from gateway.settings import GatewaySettings

__all__ = ["MAX_JUDGEMENTS", "MAX_QUERIES", "MAX_SEARCHES", "SEARCH_DEPTH", "router"]

CONCURRENCY = 6  # searches in flight (a Worker has 6 simultaneous outgoing connections)
EVALUATION_ID = "eval_[0-9a-z]{26}"
_EVALUATION_ID_PARAM = id_path(
    "evaluation_id", EVALUATION_ID, "an evaluation id (eval_ + 26 characters); any other path is a 404"
)
_BASELINE_ID_PARAM = id_path("evaluation_id", EVALUATION_ID, "the baseline run's id (eval_ + 26 characters)")
# A cursor is base64url("e|<created_at>|<evaluation id>") of the last run of the previous page.
_CURSOR_SHAPE = re.compile(rf"e\|(\d{{4}}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{{3}}Z)\|({EVALUATION_ID})")

router = APIRouter(prefix="/v1/evaluations", tags=["evaluations"])
# Created once: FastAPI caches dependencies by identity within a request (as gateway.deps does).
EVALUATOR = require(Scope.EVALUATE)


# ------------------------------------------------------------------------------------------- routes


def _store(env: Any, clock: Clock) -> EvaluationStore:
    return EvaluationStore(env.DB, clock=clock)


def _rerank_pool(options: SearchOptions, settings: GatewaySettings) -> tuple[int, int]:
    """hybrid_rerank's (top_n, timeout_ms): what /v1/search does with {"rerank": {...}}."""
    rerank = options.rerank
    top_n = rerank.top_n if rerank is not None and rerank.top_n is not None else None
    timeout_ms = (rerank and rerank.timeout_ms) or settings.rerank_timeout_ms
    return (top_n if top_n is not None else settings.rerank_top_n or REQUEST_RERANK_TOP_N), timeout_ms


def _search_config(settings: GatewaySettings, options: SearchOptions, modes: list[str]) -> dict[str, Any]:
    config: dict[str, Any] = {
        "embedding_model": settings.embedding_model,
        "keyword_weight": settings.keyword_weight,
        "vector_weight": settings.vector_weight,
        "rrf_k": settings.rrf_k,
        "syntax": options.syntax,
        "min_score": options.min_score,
    }
    if "hybrid_rerank" in modes:
        top_n, timeout_ms = _rerank_pool(options, settings)
        config |= {
            "rerank_model": settings.rerank_model,
            "rerank_top_n": top_n,
            "rerank_timeout_ms": timeout_ms,
            "min_rerank_score": options.min_rerank_score,
        }
    return config


async def _resolve(
    store: EvaluationStore, tenant_id: str, queries: list[EvaluationQuery]
) -> tuple[list[JudgedQuery], list[dict[str, Any]], list[str]]:
    """The queries with judgements resolved to the tenant's documents, the unresolved judgements, and
    the judged documents that are not ready."""
    ids = [j.document_id for q in queries for j in q.judgements if j.document_id is not None]
    titles = [j.title for q in queries for j in q.judgements if j.title is not None]
    by_id = await store.documents_by_id(tenant_id, ids)
    by_title = await store.documents_by_title(tenant_id, titles)
    judged: list[JudgedQuery] = []
    unresolved: list[dict[str, Any]] = []
    not_ready: dict[str, None] = {}
    for seq, query in enumerate(queries):
        grades: dict[str, int] = {}
        for judgement in query.judgements:
            ref = {"query_seq": seq, "query_id": query.id}
            if judgement.document_id is not None:
                found = by_id.get(judgement.document_id)
                ref["document_id"] = judgement.document_id
                if found is None:
                    unresolved.append({**ref, "reason": "unknown"})
                    continue
            else:
                matches = by_title.get(judgement.title or "", [])
                ref["title"] = judgement.title
                if len(matches) != 1:
                    reason = "ambiguous" if matches else "unknown"
                    unresolved.append({**ref, "reason": reason, "matches": [m.id for m in matches]})
                    continue
                found = matches[0]
            # The same document judged twice (by id and by title, say) keeps its higher grade.
            grades[found.id] = max(grades.get(found.id, 0), judgement.relevance)
            if found.status != "ready":
                not_ready[found.id] = None
        judged.append(JudgedQuery(query.query, grades, query.id))
    return judged, unresolved, list(not_ready)


def _searcher(
    env: Any, settings: GatewaySettings, options: SearchOptions, tenant_id: str, counters: UsageCounters
) -> Any:
    """The search path of POST /v1/search (without its result cache), as ranked document ids."""
    embedder = CachedEmbedder(
        Embedder(env.AI, settings.embedding_model, truncate=True), TenantCache(env.CACHE, tenant_id, counters)
    )
    weights = {"keyword": settings.keyword_weight, "vector": settings.vector_weight}
    top_n, timeout_ms = _rerank_pool(options, settings)
    reranker = Reranker(env.AI, settings.rerank_model, timeout_s=timeout_ms / 1000)

    async def search(text: str, mode: str) -> Ranking:
        rerank = mode == "hybrid_rerank"
        request = SearchRequest(
            tenant_id=tenant_id,
            query=text,
            top_k=SEARCH_DEPTH,
            mode="hybrid" if rerank else mode,  # type: ignore[arg-type]
            syntax=options.syntax,
            rerank_top_n=top_n if rerank else 0,
            min_score=options.min_score,
            min_rerank_score=options.min_rerank_score if rerank else None,
        )
        result = await hybrid_search(
            env.DB, env.VECTORS, request, embedder, weights, settings.rrf_k, reranker=reranker
        )
        applied = None if result.rerank is None else result.rerank.applied
        return Ranking([hit.document_id for hit in result.hits], applied)

    return search


@router.post(
    "",
    status_code=201,
    responses={
        201: {"description": "The run, stored; Location is its URL"},
        **problems(401, 403, 422, 429, 502),
    },
)
async def create_evaluation(
    body: NewEvaluation,
    response: Response,
    principal: Principal = Depends(EVALUATOR),
    env: Any = Depends(get_env),
    settings: GatewaySettings = Depends(get_settings),
    counters: UsageCounters = Depends(get_counters),
    clock: Clock = Depends(get_clock),
) -> Evaluation:
    """Run the queries in each mode, score them against the judgements, store and return the run."""
    began = time.perf_counter()
    store = _store(env, clock)
    judged, unresolved, not_ready = await _resolve(store, principal.tenant_id, body.queries)
    if not any(query.judged for query in judged):
        raise ValidationFailed(
            "no query has a judgement of one of your documents with relevance above 0: nothing to evaluate",
            errors=[{"loc": ["body", "queries"], "msg": "no relevant known document", "type": "value_error"}],
            unresolved=[Unresolved.model_validate(u).model_dump() for u in unresolved],
        )
    cutoffs = Cutoffs(body.ndcg_k, body.mrr_k, tuple(body.recall_k))
    searcher = _searcher(env, settings, body.search, principal.tenant_id, counters)
    outcomes, summary = await run_evaluation(
        judged, body.modes, searcher, cutoffs, concurrency=CONCURRENCY, keep=RANKING_SHOWN
    )
    config = {
        "modes": list(body.modes),
        **cutoffs.to_dict(),
        "search_depth": SEARCH_DEPTH,
        "search": _search_config(settings, body.search, list(body.modes)),
    }
    queries = [
        EvaluationQueryRecord(
            seq=seq,
            query_id=outcome.query.id,
            query=outcome.query.text,
            judgements=dict(outcome.query.relevant),
            results={
                mode: {
                    "metrics": result.metrics,
                    "ranking": result.ranking,
                    "first_relevant_rank": result.first_relevant_rank,
                    "reranked": result.reranked,
                }
                for mode, result in outcome.results.items()
            },
        )
        for seq, outcome in enumerate(outcomes)
    ]
    record = await store.create(
        principal.tenant_id,
        name=body.name,
        config=config,
        summary=summary,
        unresolved=unresolved,
        not_ready=not_ready,
        duration_ms=round((time.perf_counter() - began) * 1000, 2),
        queries=queries,
    )
    response.headers["Location"] = f"/v1/evaluations/{record.id}"
    return Evaluation.full(record)


@router.get("", responses=problems(400, 401, 403, 422, 429))
async def list_evaluations(
    limit: int = Query(20, ge=1, le=100),
    cursor: str | None = CURSOR_QUERY,
    principal: Principal = Depends(EVALUATOR),
    env: Any = Depends(get_env),
    clock: Clock = Depends(get_clock),
) -> EvaluationList:
    """The tenant's runs, newest first (summaries; GET one for its per-query results)."""
    before = None
    if cursor:
        match = decode_cursor(cursor, _CURSOR_SHAPE)
        before = (match.group(1), match.group(2))
    page = await _store(env, clock).list_page(principal.tenant_id, limit=limit + 1, before=before)
    more = len(page) > limit
    page = page[:limit]
    next_cursor = encode_cursor(f"e|{page[-1].created_at}|{page[-1].id}") if more and page else None
    return EvaluationList(evaluations=[EvaluationSummary.of(r) for r in page], next_cursor=next_cursor)


@router.get("/{evaluation_id:evaluation_id}", responses=problems(401, 403, 404, 429))
async def get_evaluation(
    evaluation_id: str = _EVALUATION_ID_PARAM,
    principal: Principal = Depends(EVALUATOR),
    env: Any = Depends(get_env),
    clock: Clock = Depends(get_clock),
) -> Evaluation:
    return Evaluation.full(await _store(env, clock).get(principal.tenant_id, evaluation_id))


@router.delete("/{evaluation_id:evaluation_id}", status_code=204, responses=problems(401, 403, 404, 429))
async def delete_evaluation(
    evaluation_id: str = _EVALUATION_ID_PARAM,
    principal: Principal = Depends(EVALUATOR),
    env: Any = Depends(get_env),
    clock: Clock = Depends(get_clock),
) -> Response:
    await _store(env, clock).delete(principal.tenant_id, evaluation_id)
    return Response(status_code=204)


def _flat(config: dict[str, Any]) -> dict[str, Any]:
    flat = {key: value for key, value in config.items() if key != "search"}
    flat.update({f"search.{key}": value for key, value in config.get("search", {}).items()})
    return flat


@router.get(
    "/{evaluation_id:evaluation_id}/compare/{baseline_id:evaluation_id}",
    responses=problems(401, 403, 404, 429),
)
async def compare_evaluations(
    evaluation_id: str = _EVALUATION_ID_PARAM,
    baseline_id: str = _BASELINE_ID_PARAM,
    principal: Principal = Depends(EVALUATOR),
    env: Any = Depends(get_env),
    clock: Clock = Depends(get_clock),
) -> EvaluationComparison:
    """This run against a baseline run: per-mode metric deltas (current - baseline), per-query deltas
    and what changed in the configuration."""
    store = _store(env, clock)
    current = await store.get(principal.tenant_id, evaluation_id)
    baseline = await store.get(principal.tenant_id, baseline_id)

    def rows(record: EvaluationRecord) -> list[tuple[str | None, str, dict[str, dict[str, float]]]]:
        return [
            (q.query_id, q.query, {mode: run["metrics"] for mode, run in q.results.items()})
            for q in record.queries
            if q.results
        ]

    compared = compare(current.summary, baseline.summary, rows(current), rows(baseline))
    ndcg = f"ndcg@{current.config['ndcg_k']}"
    changes: dict[str, ModeChanges] = {}
    for mode in compared["modes"]:
        moved = [q["deltas"][mode][ndcg] for q in compared["queries"] if ndcg in q["deltas"].get(mode, {})]
        up = sum(1 for d in moved if d > 1e-12)
        down = sum(1 for d in moved if d < -1e-12)
        changes[mode] = ModeChanges(improved=up, regressed=down, unchanged=len(moved) - up - down)
    before, after = _flat(baseline.config), _flat(current.config)
    config_changes = {
        key: ConfigChange(baseline=before.get(key), current=after.get(key))
        for key in sorted(set(before) | set(after))
        if before.get(key) != after.get(key)
    }
    return EvaluationComparison(
        evaluation=EvaluationSummary.of(current),
        baseline=EvaluationSummary.of(baseline),
        config_changes=config_changes,
        modes=compared["modes"],
        changes=changes,
        queries=[QueryDelta.model_validate(q) for q in compared["queries"]],
        matched_by=compared["matched_by"],
        unmatched_current=compared["unmatched_current"],
        unmatched_baseline=compared["unmatched_baseline"],
    )
