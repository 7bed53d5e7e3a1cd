"""Retrieval-quality evaluation (CPython only): BEIR-format datasets and ranking metrics.

    corpus, queries, qrels = load_beir(Path("../shared/datasets/scifact-train"))
    run = {qid: my_search(text) for qid, text in queries.items() if qid in qrels}
    evaluate(run, qrels)  # {"ndcg@10": ..., "recall@100": ...}

The metrics follow trec_eval/pytrec_eval, which BEIR uses, so numbers compare with published ones.
They are the shared core's (:mod:`edgerag.evaluation.metrics`), the same code ``POST /v1/evaluations``
runs; add a metric there.
"""

from edgerag_local.evaluation.beir import BeirDataset, BeirDocument, BeirFormatError, load_beir
from edgerag_local.evaluation.metrics import Qrels, Run, evaluate, mrr_at_k, ndcg_at_k, recall_at_k

__all__ = [
    "BeirDataset",
    "BeirDocument",
    "BeirFormatError",
    "Qrels",
    "Run",
    "evaluate",
    "load_beir",
    "mrr_at_k",
    "ndcg_at_k",
    "recall_at_k",
]
