"""Reranking the fused candidates with a cross-encoder: Workers AI ``@cf/baai/bge-reranker-base``.

The call and result shapes are the model's published schema (Cloudflare's workers-types,
``Ai_Cf_Baai_Bge_Reranker_Base_Input/Output``)::

    env.AI.run("@cf/baai/bge-reranker-base",
               {"query": "...", "contexts": [{"text": "..."}, ...], "top_k": 20})
    -> {"response": [{"id": <index into contexts>, "score": <float>}, ...]}   # best first

Reranking is an improvement, never a dependency: :meth:`Reranker.rerank` gives up after its timeout
and on any model error or malformed answer, and the caller keeps the fused order. What happened is
reported in a :class:`RerankReport` (``applied``, ``reason``) that the API returns as is.

Inputs are cut to the model's 512-token window (query to :data:`QUERY_TOKENS`, each context to
:data:`CONTEXT_TOKENS`, at word boundaries) so a long chunk is scored on its beginning rather than
failing the call. A context is ``title + "\\n" + text``: the title is part of what the chunk is about.

To use another reranking model with the same shapes, pass its id (``RERANK_MODEL``).
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from edgerag.embedding import truncate_to_tokens
from edgerag.ports import Ai
from edgerag.tokens import estimate_tokens

__all__ = [
    "CONTEXT_TOKENS",
    "DEFAULT_RERANK_MODEL",
    "DEFAULT_RERANK_TIMEOUT_MS",
    "MAX_RERANK_TOP_N",
    "QUERY_TOKENS",
    "RerankError",
    "RerankReport",
    "Reranker",
    "rerank_order",
    "rerank_top_n",
]

DEFAULT_RERANK_MODEL = "@cf/baai/bge-reranker-base"
MAX_RERANK_TOP_N = 100  # candidates per call: the bound for the tenant setting and the request field
DEFAULT_RERANK_TIMEOUT_MS = 1000
QUERY_TOKENS = 96
CONTEXT_TOKENS = 400  # query + context + special tokens stay inside the model's 512
CONTEXT_CHARS = 1600  # ~400 tokens of English prose

Reason = Literal["timeout", "model_error", "no_candidates"]


def rerank_top_n(text: str) -> int:
    """Parse the ``RERANK_TOP_N`` setting: 0 (off) to :data:`MAX_RERANK_TOP_N`."""
    value = int(text)
    if not 0 <= value <= MAX_RERANK_TOP_N:
        raise ValueError(f"must be 0..{MAX_RERANK_TOP_N}")
    return value


class RerankError(RuntimeError):
    """The reranking model failed or answered something other than its documented shape."""


@dataclass(frozen=True)
class RerankReport:
    """What the rerank stage did for one search (``applied`` False: the fused order was kept)."""

    applied: bool
    model: str
    top_n: int
    candidates: int = 0
    reason: Reason | None = None
    ms: float = 0.0


class Reranker:
    """Scores (query, context) pairs with a Workers AI reranking model, within ``timeout_s``."""

    def __init__(self, ai: Ai, model: str = DEFAULT_RERANK_MODEL, *, timeout_s: float = 1.0) -> None:
        if not timeout_s > 0:
            raise ValueError(f"the rerank timeout must be > 0 s, got {timeout_s!r}")
        self._ai = ai
        self.model = model
        self.timeout_s = timeout_s

    async def scores(self, query: str, contexts: Sequence[str]) -> list[float]:
        """One relevance score per context (higher is better), in the contexts' order.

        Raises :class:`RerankError` for a model error or a malformed answer, and
        :class:`TimeoutError` after ``timeout_s``.
        """
        if not contexts:
            return []
        inputs = {
            "query": truncate_to_tokens(query, QUERY_TOKENS) or query[:256],
            "contexts": [{"text": _fit(text)} for text in contexts],
            "top_k": len(contexts),
        }
        try:
            async with asyncio.timeout(self.timeout_s):
                result: Any = await self._ai.run(self.model, inputs)
        except TimeoutError:
            raise
        except Exception as exc:  # the platform's error types are not importable here
            raise RerankError(f"{self.model} failed: {exc}") from exc
        return _parse(result, len(contexts), self.model)


def _fit(text: str) -> str:
    """``text`` cut at a word boundary to fit :data:`CONTEXT_TOKENS` (by the token estimate).

    First one slice to :data:`CONTEXT_CHARS`, then proportional cuts (the estimate grows about
    linearly with length): two or three estimates per context, where the binary search of
    :func:`~edgerag.embedding.truncate_to_tokens` over a whole chunk took ~11 (0.5 ms per context,
    most of the rerank stage's own CPU)."""
    if len(text) > CONTEXT_CHARS:
        text = _cut(text, CONTEXT_CHARS)
    for _ in range(3):
        estimate = estimate_tokens(text)
        if estimate <= CONTEXT_TOKENS:
            return text or " "
        text = _cut(text, int(len(text) * CONTEXT_TOKENS / estimate * 0.95))
    return truncate_to_tokens(text, CONTEXT_TOKENS) or " "


def _cut(text: str, chars: int) -> str:
    prefix = text[:chars]
    cut = max(prefix.rfind(" "), prefix.rfind("\n"))
    return prefix[:cut] if cut > chars // 2 else prefix


def _parse(result: Any, count: int, model: str) -> list[float]:
    try:
        response = result["response"]
    except (KeyError, TypeError, IndexError) as exc:
        raise RerankError(f"{model} answered without 'response'") from exc
    if not isinstance(response, list):
        raise RerankError(f"{model} answered a 'response' that is not a list")
    scores = [-math.inf] * count
    seen: set[int] = set()
    for item in response:
        try:
            index, score = item["id"], float(item["score"])
        except (KeyError, TypeError, ValueError) as exc:
            raise RerankError(f"{model} answered an item without a numeric id and score") from exc
        if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < count or index in seen:
            raise RerankError(f"{model} answered id {index!r} for {count} contexts")
        if not math.isfinite(score):
            raise RerankError(f"{model} answered a non-finite score")
        seen.add(index)
        scores[index] = score
    if len(seen) != count:
        raise RerankError(f"{model} scored {len(seen)} of {count} contexts")
    return scores


async def rerank_order(
    reranker: Reranker, query: str, contexts: Sequence[str], top_n: int
) -> tuple[list[tuple[int, float]] | None, RerankReport]:
    """The indices of ``contexts`` (the first ``top_n`` are scored) best first with their scores, or
    None (keep the fused order) with the report saying why."""
    began = time.perf_counter()
    scored = list(contexts[:top_n])

    def report(applied: bool, reason: Reason | None = None) -> RerankReport:
        ms = round((time.perf_counter() - began) * 1000, 2)
        return RerankReport(applied, reranker.model, top_n, len(scored), reason, ms)

    if not scored:
        return None, report(False, "no_candidates")
    try:
        scores = await reranker.scores(query, scored)
    except TimeoutError:
        return None, report(False, "timeout")
    except RerankError:
        return None, report(False, "model_error")
    # Stable: equal scores keep the fused order.
    order = sorted(range(len(scores)), key=lambda i: -scores[i])
    return [(i, scores[i]) for i in order], report(True)
