"""The agent runtime: the tool-calling loop between a model and the tool registry, within limits.

:func:`run_agent` asks the model (one :class:`~dedalus.turns.ModelTurn` per step) with the specs of
the call's enabled tools. A turn that asks for tools gets them run — concurrently when it asked for
several — and their results appended as ``tool`` messages after the assistant message that asked;
the loop goes on until a turn asks for none, whose text is the answer.

Events, in order, into the sink: the turn's ``token``/``usage`` events (sent by the ModelTurn), then a
``tool_call`` event per call, then a ``tool_result`` event per call as each finishes; after the last
turn exactly one terminal event — ``done``, or ``error`` when the run ends with no answer.
:class:`AgentOutcome` holds the same trace (each turn's text, calls, usage; each call's arguments,
result, ok, latency) for the caller.

Limits (:class:`~edgerag.contracts.dedalus.AgentLimits`), and what hitting each one does:

- ``max_tool_calls`` over the run: calls past it are not run; the model gets an error result saying
  the budget is spent and may still answer. An answer after that ends with ``finish_reason="limit"``.
- ``max_steps`` (model turns): if the last allowed turn still asks for tools, they are not run and the
  run ends with no answer: an ``error`` event with code ``limit_exceeded`` (status 422).
- ``deadline_s`` over the whole run, on the injected monotonic ``clock``: checked before each turn
  (past it: ``limit_exceeded``, status 504, retryable) and bounding every tool run (a tool still
  running at the deadline gets a timeout result). A model turn already started is bounded by the
  orchestrator's per-attempt timeouts, not cut here: cancelling a stream mid-answer would lose its
  usage record.

Client tools (``call.client_tools``, the OpenAI-compatible API's own ``tools``) are offered to the
model instead of registry tools and never run here: the first turn that calls them ends the run with a
``tool_call`` event per call and ``done`` with ``finish_reason="tool_calls"``, so the caller runs them
and sends the results back in its next request, as with any OpenAI-compatible server.

Nothing a tool does crashes the run: unknown tools, invalid or schema-invalid arguments, exceptions and
timeouts are results with ``ok=False`` (see :mod:`dedalus.tools.registry`). A failed model turn
(:class:`~dedalus.turns.TurnFailedError`) ends the run with its error event. Tools outside the call's
list, disabled for the tenant or beyond the key's scopes raise
:class:`~dedalus.tools.registry.ToolNotAllowedError` before the first model call (no event is sent).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final, Literal

from edgerag.contracts.dedalus import ChatCall
from edgerag.llm.events import DoneEvent, ErrorEvent, FinishReason, ToolCallEvent, ToolResultEvent
from edgerag.llm.types import ChatMessage, ToolCall, Usage

from dedalus.tools.registry import ToolOutcome, ToolRegistry
from dedalus.turns import EventSink, ModelTurn, ToolContext, TurnFailedError, TurnResult

__all__ = ["AgentOutcome", "LimitHit", "ToolTrace", "TurnTrace", "run_agent"]

log = logging.getLogger("dedalus.agent")

LimitHit = Literal["max_steps", "max_tool_calls", "deadline"]
_STEPS_STATUS: Final = 422
_DEADLINE_STATUS: Final = 504


@dataclass(frozen=True)
class TurnTrace:
    step: int
    text: str
    tool_calls: list[ToolCall]
    finish_reason: FinishReason
    usage: Usage
    model: str
    provider: str
    cost_usd: float


@dataclass(frozen=True)
class ToolTrace:
    step: int
    call: ToolCall  # name and the model's raw arguments
    ok: bool
    outcome: str  # ok | error | invalid | denied | timeout (the audit row's outcome)
    content: str  # what the model was given back
    latency_ms: float


@dataclass
class AgentOutcome:
    """The whole run. ``text`` is the answer ("" when there is none, and then ``error`` is set)."""

    text: str = ""
    finish_reason: FinishReason | None = None
    error: ErrorEvent | None = None
    limit: LimitHit | None = None
    explanation: str | None = None  # why a limit ended or shaped the run, for humans
    steps: int = 0
    usage: Usage = field(default_factory=Usage)
    cost_usd: float = 0.0
    model: str = ""
    provider: str = ""
    turns: list[TurnTrace] = field(default_factory=list)
    tools: list[ToolTrace] = field(default_factory=list)
    messages: list[ChatMessage] = field(default_factory=list)  # the conversation as the model saw it

    @property
    def ok(self) -> bool:
        return self.error is None


async def run_agent(
    call: ChatCall,
    model_turn: ModelTurn,
    registry: ToolRegistry,
    ctx: ToolContext,
    sink: EventSink,
    clock: Callable[[], float],
) -> AgentOutcome:
    """Run the tool loop for ``call`` (its messages, tools, limits, sampling options); see the module."""
    limits = call.limits
    deadline = clock() + limits.deadline_s
    specs = await registry.specs(call.tools, ctx)  # ToolNotAllowedError before any model call
    specs = specs or list(call.client_tools)  # a call offers one kind or the other (ChatCall checks)
    offered = frozenset(spec.name for spec in specs)
    outcome = AgentOutcome(messages=list(call.messages))
    tool_calls_used = 0

    for step in range(1, limits.max_steps + 1):
        if clock() >= deadline:
            return await _stop(
                outcome, sink, "deadline", f"the run's deadline ({limits.deadline_s:g} s) passed"
            )
        try:
            turn = await model_turn(
                outcome.messages,
                specs,
                sink,
                purpose=call.purpose,
                max_tokens=call.max_tokens,
                temperature=call.temperature,
            )
        except TurnFailedError as exc:
            outcome.usage += exc.usage
            outcome.error = exc.error
            await sink(exc.error)
            return outcome
        _record_turn(outcome, step, turn)
        if not turn.tool_calls:
            outcome.text = turn.text
            outcome.finish_reason = "limit" if outcome.limit is not None else turn.finish_reason
            await sink(_done(outcome))
            return outcome
        if call.client_tools:
            return await _hand_back(outcome, sink, step, turn)
        if step == limits.max_steps:
            return await _stop(
                outcome, sink, "max_steps", f"the model still asked for tools after {limits.max_steps} steps"
            )
        outcome.messages.append(
            ChatMessage(role="assistant", content=turn.text or None, tool_calls=turn.tool_calls)
        )
        for tool_call in turn.tool_calls:
            await sink(ToolCallEvent(step=step, call=tool_call))
        budget = max(0, limits.max_tool_calls - tool_calls_used)
        runs = [
            _run_one(registry, ctx, sink, step, tool_call, offered, deadline, clock, within_budget=i < budget)
            for i, tool_call in enumerate(turn.tool_calls)
        ]
        if len(runs) > budget:
            outcome.limit = "max_tool_calls"
            outcome.explanation = f"the run's tool-call budget ({limits.max_tool_calls}) was spent"
        tool_calls_used += min(len(runs), budget)
        results = await asyncio.gather(*runs)
        for tool_call, result in zip(turn.tool_calls, results, strict=True):
            outcome.tools.append(
                ToolTrace(step, tool_call, result.ok, result.outcome, result.content, result.latency_ms)
            )
            outcome.messages.append(
                ChatMessage(
                    role="tool", tool_call_id=tool_call.id, name=tool_call.name, content=result.content
                )
            )
    raise AssertionError("unreachable: the last step returns")  # pragma: no cover


async def _run_one(
    registry: ToolRegistry,
    ctx: ToolContext,
    sink: EventSink,
    step: int,
    call: ToolCall,
    offered: frozenset[str],
    deadline: float,
    clock: Callable[[], float],
    *,
    within_budget: bool,
) -> ToolOutcome:
    try:
        if not within_budget:
            result = await registry.refuse(
                call, ctx, "not run: this run's tool-call budget is spent; answer with what you have"
            )
        else:
            result = await registry.run(call, ctx, offered=offered, timeout_s=max(0.0, deadline - clock()))
    except Exception:  # the registry answers every tool failure itself; this guards the loop
        log.exception("the tool registry failed on %s (request %s)", call.name[:128], ctx.call.request_id)
        result = ToolOutcome(False, '{"code":"failed","error":"the tool runtime failed"}', 0.0, "error")
    await sink(
        ToolResultEvent(
            step=step,
            tool_call_id=call.id,
            name=call.name,
            ok=result.ok,
            content=result.content,
            latency_ms=result.latency_ms,
        )
    )
    return result


async def _hand_back(outcome: AgentOutcome, sink: EventSink, step: int, turn: TurnResult) -> AgentOutcome:
    """End the run with the client's tool calls for the client to run (see the module docstring)."""
    for tool_call in turn.tool_calls:
        await sink(ToolCallEvent(step=step, call=tool_call))
    outcome.text = turn.text
    outcome.finish_reason = "tool_calls"
    await sink(_done(outcome))
    return outcome


def _record_turn(outcome: AgentOutcome, step: int, turn: TurnResult) -> None:
    outcome.steps = step
    outcome.usage += turn.usage
    outcome.cost_usd += turn.cost_usd
    outcome.model, outcome.provider = turn.model, turn.provider
    outcome.turns.append(
        TurnTrace(
            step,
            turn.text,
            list(turn.tool_calls),
            turn.finish_reason,
            turn.usage,
            turn.model,
            turn.provider,
            turn.cost_usd,
        )
    )


def _done(outcome: AgentOutcome) -> DoneEvent:
    return DoneEvent(
        finish_reason=outcome.finish_reason or "stop",
        model=outcome.model,
        provider=outcome.provider,
        usage=outcome.usage,
        cost_usd=round(outcome.cost_usd, 10),
        steps=outcome.steps,
    )


async def _stop(outcome: AgentOutcome, sink: EventSink, limit: LimitHit, explanation: str) -> AgentOutcome:
    """End the run with no answer because a limit was hit."""
    outcome.limit, outcome.explanation = limit, explanation
    outcome.finish_reason = "limit"
    deadline = limit == "deadline"
    outcome.error = ErrorEvent(
        code="limit_exceeded",
        message=f"the agent stopped without an answer: {explanation}",
        status=_DEADLINE_STATUS if deadline else _STEPS_STATUS,
        retryable=deadline,
        partial=any(turn.text for turn in outcome.turns),
    )
    await sink(outcome.error)
    return outcome
