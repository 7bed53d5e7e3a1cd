"""Retrieval evaluation shared by the API and the benchmarks: ranking metrics (:mod:`.metrics`: nDCG@k,
Recall@k, MRR@k — the one implementation, also used by ``benchmarks/eval_retrieval.py`` and
``edgerag_local.evaluation``) and the runner behind ``POST /v1/evaluations`` (:mod:`.runner`: judged
queries through a search function in several modes, per-mode means, comparison of two runs).

Edge-safe: pure Python, no bindings; the gateway passes its search path in as a function."""

from edgerag.evaluation.metrics import (
    Qrels,
    Run,
    evaluate,
    is_judged,
    mrr_at_k,
    ndcg_at_k,
    recall_at_k,
    unique_ranking,
)
from edgerag.evaluation.runner import (
    Cutoffs,
    JudgedQuery,
    ModeResult,
    QueryOutcome,
    Ranking,
    Searcher,
    compare,
    run_evaluation,
)

__all__ = [
    "Cutoffs",
    "JudgedQuery",
    "ModeResult",
    "Qrels",
    "QueryOutcome",
    "Ranking",
    "Run",
    "Searcher",
    "compare",
    "evaluate",
    "is_judged",
    "mrr_at_k",
    "ndcg_at_k",
    "recall_at_k",
    "run_evaluation",
    "unique_ranking",
]
