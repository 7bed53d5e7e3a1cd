"""Ranking metrics for the local evaluation tools: the shared core's (:mod:`edgerag.evaluation.metrics`).

There is one implementation of nDCG@k, Recall@k and MRR@k, in the deployable core, so that
``POST /v1/evaluations`` and the benchmarks (``benchmarks/eval_retrieval.py``) compute identically; this
module keeps the names the local tools have always imported from here. Definitions (trec_eval's, as
BEIR reports them) are in that module's docstring.
"""

from __future__ import annotations

from edgerag.evaluation.metrics import Qrels, Run, evaluate, mrr_at_k, ndcg_at_k, recall_at_k

__all__ = ["Qrels", "Run", "evaluate", "mrr_at_k", "ndcg_at_k", "recall_at_k"]
