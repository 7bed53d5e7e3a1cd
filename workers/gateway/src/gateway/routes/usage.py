"""Usage figures and limits: ``GET /v1/usage``, ``GET /v1/usage/limits`` (tenant, ``read`` scope), and
``GET/PUT /v1/admin/tenants/{tenant}/limits`` (operator). The limits are the plan's request limits,
monthly budgets and storage limits (:mod:`edgerag.budgets`); the tenant's view also says how much of
each it uses (requests this hour, tokens and cost this month, documents and bytes stored).

Usage is readable with the ``read`` scope (admin and write imply it): it is the tenant's own
read-only data, and a dashboard needs no power to change anything. Chat-only keys (handed to end-user
clients) cannot read it. Figures per UTC day: model calls per model from dedalus's ``llm_calls``
(tokens, cost in micro-dollars), and the gateway's counters (requests counted against the hourly
limit, rate-limited refusals, cache hits and misses per cache).

Dates are UTC days ``YYYY-MM-DD`` (schema pattern; 422 otherwise); a range that cannot be answered
(not a calendar date, ``from`` after ``to``, over :data:`MAX_DAYS` days) is a 400.

To add a figure: report it in :mod:`edgerag.usage_report`, then add a described field here.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from edgerag.budgets import Limits, load_limits, month_of, save_limits, storage_usage
from edgerag.counters import hour_of
from edgerag.problems import BadRequest
from edgerag.store.d1 import fetch_one
from edgerag.store.tenants import Principal, TenantStore
from edgerag.usage_report import usage_report
from fastapi import APIRouter, Depends, Path, Query
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from gateway.deps import READER, Clock, get_clock, get_env, require_operator
from gateway.openapi import json_integer, problems

router = APIRouter(tags=["usage"])

MAX_DAYS = 366
MAX_COUNT = 10**15  # far beyond any budget, well inside SQLite's 64-bit INTEGER


_Count = Annotated[int, Field(ge=0, le=MAX_COUNT), BeforeValidator(json_integer)]  # bounds first


class ModelDay(BaseModel):
    model: str = Field(description="the configured model id (dedalus's catalog key)")
    calls: int = Field(description="model calls, retries and fallbacks each counted")
    failed_calls: int = Field(description="calls that failed or were interrupted")
    prompt_tokens: int = Field(description="tokens in")
    completion_tokens: int = Field(description="tokens out")
    cached_prompt_tokens: int = Field(description="tokens in served from the provider's prompt cache")
    cost_micro_usd: int = Field(description="cost in millionths of a US dollar (exact integer sums)")


class CacheDay(BaseModel):
    hits: int = Field(description="lookups answered from the cache")
    misses: int = Field(description="lookups that were not (a cache failure counts as a miss)")


class UsageDay(BaseModel):
    date: str = Field(description="UTC day, YYYY-MM-DD", json_schema_extra={"format": "date"})
    requests: int = Field(description="model-backed requests counted against the plan's hourly limit")
    rate_limited: int = Field(description="requests refused by the burst rate limit or the hourly limit")
    prompt_tokens: int = Field(description="tokens in, all models")
    completion_tokens: int = Field(description="tokens out, all models")
    cost_micro_usd: int = Field(description="cost, all models, in micro-dollars")
    models: list[ModelDay] = Field(description="per model, by model id")
    cache: dict[str, CacheDay] = Field(description="per cache: 'embedding', 'search', 'answer'")


class UsageResponse(BaseModel):
    from_: str = Field(serialization_alias="from", description="first day reported (UTC)")
    to: str = Field(description="last day reported (UTC), inclusive")
    days: list[UsageDay] = Field(description="days with any usage, oldest first")


class LimitValues(BaseModel):
    model_config = ConfigDict(extra="forbid")
    requests_per_hour: _Count | None = Field(
        None, description="model-backed requests per UTC hour; null: no limit (or, in a PUT, the plan's)"
    )
    monthly_token_budget: _Count | None = Field(
        None, description="prompt + completion tokens per UTC month; null: none (PUT: the plan's)"
    )
    monthly_cost_budget_micro_usd: _Count | None = Field(
        None, description="cost per UTC month in micro-dollars; null: none (PUT: the plan's)"
    )
    max_documents: _Count | None = Field(
        None,
        description="documents stored at once (any status, pending presigned uploads included); "
        "null: no limit (PUT: the plan's)",
    )
    max_stored_bytes: _Count | None = Field(
        None,
        description="bytes of original files stored at once (pending uploads: their declared size); "
        "null: no limit (PUT: the plan's)",
    )

    @classmethod
    def of(cls, limits: Limits) -> LimitValues:
        return cls(**limits.__dict__)


class LimitsResponse(BaseModel):
    tenant_id: str
    plan: str = Field(description="the tenant's plan, which sets the defaults")
    limits: LimitValues = Field(description="what is enforced: the overrides over the plan's defaults")
    overrides: LimitValues | None = Field(description="the tenant's own settings; null: plan defaults")
    requests_this_hour: int = Field(description="requests counted in the current UTC hour")
    tokens_this_month: int
    cost_this_month_micro_usd: int
    documents_stored: int = Field(description="documents (any status) plus pending presigned uploads")
    bytes_stored: int = Field(description="their sizes in bytes (what max_stored_bytes limits)")


_DATE = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"


def _date(value: str | None, name: str) -> dt.date | None:
    if value is None:
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise BadRequest(f"'{name}' is not a calendar date: {value}") from None


def _parse_range(start: str | None, end: str | None, now: float) -> tuple[dt.date, dt.date]:
    last = _date(end, "to") or dt.datetime.fromtimestamp(now, dt.UTC).date()
    first = _date(start, "from") or last - dt.timedelta(days=29)
    if first > last:
        raise BadRequest(f"'from' ({first}) is after 'to' ({last}; 'to' defaults to today, UTC)")
    if (last - first).days + 1 > MAX_DAYS:
        raise BadRequest(f"at most {MAX_DAYS} days per request; ask for the range in parts")
    return first, last


@router.get("/v1/usage", responses=problems(400, 401, 403, 422, 429), summary="Usage per day and model")
async def get_usage(
    principal: Principal = Depends(READER),
    env: Any = Depends(get_env),
    clock: Clock = Depends(get_clock),
    start: str | None = Query(
        None,
        alias="from",
        pattern=_DATE,
        description="first UTC day, YYYY-MM-DD (default: 'to' minus 29 days)",
        json_schema_extra={"format": "date"},
    ),
    end: str | None = Query(
        None,
        alias="to",
        pattern=_DATE,
        description="last UTC day, inclusive, YYYY-MM-DD (default: today)",
        json_schema_extra={"format": "date"},
    ),
) -> UsageResponse:
    first, last = _parse_range(start, end, clock())
    days = await usage_report(env.DB, principal.tenant_id, first, last)
    return UsageResponse(
        from_=first.isoformat(),
        to=last.isoformat(),
        days=[
            UsageDay(
                date=day.date,
                requests=day.requests,
                rate_limited=day.rate_limited,
                prompt_tokens=sum(m.prompt_tokens for m in day.models),
                completion_tokens=sum(m.completion_tokens for m in day.models),
                cost_micro_usd=sum(m.cost_micro_usd for m in day.models),
                models=[ModelDay(**m.__dict__) for m in day.models],
                cache={kind: CacheDay(hits=c.hits, misses=c.misses) for kind, c in day.cache.items()},
            )
            for day in days
        ],
    )


async def _limits(env: Any, tenant_id: str, now: float) -> LimitsResponse:
    plan, limits, stored = await load_limits(env.DB, tenant_id)
    hour = await fetch_one(
        env.DB,
        "SELECT value FROM usage_counters WHERE tenant_id = ?1 AND hour = ?2 AND name = 'requests'",
        tenant_id,
        hour_of(now),
    )
    month = await fetch_one(
        env.DB,
        "SELECT tokens, cost_micro_usd FROM usage_months WHERE tenant_id = ?1 AND month = ?2",
        tenant_id,
        month_of(now),
    )
    storage = await storage_usage(env.DB, tenant_id)
    return LimitsResponse(
        tenant_id=tenant_id,
        plan=plan,
        limits=LimitValues.of(limits),
        overrides=None if stored is None else LimitValues.of(stored),
        requests_this_hour=int(hour["value"]) if hour else 0,
        tokens_this_month=int(month["tokens"]) if month else 0,
        cost_this_month_micro_usd=int(month["cost_micro_usd"]) if month else 0,
        documents_stored=storage.documents,
        bytes_stored=storage.bytes,
    )


@router.get("/v1/usage/limits", responses=problems(401, 403, 429), summary="The tenant's limits")
async def get_own_limits(
    principal: Principal = Depends(READER),
    env: Any = Depends(get_env),
    clock: Clock = Depends(get_clock),
) -> LimitsResponse:
    return await _limits(env, principal.tenant_id, clock())


TenantRef = Annotated[str, Path(description="the tenant's id (tnt_...) or its name", examples=["acme"])]


@router.get(
    "/v1/admin/tenants/{tenant}/limits",
    tags=["admin"],
    dependencies=[Depends(require_operator)],
    responses=problems(401, 403, 404, 422),
    summary="A tenant's limits",
)
async def admin_get_limits(
    tenant: TenantRef, env: Any = Depends(get_env), clock: Clock = Depends(get_clock)
) -> LimitsResponse:
    record = await TenantStore(env.DB, clock=clock).find_tenant(tenant)
    return await _limits(env, record.id, clock())


@router.put(
    "/v1/admin/tenants/{tenant}/limits",
    tags=["admin"],
    dependencies=[Depends(require_operator)],
    responses=problems(401, 403, 404, 422),
    summary="Set a tenant's limits (null fields: the plan's defaults)",
)
async def admin_put_limits(
    tenant: TenantRef, body: LimitValues, env: Any = Depends(get_env), clock: Clock = Depends(get_clock)
) -> LimitsResponse:
    record = await TenantStore(env.DB, clock=clock).find_tenant(tenant)
    await save_limits(env.DB, record.id, Limits(**body.model_dump()))
    return await _limits(env, record.id, clock())
