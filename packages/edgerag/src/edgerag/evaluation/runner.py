"""Run judged queries through a search function in several modes and score them (the core of
``POST /v1/evaluations``).

The runner knows nothing about HTTP or bindings: the caller passes a :data:`Searcher` — for the
gateway, the real search path (:func:`edgerag.retrieval.hybrid.hybrid_search`, exactly what
``POST /v1/search`` runs) reduced to a ranking of document ids — and the runner asks it for every
(query, mode), scores the rankings with :mod:`edgerag.evaluation.metrics` and averages per mode.

Rules:

* Judgements are per document (resolved to the tenant's document ids by the caller); grade 0 means
  "judged, not relevant". A query without a relevant judged document is reported but neither searched
  nor averaged (as :func:`~edgerag.evaluation.metrics.evaluate` does).
* Searches run with bounded concurrency (``asyncio``, no threads: Pyodide has none). Results come
  back in query order whatever order the searches finish in, and means are summed in that order, so a
  run's numbers do not depend on scheduling.
* :func:`compare` lines two runs up: per-mode deltas of every metric both runs have, and per-query
  deltas for the queries both runs asked (matched by the client's query id when both have one, else by
  the query text).

To add a metric: compute it in :meth:`Cutoffs.score` (and name it in :meth:`Cutoffs.names`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from edgerag.evaluation.metrics import is_judged, mrr_at_k, ndcg_at_k, recall_at_k, unique_ranking

__all__ = [
    "Cutoffs",
    "JudgedQuery",
    "ModeResult",
    "QueryOutcome",
    "Ranking",
    "Searcher",
    "compare",
    "run_evaluation",
]


@dataclass(frozen=True)
class Ranking:
    """What a search found: document ids, best first, and whether a rerank asked for was applied
    (None: no rerank was asked for; False: it fell back to the fused order)."""

    documents: Sequence[str]
    reranked: bool | None = None


# (query text, mode) -> a Ranking, or just the document ids, best first.
Searcher = Callable[[str, str], Awaitable[Ranking | Sequence[str]]]


@dataclass(frozen=True)
class Cutoffs:
    """Which metrics a run reports: nDCG@ndcg_k, MRR@mrr_k and Recall@k for each k in recall_ks."""

    ndcg_k: int = 10
    mrr_k: int = 10
    recall_ks: tuple[int, ...] = (10, 100)

    def __post_init__(self) -> None:
        if min(self.ndcg_k, self.mrr_k, *self.recall_ks) < 1:
            raise ValueError("every cutoff must be >= 1")

    @property
    def depth(self) -> int:
        """How many documents a ranking must have for every metric to be exact."""
        return max(self.ndcg_k, self.mrr_k, *self.recall_ks)

    def names(self) -> list[str]:
        recalls = [f"recall@{k}" for k in sorted(set(self.recall_ks))]
        return [f"ndcg@{self.ndcg_k}", f"mrr@{self.mrr_k}", *recalls]

    def score(self, ranking: Sequence[str], relevant: Mapping[str, int]) -> dict[str, float]:
        scores = {
            f"ndcg@{self.ndcg_k}": ndcg_at_k(ranking, relevant, self.ndcg_k),
            f"mrr@{self.mrr_k}": mrr_at_k(ranking, relevant, self.mrr_k),
        }
        for k in sorted(set(self.recall_ks)):
            scores[f"recall@{k}"] = recall_at_k(ranking, relevant, k)
        return scores

    def to_dict(self) -> dict[str, Any]:
        return {"ndcg_k": self.ndcg_k, "mrr_k": self.mrr_k, "recall_k": sorted(set(self.recall_ks))}


@dataclass(frozen=True)
class JudgedQuery:
    """A query with its judgements resolved to document ids (grade 0: judged not relevant)."""

    text: str
    relevant: Mapping[str, int]
    id: str | None = None

    @property
    def judged(self) -> bool:
        return is_judged(self.relevant)


@dataclass(frozen=True)
class ModeResult:
    metrics: dict[str, float]
    ranking: list[str]  # the top documents (cut to the caller's ``keep``)
    first_relevant_rank: int | None  # 1-based rank of the first relevant document in the whole ranking
    reranked: bool | None = None  # as Ranking.reranked


@dataclass(frozen=True)
class QueryOutcome:
    query: JudgedQuery
    results: dict[str, ModeResult] = field(default_factory=dict)  # empty when not judged

    @property
    def evaluated(self) -> bool:
        return bool(self.results)


async def run_evaluation(
    queries: Sequence[JudgedQuery],
    modes: Sequence[str],
    search: Searcher,
    cutoffs: Cutoffs,
    *,
    concurrency: int = 6,
    keep: int = 10,
) -> tuple[list[QueryOutcome], dict[str, dict[str, float]]]:
    """Every judged query in every mode: the per-query outcomes (in order) and per-mode means.

    Raises ``ValueError`` when no query has a relevant document (nothing to average); whatever
    ``search`` raises propagates (the gateway's search path raises problems, e.g. a 502).
    """
    if concurrency < 1 or keep < 1:
        raise ValueError("concurrency and keep must be >= 1")
    judged = [query for query in queries if query.judged]
    if not judged:
        raise ValueError("no query has a judgement of a known document with relevance above 0")
    gate = asyncio.Semaphore(concurrency)

    async def one(query: JudgedQuery) -> QueryOutcome:
        if not query.judged:
            return QueryOutcome(query)
        results: dict[str, ModeResult] = {}
        for mode in modes:
            async with gate:
                found = await search(query.text, mode)
            if not isinstance(found, Ranking):
                found = Ranking(found)
            ranking = unique_ranking(found.documents)
            first = next((i for i, doc in enumerate(ranking, 1) if query.relevant.get(doc, 0) > 0), None)
            metrics = cutoffs.score(ranking, query.relevant)
            results[mode] = ModeResult(metrics, ranking[:keep], first, found.reranked)
        return QueryOutcome(query, results)

    outcomes = list(await asyncio.gather(*(one(query) for query in queries)))
    summary: dict[str, dict[str, float]] = {}
    for mode in modes:
        totals = dict.fromkeys(cutoffs.names(), 0.0)
        for outcome in outcomes:
            for name, value in outcome.results.get(mode, ModeResult({}, [], None)).metrics.items():
                totals[name] += value
        summary[mode] = {name: total / len(judged) for name, total in totals.items()}
    return outcomes, summary


def _key(query_id: str | None, text: str, by_id: bool) -> str:
    return f"id:{query_id}" if by_id else f"text:{text}"


def compare(
    current: Mapping[str, Mapping[str, float]],
    baseline: Mapping[str, Mapping[str, float]],
    current_queries: Sequence[tuple[str | None, str, Mapping[str, Mapping[str, float]]]] = (),
    baseline_queries: Sequence[tuple[str | None, str, Mapping[str, Mapping[str, float]]]] = (),
) -> dict[str, Any]:
    """Deltas (current - baseline) of two runs.

    ``current``/``baseline``: mode -> metric -> mean. The ``*_queries`` are (query id, text, mode ->
    metrics) of each run's evaluated queries. Returns ``modes`` (mode -> metric -> {baseline, current,
    delta}, for the modes and metrics both runs have), ``queries`` (per matched query: mode -> metric ->
    delta) and the counts of matched and unmatched queries.
    """
    modes: dict[str, dict[str, dict[str, float]]] = {}
    for mode in (m for m in current if m in baseline):
        shared = [name for name in current[mode] if name in baseline[mode]]
        modes[mode] = {
            name: {
                "baseline": baseline[mode][name],
                "current": current[mode][name],
                "delta": current[mode][name] - baseline[mode][name],
            }
            for name in shared
        }
    by_id = all(q[0] is not None for q in current_queries) and all(q[0] is not None for q in baseline_queries)
    earlier = {_key(qid, text, by_id): results for qid, text, results in baseline_queries}
    matched: list[dict[str, Any]] = []
    for qid, text, results in current_queries:
        before = earlier.get(_key(qid, text, by_id))
        if before is None:
            continue
        deltas = {
            mode: {
                name: value - before[mode][name] for name, value in metrics.items() if name in before[mode]
            }
            for mode, metrics in results.items()
            if mode in before
        }
        matched.append({"id": qid, "query": text, "deltas": deltas})
    return {
        "modes": modes,
        "queries": matched,
        "matched_by": "id" if by_id else "text",
        "unmatched_current": len(current_queries) - len(matched),
        "unmatched_baseline": len(baseline_queries) - len(matched),
    }
