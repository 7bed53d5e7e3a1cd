"""The tenant's safety policy and the record of flagged content (``admin`` scope).

- ``GET /v1/safety/policy``: the policy in force (the default until one is written; ``updated_at`` null);
- ``PUT /v1/safety/policy``: replace it whole. Regexes must be in the safe subset
  (:mod:`edgerag.safety.regex`); a pattern outside it is a 422 naming the rule it breaks;
- ``GET /v1/safety/flags``: what the checks flagged, newest first (``limit``, ``before`` = the last id
  of the previous page, optional ``request_id``), with a hash and a short redacted excerpt, never the
  content.

The policy is what :class:`gateway.safety.SafetyGuard` applies to chat, answers and the OpenAI-compatible
routes. To add a setting: add it to :class:`edgerag.safety.SafetyPolicy` (with a default) — this route
serves it unchanged.
"""

from __future__ import annotations

from typing import Any, Literal

from edgerag.safety import SafetyPolicy, SafetyStore
from edgerag.store.tenants import Principal
from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, Field

from gateway.deps import ADMIN, get_env
from gateway.openapi import problems

__all__ = ["router"]

router = APIRouter(prefix="/v1/safety", tags=["safety"])

_AUTH = (401, 403, 429)
FLAG_ID_PATTERN = r"^flg_[0-9a-z]{26}$"


class PolicyView(BaseModel):
    policy: SafetyPolicy
    updated_at: str | None = Field(description="when the policy was last written; null: the default applies")


class FlagView(BaseModel):
    id: str
    end_user: str = Field(description="the X-End-User of the request ('' = the tenant's default user)")
    key_id: str | None
    request_id: str
    location: Literal["user_message", "source", "output"]
    chunk_id: str | None = Field(description="the flagged source's chunk (location 'source')")
    kind: Literal["injection", "denylist", "length", "redaction"]
    score: float = Field(ge=0, le=1, description="the injection score (1 for deny-list, length, redaction)")
    reasons: list[str] = Field(description="the rules that fired")
    action: Literal["allowed", "blocked", "dropped", "redacted"]
    content_sha256: str = Field(description="SHA-256 (hex) of the flagged text; the text is not stored")
    excerpt: str = Field(description="at most 200 characters around what fired, secrets redacted")
    created_at: str


class FlagList(BaseModel):
    flags: list[FlagView]
    next_before: str | None = Field(description="pass as 'before' for the next page; null: no more")


@router.get("/policy", responses=problems(*_AUTH), summary="The tenant's safety policy")
async def get_policy(principal: Principal = Depends(ADMIN), env: Any = Depends(get_env)) -> PolicyView:
    policy, updated_at = await SafetyStore(env.DB).get_policy(principal.tenant_id)
    return PolicyView(policy=policy, updated_at=updated_at)


@router.put(
    "/policy",
    responses=problems(*_AUTH, 422),
    summary="Replace the tenant's safety policy",
    description="The whole policy; omitted fields take their defaults. A regex outside the safe subset "
    "(unbounded or nested quantifiers, backreferences, lookarounds, too many ways to match) is a 422 "
    "naming the rule it breaks.",
)
async def put_policy(
    body: SafetyPolicy, principal: Principal = Depends(ADMIN), env: Any = Depends(get_env)
) -> PolicyView:
    updated_at = await SafetyStore(env.DB).put_policy(principal.tenant_id, body)
    return PolicyView(policy=body, updated_at=updated_at)


@router.get("/flags", responses=problems(*_AUTH, 422), summary="Flagged content, newest first")
async def list_flags(
    limit: int = Query(50, ge=1, le=100),
    before: str | None = Query(None, pattern=FLAG_ID_PATTERN, description="the last id of the previous page"),
    request_id: str | None = Query(
        None, min_length=1, max_length=128, description="only this request's flags"
    ),
    principal: Principal = Depends(ADMIN),
    env: Any = Depends(get_env),
) -> FlagList:
    records = await SafetyStore(env.DB).list_flags(
        principal.tenant_id, limit=limit + 1, before=before, request_id=request_id
    )
    page = records[:limit]
    return FlagList(
        flags=[FlagView(**vars(record)) for record in page],
        next_before=page[-1].id if len(records) > limit else None,
    )
