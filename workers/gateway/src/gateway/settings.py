"""The gateway's settings, parsed once from its env vars (and the ADMIN_TOKEN secret)."""

from __future__ import annotations

from dataclasses import dataclass

from edgerag.settings import non_negative_float, positive_int, var

__all__ = ["GatewaySettings"]


@dataclass(frozen=True)
class GatewaySettings:
    embedding_model: str = var("EMBEDDING_MODEL")
    max_upload_bytes: int = var("MAX_UPLOAD_BYTES", positive_int, 10 * 1024 * 1024)
    search_default_top_k: int = var("SEARCH_DEFAULT_TOP_K", positive_int, 10)
    keyword_weight: float = var("FUSION_KEYWORD_WEIGHT", non_negative_float, 1.0)
    vector_weight: float = var("FUSION_VECTOR_WEIGHT", non_negative_float, 0.2)
    rrf_k: int = var("FUSION_RRF_K", positive_int, 10)
    # The RATE_LIMITER binding's simple.period (it does not tell), for Retry-After (gateway.ratelimit).
    rate_limit_period: int = var("RATE_LIMIT_PERIOD", positive_int, 60)
    # The operator secret guarding /v1/admin (wrangler secret put ADMIN_TOKEN); empty disables admin.
    admin_token: str = var("ADMIN_TOKEN", str, "")
