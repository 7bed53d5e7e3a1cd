"""Weighted reciprocal rank fusion (RRF).

``score(d) = Σ_r weight_r / (k + rank_r(d))`` over the retrievers that returned ``d`` (ranks from 1).
RRF needs no score calibration between bm25 and cosine, which is why it fuses them; the weights let a
weak retriever count less (see benchmarks/eval_retrieval.py for how they were tuned). Ties break by the
best single rank, then by id, so results are deterministic.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

__all__ = ["FusedHit", "FusionSettings", "fuse"]


@dataclass(frozen=True)
class FusionSettings:
    keyword_weight: float = 1.0
    vector_weight: float = 1.0
    k: int = 60


@dataclass(frozen=True)
class FusedHit:
    id: str
    score: float
    ranks: dict[str, int] = field(default_factory=dict)


def fuse(
    ranked_lists: Mapping[str, Sequence[str]], weights: Mapping[str, float], *, k: int = 60, limit: int
) -> list[FusedHit]:
    if k < 1:
        raise ValueError("k must be >= 1")
    if any(w < 0 for w in weights.values()):
        raise ValueError("fusion weights must be >= 0")
    missing = set(ranked_lists) - set(weights)
    if missing:
        raise ValueError(f"no weight for retriever(s) {sorted(missing)}")
    if ranked_lists and not any(weights[name] for name in ranked_lists):
        raise ValueError("at least one retriever needs a weight above 0")
    scores: dict[str, float] = {}
    ranks: dict[str, dict[str, int]] = {}
    for name, ids in ranked_lists.items():
        weight = weights[name]
        seen: set[str] = set()
        for position, item in enumerate(ids, start=1):
            if item in seen:
                continue  # a retriever's duplicate counts once, at its best rank
            seen.add(item)
            ranks.setdefault(item, {})[name] = position
            if weight:
                scores[item] = scores.get(item, 0.0) + weight / (k + position)
    ordered = sorted(
        (item for item in ranks if item in scores),
        key=lambda item: (-scores[item], min(ranks[item].values()), item),
    )
    return [FusedHit(item, scores[item], ranks[item]) for item in ordered[: max(limit, 0)]]
