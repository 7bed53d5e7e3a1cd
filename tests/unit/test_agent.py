"""dedalus.agent.run_agent with a scripted ModelTurn and a registry of test tools on the local D1.

The fake ModelTurn plays a script of turns, streams each turn's text as token events plus a usage
event (what the orchestrator does), and records what it was sent. Tools record their calls. The
agent's clock is a ManualClock, so deadlines move only when a test (or a tool) moves them.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from dedalus.agent import AgentOutcome, run_agent
from dedalus.tools.registry import Tool, ToolNotAllowedError, ToolRegistry
from dedalus.turns import EventSink, ToolContext, TurnFailedError, TurnResult
from edgerag.contracts.dedalus import AgentLimits, CallContext, ChatCall
from edgerag.llm.events import AnyEvent, ErrorEvent, TokenEvent, UsageEvent
from edgerag.llm.types import ChatMessage, ToolCall, ToolSpec, Usage
from edgerag.store.d1 import fetch_all
from edgerag.store.tenants import TenantStore
from edgerag_local.core.clock import ManualClock
from edgerag_local.d1 import LocalD1Database
from edgerag_local.d1.migrations import apply_migrations

MIGRATIONS = Path(__file__).resolve().parents[2] / "migrations"
HANG_GUARD_S = 10  # only guards against a hang; nothing here waits that long when it works

# ------------------------------------------------------------------------------------------- fakes


@dataclass
class Turn:
    text: str = ""
    calls: list[tuple[str, str]] = field(default_factory=list)  # (tool name, raw JSON arguments)
    before: Callable[[], None] | None = None  # runs when the turn is taken (e.g. move the clock)


@dataclass
class ScriptedModel:
    """A ModelTurn playing ``script``; the last turn repeats when the script runs out."""

    script: list[Turn]
    sent: list[tuple[list[ChatMessage], list[ToolSpec]]] = field(default_factory=list)
    fail_with: ErrorEvent | None = None

    async def __call__(
        self,
        messages: list[ChatMessage],
        tools: list[ToolSpec],
        sink: EventSink,
        *,
        purpose: str = "chat",
        max_tokens: int | None = None,
        temperature: float | None = None,
    ) -> TurnResult:
        self.sent.append((list(messages), list(tools)))
        if self.fail_with is not None:
            raise TurnFailedError(self.fail_with, Usage(prompt_tokens=3))
        turn = self.script[min(len(self.sent), len(self.script)) - 1]
        if turn.before is not None:
            turn.before()
        for word in turn.text.split(" ") if turn.text else []:
            await sink(TokenEvent(text=word))
        usage = Usage(prompt_tokens=10, completion_tokens=len(turn.text.split()))
        await sink(UsageEvent(model="m", provider="fake", usage=usage, cost_usd=0.001))
        n = len(self.sent)
        calls = [
            ToolCall(id=f"call_{n}_{i}", name=name, arguments=args)
            for i, (name, args) in enumerate(turn.calls)
        ]
        return TurnResult(
            text=turn.text,
            tool_calls=calls,
            finish_reason="tool_calls" if calls else "stop",
            usage=usage,
            model="m",
            provider="fake",
            cost_usd=0.001,
        )


@dataclass
class Recorder:
    events: list[AnyEvent] = field(default_factory=list)

    async def __call__(self, event: AnyEvent) -> None:
        self.events.append(event)

    def types(self) -> list[str]:
        return [e.type for e in self.events]


class Ticker:
    """A timer that moves 2 ms per reading, so latencies are exact."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        self.now += 0.002
        return self.now


def schema(**properties: Any) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": properties,
        "required": list(properties),
        "additionalProperties": False,
    }


@dataclass
class World:
    db: LocalD1Database
    ctx: ToolContext
    clock: ManualClock
    ran: list[tuple[str, dict[str, Any], str]] = field(default_factory=list)  # (tool, args, tenant)
    gate: asyncio.Event = field(default_factory=asyncio.Event)
    started: int = 0

    def registry(self) -> ToolRegistry:
        async def echo(args: dict[str, Any], ctx: ToolContext) -> Any:
            self.ran.append(("echo", args, ctx.call.tenant_id))
            return {"echo": args["text"], "tenant": ctx.call.tenant_id}

        async def together(args: dict[str, Any], ctx: ToolContext) -> Any:
            # Finishes only once both calls of the turn have started: proves they run concurrently.
            self.ran.append(("together", args, ctx.call.tenant_id))
            self.started += 1
            if self.started == 2:
                self.gate.set()
            await self.gate.wait()
            return {"n": args["n"]}

        async def boom(args: dict[str, Any], ctx: ToolContext) -> Any:
            self.ran.append(("boom", args, ctx.call.tenant_id))
            raise RuntimeError("internal detail: password=hunter2")

        async def hang(args: dict[str, Any], ctx: ToolContext) -> Any:
            self.ran.append(("hang", args, ctx.call.tenant_id))
            self.clock.advance(120)  # the run's time passes while the tool is stuck
            await asyncio.Event().wait()

        text = {"type": "string", "maxLength": 100}
        return ToolRegistry(
            [
                Tool("echo", "Echo a text.", schema(text=text), "read", echo),
                Tool("together", "Wait for a sibling call.", schema(n={"type": "integer"}), "read", together),
                Tool("boom", "Always fails.", schema(), "read", boom),
                Tool("hang", "Never returns.", schema(), "read", hang),
            ],
            timer=Ticker(),
        )


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[World]:
    db = LocalD1Database(tmp_path / "db.sqlite")
    apply_migrations(db, MIGRATIONS)
    tenant = await TenantStore(db).create_tenant("acme")

    async def no_llm(purpose: str, messages: list[ChatMessage]) -> TurnResult:
        raise AssertionError("these tools use no model")

    ctx = ToolContext(
        call=CallContext(tenant_id=tenant.id, key_id="key_1", scopes=["read"], request_id="req_1"),
        env=type("Env", (), {"DB": db})(),
        llm=no_llm,  # type: ignore[arg-type]
    )
    yield World(db, ctx, ManualClock(1000.0))
    db.close()


async def agent(
    world: World, model: ScriptedModel, tools: list[str], limits: AgentLimits | None = None
) -> tuple[AgentOutcome, Recorder]:
    call = ChatCall(
        context=world.ctx.call,
        messages=[ChatMessage(role="user", content="hello")],
        tools=tools,
        limits=limits or AgentLimits(),
    )
    sink = Recorder()
    run: Awaitable[AgentOutcome] = run_agent(call, model, world.registry(), world.ctx, sink, world.clock)
    outcome = await asyncio.wait_for(run, HANG_GUARD_S)
    return outcome, sink


def tool_results(sink: Recorder) -> list[Any]:
    return [e for e in sink.events if e.type == "tool_result"]


async def audit(world: World) -> list[dict[str, Any]]:
    return await fetch_all(world.db, "SELECT * FROM tool_calls_audit ORDER BY id")


# ------------------------------------------------------------------------------------------- tests


async def test_a_single_tool_call_then_the_answer(world: World) -> None:
    model = ScriptedModel([Turn("Let me check.", [("echo", '{"text": "hi"}')]), Turn("The echo said hi.")])
    outcome, sink = await agent(world, model, ["echo"])

    assert outcome.ok and outcome.text == "The echo said hi." and outcome.finish_reason == "stop"
    assert outcome.steps == 2 and outcome.usage.prompt_tokens == 20
    assert world.ran == [("echo", {"text": "hi"}, world.ctx.call.tenant_id)]
    # The model was offered the tool, then given the assistant message with its call and the result.
    assert [spec.name for spec in model.sent[0][1]] == ["echo"]
    second = model.sent[1][0]
    assert [m.role for m in second] == ["user", "assistant", "tool"]
    assert second[1].tool_calls is not None and second[1].tool_calls[0].name == "echo"
    assert second[2].tool_call_id == second[1].tool_calls[0].id
    assert json.loads(second[2].content or "") == {"echo": "hi", "tenant": world.ctx.call.tenant_id}
    # The trace: each turn and each call, with the latency of the injected timer.
    assert [t.text for t in outcome.turns] == ["Let me check.", "The echo said hi."]
    (trace,) = outcome.tools
    assert (trace.call.name, trace.call.arguments, trace.ok, trace.outcome) == (
        "echo",
        '{"text": "hi"}',
        True,
        "ok",
    )
    assert trace.latency_ms == pytest.approx(2.0)
    assert sink.types() == [
        *["token"] * 3, "usage", "tool_call", "tool_result", *["token"] * 4, "usage", "done",
    ]  # fmt: skip
    done = sink.events[-1]
    assert done.type == "done" and done.steps == 2 and done.usage.total_tokens == outcome.usage.total_tokens


async def test_two_calls_in_one_turn_run_concurrently_and_answer_in_call_order(world: World) -> None:
    model = ScriptedModel([Turn("", [("together", '{"n": 1}'), ("together", '{"n": 2}')]), Turn("both done")])
    outcome, sink = await agent(world, model, ["together"])

    assert outcome.text == "both done"  # a sequential run would wait forever on the first call
    messages = model.sent[1][0]
    assert [m.role for m in messages] == ["user", "assistant", "tool", "tool"]
    assert [json.loads(m.content or "") for m in messages[2:]] == [{"n": 1}, {"n": 2}]
    assert [m.tool_call_id for m in messages[2:]] == ["call_1_0", "call_1_1"]
    types = sink.types()
    assert types[:3] == ["usage", "tool_call", "tool_call"]  # every call is announced before any runs
    assert types[3:5] == ["tool_result", "tool_result"]


@pytest.mark.parametrize(
    ("arguments", "expected"),
    [
        ('{"text": "hi"', "not valid JSON"),  # truncated JSON
        ('["hi"]', "is not of type 'object'"),
        ('{"text": 42}', "42 is not of type 'string'"),
        (
            '{"text": "hi", "tenant_id": "tnt_other"}',
            "'tenant_id' was unexpected",
        ),  # the model picks no tenant
        ('{"text": "hi", "user": "mallory"}', "'user' was unexpected"),
        ("{}", "'text' is a required property"),
    ],
)
async def test_invalid_arguments_go_back_to_the_model_and_the_tool_never_runs(
    world: World, arguments: str, expected: str
) -> None:
    model = ScriptedModel([Turn("", [("echo", arguments)]), Turn("sorry")])
    outcome, sink = await agent(world, model, ["echo"])

    assert world.ran == []
    (result,) = tool_results(sink)
    assert not result.ok
    error = json.loads(result.content)
    assert error["code"] == "invalid_arguments" and expected in error["error"]
    assert outcome.text == "sorry" and outcome.ok
    assert model.sent[1][0][-1].content == result.content  # the model saw the error
    assert [row["outcome"] for row in await audit(world)] == ["invalid"]


async def test_an_unknown_tool_or_one_not_offered_is_an_error_result(world: World) -> None:
    model = ScriptedModel([Turn("", [("teleport", "{}"), ("boom", "{}")]), Turn("ok")])
    outcome, sink = await agent(world, model, ["echo"])  # boom exists but was not offered

    results = [json.loads(r.content) for r in tool_results(sink)]
    assert [r["code"] for r in results] == ["unknown_tool", "unknown_tool"]
    assert "available: echo" in results[0]["error"]
    assert world.ran == [] and outcome.text == "ok"


async def test_a_tool_that_raises_is_an_error_result_that_leaks_nothing(world: World) -> None:
    model = ScriptedModel([Turn("", [("boom", "{}")]), Turn("it failed")])
    outcome, sink = await agent(world, model, ["boom"])

    (result,) = tool_results(sink)
    assert not result.ok
    assert json.loads(result.content) == {"code": "failed", "error": "the tool 'boom' failed unexpectedly"}
    assert "hunter2" not in result.content
    assert outcome.text == "it failed" and outcome.tools[0].outcome == "error"


async def test_a_hanging_tool_is_cut_at_the_deadline_and_the_run_ends_with_limit_exceeded(
    world: World,
) -> None:
    model = ScriptedModel([Turn("", [("hang", "{}")]), Turn("never reached")])
    outcome, sink = await agent(world, model, ["hang"], AgentLimits(deadline_s=0.05))

    (result,) = tool_results(sink)
    assert not result.ok and json.loads(result.content)["code"] == "timeout"
    assert len(model.sent) == 1  # the deadline is checked before the next turn
    assert outcome.limit == "deadline" and outcome.finish_reason == "limit" and outcome.text == ""
    assert (
        outcome.error is not None and outcome.error.code == "limit_exceeded" and outcome.error.status == 504
    )
    assert sink.events[-1] == outcome.error
    assert [row["outcome"] for row in await audit(world)] == ["timeout"]


async def test_the_deadline_is_checked_before_each_turn(world: World) -> None:
    model = ScriptedModel(
        [Turn("", [("echo", '{"text": "a"}')], before=lambda: world.clock.advance(61)), Turn("late")]
    )
    outcome, sink = await agent(world, model, ["echo"], AgentLimits(deadline_s=60))

    assert len(model.sent) == 1 and outcome.limit == "deadline"
    assert sink.types()[-3:] == ["tool_call", "tool_result", "error"]


async def test_a_model_that_never_stops_calling_tools_is_stopped_at_max_steps(world: World) -> None:
    model = ScriptedModel([Turn("again", [("echo", '{"text": "x"}')])])
    outcome, sink = await agent(world, model, ["echo"], AgentLimits(max_steps=3))

    assert len(model.sent) == 3 and outcome.steps == 3
    assert len(world.ran) == 2  # the last turn's calls are not run: no turn would read their results
    assert outcome.limit == "max_steps" and outcome.finish_reason == "limit"
    assert (
        outcome.error is not None and outcome.error.code == "limit_exceeded" and outcome.error.status == 422
    )
    assert "3 steps" in outcome.error.message and outcome.error.partial
    assert sink.types().count("error") == 1 and sink.types()[-1] == "error" and "done" not in sink.types()


async def test_calls_past_max_tool_calls_are_answered_without_running(world: World) -> None:
    model = ScriptedModel(
        [
            Turn("", [("echo", '{"text": "1"}'), ("echo", '{"text": "2"}'), ("echo", '{"text": "3"}')]),
            Turn("", [("echo", '{"text": "4"}')]),
            Turn("answer from two results"),
        ]
    )
    outcome, sink = await agent(world, model, ["echo"], AgentLimits(max_tool_calls=2))

    assert [args["text"] for _, args, _ in world.ran] == ["1", "2"]
    # Results arrive as calls finish (a refusal is instant); the messages keep the call order.
    results = {r.tool_call_id: r for r in tool_results(sink)}
    order = ["call_1_0", "call_1_1", "call_1_2", "call_2_0"]
    assert [results[i].ok for i in order] == [True, True, False, False]
    assert {json.loads(results[i].content)["code"] for i in order[2:]} == {"limit_exceeded"}
    assert [m.tool_call_id for m in model.sent[2][0] if m.role == "tool"] == order
    assert outcome.text == "answer from two results"
    assert outcome.finish_reason == "limit" and outcome.limit == "max_tool_calls" and outcome.ok
    assert sink.events[-1].type == "done" and sink.events[-1].finish_reason == "limit"
    assert sorted(row["outcome"] for row in await audit(world)) == ["denied", "denied", "ok", "ok"]


async def test_events_arrive_in_order(world: World) -> None:
    model = ScriptedModel([Turn("", [("echo", '{"text": "a"}'), ("boom", "{}")]), Turn("final answer here")])
    _, sink = await agent(world, model, ["echo", "boom"])

    types = sink.types()
    for result in tool_results(sink):
        call_at = next(
            i for i, e in enumerate(sink.events) if e.type == "tool_call" and e.call.id == result.tool_call_id
        )
        assert call_at < sink.events.index(result)
    last_result = max(i for i, t in enumerate(types) if t == "tool_result")
    final_tokens = [i for i, e in enumerate(sink.events) if e.type == "token"]
    assert final_tokens and min(final_tokens) > last_result
    assert "".join(e.text + " " for e in sink.events if e.type == "token").strip() == "final answer here"
    assert types[-1] == "done" and types.count("done") == 1


async def test_a_failed_model_turn_ends_the_run_with_its_error(world: World) -> None:
    model = ScriptedModel([Turn("x")])
    model.fail_with = ErrorEvent(code="unavailable", message="every model failed", status=503, retryable=True)
    outcome, sink = await agent(world, model, ["echo"])

    assert outcome.error == model.fail_with and sink.events == [model.fail_with]
    assert outcome.usage.prompt_tokens == 3  # what the failed turn consumed is still counted


async def test_tools_that_may_not_be_offered_fail_before_any_model_call(world: World) -> None:
    model = ScriptedModel([Turn("x")])
    with pytest.raises(ToolNotAllowedError) as raised:
        await agent(world, model, ["echo", "nonexistent"])
    assert raised.value.denied == {"nonexistent": "unknown"} and raised.value.status == 400
    assert model.sent == []
