"""One model turn with everything around it: routing, provider adapters, resilience, usage rows.

:class:`Orchestrator` implements :class:`dedalus.turns.ModelTurn`. For each turn it

1. resolves the routes (:meth:`dedalus.routing.ModelCatalog.resolve`: the plan's model for the
   purpose, or the call's allowed override, then the fallbacks), keeps those whose context window
   holds the prompt (estimated with :func:`edgerag.tokens.estimate_tokens`, an upper bound) and, when
   tools are offered, those that support tools — an empty list is a typed 4xx before any call;
2. runs the provider through :mod:`dedalus.resilience` (streamed or not, as the call asked): token
   events go into the sink as text arrives; a failure before the first token retries / falls back, a
   failure after it ends the turn ``interrupted`` (never a silent retry that would repeat text);
3. records one ``llm_calls`` row per turn (:class:`dedalus.usage.UsageRecorder`): ``ok`` with the
   provider's usage (or an estimate, flagged), ``interrupted`` with what was streamed, ``failed`` with
   nothing consumed; then emits the ``usage`` event and returns the :class:`TurnResult`.

Provider adapters are built per route by :class:`ProviderFactory`; a provider whose API-key secret is
missing fails that route with a CONFIGURATION error (the next route is tried) — the secret's NAME may
appear in the message, its value never does.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from edgerag.contracts.dedalus import CallContext, Purpose
from edgerag.llm.events import ErrorEvent, FinishReason, TokenEvent, UsageEvent
from edgerag.llm.types import ChatMessage, ToolCall, ToolSpec, Usage
from edgerag.observability import annotate, count
from edgerag.observability.spans import record_span
from edgerag.ports import HttpClient
from edgerag.tokens import estimate_tokens

from dedalus.providers.anthropic import AnthropicProvider
from dedalus.providers.base import (
    ChatProvider,
    Completion,
    FailureKind,
    FinishPart,
    ProviderError,
    ProviderRequest,
    StreamPart,
    TextDelta,
    ToolCallPart,
    UsagePart,
)
from dedalus.providers.openai_compat import OpenAICompatibleProvider
from dedalus.providers.workers_ai import WorkersAIProvider
from dedalus.resilience import (
    BreakerRegistry,
    ChainExhaustedError,
    RetryPolicy,
    StreamInterruptedError,
    complete_with_fallbacks,
    error_event,
    stream_with_fallbacks,
)
from dedalus.routing import ModelCatalog, ModelRoute, RoutingError
from dedalus.turns import EventSink, TurnFailedError, TurnResult
from dedalus.usage import CallStatus, UsageRecorder, cost_usd

__all__ = ["Orchestrator", "ProviderFactory", "prompt_tokens"]

log = logging.getLogger("edgerag.dedalus")

_MESSAGE_OVERHEAD = 4  # role markers and separators per message in chat templates


def prompt_tokens(messages: list[ChatMessage], tools: list[ToolSpec]) -> int:
    """An upper-bound estimate of a prompt's tokens (messages, tool calls and tool schemas)."""
    total = 0
    for message in messages:
        total += _MESSAGE_OVERHEAD + estimate_tokens(message.content or "")
        for call in message.tool_calls or ():
            total += estimate_tokens(call.name + call.arguments)
    for tool in tools:
        total += estimate_tokens(tool.name + tool.description + str(tool.parameters))
    return total


class ProviderFactory:
    """Builds the adapter for a route from the env (``AI`` binding, API-key secrets) and the HTTP port."""

    def __init__(self, env: Any, http: HttpClient | None) -> None:
        self._env = env
        self._http = http

    def for_route(self, route: ModelRoute) -> ChatProvider:
        if route.provider_kind == "workers-ai":
            return WorkersAIProvider(self._env.AI, name=route.provider)
        if self._http is None:
            raise ProviderError(
                FailureKind.CONFIGURATION, "this worker has no outbound HTTP client", provider=route.provider
            )
        key = self._secret(route)
        if route.provider_kind == "anthropic":
            if key is None:
                raise ProviderError(
                    FailureKind.CONFIGURATION,
                    f"the {route.provider} provider needs an API key secret "
                    f"({route.api_key_secret or 'none configured'})",
                    provider=route.provider,
                )
            base = route.base_url or "https://api.anthropic.com"
            return AnthropicProvider(route.provider, key, self._http, base)
        if route.base_url is None:
            raise ProviderError(FailureKind.CONFIGURATION, "no base_url configured", provider=route.provider)
        return OpenAICompatibleProvider(
            route.provider, route.base_url, key, self._http, default_headers=dict(route.headers)
        )

    def _secret(self, route: ModelRoute) -> str | None:
        if not route.api_key_secret:
            return None
        value = getattr(self._env, route.api_key_secret, None)
        if not isinstance(value, str) or not value:
            raise ProviderError(
                FailureKind.CONFIGURATION,
                f"the secret {route.api_key_secret} is not set for the {route.provider} provider",
                provider=route.provider,
            )
        return value


@dataclass
class _Accumulated:
    text: list[str] = field(default_factory=list)
    calls: list[ToolCall] = field(default_factory=list)
    usage: Usage | None = None
    finish: FinishReason | None = None

    def add(self, part: StreamPart) -> None:
        if isinstance(part, TextDelta):
            self.text.append(part.text)
        elif isinstance(part, ToolCallPart):
            self.calls.append(part.call)
        elif isinstance(part, UsagePart):
            self.usage = part.usage
        elif isinstance(part, FinishPart):
            self.finish = part.finish_reason


@dataclass
class Orchestrator:
    """:class:`~dedalus.turns.ModelTurn` for one call (see the module docstring)."""

    context: CallContext
    catalog: ModelCatalog
    providers: ProviderFactory
    policy: RetryPolicy
    breakers: BreakerRegistry
    recorder: UsageRecorder | None
    stream: bool = True
    override: str | None = None
    options: Mapping[str, Any] = field(default_factory=dict)
    monotonic: Callable[[], float] = time.monotonic
    deadline: float | None = None  # a monotonic() value past which no attempt starts
    resilience: Mapping[str, Any] = field(default_factory=dict)  # sleep / rand for tests

    async def __call__(
        self,
        messages: list[ChatMessage],
        tools: list[ToolSpec],
        sink: EventSink,
        *,
        purpose: Purpose = "chat",
        max_tokens: int | None = None,
        temperature: float | None = None,
    ) -> TurnResult:
        routes = self._routes(messages, tools, purpose)
        started = self.monotonic()

        def request(route: ModelRoute) -> ProviderRequest:
            options = self.options if route.provider_kind == "openai" else {}
            return ProviderRequest(route.provider_model, messages, tools, max_tokens, temperature, options)

        got = _Accumulated()
        route = routes[0]
        try:
            if self.stream:
                async for answered, part in stream_with_fallbacks(
                    routes,
                    lambda r: self._open(r, request(r)),
                    self.policy,
                    self.breakers,
                    clock=self.monotonic,
                    deadline=self.deadline,
                    **self.resilience,
                ):
                    route = answered
                    got.add(part)
                    if isinstance(part, TextDelta) and part.text:
                        await sink(TokenEvent(text=part.text))
            else:

                async def attempt(r: ModelRoute) -> Completion:
                    return await self.providers.for_route(r).complete(request(r))

                route, completion = await complete_with_fallbacks(
                    routes,
                    attempt,
                    self.policy,
                    self.breakers,
                    clock=self.monotonic,
                    deadline=self.deadline,
                    **self.resilience,
                )
                got.text, got.calls = [completion.text], list(completion.tool_calls)
                got.usage, got.finish = completion.usage, completion.finish_reason
                if completion.text:
                    await sink(TokenEvent(text=completion.text))
        except StreamInterruptedError as exc:
            usage = self._usage(got, messages, tools)
            await self._record(exc.route, usage, purpose, "interrupted", "interrupted", started)
            raise TurnFailedError(error_event(exc), usage) from exc
        except ChainExhaustedError as exc:
            failed = exc.attempts[-1].model if exc.attempts else routes[0].model_id
            failed_route = next((r for r in routes if r.model_id == failed), routes[0])
            event = error_event(exc)
            await self._record(failed_route, got.usage or Usage(), purpose, "failed", event.code, started)
            raise TurnFailedError(event, got.usage) from exc
        usage = self._usage(got, messages, tools)
        text = "".join(got.text)
        finish: FinishReason = got.finish or ("tool_calls" if got.calls else "stop")
        cost = cost_usd(route, usage)
        await self._record(route, usage, purpose, "ok", None, started)
        await sink(UsageEvent(model=route.model_id, provider=route.provider, usage=usage, cost_usd=cost))
        return TurnResult(text, got.calls, finish, usage, route.model_id, route.provider, cost)

    def _routes(
        self, messages: list[ChatMessage], tools: list[ToolSpec], purpose: Purpose
    ) -> list[ModelRoute]:
        try:
            routes = self.catalog.resolve(
                self.context.plan, purpose, self.override if purpose == "chat" else None
            )
        except RoutingError as exc:
            raise TurnFailedError(exc.to_event()) from exc
        if tools:
            routes = [r for r in routes if r.supports_tools]
            if not routes:
                raise TurnFailedError(
                    ErrorEvent(
                        code="invalid_request",
                        message=f"no model of the {self.context.plan!r} plan supports tool calling",
                        status=400,
                    )
                )
        needed = prompt_tokens(messages, tools)
        fitting = [r for r in routes if needed < r.context_window]
        if not fitting:
            largest = max(r.context_window for r in routes)
            raise TurnFailedError(
                ErrorEvent(
                    code="invalid_request",
                    message=(
                        f"the prompt is about {needed} tokens; the largest context window of this call's "
                        f"models is {largest}: shorten the conversation or the sources"
                    ),
                    status=413,
                )
            )
        return fitting

    async def _open(self, route: ModelRoute, request: ProviderRequest) -> AsyncIterator[StreamPart]:
        # Building the adapter inside the stream makes a missing secret an attempt failure that the
        # resilience layer sees (and falls back from), not an exception outside it.
        provider = self.providers.for_route(route)
        async for part in provider.stream(request):
            yield part

    def _usage(self, got: _Accumulated, messages: list[ChatMessage], tools: list[ToolSpec]) -> Usage:
        # Adapters report all-zero usage when a provider sent none: count it ourselves then.
        if got.usage is not None and got.usage.total_tokens > 0:
            return got.usage
        completion = "".join(got.text) + "".join(c.name + c.arguments for c in got.calls)
        return Usage(
            prompt_tokens=prompt_tokens(messages, tools),
            completion_tokens=estimate_tokens(completion) if completion else 0,
            estimated=True,
        )

    async def _record(
        self,
        route: ModelRoute,
        usage: Usage,
        purpose: Purpose,
        status: CallStatus,
        error_code: str | None,
        started: float,
    ) -> None:
        # One model.call span per turn and the unit's model and tokens (edgerag.observability).
        latency_ms = (self.monotonic() - started) * 1000
        annotate(model=route.model_id, provider=route.provider)
        count("tokens_in", usage.prompt_tokens)
        count("tokens_out", usage.completion_tokens)
        record_span(
            "model.call",
            latency_ms,
            "ok" if status == "ok" else "error",
            model=route.model_id,
            provider=route.provider,
            purpose=purpose,
            tokens_in=usage.prompt_tokens,
            tokens_out=usage.completion_tokens,
            estimated=usage.estimated,
            error=error_code,
        )
        if self.recorder is None:
            return
        try:
            await self.recorder.record(
                self.context,
                route,
                usage,
                status,
                purpose=purpose,
                error_code=error_code,
                latency_ms=latency_ms,
            )
        except Exception:
            # The answer must not fail because its usage row could not be written; the log keeps it.
            log.exception(
                "could not record usage for %s (%s, %s tokens)",
                self.context.request_id,
                route.model_id,
                usage.total_tokens,
            )
