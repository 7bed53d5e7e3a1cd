"""Tenant self-service API keys (``admin`` scope): list, create (shown once), revoke.

A tenant cannot revoke its last active admin key (409, see :mod:`edgerag.store.tenants`); the
operator's routes in :mod:`gateway.routes.admin` can, to rescue or lock down a tenant.
"""

from __future__ import annotations

from typing import Any

from edgerag.store.tenants import Principal, TenantStore
from fastapi import APIRouter, Depends

from gateway.deps import ADMIN, Clock, get_clock, get_env
from gateway.openapi import problems
from gateway.tenancy import ApiKey, ApiKeyList, IssuedKey, NewKey

router = APIRouter(prefix="/v1/keys", tags=["keys"])

# What every route here can answer besides its own statuses: no/unknown key, no admin scope, rate limit.
# Routes with parameters also list 422, or FastAPI would document its own application/json 422.
_AUTH = (401, 403, 429)


@router.get("", responses=problems(*_AUTH), summary="List the tenant's API keys")
async def list_keys(principal: Principal = Depends(ADMIN), env: Any = Depends(get_env)) -> ApiKeyList:
    records = await TenantStore(env.DB).list_keys(principal.tenant_id)
    return ApiKeyList(keys=[ApiKey.from_record(k) for k in records])


@router.post("", status_code=201, responses=problems(*_AUTH, 422), summary="Create an API key (shown once)")
async def create_key(
    body: NewKey,
    principal: Principal = Depends(ADMIN),
    env: Any = Depends(get_env),
    clock: Clock = Depends(get_clock),
) -> IssuedKey:
    store = TenantStore(env.DB, clock=clock)
    issued = await store.issue_key(principal.tenant_id, body.name, " ".join(body.scopes))
    return IssuedKey(**ApiKey.from_record(issued.record).model_dump(), key=issued.plaintext)


@router.delete(
    "/{key_id}",
    responses=problems(*_AUTH, 404, 409, 422),
    summary="Revoke an API key",
    description="Revoking twice is not an error. 409 if it is the tenant's last active admin key "
    "(the key making the request included): create another admin key first.",
)
async def revoke_key(
    key_id: str,
    principal: Principal = Depends(ADMIN),
    env: Any = Depends(get_env),
    clock: Clock = Depends(get_clock),
) -> ApiKey:
    return ApiKey.from_record(await TenantStore(env.DB, clock=clock).revoke_key(principal.tenant_id, key_id))
