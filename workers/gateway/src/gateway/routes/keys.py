"""Tenant self-service API keys (``admin`` scope): list, create (shown once), revoke."""

from __future__ import annotations

from typing import Any

from edgerag.store.tenants import Principal, TenantStore
from fastapi import APIRouter, Depends

from gateway.deps import ADMIN, get_env
from gateway.routes.admin import NewKey

router = APIRouter(prefix="/v1/keys", tags=["keys"])


@router.get("")
async def list_keys(principal: Principal = Depends(ADMIN), env: Any = Depends(get_env)) -> dict[str, Any]:
    return {"keys": [k.to_dict() for k in await TenantStore(env.DB).list_keys(principal.tenant_id)]}


@router.post("", status_code=201)
async def create_key(
    body: NewKey, principal: Principal = Depends(ADMIN), env: Any = Depends(get_env)
) -> dict[str, Any]:
    issued = await TenantStore(env.DB).issue_key(principal.tenant_id, body.name, " ".join(body.scopes))
    return {**issued.record.to_dict(), "key": issued.plaintext}


@router.delete("/{key_id}")
async def revoke_key(
    key_id: str, principal: Principal = Depends(ADMIN), env: Any = Depends(get_env)
) -> dict[str, Any]:
    return (await TenantStore(env.DB).revoke_key(principal.tenant_id, key_id)).to_dict()
