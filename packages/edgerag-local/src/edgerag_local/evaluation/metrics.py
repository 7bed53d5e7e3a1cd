"""Ranking metrics: nDCG@k and Recall@k, averaged over judged queries by :func:`evaluate`.

Definitions follow trec_eval (as BEIR reports them through pytrec_eval):

* Relevance grades come from the qrels; only grades > 0 count as relevant. Documents without a
  judgement are not relevant.
* ``DCG@k = sum(grade(d_i) / log2(i + 1) for i = 1..k)`` (linear gain, as trec_eval's ``ndcg_cut``;
  identical to the exponential form for binary grades such as SciFact's). ``nDCG@k`` divides by the DCG
  of the ideal ordering of all judged documents.
* ``Recall@k = |relevant in top k| / |relevant|``.
* A ranking's repeated ids count once, at their first position.

:func:`evaluate` averages over every query that has at least one relevant document. A judged query
missing from the run scores 0 (pytrec_eval would skip it, flattering a system that answers nothing).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

__all__ = ["Qrels", "Run", "evaluate", "ndcg_at_k", "recall_at_k"]

Run = Mapping[str, Sequence[str]]
Qrels = Mapping[str, Mapping[str, int]]


def ndcg_at_k(ranked_ids: Sequence[str], relevant: Mapping[str, int], k: int) -> float:
    """nDCG@k of one ranking; 0.0 when nothing is relevant."""
    _check_k(k)
    ideal = sorted((g for g in relevant.values() if g > 0), reverse=True)[:k]
    ideal_dcg = sum(grade / math.log2(position + 2) for position, grade in enumerate(ideal))
    if ideal_dcg == 0:
        return 0.0
    dcg = sum(
        max(relevant.get(doc_id, 0), 0) / math.log2(position + 2)
        for position, doc_id in enumerate(_unique(ranked_ids)[:k])
    )
    return dcg / ideal_dcg


def recall_at_k(ranked_ids: Sequence[str], relevant: Mapping[str, int], k: int) -> float:
    """Recall@k of one ranking; 0.0 when nothing is relevant."""
    _check_k(k)
    wanted = {doc_id for doc_id, grade in relevant.items() if grade > 0}
    if not wanted:
        return 0.0
    return len(wanted.intersection(_unique(ranked_ids)[:k])) / len(wanted)


def evaluate(run: Run, qrels: Qrels, *, ndcg_k: int = 10, recall_k: int = 100) -> dict[str, float]:
    """``{"ndcg@10": mean, "recall@100": mean}`` over the judged queries (see the module docstring)."""
    judged = [qid for qid, grades in qrels.items() if any(g > 0 for g in grades.values())]
    if not judged:
        raise ValueError("the qrels judge no document relevant: nothing to evaluate")
    ndcg = recall = 0.0
    for qid in judged:
        ranking = run.get(qid, ())
        ndcg += ndcg_at_k(ranking, qrels[qid], ndcg_k)
        recall += recall_at_k(ranking, qrels[qid], recall_k)
    return {f"ndcg@{ndcg_k}": ndcg / len(judged), f"recall@{recall_k}": recall / len(judged)}


def _unique(ranked_ids: Sequence[str]) -> list[str]:
    return list(dict.fromkeys(ranked_ids))


def _check_k(k: int) -> None:
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
