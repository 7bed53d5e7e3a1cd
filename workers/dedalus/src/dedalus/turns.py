"""The seams between dedalus's parts: model turns, event sinks and the tool context.

How a call flows (each arrow is one of the interfaces below):

    service  --ChatCall-->  agent loop  --ModelTurn-->  orchestrator (routing, resilience, provider
       ^                       |                        stream, usage rows) --EventSink--> events
       |                       +--ToolRegistry.run(ToolContext)--> tools (may use ToolContext.llm)
       +---- reads the EventSink's queue and writes SSE / JSON

- :data:`EventSink` receives every event of the normalised stream (:mod:`edgerag.llm.events`) as
  soon as it exists; the service puts them on a queue that the HTTP response drains, so a slow client
  or a disconnect never blocks a provider read (and a disconnect cancels the run).
- :class:`ModelTurn` is one model call with fallbacks: it streams ``token`` and ``usage`` events into
  the sink and returns the turn's :class:`TurnResult` (the text, the complete tool calls, usage).
  It raises :class:`TurnFailedError` with the terminal :class:`~edgerag.llm.events.ErrorEvent` to send.
- :class:`ToolContext` is everything a tool may use: the caller's :class:`CallContext` (tenant, key,
  scopes, end user — from the gateway's authentication, never from the model), the env, and ``llm``
  for tools that need a model (summarise, classify ...), which records usage but streams no tokens.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

from edgerag.contracts.dedalus import CallContext, Purpose
from edgerag.llm.events import AnyEvent, ErrorEvent, FinishReason
from edgerag.llm.types import ChatMessage, ToolCall, ToolSpec, Usage

__all__ = ["EventSink", "ModelTurn", "ToolContext", "TurnFailedError", "TurnResult", "discard"]

EventSink = Callable[[AnyEvent], Awaitable[None]]


async def discard(event: AnyEvent) -> None:
    """A sink that drops events (tools' own model calls stream nothing to the client)."""


@dataclass(frozen=True)
class TurnResult:
    text: str
    tool_calls: list[ToolCall]
    finish_reason: FinishReason
    usage: Usage
    model: str  # the configured model id that answered (after fallbacks)
    provider: str
    cost_usd: float = 0.0


class TurnFailedError(Exception):
    """A model turn failed for good (retries and fallbacks spent, or not retryable)."""

    def __init__(self, error: ErrorEvent, usage: Usage | None = None) -> None:
        super().__init__(error.message)
        self.error = error
        self.usage = usage or Usage()


class ModelTurn(Protocol):
    async def __call__(
        self,
        messages: list[ChatMessage],
        tools: list[ToolSpec],
        sink: EventSink,
        *,
        purpose: Purpose = "chat",
        max_tokens: int | None = None,
        temperature: float | None = None,
    ) -> TurnResult: ...


@dataclass(frozen=True)
class ToolContext:
    call: CallContext
    env: Any
    # A non-streaming model call for tools that need one: (purpose, messages) -> result.
    llm: Callable[[Purpose, list[ChatMessage]], Awaitable[TurnResult]]
