"""edgerag.evaluation: MRR@k by hand, the runner (modes, judged/unjudged queries, determinism under
any completion order, bounded concurrency) and the comparison of two runs."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Sequence

import pytest
from edgerag.evaluation import (
    Cutoffs,
    JudgedQuery,
    Ranking,
    compare,
    evaluate,
    mrr_at_k,
    ndcg_at_k,
    run_evaluation,
)

LOG2_3 = math.log2(3)


def test_mrr_by_hand() -> None:
    relevant = {"d2": 1, "d4": 2, "d0": 0}
    assert mrr_at_k(["d1", "d2", "d4"], relevant, 10) == 0.5
    assert mrr_at_k(["d4", "d2"], relevant, 10) == 1.0
    assert mrr_at_k(["d1", "d0", "d3", "d2"], relevant, 3) == 0.0  # first relevant at rank 4 > k
    assert mrr_at_k(["d1", "d1", "d2"], relevant, 2) == 0.5  # a repeat counts once
    assert mrr_at_k(["d1"], {}, 10) == 0.0
    with pytest.raises(ValueError):
        mrr_at_k(["d1"], relevant, 0)


def test_evaluate_adds_mrr_only_when_asked() -> None:
    run, qrels = {"q": ["x", "a"]}, {"q": {"a": 1}}
    assert set(evaluate(run, qrels)) == {"ndcg@10", "recall@100"}
    assert evaluate(run, qrels, mrr_k=10)["mrr@10"] == 0.5


def test_cutoffs_name_and_score_every_metric() -> None:
    cutoffs = Cutoffs(ndcg_k=3, mrr_k=5, recall_ks=(100, 2, 2))
    assert cutoffs.names() == ["ndcg@3", "mrr@5", "recall@2", "recall@100"]
    assert cutoffs.depth == 100
    scores = cutoffs.score(["x", "a", "b"], {"a": 1, "b": 2})
    assert scores == {
        "ndcg@3": ndcg_at_k(["x", "a", "b"], {"a": 1, "b": 2}, 3),
        "mrr@5": 0.5,
        "recall@2": 0.5,
        "recall@100": 1.0,
    }
    with pytest.raises(ValueError):
        Cutoffs(ndcg_k=0)


class RecordingSearch:
    """A search function over fixed rankings that records its calls and the peak concurrency; the
    delay makes later queries finish first."""

    def __init__(self, rankings: dict[tuple[str, str], list[str]]) -> None:
        self.rankings = rankings
        self.calls: list[tuple[str, str]] = []
        self.in_flight = self.peak = 0

    async def __call__(self, text: str, mode: str) -> Sequence[str]:
        self.calls.append((text, mode))
        self.in_flight += 1
        self.peak = max(self.peak, self.in_flight)
        await asyncio.sleep(0.001 * (10 - len(self.calls) % 10))
        self.in_flight -= 1
        return self.rankings.get((text, mode), [])


async def test_run_scores_each_mode_and_averages_judged_queries() -> None:
    search = RecordingSearch(
        {
            ("rockets", "keyword"): ["r", "x"],
            ("rockets", "vector"): ["x", "r", "r"],
            ("bread", "keyword"): ["y", "z"],
            ("bread", "vector"): ["b"],
        }
    )
    queries = [
        JudgedQuery("rockets", {"r": 1}, "q1"),
        JudgedQuery("bread", {"b": 2, "c": 1}, "q2"),
        JudgedQuery("nothing relevant", {"r": 0}, "q3"),
    ]
    outcomes, summary = await run_evaluation(
        queries, ["keyword", "vector"], search, Cutoffs(ndcg_k=10, mrr_k=10, recall_ks=(1, 10)), keep=1
    )
    # q3 has no relevant document: reported, not searched, not averaged.
    assert [o.evaluated for o in outcomes] == [True, True, False]
    assert ("nothing relevant", "keyword") not in search.calls and len(search.calls) == 4
    bread_vector = 2 / (2 + 1 / LOG2_3)  # b (grade 2) at rank 1; ideal: b then c
    assert summary["keyword"] == {"ndcg@10": 0.5, "mrr@10": 0.5, "recall@1": 0.5, "recall@10": 0.5}
    assert summary["vector"]["ndcg@10"] == pytest.approx((1 / LOG2_3 + bread_vector) / 2)
    assert summary["vector"]["mrr@10"] == pytest.approx((0.5 + 1) / 2)
    assert summary["vector"]["recall@10"] == pytest.approx((1 + 0.5) / 2)
    rockets = outcomes[0].results["vector"]
    assert rockets.ranking == ["x"]  # cut to keep=1, repeats removed first
    assert rockets.first_relevant_rank == 2
    assert outcomes[1].results["keyword"].first_relevant_rank is None


async def test_results_keep_query_order_and_concurrency_is_bounded() -> None:
    rankings = {(f"q{i}", "hybrid"): [f"d{i}"] for i in range(30)}
    search = RecordingSearch(rankings)
    queries = [JudgedQuery(f"q{i}", {f"d{i}": 1} if i % 2 else {f"d{(i + 1) % 30}": 1}) for i in range(30)]
    outcomes, summary = await run_evaluation(queries, ["hybrid"], search, Cutoffs(), concurrency=3)
    assert [o.query.text for o in outcomes] == [f"q{i}" for i in range(30)]
    assert search.peak == 3
    assert summary["hybrid"]["ndcg@10"] == 0.5  # odd queries find their document, even ones do not


async def test_a_run_with_nothing_relevant_is_refused() -> None:
    with pytest.raises(ValueError, match="no query"):
        await run_evaluation([JudgedQuery("q", {"d": 0})], ["hybrid"], RecordingSearch({}), Cutoffs())


def test_compare_gives_mode_and_query_deltas() -> None:
    current = {"hybrid": {"ndcg@10": 0.8, "mrr@10": 0.9}, "vector": {"ndcg@10": 0.5}}
    baseline = {"hybrid": {"ndcg@10": 0.6, "mrr@10": 0.9, "recall@5": 1.0}, "keyword": {"ndcg@10": 0.4}}
    compared = compare(
        current,
        baseline,
        [("q1", "a", {"hybrid": {"ndcg@10": 1.0}}), ("q2", "b", {"hybrid": {"ndcg@10": 0.6}})],
        [("q1", "changed text", {"hybrid": {"ndcg@10": 0.5}}), ("q9", "z", {"hybrid": {"ndcg@10": 0.0}})],
    )
    assert compared["modes"] == {
        "hybrid": {
            "ndcg@10": {"baseline": 0.6, "current": 0.8, "delta": pytest.approx(0.2)},
            "mrr@10": {"baseline": 0.9, "current": 0.9, "delta": 0.0},
        }
    }
    assert compared["matched_by"] == "id"
    assert compared["queries"] == [{"id": "q1", "query": "a", "deltas": {"hybrid": {"ndcg@10": 0.5}}}]
    assert (compared["unmatched_current"], compared["unmatched_baseline"]) == (1, 1)


def test_compare_matches_by_text_when_a_query_has_no_id() -> None:
    compared = compare(
        {"hybrid": {"ndcg@10": 1.0}},
        {"hybrid": {"ndcg@10": 1.0}},
        [(None, "a", {"hybrid": {"ndcg@10": 1.0}})],
        [("q1", "a", {"hybrid": {"ndcg@10": 0.25}})],
    )
    assert compared["matched_by"] == "text"
    assert compared["queries"][0]["deltas"] == {"hybrid": {"ndcg@10": 0.75}}


async def test_a_ranking_reports_whether_it_was_reranked() -> None:
    async def search(text: str, mode: str) -> Ranking:
        return Ranking(["x", "d"], reranked=mode == "reranked")

    outcomes, _summary = await run_evaluation(
        [JudgedQuery("q", {"d": 1})], ["plain", "reranked"], search, Cutoffs()
    )
    assert outcomes[0].results["reranked"].reranked is True
    assert outcomes[0].results["plain"].reranked is False
    assert outcomes[0].results["plain"].first_relevant_rank == 2
