"""Ranking metrics: nDCG@k, Recall@k and MRR@k, averaged over judged queries by :func:`evaluate`.

The one implementation of the project's retrieval metrics: ``POST /v1/evaluations`` (the gateway),
``benchmarks/eval_retrieval.py`` and ``edgerag_local.evaluation`` all compute with these functions, so
an API evaluation and a benchmark table agree to the last digit on the same rankings. Pure Python over
lists and dicts (no numpy): it runs in the Workers as it does here.

Definitions follow trec_eval (as BEIR reports them through pytrec_eval):

* Relevance grades come from the judgements; only grades > 0 count as relevant. Documents without a
  judgement are not relevant.
* ``DCG@k = sum(grade(d_i) / log2(i + 1) for i = 1..k)`` (linear gain, as trec_eval's ``ndcg_cut``;
  identical to the exponential form for binary grades such as SciFact's). ``nDCG@k`` divides by the DCG
  of the ideal ordering of all judged documents.
* ``Recall@k = |relevant in top k| / |relevant|``.
* ``MRR@k`` (per query, the reciprocal rank) ``= 1 / rank`` of the first relevant document within the
  top k, 0 when there is none (trec_eval's ``recip_rank`` cut at k, as MS MARCO's MRR@10).
* A ranking's repeated ids count once, at their first position.

:func:`evaluate` averages over every query that has at least one relevant document. A judged query
missing from the run scores 0 (pytrec_eval would skip it, flattering a system that answers nothing).

To add a metric: a pure function over (ranked ids, relevance grades, k) here, then its name and
value in :class:`edgerag.evaluation.runner.Cutoffs` (the API) and a key in :func:`evaluate`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

__all__ = [
    "Qrels",
    "Run",
    "evaluate",
    "is_judged",
    "mrr_at_k",
    "ndcg_at_k",
    "recall_at_k",
    "unique_ranking",
]

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
        for position, doc_id in enumerate(unique_ranking(ranked_ids)[:k])
    )
    return dcg / ideal_dcg


def recall_at_k(ranked_ids: Sequence[str], relevant: Mapping[str, int], k: int) -> float:
    """Recall@k of one ranking; 0.0 when nothing is relevant."""
    _check_k(k)
    wanted = {doc_id for doc_id, grade in relevant.items() if grade > 0}
    if not wanted:
        return 0.0
    return len(wanted.intersection(unique_ranking(ranked_ids)[:k])) / len(wanted)


def mrr_at_k(ranked_ids: Sequence[str], relevant: Mapping[str, int], k: int) -> float:
    """The reciprocal rank of the first relevant id within the top ``k``; 0.0 if there is none."""
    _check_k(k)
    for position, doc_id in enumerate(unique_ranking(ranked_ids)[:k], start=1):
        if relevant.get(doc_id, 0) > 0:
            return 1.0 / position
    return 0.0


def is_judged(relevant: Mapping[str, int]) -> bool:
    """Whether a query has a relevant document at all (only such queries are averaged)."""
    return any(grade > 0 for grade in relevant.values())


def evaluate(
    run: Run,
    qrels: Qrels,
    *,
    ndcg_k: int = 10,
    recall_k: int = 100,
    mrr_k: int | None = None,
) -> dict[str, float]:
    """``{"ndcg@10": mean, "recall@100": mean}`` over the judged queries (see the module docstring),
    plus ``"mrr@<mrr_k>"`` when ``mrr_k`` is given."""
    judged = [qid for qid, grades in qrels.items() if is_judged(grades)]
    if not judged:
        raise ValueError("the qrels judge no document relevant: nothing to evaluate")
    ndcg = recall = mrr = 0.0
    for qid in judged:
        ranking = run.get(qid, ())
        ndcg += ndcg_at_k(ranking, qrels[qid], ndcg_k)
        recall += recall_at_k(ranking, qrels[qid], recall_k)
        if mrr_k is not None:
            mrr += mrr_at_k(ranking, qrels[qid], mrr_k)
    scores = {f"ndcg@{ndcg_k}": ndcg / len(judged), f"recall@{recall_k}": recall / len(judged)}
    if mrr_k is not None:
        scores[f"mrr@{mrr_k}"] = mrr / len(judged)
    return scores


def unique_ranking(ranked_ids: Sequence[str]) -> list[str]:
    """``ranked_ids`` with repeats removed, each id at its first (best) position."""
    return list(dict.fromkeys(ranked_ids))


def _check_k(k: int) -> None:
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
