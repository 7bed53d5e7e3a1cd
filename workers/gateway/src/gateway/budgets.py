"""The gateway's dependencies for usage counting and budgets.

* :func:`get_counters`: a request-scoped :class:`~edgerag.counters.UsageCounters`, written to D1 once
  when the request ends (one batch, none if nothing was counted).
* :func:`require_budget`: add ``admission: Admission = Depends(require_budget)`` to every route that
  calls a model (chat messages, ``/v1/answer``, ``/v1/chat/completions``). It authenticates with the
  ``chat`` scope (:data:`gateway.deps.CHATTER`, resolved once per request with the route's own), then
  :func:`edgerag.budgets.admit`: 402 when the monthly budget is used up, 429 (``Retry-After``) past the
  plan's hourly request limit, before anything is stored or any model is called. Declare both statuses:
  ``responses=problems(..., 402, 429)``. The returned :class:`~edgerag.budgets.Admission` carries the
  tenant's plan (for ``CallContext.plan``) and the counts.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from edgerag.budgets import Admission, RequestLimitExceeded, admit
from edgerag.counters import UsageCounters
from edgerag.store.tenants import Principal
from fastapi import Depends

from gateway.deps import CHATTER, Clock, get_clock, get_env

__all__ = ["get_counters", "require_budget"]


async def get_counters(
    env: Any = Depends(get_env), clock: Clock = Depends(get_clock)
) -> AsyncIterator[UsageCounters]:
    counters = UsageCounters()
    try:
        yield counters
    finally:
        await counters.flush(env.DB, clock())


async def require_budget(
    principal: Principal = Depends(CHATTER),
    env: Any = Depends(get_env),
    clock: Clock = Depends(get_clock),
    counters: UsageCounters = Depends(get_counters),
) -> Admission:
    try:
        return await admit(env.DB, principal.tenant_id, clock())
    except RequestLimitExceeded:
        counters.add(principal.tenant_id, "rate_limited")
        raise
