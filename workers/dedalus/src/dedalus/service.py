"""The dedalus service: what the gateway calls over the service binding.

- :meth:`DedalusService.health` (RPC and ``GET /health``);
- :meth:`DedalusService.models` (RPC): the chat models a plan may name (``GET /v1/models``);
- :meth:`DedalusService.run` (``POST /v1/chat``, see :mod:`dedalus.http`): one chat completion or
  agent run for a :class:`~edgerag.contracts.dedalus.ChatCall`, every event of the normalised stream
  sent to the sink, the last one ``done`` or ``error`` — whatever fails, the caller gets a typed error
  event, never an exception.

Wiring per call: settings (parsed once per isolate) -> :class:`~dedalus.routing.ModelCatalog` ->
:class:`~dedalus.orchestrator.Orchestrator` (the model turns, streaming as the call asked) and a quiet
non-streaming one for tools that need a model -> :func:`dedalus.agent.run_agent` with the tool registry.
The agent loop is used for plain chat too: with no tools it is exactly one model turn.

Everything that varies is injected (outbound HTTP, clocks, sleep, jitter, breakers), so tests build a
service over the local env with fakes, and the entry passes the runtime's fetch.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from edgerag.contracts.dedalus import ChatCall, HealthReply, ModelInfo, ModelsReply, Purpose
from edgerag.llm.events import ErrorEvent
from edgerag.llm.types import ChatMessage
from edgerag.observability.outbound import correlated
from edgerag.ports import HttpClient
from edgerag.settings import SettingsError

from dedalus import settings as dedalus_settings
from dedalus.agent import run_agent
from dedalus.orchestrator import Orchestrator, ProviderFactory
from dedalus.resilience import BreakerRegistry, isolate_breakers
from dedalus.routing import ModelCatalog
from dedalus.tools import isolate_registry
from dedalus.tools.registry import ToolNotAllowedError
from dedalus.turns import EventSink, ToolContext, TurnResult, discard
from dedalus.usage import UsageRecorder

__all__ = ["SERVICE_NAME", "DedalusService"]

log = logging.getLogger("edgerag.dedalus")

SERVICE_NAME = "dedalus"
_HEALTH_BINDINGS = ("AI", "CACHE", "DB", "VECTORS", "FILES", "INGEST_QUEUE")


class DedalusService:
    def __init__(
        self,
        env: Any,
        *,
        http: HttpClient | None = None,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
        breakers: BreakerRegistry | None = None,
        sleep: Callable[[float], Awaitable[object]] | None = None,
        rand: Callable[[], float] | None = None,
    ) -> None:
        self._env = env
        self._http = http
        self._clock = clock
        self._monotonic = monotonic
        self._breakers = breakers
        self._resilience: dict[str, Any] = {}
        if sleep is not None:
            self._resilience["sleep"] = sleep
        if rand is not None:
            self._resilience["rand"] = rand

    async def health(self) -> dict[str, Any]:
        bindings = sorted(name for name in _HEALTH_BINDINGS if getattr(self._env, name, None) is not None)
        return HealthReply(service=SERVICE_NAME, status="ok", bindings=bindings).model_dump()

    async def models(self, plan: str) -> dict[str, Any]:
        """:class:`ModelsReply` for ``plan``: its primary chat model and its override allow-list.
        A misconfigured MODELS_CONFIG raises (the caller answers 503): there is nothing to list."""
        catalog = ModelCatalog(dedalus_settings.load(self._env).models)
        listed = [catalog.route(model_id) for model_id in catalog.allowed_models(plan)]
        return ModelsReply(
            plan=plan,
            default=catalog.plan(plan).chat,
            models=[
                ModelInfo(
                    id=r.model_id,
                    provider=r.provider,
                    context_window=r.context_window,
                    supports_tools=r.supports_tools,
                )
                for r in listed
            ],
        ).model_dump()

    async def run(self, call: ChatCall, sink: EventSink) -> None:
        try:
            config = dedalus_settings.load(self._env)
        except SettingsError as exc:
            log.error("dedalus is misconfigured: %s", exc)
            await sink(
                ErrorEvent(code="configuration", message="the model service is misconfigured", status=503)
            )
            return
        breakers = self._breakers or isolate_breakers(
            threshold=config.breaker_threshold, cooldown_s=config.breaker_cooldown_s
        )
        deadline = self._monotonic() + call.limits.deadline_s
        catalog = ModelCatalog(config.models)  # a few dict entries: cheaper than caching it safely

        def orchestrator(stream: bool) -> Orchestrator:
            return Orchestrator(
                context=call.context,
                catalog=catalog,
                providers=ProviderFactory(self._env, correlated(self._http)),  # X-Request-Id to providers
                policy=config.retry_policy(),
                breakers=breakers,
                recorder=UsageRecorder(self._env.DB, self._clock),
                stream=stream,
                override=call.model,
                options=call.provider_options,
                monotonic=self._monotonic,
                deadline=deadline,
                resilience=self._resilience,
            )

        quiet = orchestrator(stream=False)

        async def tool_llm(purpose: Purpose, messages: list[ChatMessage]) -> TurnResult:
            # Tools' own model calls are recorded like any other but stream nothing to the client.
            return await quiet(messages, [], discard, purpose=purpose)

        ctx = ToolContext(call=call.context, env=self._env, llm=tool_llm)
        try:
            await run_agent(
                call, orchestrator(stream=call.stream), isolate_registry(), ctx, sink, self._monotonic
            )
        except ToolNotAllowedError as exc:
            await sink(exc.error_event())
        except asyncio.CancelledError:
            log.info("chat call %s was cancelled (the caller went away)", call.context.request_id)
            raise
