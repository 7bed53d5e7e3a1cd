"""edgerag.retrieval.fusion: weighted RRF scores (worked by hand), ties, validation, settings."""

from __future__ import annotations

import math

import pytest
from edgerag.retrieval.fusion import KEYWORD, VECTOR, FusedHit, FusionSettings, fuse
from hypothesis import given
from hypothesis import strategies as st


def test_scores_are_weighted_reciprocal_ranks() -> None:
    lists = {"keyword": ["a", "b", "c"], "vector": ["b", "d"]}
    hits = fuse(lists, {"keyword": 1.0, "vector": 0.5}, k=60, limit=10)
    expected = {
        "a": 1 / 61,
        "b": 1 / 62 + 0.5 / 61,
        "c": 1 / 63,
        "d": 0.5 / 62,
    }
    assert [h.id for h in hits] == ["b", "a", "c", "d"]
    for hit in hits:
        assert math.isclose(hit.score, expected[hit.id], rel_tol=1e-12)
    assert hits[0] == FusedHit("b", hits[0].score, {"keyword": 2, "vector": 1})


def test_k_damps_the_top_ranks() -> None:
    # "pair" is 2nd and 3rd, "solo" is 1st once. With a small k the first place counts for much
    # more (1/2 against 1/3 + 1/4); with k=60 agreement between retrievers wins clearly.
    lists = {"x": ["solo", "pair"], "y": ["other", "x2", "pair"]}
    small = {h.id: h.score for h in fuse(lists, {"x": 1, "y": 1}, k=1, limit=10)}
    assert math.isclose(small["solo"], 1 / 2) and math.isclose(small["pair"], 1 / 3 + 1 / 4)
    large = {h.id: h.score for h in fuse(lists, {"x": 1, "y": 1}, k=60, limit=10)}
    assert large["pair"] / large["solo"] > small["pair"] / small["solo"]


def test_limit() -> None:
    lists = {"keyword": [str(n) for n in range(50)]}
    assert len(fuse(lists, {"keyword": 1}, limit=7)) == 7
    assert fuse(lists, {"keyword": 1}, limit=0) == []
    assert fuse({}, {"keyword": 1}, limit=5) == []


def test_ties_break_by_best_rank_then_id() -> None:
    # Same score, same best rank (1): the id decides.
    hits = fuse({"keyword": ["b", "a"], "vector": ["a", "b"]}, {"keyword": 1, "vector": 1}, limit=5)
    assert [h.id for h in hits] == ["a", "b"]
    # Exactly equal scores (2/(1+3) == 1/(1+1)) with different best ranks: rank 1 beats rank 3,
    # although the id order says otherwise.
    hits = fuse({"x": ["m1", "m2", "aa"], "y": ["zz"]}, {"x": 2, "y": 1}, k=1, limit=5)
    assert hits[2].score == hits[3].score == 0.5
    assert [h.id for h in hits] == ["m1", "m2", "zz", "aa"]


def test_duplicates_within_a_list_count_once_at_their_best_rank() -> None:
    hits = fuse({"keyword": ["a", "a", "b", "a"]}, {"keyword": 1}, limit=5)
    assert [(h.id, h.ranks) for h in hits] == [("a", {"keyword": 1}), ("b", {"keyword": 3})]
    assert math.isclose(hits[0].score, 1 / 61)


def test_zero_weight_retrievers_add_no_score_and_no_ids() -> None:
    hits = fuse({"keyword": ["a"], "vector": ["b", "a"]}, {"keyword": 1, "vector": 0}, limit=5)
    assert [(h.id, h.ranks) for h in hits] == [("a", {"keyword": 1, "vector": 2})]
    assert math.isclose(hits[0].score, 1 / 61)


@pytest.mark.parametrize(
    ("weights", "match"),
    [
        ({"keyword": 1}, "no fusion weight"),
        ({"keyword": -1, "vector": 1}, ">= 0"),
        ({"keyword": math.nan, "vector": 1}, "finite"),
        ({"keyword": math.inf, "vector": 1}, "finite"),
        ({"keyword": 0, "vector": 0}, "above 0"),
    ],
)
def test_weights_are_validated(weights: dict[str, float], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        fuse({"keyword": ["a"], "vector": ["b"]}, weights, limit=5)


@pytest.mark.parametrize(("k", "limit"), [(0, 5), (-3, 5), (1.5, 5), (60, -1)])
def test_k_and_limit_are_validated(k: int, limit: int) -> None:
    with pytest.raises(ValueError):
        fuse({"keyword": ["a"]}, {"keyword": 1}, k=k, limit=limit)


def test_weights_for_absent_retrievers_are_ignored() -> None:
    hits = fuse({"keyword": ["a"]}, {"keyword": 1, "vector": 0, "rerank": -5}, limit=5)
    assert [h.id for h in hits] == ["a"]


@given(
    st.dictionaries(
        st.sampled_from(["keyword", "vector", "rerank"]),
        st.lists(st.sampled_from([f"d{n}" for n in range(12)]), max_size=12),
        min_size=1,
    ),
    st.integers(1, 100),
)
def test_fusion_is_deterministic_whatever_the_mapping_order(lists: dict[str, list[str]], k: int) -> None:
    weights = {"keyword": 1.0, "vector": 0.3, "rerank": 2.5}
    forward = fuse(lists, weights, k=k, limit=20)
    backward = fuse(dict(reversed(list(lists.items()))), weights, k=k, limit=20)
    assert forward == backward
    scores = [h.score for h in forward]
    assert scores == sorted(scores, reverse=True)
    assert {h.id for h in forward} == {i for ids in lists.values() for i in ids}


def test_fusion_settings() -> None:
    assert FusionSettings() == FusionSettings(keyword_weight=1.0, vector_weight=1.0, k=60)
    assert FusionSettings(0.5, 1.0).weights() == {KEYWORD: 0.5, VECTOR: 1.0}
    with pytest.raises(ValueError):
        FusionSettings(keyword_weight=0.0, vector_weight=0.0)
    with pytest.raises(ValueError):
        FusionSettings(keyword_weight=-1.0)
    with pytest.raises(ValueError):
        FusionSettings(k=0)
