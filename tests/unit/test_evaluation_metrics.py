"""edgerag_local.evaluation: nDCG@k and Recall@k against hand-computed values, averaging, and the
BEIR loader (synthetic files, plus the real SciFact train split when it is on the machine)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from edgerag_local.evaluation import (
    BeirDocument,
    BeirFormatError,
    evaluate,
    load_beir,
    ndcg_at_k,
    recall_at_k,
)

LOG2_3 = math.log2(3)  # the discount at rank 2
SCIFACT = Path(__file__).resolve().parents[3] / "shared" / "datasets" / "scifact-train"

# -- metrics -------------------------------------------------------------------------------------


def test_ndcg_by_hand() -> None:
    relevant = {"d2": 1, "d4": 2, "d9": 1}
    # DCG@3 = 0 + 1/log2(3) + 0; ideal = 2/log2(2) + 1/log2(3) + 1/log2(4)
    expected = (1 / LOG2_3) / (2 + 1 / LOG2_3 + 0.5)
    assert math.isclose(ndcg_at_k(["d1", "d2", "d3", "d4"], relevant, 3), expected)
    assert math.isclose(expected, 0.2015, abs_tol=1e-4)


def test_ndcg_with_grades_uses_linear_gain() -> None:
    # DCG@2 = 1/1 + 2/log2(3); ideal = 2/1 + 1/log2(3)
    expected = (1 + 2 / LOG2_3) / (2 + 1 / LOG2_3)
    assert math.isclose(ndcg_at_k(["a", "b"], {"a": 1, "b": 2}, 2), expected)


def test_ndcg_bounds() -> None:
    relevant = {"a": 1, "b": 1}
    assert ndcg_at_k(["a", "b", "x"], relevant, 10) == 1.0
    assert ndcg_at_k(["x", "y"], relevant, 10) == 0.0
    assert ndcg_at_k([], relevant, 10) == 0.0
    assert ndcg_at_k(["a"], {}, 10) == 0.0
    assert ndcg_at_k(["a"], {"a": 0, "b": -1}, 10) == 0.0  # non-positive grades are not relevant


def test_ndcg_cuts_at_k() -> None:
    assert ndcg_at_k(["x", "a"], {"a": 1}, 1) == 0.0
    assert math.isclose(ndcg_at_k(["x", "a"], {"a": 1}, 2), 1 / LOG2_3)


def test_recall_by_hand() -> None:
    relevant = {"d2": 1, "d4": 2, "d9": 1, "d0": 0}
    ranking = ["d1", "d2", "d3", "d4"]
    assert math.isclose(recall_at_k(ranking, relevant, 3), 1 / 3)
    assert math.isclose(recall_at_k(ranking, relevant, 4), 2 / 3)
    assert recall_at_k(ranking, {}, 4) == 0.0


def test_repeated_ids_count_once() -> None:
    # Without de-duplication "a" would fill ranks 1 and 2 and push "b" out of the top 2.
    assert recall_at_k(["a", "a", "b"], {"a": 1, "b": 1}, 2) == 1.0
    assert ndcg_at_k(["a", "a", "b"], {"a": 1, "b": 1}, 2) == 1.0


@pytest.mark.parametrize("k", [0, -1])
def test_k_must_be_positive(k: int) -> None:
    with pytest.raises(ValueError):
        ndcg_at_k(["a"], {"a": 1}, k)
    with pytest.raises(ValueError):
        recall_at_k(["a"], {"a": 1}, k)


def test_evaluate_averages_over_judged_queries() -> None:
    qrels = {
        "q1": {"d1": 1},
        "q2": {"d2": 1, "d3": 1},
        "q3": {"d5": 0},  # nothing relevant: not evaluated
        "q4": {"d7": 1},  # judged but missing from the run: scores 0
    }
    run = {"q1": ["d1"], "q2": ["d3", "x", "d2"], "q3": ["d5"], "q9": ["d1"]}
    q2_ndcg = (1 + 1 / 2) / (1 + 1 / LOG2_3)  # d3 at rank 1, d2 at rank 3 (log2(4) = 2)
    scores = evaluate(run, qrels)
    assert set(scores) == {"ndcg@10", "recall@100"}
    assert math.isclose(scores["ndcg@10"], (1 + q2_ndcg + 0) / 3)
    assert math.isclose(scores["recall@100"], (1 + 1 + 0) / 3)


def test_evaluate_with_other_cutoffs() -> None:
    scores = evaluate({"q": ["x", "a"]}, {"q": {"a": 1}}, ndcg_k=1, recall_k=1)
    assert scores == {"ndcg@1": 0.0, "recall@1": 0.0}


def test_evaluate_needs_a_judged_query() -> None:
    with pytest.raises(ValueError, match="nothing to evaluate"):
        evaluate({}, {"q": {"d": 0}})


# -- loader --------------------------------------------------------------------------------------


QRELS = "query-id\tcorpus-id\tscore\nq1\t10\t1\nq1\t11\t2\nq2\t12\t0\n"


def _write_dataset(root: Path, qrels: str = QRELS) -> Path:
    (root / "qrels").mkdir(parents=True)
    corpus = [{"_id": "10", "title": "T", "text": "first", "metadata": {}}, {"_id": 11, "text": "second"}]
    (root / "corpus.jsonl").write_text("".join(json.dumps(row) + "\n" for row in corpus) + "\n")
    (root / "queries.jsonl").write_text('{"_id": "q1", "text": "what?"}\n{"_id": "q2", "text": "why?"}\n')
    (root / "qrels" / "test.tsv").write_text(qrels)
    return root


def test_load_beir(tmp_path: Path) -> None:
    corpus, queries, qrels = load_beir(_write_dataset(tmp_path), split="test")
    assert corpus == {"10": BeirDocument("T", "first"), "11": BeirDocument("", "second")}
    assert queries == {"q1": "what?", "q2": "why?"}
    assert qrels == {"q1": {"10": 1, "11": 2}, "q2": {"12": 0}}


def test_load_beir_missing_split_lists_the_available_ones(tmp_path: Path) -> None:
    with pytest.raises(BeirFormatError, match=r"split 'train'.*\['test'\]"):
        load_beir(_write_dataset(tmp_path))


def test_load_beir_reports_the_bad_line(tmp_path: Path) -> None:
    root = _write_dataset(tmp_path)
    (root / "queries.jsonl").write_text('{"_id": "q1", "text": "ok"}\n{not json}\n')
    with pytest.raises(BeirFormatError, match=r"queries.jsonl:2: not JSON"):
        load_beir(root, split="test")


@pytest.mark.parametrize("qrels", ["q1\t10\n", "q1\t10\thigh\n"])
def test_load_beir_rejects_bad_qrels(tmp_path: Path, qrels: str) -> None:
    with pytest.raises(BeirFormatError, match=r"test.tsv:1"):
        load_beir(_write_dataset(tmp_path, qrels), split="test")


def test_load_beir_missing_text(tmp_path: Path) -> None:
    root = _write_dataset(tmp_path)
    (root / "corpus.jsonl").write_text('{"_id": "1", "title": "no text"}\n')
    with pytest.raises(BeirFormatError, match=r"corpus.jsonl:1: missing text"):
        load_beir(root, split="test")


def test_load_scifact_train() -> None:
    if not (SCIFACT / "corpus.jsonl").is_file():
        pytest.skip(f"dataset not present: {SCIFACT}")
    corpus, queries, qrels = load_beir(SCIFACT)
    assert (len(corpus), len(queries), len(qrels)) == (5183, 809, 809)
    assert sum(len(judged) for judged in qrels.values()) == 919
    assert set(qrels) <= set(queries)
    assert all(doc_id in corpus for judged in qrels.values() for doc_id in judged)
