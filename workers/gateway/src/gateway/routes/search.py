"""``POST /v1/search``: hybrid (keyword + vector) search over the caller's documents."""

from __future__ import annotations

from typing import Any, Literal

from edgerag.embedding import Embedder
from edgerag.store.tenants import Principal
from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict, Field, field_validator

from gateway.deps import READER, get_env, get_settings
from gateway.search import SearchRequest, hybrid_search
from gateway.settings import GatewaySettings

router = APIRouter(prefix="/v1", tags=["search"])

MAX_QUERY_CHARS = 2000


class SearchFilters(BaseModel):
    model_config = ConfigDict(extra="forbid")
    document_ids: list[str] = Field(default_factory=list, max_length=50)


class SearchBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    query: str = Field(max_length=MAX_QUERY_CHARS)
    top_k: int | None = Field(None, ge=1, le=100)
    mode: Literal["hybrid", "keyword", "vector"] = "hybrid"
    filters: SearchFilters | None = None

    @field_validator("query")
    @classmethod
    def searchable(cls, value: str) -> str:
        stripped = value.strip()
        if not stripped:
            raise ValueError("the query is empty")
        if not any(ch.isalnum() for ch in stripped):
            raise ValueError("the query has no letters or digits to search for")
        return stripped


@router.post("/search")
async def search(
    body: SearchBody,
    principal: Principal = Depends(READER),
    env: Any = Depends(get_env),
    settings: GatewaySettings = Depends(get_settings),
) -> dict[str, Any]:
    request = SearchRequest(
        tenant_id=principal.tenant_id,
        query=body.query,
        top_k=body.top_k or settings.search_default_top_k,
        mode=body.mode,
        document_ids=tuple(body.filters.document_ids) if body.filters else (),
    )
    embedder = Embedder(env.AI, settings.embedding_model)
    weights = {"keyword": settings.keyword_weight, "vector": settings.vector_weight}
    result = await hybrid_search(env, request, embedder, weights, settings.rrf_k)
    return {
        "query": body.query,
        "mode": body.mode,
        "results": [
            {
                "document_id": h.document_id,
                "title": h.title,
                "chunk_id": h.chunk_id,
                "seq": h.seq,
                "snippet": h.snippet,
                "score": round(h.score, 6),
                "retrievers": h.retrievers,
            }
            for h in result.hits
        ],
        "timings_ms": result.timings_ms,
    }
