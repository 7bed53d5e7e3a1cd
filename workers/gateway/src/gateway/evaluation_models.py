"""The request and response models of ``/v1/evaluations`` (:mod:`gateway.routes.evaluations`), with
the bounds a run must keep.

Requests are strict (unknown fields are a 422); bounds are declared on the fields where a schema can
say them (and published in ``/openapi.json``), and checked in :meth:`NewEvaluation.bounded` where it
cannot (searches = queries x modes, judgements per run, duplicate ids). Responses are built from the
store's records (:mod:`edgerag.store.evaluations`). To add an option of ``POST /v1/search`` to
evaluations: a field of :class:`SearchOptions` with the same name and meaning, passed on in the route's
searcher and recorded in the run's config.
"""

from __future__ import annotations

from typing import Any, Literal, cast

from edgerag.retrieval.fts_query import QuerySyntax
from edgerag.store.evaluations import EvaluationQueryRecord, EvaluationRecord
from pydantic import BaseModel, ConfigDict, Field, JsonValue, field_validator, model_validator

from gateway.routes.search import MAX_QUERY_CHARS, REQUEST_RERANK_TOP_N, RerankOptions

__all__ = [
    "MAX_JUDGEMENTS",
    "MAX_QUERIES",
    "MAX_SEARCHES",
    "MODES",
    "SEARCH_DEPTH",
    "Evaluation",
    "EvaluationComparison",
    "EvaluationList",
    "EvaluationSummary",
    "Mode",
    "NewEvaluation",
    "SearchOptions",
    "Unresolved",
]

MAX_QUERIES = 200
MAX_SEARCHES = 400
MAX_JUDGEMENTS_PER_QUERY = 100
MAX_JUDGEMENTS = 2000
SEARCH_DEPTH = 100  # chunks per search: the most POST /v1/search returns, and Vectorize's topK limit
MAX_CUTOFF = SEARCH_DEPTH
RANKING_SHOWN = 10  # documents kept per query and mode in the stored results

# hybrid_rerank: hybrid search whose best fused candidates are reranked (POST /v1/search with
# "rerank"); the other modes never rerank, so hybrid against hybrid_rerank is the rerank's effect.
Mode = Literal["keyword", "vector", "hybrid", "hybrid_rerank"]
MODES: tuple[Mode, ...] = ("keyword", "vector", "hybrid", "hybrid_rerank")
_SEARCHABLE = r"[^\W_]"  # as POST /v1/search: a letter or digit in any script


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


class SearchOptions(BaseModel):
    """Options of POST /v1/search applied to every search of the run (same names, same meaning)."""

    model_config = ConfigDict(extra="forbid")
    syntax: QuerySyntax = Field(
        default="plain", description='"plain", or "operators": "exact phrase", +required and -excluded terms'
    )
    rerank: RerankOptions | None = Field(
        default=None,
        description="for hybrid_rerank: how many fused candidates to rerank and the reranker's time "
        f"(default: the tenant's RERANK_TOP_N, or {REQUEST_RERANK_TOP_N}; RERANK_TIMEOUT_MS)",
    )
    min_score: float | None = Field(
        default=None, ge=0, allow_inf_nan=False, description="drop results whose fused score is below this"
    )
    min_rerank_score: float | None = Field(
        default=None,
        allow_inf_nan=False,
        description="hybrid_rerank: drop reranked results scoring below this",
    )


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
    search: SearchOptions = Field(
        default_factory=lambda: SearchOptions(), description="options of POST /v1/search for every search"
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
        rerank = self.search.rerank
        if "hybrid_rerank" in self.modes and rerank is not None and rerank.top_n == 0:
            raise ValueError("search.rerank.top_n 0 turns the rerank off: leave hybrid_rerank out instead")
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
    reranked: bool | None = Field(
        None, description="hybrid_rerank: false when the reranker timed out or failed (fused order kept)"
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
        description="the search configuration at the time: embedding model, fusion weights, RRF k, "
        "rerank model, pool and timeout, and the request's search options"
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
    rerank_fallbacks: int = Field(
        description="hybrid_rerank searches whose rerank fell back to the fused order (timeout or model "
        "error): their scores are hybrid's"
    )
    queries: list[QueryResult] = Field(description="every query of the run, in request order")

    @classmethod
    def full(cls, record: EvaluationRecord) -> Evaluation:
        queries = [QueryResult.of(q) for q in record.queries]
        return cls(
            **EvaluationSummary.of(record).model_dump(),
            unresolved=[Unresolved.model_validate(u) for u in record.unresolved],
            rerank_fallbacks=sum(1 for q in queries for run in q.results.values() if run.reranked is False),
            queries=queries,
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
