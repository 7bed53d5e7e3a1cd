"""Operator endpoints (guarded by the ADMIN_TOKEN secret): tenants and their API keys.

Every route taking ``{tenant}`` accepts the tenant's id or its name, as the CLI does. The operator may
revoke any key, a tenant's last admin key included: that is how a leaked key is shut off, and the
operator can always issue a new one (tenants themselves get a 409 instead, see
:mod:`gateway.routes.keys`). To add a route: declare every status it can answer in ``problems(...)``
(401 and 403 come from the operator guard) and return a model from :mod:`gateway.tenancy`.
"""

from __future__ import annotations

from typing import Annotated, Any

from edgerag.store.tenants import TenantStore
from fastapi import APIRouter, Depends, Path

from gateway.deps import Clock, get_clock, get_env, require_operator
from gateway.openapi import problems
from gateway.tenancy import ApiKey, ApiKeyList, IssuedKey, NewKey, NewTenant, Tenant, TenantList

router = APIRouter(prefix="/v1/admin", tags=["admin"], dependencies=[Depends(require_operator)])

# 401: no or wrong operator token; 403: the admin API is disabled (no ADMIN_TOKEN secret). Routes with
# parameters also list 422, or FastAPI would document its own application/json 422 for them.
_GUARD = (401, 403)
TenantRef = Annotated[str, Path(description="the tenant's id (tnt_...) or its name", examples=["acme"])]


async def _store(env: Any = Depends(get_env), clock: Clock = Depends(get_clock)) -> TenantStore:
    return TenantStore(env.DB, clock=clock)


@router.post("/tenants", status_code=201, responses=problems(*_GUARD, 409, 422), summary="Create a tenant")
async def create_tenant(body: NewTenant, store: TenantStore = Depends(_store)) -> Tenant:
    return Tenant.from_record(await store.create_tenant(body.name, body.plan))


@router.get("/tenants", responses=problems(*_GUARD), summary="List tenants")
async def list_tenants(store: TenantStore = Depends(_store)) -> TenantList:
    return TenantList(tenants=[Tenant.from_record(t) for t in await store.list_tenants()])


@router.get("/tenants/{tenant}", responses=problems(*_GUARD, 404, 422), summary="Get a tenant by id or name")
async def get_tenant(tenant: TenantRef, store: TenantStore = Depends(_store)) -> Tenant:
    return Tenant.from_record(await store.find_tenant(tenant))


@router.get("/tenants/{tenant}/keys", responses=problems(*_GUARD, 404, 422), summary="List a tenant's keys")
async def list_keys(tenant: TenantRef, store: TenantStore = Depends(_store)) -> ApiKeyList:
    record = await store.find_tenant(tenant)
    return ApiKeyList(keys=[ApiKey.from_record(k) for k in await store.list_keys(record.id)])


@router.post(
    "/tenants/{tenant}/keys",
    status_code=201,
    responses=problems(*_GUARD, 404, 422),
    summary="Issue an API key for a tenant (shown once)",
)
async def create_key(body: NewKey, tenant: TenantRef, store: TenantStore = Depends(_store)) -> IssuedKey:
    record = await store.find_tenant(tenant)
    issued = await store.issue_key(record.id, body.name, " ".join(body.scopes))
    return IssuedKey(**ApiKey.from_record(issued.record).model_dump(), key=issued.plaintext)


@router.delete(
    "/tenants/{tenant}/keys/{key_id}",
    responses=problems(*_GUARD, 404, 422),
    summary="Revoke any key of a tenant (its last admin key included)",
)
async def revoke_key(key_id: str, tenant: TenantRef, store: TenantStore = Depends(_store)) -> ApiKey:
    record = await store.find_tenant(tenant)
    return ApiKey.from_record(await store.revoke_key(record.id, key_id, allow_lockout=True))
