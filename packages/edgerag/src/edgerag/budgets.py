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
    "admit",
    "load_limits",
    "month_of",
    "save_limits",
]


@dataclass(frozen=True)
class Limits:
    requests_per_hour: int | None
    monthly_token_budget: int | None
    monthly_cost_budget_micro_usd: int | None


PLAN_DEFAULTS: Final[dict[str, Limits]] = {
    "free": Limits(100, 1_000_000, None),
    "standard": Limits(1000, None, None),
    "enterprise": Limits(1000, None, None),
}
_FIELDS = ("requests_per_hour", "monthly_token_budget", "monthly_cost_budget_micro_usd")


class BudgetExhausted(Problem):
    """402: the tenant's monthly token or cost budget is used up until ``resets_at``."""

    status, title, slug = 402, "Payment Required", "budget-exhausted"


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
        "SELECT t.plan, l.tenant_id AS has_row, l.requests_per_hour, l.monthly_token_budget,"
        " l.monthly_cost_budget_micro_usd FROM tenants t"
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
        " monthly_cost_budget_micro_usd, updated_at) VALUES (?1, ?2, ?3, ?4, ?5)"
        " ON CONFLICT (tenant_id) DO UPDATE SET requests_per_hour = excluded.requests_per_hour,"
        " monthly_token_budget = excluded.monthly_token_budget,"
        " monthly_cost_budget_micro_usd = excluded.monthly_cost_budget_micro_usd,"
        " updated_at = excluded.updated_at",
        tenant_id,
        overrides.requests_per_hour,
        overrides.monthly_token_budget,
        overrides.monthly_cost_budget_micro_usd,
        now_iso(),
    )


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
        "SELECT t.plan, l.requests_per_hour, l.monthly_token_budget, l.monthly_cost_budget_micro_usd,"
        " m.tokens, m.cost_micro_usd FROM tenants t"
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
