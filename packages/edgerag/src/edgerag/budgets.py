"""Plans' request limits and monthly budgets: what a tenant may spend, and the check before a request.

Limits per tenant (:class:`Limits`): ``requests_per_hour`` (model-backed requests: chat, answers, the
OpenAI-compatible routes), ``monthly_token_budget`` (prompt + completion tokens of every model call)
and ``monthly_cost_budget_micro_usd``. Each is the plan's default (:data:`PLAN_DEFAULTS`: free 100/hour
and 1,000,000 tokens a month; standard and enterprise 1,000/hour and no budget) unless the tenant has
an override in ``tenant_limits`` (migration 0007), set by the operator (``PUT
/v1/admin/tenants/{tenant}/limits``). None means "no limit".

:func:`admit` runs before anything is consumed (before any model call or storage):

1. one D1 read: plan, overrides, and this month's totals (``usage_months``, kept by a trigger on
   ``llm_calls`` inserts, so no month of rows is summed per request);
2. a monthly budget already reached -> :class:`BudgetExhausted`, **402** (a limit that waiting a few
   minutes will not lift, unlike a 429: clients and SDKs that retry 429s must not spin on it), naming
   the budget, what was used and the reset (the first instant of the next UTC month);
3. the hourly limit: ONE conditional upsert of this hour's ``requests`` counter, which only increments
   while below the limit, so racing isolates cannot overshoot; refused -> :class:`RequestLimitExceeded`,
   **429** with ``Retry-After`` = seconds to the end of the UTC hour (fixed windows aligned to the
   hour). A refused request increments nothing.

Budgets are checked before a request, and its tokens are known only after it, so a tenant's last
admitted requests may take it past its budget by at most what they use (a soft cap, the usual one
for token budgets); the next request is then refused.

The per-minute ``RATE_LIMITER`` binding stays in front as the burst limit (gateway.ratelimit).

Storage limits (:func:`admit_storage`): ``max_documents`` and ``max_stored_bytes`` per tenant, plan
defaults (free: 1,000 documents and 1 GiB; standard: 100,000 and 100 GiB; enterprise: none) overridden
the same way. What a tenant stores is one row of ``tenant_storage`` (migration 0013), kept by triggers:
its documents (any status, until deleted) and its pending presigned uploads (a declared upload holds
its place until completed or expired), with their sizes. Every way in checks before storing anything:
an upload (each item of a batch, and dedalus's ingest tool, through :mod:`edgerag.intake`), a presigned
upload when declared (its declared size) and when completed (the tenant must not be over its limits,
which an operator may have lowered meanwhile), and a URL source (which must leave room for its page;
its size counts once fetched). Refused -> :class:`StorageLimitReached`, **402** like a used-up budget:
waiting will not lift it; deleting documents or a higher limit will. The check and the write are not
one transaction, so uploads racing each other may pass the limit by at most the ones in flight.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, replace
from typing import Any, Final

from edgerag.counters import hour_of
from edgerag.ports import D1Database
from edgerag.problems import NotFound, Problem, RateLimited
from edgerag.store.d1 import fetch_all, fetch_one, now_iso, run

__all__ = [
    "PLAN_DEFAULTS",
    "Admission",
    "BudgetExhausted",
    "Limits",
    "RequestLimitExceeded",
    "StorageLimitReached",
    "StorageUsage",
    "admit",
    "admit_storage",
    "load_limits",
    "month_of",
    "save_limits",
    "storage_usage",
]


@dataclass(frozen=True)
class Limits:
    requests_per_hour: int | None
    monthly_token_budget: int | None
    monthly_cost_budget_micro_usd: int | None
    max_documents: int | None = None
    max_stored_bytes: int | None = None


_GIB = 1024**3
PLAN_DEFAULTS: Final[dict[str, Limits]] = {
    "free": Limits(100, 1_000_000, None, max_documents=1_000, max_stored_bytes=_GIB),
    "standard": Limits(1000, None, None, max_documents=100_000, max_stored_bytes=100 * _GIB),
    "enterprise": Limits(1000, None, None),
}
_FIELDS = (
    "requests_per_hour",
    "monthly_token_budget",
    "monthly_cost_budget_micro_usd",
    "max_documents",
    "max_stored_bytes",
)
_LIMIT_COLUMNS = ", ".join(f"l.{name}" for name in _FIELDS)


class BudgetExhausted(Problem):
    """402: the tenant's monthly token or cost budget is used up until ``resets_at``."""

    status, title, slug = 402, "Payment Required", "budget-exhausted"


class StorageLimitReached(Problem):
    """402: storing this would take the tenant past its document or stored-byte limit."""

    status, title, slug = 402, "Payment Required", "storage-limit"


@dataclass(frozen=True)
class StorageUsage:
    documents: int  # documents (any status) and pending presigned uploads
    bytes: int


class RequestLimitExceeded(RateLimited):
    """429: the plan's hourly request limit (the slug tells it from the per-minute burst limit)."""

    slug = "request-limit"


@dataclass(frozen=True)
class Admission:
    """What :func:`admit` saw: the limits applied and the counts after this request."""

    plan: str
    limits: Limits
    requests_this_hour: int
    tokens_this_month: int
    cost_this_month_micro_usd: int


def _utc(seconds: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(seconds, dt.UTC)


def month_of(seconds: float) -> str:
    return _utc(seconds).strftime("%Y-%m")


def _iso(moment: dt.datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _next_month(seconds: float) -> dt.datetime:
    now = _utc(seconds)
    year, month = (now.year + 1, 1) if now.month == 12 else (now.year, now.month + 1)
    return dt.datetime(year, month, 1, tzinfo=dt.UTC)


def _next_hour(seconds: float) -> dt.datetime:
    return _utc(seconds).replace(minute=0, second=0, microsecond=0) + dt.timedelta(hours=1)


def _merge(plan: str, row: dict[str, Any] | None) -> Limits:
    limits = PLAN_DEFAULTS.get(plan, PLAN_DEFAULTS["free"])
    if row is None:
        return limits
    overrides = {name: row[name] for name in _FIELDS if row.get(name) is not None}
    return replace(limits, **overrides)


async def load_limits(db: D1Database, tenant_id: str) -> tuple[str, Limits, Limits | None]:
    """The tenant's plan, effective limits and stored overrides (None fields: the plan default)."""
    row = await fetch_one(
        db,
        f"SELECT t.plan, l.tenant_id AS has_row, {_LIMIT_COLUMNS} FROM tenants t"
        " LEFT JOIN tenant_limits l ON l.tenant_id = t.id WHERE t.id = ?1",
        tenant_id,
    )
    if row is None:
        raise NotFound(f"no tenant {tenant_id}")
    stored = Limits(*(row[name] for name in _FIELDS)) if row["has_row"] is not None else None
    return row["plan"], _merge(row["plan"], row), stored


async def save_limits(db: D1Database, tenant_id: str, overrides: Limits) -> None:
    """Store the tenant's overrides (each None field falls back to the plan default)."""
    await run(
        db,
        "INSERT INTO tenant_limits (tenant_id, requests_per_hour, monthly_token_budget,"
        " monthly_cost_budget_micro_usd, max_documents, max_stored_bytes, updated_at)"
        " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)"
        " ON CONFLICT (tenant_id) DO UPDATE SET requests_per_hour = excluded.requests_per_hour,"
        " monthly_token_budget = excluded.monthly_token_budget,"
        " monthly_cost_budget_micro_usd = excluded.monthly_cost_budget_micro_usd,"
        " max_documents = excluded.max_documents, max_stored_bytes = excluded.max_stored_bytes,"
        " updated_at = excluded.updated_at",
        tenant_id,
        overrides.requests_per_hour,
        overrides.monthly_token_budget,
        overrides.monthly_cost_budget_micro_usd,
        overrides.max_documents,
        overrides.max_stored_bytes,
        now_iso(),
    )


async def storage_usage(db: D1Database, tenant_id: str) -> StorageUsage:
    """What the tenant stores now (documents and pending uploads; see the module docstring)."""
    row = await fetch_one(db, "SELECT documents, bytes FROM tenant_storage WHERE tenant_id = ?1", tenant_id)
    return StorageUsage(int(row["documents"]), int(row["bytes"])) if row else StorageUsage(0, 0)


async def admit_storage(db: D1Database, tenant_id: str, *, documents: int, size_bytes: int) -> StorageUsage:
    """Refuse (:class:`StorageLimitReached`) unless the tenant can store ``documents`` more documents
    of ``size_bytes`` in all within its limits; returns the usage before them. ``0, 0`` checks that
    the tenant is not over its limits (a presigned upload being completed is counted already)."""
    row = await fetch_one(
        db,
        "SELECT t.plan, l.max_documents, l.max_stored_bytes, s.documents, s.bytes FROM tenants t"
        " LEFT JOIN tenant_limits l ON l.tenant_id = t.id"
        " LEFT JOIN tenant_storage s ON s.tenant_id = t.id WHERE t.id = ?1",
        tenant_id,
    )
    if row is None:
        raise NotFound(f"no tenant {tenant_id}")
    limits = _merge(row["plan"], row)
    used = StorageUsage(int(row["documents"] or 0), int(row["bytes"] or 0))
    if limits.max_documents is not None and used.documents + documents > limits.max_documents:
        raise StorageLimitReached(
            f"the tenant stores {used.documents:,} documents (pending uploads included) and may store "
            f"{limits.max_documents:,}; delete documents or ask the operator for a higher limit",
            limit="max_documents",
            allowed=limits.max_documents,
            used=used.documents,
            requested=documents,
        )
    if limits.max_stored_bytes is not None and used.bytes + size_bytes > limits.max_stored_bytes:
        raise StorageLimitReached(
            f"the tenant stores {used.bytes:,} bytes and may store {limits.max_stored_bytes:,}; this needs "
            f"{size_bytes:,} more; delete documents or ask the operator for a higher limit",
            limit="max_stored_bytes",
            allowed=limits.max_stored_bytes,
            used=used.bytes,
            requested=size_bytes,
        )
    return used


def _exhausted(what: str, limit: int, used: int, now: float) -> BudgetExhausted:
    resets = _next_month(now)
    return BudgetExhausted(
        f"the tenant's monthly {what} budget of {limit} is used up ({used} used); it resets at "
        f"{_iso(resets)}",
        limit=what,
        budget=limit,
        used=used,
        resets_at=_iso(resets),
    )


async def admit(db: D1Database, tenant_id: str, now: float) -> Admission:
    """Check the monthly budgets, then count this request against the hourly limit (or refuse)."""
    row = await fetch_one(
        db,
        f"SELECT t.plan, {_LIMIT_COLUMNS}, m.tokens, m.cost_micro_usd FROM tenants t"
        " LEFT JOIN tenant_limits l ON l.tenant_id = t.id"
        " LEFT JOIN usage_months m ON m.tenant_id = t.id AND m.month = ?2"
        " WHERE t.id = ?1",
        tenant_id,
        month_of(now),
    )
    if row is None:
        raise NotFound(f"no tenant {tenant_id}")
    limits = _merge(row["plan"], row)
    tokens, cost = int(row["tokens"] or 0), int(row["cost_micro_usd"] or 0)
    if limits.monthly_token_budget is not None and tokens >= limits.monthly_token_budget:
        raise _exhausted("token", limits.monthly_token_budget, tokens, now)
    if limits.monthly_cost_budget_micro_usd is not None and cost >= limits.monthly_cost_budget_micro_usd:
        raise _exhausted("cost (micro-USD)", limits.monthly_cost_budget_micro_usd, cost, now)
    count = 0
    if limits.requests_per_hour is None:
        rows = await fetch_all(db, _COUNT_REQUEST + " RETURNING value", tenant_id, hour_of(now))
        count = int(rows[0]["value"]) if rows else 0
    elif limits.requests_per_hour > 0:
        rows = await fetch_all(
            db,
            _COUNT_REQUEST + " WHERE value < ?3 RETURNING value",
            tenant_id,
            hour_of(now),
            limits.requests_per_hour,
        )
        count = int(rows[0]["value"]) if rows else 0
    if limits.requests_per_hour is not None and count == 0:
        resets = _next_hour(now)
        retry_after = max(1, math.ceil(resets.timestamp() - now))
        raise RequestLimitExceeded(
            f"the tenant's limit of {limits.requests_per_hour} requests per hour is reached; the window "
            f"resets at {_iso(resets)} (in {retry_after} s)",
            retry_after=retry_after,
            limit="requests_per_hour",
            requests_per_hour=limits.requests_per_hour,
            resets_at=_iso(resets),
        )
    return Admission(row["plan"], limits, count, tokens, cost)


# The row is created at 1 (this request) or incremented; the caller appends the limit's WHERE.
_COUNT_REQUEST = (
    "INSERT INTO usage_counters (tenant_id, hour, name, value) VALUES (?1, ?2, 'requests', 1)"
    " ON CONFLICT (tenant_id, hour, name) DO UPDATE SET value = value + 1"
)
