"""The agent loop's own cost per tool step (not a test; prints a markdown table).

    .venv/bin/python benchmarks/bench_agent_loop.py [--runs 200] [--calls 1 2 4]

Each run is one agent call of two model turns: the first asks for ``--calls`` tool calls, the second
answers. The model turn is an instant scripted fake (its tokens and usage events still go through the
sink) and the tool returns at once, so what is measured is dedalus's part of a tool step: argument
parsing and JSON Schema validation, the audit row written to the local D1 (SQLite on disk, as the
local stack runs it), the tool_call / tool_result events, and the messages appended for the next turn.
Reported per step (one model turn that asked for tools + running them), p50 and p95 over the runs.
Goal (issue 8): <= 2 ms per tool step, tool time excluded.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from dedalus.agent import run_agent
from dedalus.tools.registry import Tool, ToolRegistry
from dedalus.turns import EventSink, ToolContext, TurnResult
from edgerag.contracts.dedalus import CallContext, ChatCall
from edgerag.llm.events import AnyEvent, TokenEvent, UsageEvent
from edgerag.llm.types import ChatMessage, ToolCall, ToolSpec, Usage
from edgerag.store.tenants import TenantStore
from edgerag_local.d1 import LocalD1Database
from edgerag_local.d1.migrations import apply_migrations

MIGRATIONS = Path(__file__).resolve().parents[1] / "migrations"
SCHEMA = {
    "type": "object",
    "properties": {
        "query": {"type": "string", "maxLength": 2000},
        "top_k": {"type": "integer", "maximum": 20},
    },
    "required": ["query"],
    "additionalProperties": False,
}


class Model:
    def __init__(self, calls: int) -> None:
        self.calls = calls

    async def __call__(
        self, messages: list[ChatMessage], tools: list[ToolSpec], sink: EventSink, **_: Any
    ) -> TurnResult:
        first = messages[-1].role == "user"
        text = "" if first else "the answer"
        if text:
            await sink(TokenEvent(text=text))
        usage = Usage(prompt_tokens=50, completion_tokens=5)
        await sink(UsageEvent(model="m", provider="fake", usage=usage))
        calls = (
            [
                ToolCall(id=f"c{i}", name="lookup", arguments='{"query": "rocket nozzle", "top_k": 5}')
                for i in range(self.calls)
            ]
            if first
            else []
        )
        return TurnResult(text, calls, "tool_calls" if calls else "stop", usage, "m", "fake")


async def discard(event: AnyEvent) -> None:
    return None


async def measure(runs: int, calls: int, db: LocalD1Database, tenant_id: str) -> list[float]:
    async def lookup(args: dict[str, Any], ctx: ToolContext) -> Any:
        return {"sources": []}

    registry = ToolRegistry([Tool("lookup", "Look something up.", SCHEMA, "read", lookup)])
    ctx = ToolContext(
        call=CallContext(tenant_id=tenant_id, scopes=["read"], request_id="req_bench"),
        env=type("Env", (), {"DB": db})(),
        llm=None,  # type: ignore[arg-type]
    )
    call = ChatCall(context=ctx.call, messages=[ChatMessage(role="user", content="hi")], tools=["lookup"])
    model = Model(calls)
    # The answer turn's own cost (model fake + done event) is measured apart and subtracted.
    no_tools = ChatCall(context=ctx.call, messages=[ChatMessage(role="assistant", content="x")])
    samples = []
    for _ in range(runs):
        began = time.perf_counter()
        await run_agent(call, model, registry, ctx, discard, time.monotonic)
        whole = time.perf_counter() - began
        began = time.perf_counter()
        await run_agent(no_tools, model, registry, ctx, discard, time.monotonic)
        answer_only = time.perf_counter() - began
        samples.append(max(0.0, whole - answer_only) * 1000)
    return samples


async def main(runs: int, call_counts: list[int]) -> None:
    with tempfile.TemporaryDirectory() as folder:
        db = LocalD1Database(Path(folder) / "bench.sqlite")
        apply_migrations(db, MIGRATIONS)
        tenant = await TenantStore(db).create_tenant("bench")
        await measure(20, 1, db, tenant.id)  # warm up
        print("| tool calls per step | p50 ms per step | p95 ms per step | runs |")
        print("|---|---|---|---|")
        for calls in call_counts:
            samples = sorted(await measure(runs, calls, db, tenant.id))
            p50 = statistics.median(samples)
            p95 = samples[int(0.95 * (len(samples) - 1))]
            print(f"| {calls} | {p50:.3f} | {p95:.3f} | {runs} |")
        db.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--calls", type=int, nargs="+", default=[1, 2, 4])
    args = parser.parse_args()
    asyncio.run(main(args.runs, args.calls))
