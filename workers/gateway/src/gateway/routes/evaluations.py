"""``/v1/evaluations``: measure the tenant's retrieval quality on its own documents, store the run, and
compare runs before and after a configuration change.

``POST /v1/evaluations`` takes queries with relevance judgements (documents named by id or by exact
title, graded 0-10; 0 means judged not relevant) and runs every query through the real search path —
:func:`edgerag.retrieval.hybrid.hybrid_search` with the gateway's settings, exactly what
``POST /v1/search`` runs, the query cut to the embedding model's input limit the same way — in each
requested mode. A document's rank is the rank of its best chunk among the top
:data:`SEARCH_DEPTH` chunks (what a search can return). It answers nDCG@k, MRR@k and Recall@k per mode
(:mod:`edgerag.evaluation`, the same code as ``benchmarks/eval_retrieval.py``) and per query, and stores
the run (:mod:`edgerag.store.evaluations`). The search result cache is not used (every run searches);
the query-embedding cache is (it is keyed by model and text, so it cannot go stale).

Runs are synchronous and bounded so one answers within seconds and fits a Worker invocation: at most
:data:`MAX_QUERIES` queries and :data:`MAX_SEARCHES` searches (queries x modes) per run, each search
being 2-4 D1 queries (D1 allows 1,000 per invocation on Workers Paid), at most
:data:`MAX_JUDGEMENTS_PER_QUERY` judgements per query and :data:`MAX_JUDGEMENTS` in all. Larger test
sets are split into several runs (and compared run by run).

Judgements that name no document of the tenant — unknown ids, another tenant's documents (which are
never distinguishable from unknown ones), titles nobody has, or a title that several of the tenant's
documents share — are reported in ``unresolved`` and left out; a query left without a relevant known
document is reported but not searched or averaged. When no query is left to evaluate the answer is a
422 listing the unresolved judgements, and nothing is stored. Judged documents that are not ``ready``
yet are listed in ``not_ready`` (they cannot be found, so a run right after an upload says why it
scores low).

Scope: ``evaluate`` (implies ``read``; implied by ``admin``), for every route here.
"""

from __future__ import annotations

import re
import time
from typing import Any, Literal, cast

from edgerag.cache import CachedEmbedder, TenantCache
from edgerag.counters import UsageCounters
from edgerag.embedding import Embedder
from edgerag.evaluation import Cutoffs, JudgedQuery, compare, run_evaluation
from edgerag.keys import Scope
from edgerag.problems import ValidationFailed
from edgerag.retrieval.hybrid import SearchRequest, hybrid_search
from edgerag.store.evaluations import EvaluationQueryRecord, EvaluationRecord, EvaluationStore
from edgerag.store.tenants import Principal
from fastapi import APIRouter, Depends, Query, Response
from pydantic import BaseModel, ConfigDict, Field, JsonValue, field_validator, model_validator

from gateway.budgets import get_counters
from gateway.deps import Clock, get_clock, get_env, get_settings, require
from gateway.openapi import problems
from gateway.paging import CURSOR_QUERY, decode_cursor, encode_cursor, id_path
from gateway.routes.search import MAX_QUERY_CHARS
from gateway.settings import GatewaySettings

__all__ = ["MAX_JUDGEMENTS", "MAX_QUERIES", "MAX_SEARCHES", "SEARCH_DEPTH", "router"]

MAX_QUERIES = 200
MAX_SEARCHES = 400
MAX_JUDGEMENTS_PER_QUERY = 100
MAX_JUDGEMENTS = 2000
SEARCH_DEPTH = 100  # chunks per search: the most POST /v1/search returns, and Vectorize's topK limit
MAX_CUTOFF = SEARCH_DEPTH
RANKING_SHOWN = 10  # documents kept per query and mode in the stored results
CONCURRENCY = 6  # searches in flight (a Worker has 6 simultaneous outgoing connections)

Mode = Literal["keyword", "vector", "hybrid"]
MODES: tuple[Mode, ...] = ("keyword", "vector", "hybrid")
EVALUATION_ID = "eval_[0-9a-z]{26}"
_EVALUATION_ID_PARAM = id_path(
    "evaluation_id", EVALUATION_ID, "an evaluation id (eval_ + 26 characters); any other path is a 404"
)
_BASELINE_ID_PARAM = id_path("evaluation_id", EVALUATION_ID, "the baseline run's id (eval_ + 26 characters)")
# A cursor is base64url("e|<created_at>|<evaluation id>") of the last run of the previous page.
_CURSOR_SHAPE = re.compile(rf"e\|(\d{{4}}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{{3}}Z)\|({EVALUATION_ID})")
_SEARCHABLE = r"[^\W_]"  # as POST /v1/search: a letter or digit in any script

router = APIRouter(prefix="/v1/evaluations", tags=["evaluations"])
# Created once: FastAPI caches dependencies by identity within a request (as gateway.deps does).
EVALUATOR = require(Scope.EVALUATE)


# ----------------------------------------------------------------------------------------- requests


class Judgement(BaseModel):
    model_config = ConfigDict(extra="forbid")
    document_id: str | None = Field(
        None, min_length=1, max_length=64, description="one of your documents' ids (or give a title)"
    )
    title: str | None = Field(
        None, min_length=1, max_length=500, description="exact title of one of your documents"
    )
    relevance: int = Field(
        1, ge=0, le=10, description="graded relevance: 0 judged not relevant, 1 relevant, higher is better"
    )

    @model_validator(mode="after")
    def one_reference(self) -> Judgement:
        if (self.document_id is None) == (self.title is None):
            raise ValueError("name the document by exactly one of document_id or title")
        return self


class EvaluationQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: str | None = Field(
        None,
        min_length=1,
        max_length=100,
        description="your id for the query; comparisons match queries by id when both runs have them "
        "(else by text)",
    )
    query: str = Field(
        max_length=MAX_QUERY_CHARS,
        pattern=_SEARCHABLE,
        description="searched as POST /v1/search would (cut to the embedding model's limit for vectors)",
    )
    judgements: list[Judgement] = Field(min_length=1, max_length=MAX_JUDGEMENTS_PER_QUERY)

    @field_validator("query")
    @classmethod
    def searchable(cls, value: str) -> str:
        stripped = value.strip()
        if not any(ch.isalnum() for ch in stripped):
            raise ValueError("the query has no letters or digits to search for")
        return stripped


_EXAMPLE: dict[str, Any] = {
    "name": "before raising FUSION_VECTOR_WEIGHT",
    "modes": ["keyword", "vector", "hybrid"],
    "recall_k": [10, 100],
    "queries": [
        {
            "id": "q1",
            "query": "what makes a rocket nozzle produce thrust?",
            "judgements": [
                {"title": "Rocket engines", "relevance": 2},
                {"document_id": "doc_01jz0000000000000000000000", "relevance": 1},
            ],
        }
    ],
}


class NewEvaluation(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [cast(JsonValue, _EXAMPLE)]})
    name: str | None = Field(None, min_length=1, max_length=200, description="a label for humans")
    modes: list[Mode] = Field(
        default_factory=lambda: list(MODES),
        min_length=1,
        max_length=len(MODES),
        description="search modes to run every query in (default: all)",
    )
    ndcg_k: int = Field(10, ge=1, le=MAX_CUTOFF, description="cutoff of nDCG")
    mrr_k: int = Field(10, ge=1, le=MAX_CUTOFF, description="cutoff of MRR")
    recall_k: list[int] = Field(
        default_factory=lambda: [10, 100],
        min_length=1,
        max_length=4,
        description=f"cutoffs of Recall, each 1-{MAX_CUTOFF}",
    )
    queries: list[EvaluationQuery] = Field(min_length=1, max_length=MAX_QUERIES)

    @field_validator("recall_k")
    @classmethod
    def cutoffs(cls, value: list[int]) -> list[int]:
        if any(not 1 <= k <= MAX_CUTOFF for k in value):
            raise ValueError(f"each recall cutoff must be between 1 and {MAX_CUTOFF}")
        return sorted(set(value))

    @model_validator(mode="after")
    def bounded(self) -> NewEvaluation:
        if len(set(self.modes)) != len(self.modes):
            raise ValueError("a mode is listed twice")
        ids = [q.id for q in self.queries if q.id is not None]
        if len(set(ids)) != len(ids):
            raise ValueError("query ids must be unique within a run")
        if sum(len(q.judgements) for q in self.queries) > MAX_JUDGEMENTS:
            raise ValueError(f"at most {MAX_JUDGEMENTS} judgements per run; split the set into runs")
        if len(self.queries) * len(self.modes) > MAX_SEARCHES:
            raise ValueError(
                f"at most {MAX_SEARCHES} searches (queries x modes) per run: {len(self.queries)} queries "
                f"in {len(self.modes)} modes is {len(self.queries) * len(self.modes)}; split the set "
                "into runs or ask for fewer modes"
            )
        return self


# ---------------------------------------------------------------------------------------- responses


class ModeRun(BaseModel):
    metrics: dict[str, float] = Field(description="this query's nDCG@k, MRR@k and Recall@k in this mode")
    ranking: list[str] = Field(description=f"the top {RANKING_SHOWN} document ids, best first")
    first_relevant_rank: int | None = Field(
        description=f"rank (from 1) of the first relevant document within the top {SEARCH_DEPTH} chunks' "
        "documents; null if none was found"
    )


class QueryResult(BaseModel):
    seq: int = Field(description="position of the query in the request, from 0")
    id: str | None
    query: str
    judgements: dict[str, int] = Field(description="the resolved judgements: document id -> relevance")
    evaluated: bool = Field(description="false: no relevant known document, so not searched or averaged")
    results: dict[str, ModeRun] = Field(description="mode -> result ({} when not evaluated)")

    @classmethod
    def of(cls, record: EvaluationQueryRecord) -> QueryResult:
        return cls(
            seq=record.seq,
            id=record.query_id,
            query=record.query,
            judgements=record.judgements,
            evaluated=bool(record.results),
            results={mode: ModeRun.model_validate(run) for mode, run in record.results.items()},
        )


class Unresolved(BaseModel):
    query_seq: int = Field(description="position of the query in the request, from 0")
    query_id: str | None
    document_id: str | None = None
    title: str | None = None
    reason: Literal["unknown", "ambiguous"] = Field(
        description="unknown: none of your documents has this id or title; ambiguous: several share the "
        "title (name them by id)"
    )
    matches: list[str] = Field(
        default_factory=list, description="ambiguous only: the documents with the title"
    )


class EvaluationConfig(BaseModel):
    """What the run measured: its modes and cutoffs, and the search configuration it ran with."""

    modes: list[str]
    ndcg_k: int
    mrr_k: int
    recall_k: list[int]
    search_depth: int = Field(description="chunks retrieved per search")
    search: dict[str, Any] = Field(
        description="the gateway's search settings at the time (embedding model, fusion weights, RRF k)"
    )


class EvaluationSummary(BaseModel):
    id: str = Field(description="eval_ + 26 characters, time-sortable")
    name: str | None
    created_at: str = Field(description="ISO-8601 UTC", json_schema_extra={"format": "date-time"})
    config: EvaluationConfig
    summary: dict[str, dict[str, float]] = Field(
        description="mode -> metric (ndcg@10, mrr@10, recall@10, ...) -> mean over evaluated queries"
    )
    query_count: int
    evaluated_count: int = Field(description="queries with a relevant known document (the means' count)")
    unresolved_count: int = Field(description="judgements that named none of your documents")
    not_ready: list[str] = Field(description="judged documents that were not ready to be found")
    duration_ms: float

    @classmethod
    def of(cls, record: EvaluationRecord) -> EvaluationSummary:
        return cls(
            id=record.id,
            name=record.name,
            created_at=record.created_at,
            config=EvaluationConfig.model_validate(record.config),
            summary=record.summary,
            query_count=record.query_count,
            evaluated_count=record.evaluated_count,
            unresolved_count=len(record.unresolved),
            not_ready=record.not_ready,
            duration_ms=record.duration_ms,
        )


class Evaluation(EvaluationSummary):
    unresolved: list[Unresolved]
    queries: list[QueryResult] = Field(description="every query of the run, in request order")

    @classmethod
    def full(cls, record: EvaluationRecord) -> Evaluation:
        return cls(
            **EvaluationSummary.of(record).model_dump(),
            unresolved=[Unresolved.model_validate(u) for u in record.unresolved],
            queries=[QueryResult.of(q) for q in record.queries],
        )


class EvaluationList(BaseModel):
    evaluations: list[EvaluationSummary] = Field(description="newest first, without per-query results")
    next_cursor: str | None = Field(description="pass as ?cursor= for the next page; null on the last")


class MetricDelta(BaseModel):
    baseline: float
    current: float
    delta: float = Field(description="current - baseline")


class QueryDelta(BaseModel):
    id: str | None
    query: str
    deltas: dict[str, dict[str, float]] = Field(description="mode -> metric -> current - baseline")


class ModeChanges(BaseModel):
    improved: int = Field(description="matched queries whose nDCG rose")
    regressed: int = Field(description="matched queries whose nDCG fell")
    unchanged: int


class ConfigChange(BaseModel):
    baseline: Any
    current: Any


class EvaluationComparison(BaseModel):
    evaluation: EvaluationSummary
    baseline: EvaluationSummary
    config_changes: dict[str, ConfigChange] = Field(
        description="settings that differ between the runs (search settings, modes, cutoffs)"
    )
    modes: dict[str, dict[str, MetricDelta]] = Field(
        description="for each mode and metric both runs have: baseline, current and the delta"
    )
    changes: dict[str, ModeChanges] = Field(description="per mode: how many matched queries moved")
    queries: list[QueryDelta] = Field(description="per matched, evaluated query: the deltas")
    matched_by: Literal["id", "text"] = Field(
        description="queries are matched by id when every query of both runs has one, else by text"
    )
    unmatched_current: int = Field(description="evaluated queries of this run the baseline does not have")
    unmatched_baseline: int = Field(description="evaluated queries of the baseline this run does not have")


# ------------------------------------------------------------------------------------------- routes


def _store(env: Any, clock: Clock) -> EvaluationStore:
    return EvaluationStore(env.DB, clock=clock)


def _search_config(settings: GatewaySettings) -> dict[str, Any]:
    return {
        "embedding_model": settings.embedding_model,
        "keyword_weight": settings.keyword_weight,
        "vector_weight": settings.vector_weight,
        "rrf_k": settings.rrf_k,
    }


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


def _searcher(env: Any, settings: GatewaySettings, tenant_id: str, counters: UsageCounters) -> Any:
    """The search path of POST /v1/search (without its result cache), as ranked document ids."""
    embedder = CachedEmbedder(
        Embedder(env.AI, settings.embedding_model, truncate=True), TenantCache(env.CACHE, tenant_id, counters)
    )
    weights = {"keyword": settings.keyword_weight, "vector": settings.vector_weight}

    async def search(text: str, mode: str) -> list[str]:
        request = SearchRequest(tenant_id=tenant_id, query=text, top_k=SEARCH_DEPTH, mode=mode)  # type: ignore[arg-type]
        result = await hybrid_search(env.DB, env.VECTORS, request, embedder, weights, settings.rrf_k)
        return [hit.document_id for hit in result.hits]

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
    searcher = _searcher(env, settings, principal.tenant_id, counters)
    outcomes, summary = await run_evaluation(
        judged, body.modes, searcher, cutoffs, concurrency=CONCURRENCY, keep=RANKING_SHOWN
    )
    config = {
        "modes": list(body.modes),
        **cutoffs.to_dict(),
        "search_depth": SEARCH_DEPTH,
        "search": _search_config(settings),
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
