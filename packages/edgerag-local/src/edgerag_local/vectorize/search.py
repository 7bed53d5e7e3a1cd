"""Exact top-k search over namespace slabs, scored the way Vectorize reports scores.

Score per metric (developers.cloudflare.com/vectorize/best-practices/create-indexes#distance-metrics):

* ``cosine``: cosine similarity in [-1, 1]; higher is closer; matches sorted descending. A zero-length
  vector (stored or queried) scores 0 rather than NaN.
* ``euclidean``: L2 distance (not squared); 0 is identical; matches sorted ascending.
* ``dot-product``: the *negative* dot product, as the docs define it ("a score of -1000 is more similar
  than -500"); matches sorted ascending.

A query is one float32 matrix-vector product per namespace, on the calling thread: candidates are
picked with ``argpartition`` on a float32 approximation, then re-scored exactly in float64 from the
stored float32 values, so returned scores carry no float32 cancellation error (the edge computes exact
scores when ``returnValues`` is set; locally they are always exact). A filter becomes a row mask first;
a selective mask gathers its rows before the product, a broad one masks the product's result.

To add a metric: give it an approximate ranking in :func:`_approximate` and an exact score and
direction in :func:`_exact` / :data:`_ASCENDING`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from edgerag_local.vectorize.config import Metric
from edgerag_local.vectorize.filter import CompiledFilter
from edgerag_local.vectorize.slab import NamespaceSlab

__all__ = ["Hit", "search"]

F32 = npt.NDArray[np.float32]
F64 = npt.NDArray[np.float64]

_ASCENDING: dict[Metric, bool] = {"cosine": False, "euclidean": True, "dot-product": True}
# Gathering rows copies them; below this share of a namespace that is cheaper than a full product.
_GATHER_BELOW = 0.1
# Extra candidates re-scored exactly, so float32 ranking error near the cut cannot drop a true match.
_MARGIN = 16


@dataclass(frozen=True, slots=True)
class Hit:
    score: float
    slab: NamespaceSlab
    row: int

    @property
    def id(self) -> str:
        return self.slab.ids[self.row]


def _matvec(matrix: F32, vector: F32) -> F32:
    # einsum runs on the calling thread. A BLAS matmul may fan out to threads that, on a busy machine
    # (the local stack runs several processes), wait for CPU time: measured on the 2-core dev box, a
    # 100k x 768 scan went from ~16 ms (einsum) to ~40 ms p50 with 2 BLAS threads, and even a 2k scan
    # had a 20 ms p95. The scan is memory-bound, so one thread loses little when the box is idle.
    result: F32 = np.einsum("ij,j->i", matrix, vector)
    return result


def _safe_divide(numerator: F64, denominator: F64) -> F64:
    out = np.zeros_like(numerator)
    np.divide(numerator, denominator, out=out, where=denominator > 0)
    return out


def _approximate(metric: Metric, dots: F32, norms: F32, query_norm: float) -> F64:
    """A float64 ranking key, higher is better (cheap: no per-row vector work)."""
    dots64 = dots.astype(np.float64)
    if metric == "cosine":
        return _safe_divide(dots64, norms.astype(np.float64) * query_norm)
    if metric == "euclidean":
        # ||v - q||^2 = ||v||^2 - 2 v.q + ||q||^2; the last term is the same for every row.
        return 2.0 * dots64 - np.square(norms.astype(np.float64))
    return dots64


def _exact(metric: Metric, vectors: F64, query: F64) -> F64:
    """The score Vectorize reports, computed in float64."""
    if metric == "euclidean":
        diff: F64 = vectors - query
        distances: F64 = np.sqrt(np.einsum("ij,ij->i", diff, diff))
        return distances
    dots: F64 = np.einsum("ij,j->i", vectors, query)
    if metric == "dot-product":
        return -dots
    norms = np.linalg.norm(vectors, axis=1) * float(np.linalg.norm(query))
    return _safe_divide(dots, norms)


def _slab_candidates(
    slab: NamespaceSlab, query: F32, query64: F64, metric: Metric, want: int, flt: CompiledFilter | None
) -> list[Hit]:
    n = slab.size
    rows: npt.NDArray[np.intp] | None = None
    if flt is not None:
        rows = np.flatnonzero(flt.mask(slab))
        if rows.size == 0:
            return []
        if rows.size == n:
            rows = None
    if rows is None:
        dots = _matvec(slab.matrix[:n], query)
        norms = slab.norms[:n]
    elif rows.size < n * _GATHER_BELOW:
        dots = _matvec(slab.matrix[rows], query)
        norms = slab.norms[rows]
    else:
        dots = _matvec(slab.matrix[:n], query)[rows]
        norms = slab.norms[rows]
    key = _approximate(metric, dots, norms, float(np.linalg.norm(query64)))
    count = min(key.shape[0], want + _MARGIN)
    picked = np.argpartition(-key, count - 1)[:count] if count < key.shape[0] else np.arange(key.shape[0])
    picked_rows = picked if rows is None else rows[picked]
    scores = _exact(metric, slab.matrix[picked_rows].astype(np.float64), query64)
    return [Hit(float(s), slab, int(r)) for s, r in zip(scores, picked_rows, strict=True)]


def search(
    slabs: Iterable[NamespaceSlab],
    query: F32,
    metric: Metric,
    top_k: int,
    flt: CompiledFilter | None = None,
) -> list[Hit]:
    """The ``top_k`` best rows across ``slabs`` that pass ``flt``, best first (ties by id)."""
    query64 = query.astype(np.float64)
    hits: list[Hit] = []
    for slab in slabs:
        if slab.size:
            hits.extend(_slab_candidates(slab, query, query64, metric, top_k, flt))
    sign = 1.0 if _ASCENDING[metric] else -1.0
    hits.sort(key=lambda hit: (sign * hit.score, hit.id))
    return hits[:top_k]
