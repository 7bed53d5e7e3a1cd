"""The gateway's settings, parsed once from its env vars (and the ADMIN_TOKEN secret)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from edgerag.retrieval.rerank import DEFAULT_RERANK_MODEL, DEFAULT_RERANK_TIMEOUT_MS, Reranker, rerank_top_n
from edgerag.settings import non_negative_float, positive_int, var

__all__ = ["GatewaySettings"]


@dataclass(frozen=True)
class GatewaySettings:
    embedding_model: str = var("EMBEDDING_MODEL")
    max_upload_bytes: int = var("MAX_UPLOAD_BYTES", positive_int, 10 * 1024 * 1024)
    search_default_top_k: int = var("SEARCH_DEFAULT_TOP_K", positive_int, 10)
    keyword_weight: float = var("FUSION_KEYWORD_WEIGHT", non_negative_float, 1.0)
    vector_weight: float = var("FUSION_VECTOR_WEIGHT", non_negative_float, 2.0)
    rrf_k: int = var("FUSION_RRF_K", positive_int, 10)
    # Rerank of the fused candidates (edgerag.retrieval.rerank): the tenant's default pool size for
    # /v1/search and for the sources of answers, chat and the OpenAI routes (0: off unless a search
    # request asks), the model and the time it gets before the fused order
    # is kept. Set per tenant in the tenant file's vars.
    rerank_model: str = var("RERANK_MODEL", str, DEFAULT_RERANK_MODEL)
    rerank_top_n: int = var("RERANK_TOP_N", rerank_top_n, 0)
    rerank_timeout_ms: int = var("RERANK_TIMEOUT_MS", positive_int, DEFAULT_RERANK_TIMEOUT_MS)
    # The RATE_LIMITER binding's simple.period (it does not tell), for Retry-After (gateway.ratelimit).
    rate_limit_period: int = var("RATE_LIMIT_PERIOD", positive_int, 60)
    # The operator secret guarding /v1/admin (wrangler secret put ADMIN_TOKEN); empty disables admin.
    admin_token: str = var("ADMIN_TOKEN", str, "")

    def reranker(self, ai: Any, timeout_ms: int | None = None) -> Reranker:
        """The tenant's reranker over the ``AI`` binding (it runs only for a request whose
        ``rerank_top_n`` > 0)."""
        return Reranker(ai, self.rerank_model, timeout_s=(timeout_ms or self.rerank_timeout_ms) / 1000)
