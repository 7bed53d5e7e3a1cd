"""Chat message latency through the whole stack (not a test; prints a markdown table).

    .venv/bin/python benchmarks/bench_chat.py [--runs 40] [--tokens 20]

The whole local stack runs in this process. Each run sends ``POST /v1/chat/sessions/{id}/messages``
with ``Accept: text/event-stream`` through the gateway worker's own fetch (the local asgi bridge
streams, as at the edge) and times, from the request: the ``sources`` event (authentication, the
session read, history, query rewriting, hybrid search over the tenant's documents, the prompt, the
user + pending rows written), the first ``token`` event (plus the dedalus call over the service
binding and the model's first token) and ``done`` (the answer stored with citations and usage).

Two models: the local Workers AI stand-in (extractive, in-process) and the scripted OpenAI-compatible
provider on loopback (``--tokens`` text deltas, written without pauses, so its own latency is the
loopback round trip: what is measured is the stack's). Each at concurrency 1 and 8 (8 messages in
flight at once, each in its own session); throughput is completed messages per second of wall time
at that concurrency. Between batches the stack's clock jumps an hour, so the per-tenant rate limit
and hourly request limits never refuse a run (no turn is in flight while it moves).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from edgerag.sse import SseParser
from edgerag.store.tenants import TenantStore
from edgerag_local import sdk
from edgerag_local.core.clock import ManualClock
from edgerag_local.fakeprovider import FakeProvider, openai_stream
from edgerag_local.runtime.host import LocalStack
from edgerag_local.runtime.stack import open_stack
from gateway.app import get_app
from gateway.deps import get_clock

ROOT = Path(__file__).resolve().parents[1]
BASE = "http://127.0.0.1:8787"
DOCUMENTS = [
    (
        "Rocket engines",
        "Liquid rocket engines burn kerosene and liquid oxygen. The nozzle accelerates the "
        "exhaust to make thrust. Turbopumps feed the combustion chamber at high pressure.",
    ),
    ("Landing", "Falcon 9 boosters land on drone ships so they can fly again. Grid fins steer the booster."),
    ("Sourdough", "Sourdough bread rises with wild yeast and lactic bacteria. It is baked in a hot oven."),
]
QUESTION = "How does the nozzle make thrust?"


def _fake_config(base_url: str) -> str:
    model = {
        "provider": "fake",
        "model": "gpt-fake",
        "input_usd_per_mtok": 1,
        "output_usd_per_mtok": 2,
        "context_window": 32000,
    }
    return json.dumps(
        {
            "providers": {"fake": {"kind": "openai", "base_url": base_url, "api_key_secret": "FAKE_API_KEY"}},
            "models": {"chat": "bench-model", "catalog": {"bench-model": model}},
        }
    )


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def _call(stack: LocalStack, key: str, method: str, path: str, body: Any = None) -> Any:
    request = sdk.Request(
        BASE + path,
        method=method,
        headers={"authorization": f"Bearer {key}", "content-type": "application/json"},
        body=None if body is None else json.dumps(body),
    )
    response = await stack.workers["gateway"].fetch(request)
    data = b"".join([chunk async for chunk in response.body])
    if response.status >= 300:
        raise RuntimeError(f"{method} {path}: {response.status} {data[:300]!r}")
    return json.loads(data) if data else None


async def _turn(stack: LocalStack, key: str, session: str) -> dict[str, float]:
    began = time.perf_counter()
    request = sdk.Request(
        f"{BASE}/v1/chat/sessions/{session}/messages",
        method="POST",
        headers={
            "authorization": f"Bearer {key}",
            "content-type": "application/json",
            "accept": "text/event-stream",
        },
        body=json.dumps({"content": QUESTION}),
    )
    response = await stack.workers["gateway"].fetch(request)
    parser, marks = SseParser(), {}
    async for chunk in response.body:
        for event in parser.feed(chunk):
            marks.setdefault(event.event, (time.perf_counter() - began) * 1000)
    if "done" not in marks:
        raise RuntimeError(f"the turn did not finish: {sorted(marks)}")
    return {"sources": marks["sources"], "token": marks.get("token", marks["done"]), "done": marks["done"]}


async def _measure(
    stack: LocalStack,
    clock: ManualClock,
    key: str,
    fake: FakeProvider | None,
    runs: int,
    concurrency: int,
    tokens: int,
) -> tuple[dict[str, list[float]], float]:
    sessions = [(await _call(stack, key, "POST", "/v1/chat/sessions", {}))["id"] for _ in range(concurrency)]
    samples: dict[str, list[float]] = {"sources": [], "token": [], "done": []}
    batches = max(1, runs // concurrency)
    wall = 0.0
    for _ in range(batches):
        clock.advance(3601)  # fresh rate-limit and hourly windows; nothing is in flight now
        if fake is not None:
            fake.reply(*[openai_stream([f"w{i} " for i in range(tokens)]) for _ in range(concurrency)])
        began = time.perf_counter()
        results = await asyncio.gather(*[_turn(stack, key, s) for s in sessions])
        wall += time.perf_counter() - began
        for result in results:
            for name, value in result.items():
                samples[name].append(value)
    return samples, batches * concurrency / wall


async def _setup(stack: LocalStack) -> str:
    store = TenantStore(stack.workers["gateway"].env.DB)
    tenant = await store.create_tenant("bench", "free")
    issued = await store.issue_key(tenant.id, "bench", "read write chat")
    for title, text in DOCUMENTS:
        await _call(stack, issued.plaintext, "POST", "/v1/documents", {"title": title, "text": text})
    await stack.drain_queues()
    return issued.plaintext


async def main(runs: int, tokens: int) -> None:
    rows = []
    async with FakeProvider() as fake:
        for model in ("stand-in", "fake provider"):
            with tempfile.TemporaryDirectory() as tmp:
                clock = ManualClock()
                extra = None
                if model == "fake provider":
                    extra = {
                        "dedalus": {
                            "MODELS_CONFIG": _fake_config(fake.openai_base_url),
                            "FAKE_API_KEY": "sk-bench",
                            "PROVIDER_MAX_RETRIES": "0",
                        }
                    }
                stack = open_stack(ROOT, state_dir=Path(tmp) / "state", extra_vars=extra, clock=clock)
                get_app().dependency_overrides[get_clock] = lambda clock=clock: clock
                try:
                    key = await _setup(stack)
                    await _measure(stack, clock, key, fake if extra else None, 2, 1, tokens)  # warm-up
                    for concurrency in (1, 8):
                        samples, throughput = await _measure(
                            stack, clock, key, fake if extra else None, runs, concurrency, tokens
                        )
                        rows.append((model, concurrency, samples, throughput))
                finally:
                    get_app().dependency_overrides.pop(get_clock, None)
                    await stack.stop()
                    stack.close()
    print(f"Chat message latency, ms ({runs} messages per row; Python {sys.version.split()[0]})\n")
    print("| model | concurrency | sources p50 / p95 | first token p50 / p95 | done p50 / p95 | messages/s |")
    print("|---|---|---|---|---|---|")
    for model, concurrency, samples, throughput in rows:
        cells = [
            f"{_pct(samples[k], 0.5):.1f} / {_pct(samples[k], 0.95):.1f}"
            for k in ("sources", "token", "done")
        ]
        print(f"| {model} | {concurrency} | {' | '.join(cells)} | {throughput:.1f} |")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=40)
    parser.add_argument("--tokens", type=int, default=20)
    args = parser.parse_args()
    asyncio.run(main(args.runs, args.tokens))
