"""Operator endpoints (guarded by the ADMIN_TOKEN secret): tenants and their API keys."""

from __future__ import annotations

from typing import Any, Literal

from edgerag.store.tenants import TenantStore
from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict, Field

from gateway.deps import get_env, require_operator

ScopeName = Literal["read", "write", "admin"]
_DEFAULT_SCOPES: tuple[ScopeName, ...] = ("read", "write")

router = APIRouter(prefix="/v1/admin", tags=["admin"], dependencies=[Depends(require_operator)])


class NewTenant(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=64, pattern=r"^[a-z0-9][a-z0-9-]*$")
    plan: Literal["free", "standard", "enterprise"] = "free"


class NewKey(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=100)
    scopes: list[ScopeName] = Field(default_factory=lambda: list(_DEFAULT_SCOPES), min_length=1)


@router.post("/tenants", status_code=201)
async def create_tenant(body: NewTenant, env: Any = Depends(get_env)) -> dict[str, Any]:
    tenant = await TenantStore(env.DB).create_tenant(body.name, body.plan)
    return tenant.to_dict()


@router.get("/tenants")
async def list_tenants(env: Any = Depends(get_env)) -> dict[str, Any]:
    return {"tenants": [t.to_dict() for t in await TenantStore(env.DB).list_tenants()]}


@router.post("/tenants/{tenant_id}/keys", status_code=201)
async def create_key(tenant_id: str, body: NewKey, env: Any = Depends(get_env)) -> dict[str, Any]:
    issued = await TenantStore(env.DB).issue_key(tenant_id, body.name, " ".join(body.scopes))
    return {**issued.record.to_dict(), "key": issued.plaintext}
