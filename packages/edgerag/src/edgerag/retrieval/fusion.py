"""Weighted reciprocal rank fusion (RRF) of ranked id lists from several retrievers.

``score(d) = sum(weight_r / (k + rank_r(d)))`` over the retrievers ``r`` that returned ``d``, with
ranks counted from 1 (Cormack, Clarke & Büttcher, SIGIR 2009; weighted as in most hybrid engines).
RRF uses ranks only, so bm25 scores and cosine similarities never need calibrating against each other;
``k`` (60 in the paper) damps the difference between the very top ranks; the weights let a weaker
retriever count less (benchmarks/eval_retrieval.py sweeps them on SciFact).

Determinism: scores are summed in retriever-name order (so equal inputs give bit-identical floats
whatever the mapping order), and ties are broken by the best single rank, then by id.

A retriever with weight 0 contributes no score: an id only it returned is left out, but its rank is
still reported in :attr:`FusedHit.ranks` for ids that other retrievers found (useful in debugging).
A retriever listing an id twice counts it once, at its better rank.

To fuse another retriever (e.g. a reranker's list), give it a name in ``ranked_lists`` and a weight.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

__all__ = ["KEYWORD", "VECTOR", "FusedHit", "FusionSettings", "fuse"]

KEYWORD = "keyword"
VECTOR = "vector"


@dataclass(frozen=True)
class FusionSettings:
    """How the gateway fuses keyword (FTS5 bm25) and vector (Vectorize) rankings."""

    keyword_weight: float = 1.0
    vector_weight: float = 1.0
    k: int = 60

    def __post_init__(self) -> None:
        _check_weights({KEYWORD: self.keyword_weight, VECTOR: self.vector_weight}, (KEYWORD, VECTOR))
        _check_k(self.k)

    def weights(self) -> dict[str, float]:
        return {KEYWORD: self.keyword_weight, VECTOR: self.vector_weight}


@dataclass(frozen=True)
class FusedHit:
    """One fused result: its id, RRF score, and its 1-based rank in each retriever that returned it."""

    id: str
    score: float
    ranks: dict[str, int] = field(default_factory=dict)


def fuse(
    ranked_lists: Mapping[str, Sequence[str]],
    weights: Mapping[str, float],
    *,
    limit: int,
    k: int = 60,
) -> list[FusedHit]:
    """The best ``limit`` ids across ``ranked_lists`` (retriever name -> ids, best first).

    Raises ``ValueError`` for a retriever without a weight, a negative or non-finite weight, all
    weights zero, ``k < 1`` or ``limit < 0``.
    """
    _check_k(k)
    if limit < 0:
        raise ValueError(f"limit must be >= 0, got {limit}")
    missing = sorted(set(ranked_lists) - set(weights))
    if missing:
        raise ValueError(f"no fusion weight for retriever(s) {missing}")
    if ranked_lists:
        _check_weights(weights, ranked_lists)
    scores: dict[str, float] = {}
    ranks: dict[str, dict[str, int]] = {}
    best: dict[str, int] = {}
    for name in sorted(ranked_lists):
        weight = float(weights[name])
        for position, item in enumerate(ranked_lists[name], start=1):
            item_ranks = ranks.get(item)
            if item_ranks is None:
                item_ranks = ranks[item] = {}
            elif name in item_ranks:
                continue
            item_ranks[name] = position
            if position < best.get(item, position + 1):
                best[item] = position
            if weight > 0:
                scores[item] = scores.get(item, 0.0) + weight / (k + position)
    # One key tuple per id (a lambda re-deriving the best rank per comparison was the costly part).
    ordered = sorted((-score, best[item], item) for item, score in scores.items())
    return [FusedHit(item, -negated, ranks[item]) for negated, _, item in ordered[:limit]]


def _check_weights(weights: Mapping[str, float], names: Sequence[str] | Mapping[str, object]) -> None:
    for name in names:
        weight = weights[name]
        if not math.isfinite(weight) or weight < 0:
            raise ValueError(f"fusion weight for {name!r} must be a finite number >= 0, got {weight!r}")
    if not any(weights[name] > 0 for name in names):
        raise ValueError("at least one retriever needs a fusion weight above 0")


def _check_k(k: int) -> None:
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise ValueError(f"the RRF constant k must be an int >= 1, got {k!r}")
