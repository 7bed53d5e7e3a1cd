"""Usage and cost of model calls: one ``llm_calls`` row per call, in D1 (migrations/0004_llm_usage.sql).

:func:`cost_micro_usd` prices a call from the route's catalog prices (USD per million tokens, so one
token costs exactly ``price`` micro-dollars); :func:`cost_usd` is the same in dollars for events.
Usage follows OpenAI's convention: ``prompt_tokens`` includes the ``cached_prompt_tokens`` served from a
provider cache, which are priced at the cached-input rate instead (adapters whose provider reports
cache reads separately, like Anthropic, add them into ``prompt_tokens``).

:class:`UsageRecorder` writes the row with one INSERT, scoped by the caller's
:class:`~edgerag.contracts.dedalus.CallContext` (tenant, API key, end user, request id — what the
gateway authenticated, never what a model chose). Record every call that reached a provider, including
failed and interrupted ones, with whatever usage it reported (or an estimate): billing reads what was
consumed, not what succeeded.

To record a new dimension: add a column in a new migration and a keyword argument to
:meth:`UsageRecorder.record`.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from edgerag.contracts.dedalus import CallContext, Purpose
from edgerag.ids import new_id
from edgerag.llm.types import Usage
from edgerag.ports import D1Database

from dedalus.routing import ModelRoute

__all__ = ["CallStatus", "RecordedCall", "UsageRecorder", "cost_micro_usd", "cost_usd"]

CallStatus = Literal["ok", "failed", "interrupted"]

_INSERT = (
    "INSERT INTO llm_calls (id, tenant_id, request_id, key_id, end_user, purpose, model, provider, "
    "prompt_tokens, completion_tokens, cached_prompt_tokens, estimated, cost_micro_usd, status, "
    "error_code, latency_ms, created_at) "
    "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17)"
)


def _exact_cost(route: ModelRoute, usage: Usage) -> float:
    cached = min(usage.cached_prompt_tokens, usage.prompt_tokens)
    return (
        (usage.prompt_tokens - cached) * route.input_usd_per_mtok
        + cached * route.cached_input_usd_per_mtok
        + usage.completion_tokens * route.output_usd_per_mtok
    )


def cost_micro_usd(route: ModelRoute, usage: Usage) -> int:
    """The call's cost in micro-dollars (1e-6 USD), rounded half up once per call."""
    return int(_exact_cost(route, usage) + 0.5)


def cost_usd(route: ModelRoute, usage: Usage) -> float:
    """The call's cost in dollars, as events carry it (the recorded micro-dollars, converted)."""
    return cost_micro_usd(route, usage) / 1_000_000


def _iso(seconds: float) -> str:
    moment = dt.datetime.fromtimestamp(seconds, tz=dt.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


@dataclass(frozen=True)
class RecordedCall:
    id: str
    cost_micro_usd: int


class UsageRecorder:
    """Writes ``llm_calls`` rows. ``clock`` is seconds since the epoch (injectable for tests)."""

    def __init__(self, db: D1Database, clock: Callable[[], float] = time.time) -> None:
        self._db = db
        self._clock = clock

    async def record(
        self,
        context: CallContext,
        route: ModelRoute,
        usage: Usage,
        status: CallStatus,
        *,
        purpose: Purpose = "chat",
        error_code: str | None = None,
        latency_ms: float = 0.0,
    ) -> RecordedCall:
        """Insert one row for one model call; returns its id and cost."""
        if (status == "ok") != (error_code is None):
            raise ValueError("error_code is required for a failed or interrupted call, and only then")
        now = self._clock()
        call_id = new_id("llm", clock=lambda: now)
        cost = cost_micro_usd(route, usage)
        await (
            self._db.prepare(_INSERT)
            .bind(
                call_id,
                context.tenant_id,
                context.request_id,
                context.key_id,
                context.end_user,
                purpose,
                route.model_id,
                route.provider,
                usage.prompt_tokens,
                usage.completion_tokens,
                min(usage.cached_prompt_tokens, usage.prompt_tokens),
                1 if usage.estimated else 0,
                cost,
                status,
                error_code,
                max(0, round(latency_ms)),
                _iso(now),
            )
            .run()
        )
        return RecordedCall(call_id, cost)
