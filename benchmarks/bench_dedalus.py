"""What dedalus adds on top of the provider (not a test; prints a markdown table).

    .venv/bin/python benchmarks/bench_dedalus.py [--runs 200] [--tokens 5000]

The whole local stack runs in this process; the provider is the scripted OpenAI-compatible server on
loopback. Two paths are timed against the same server, alternating run by run:

- ``direct``: the OpenAI-compatible adapter called straight over the local HTTP client — the time to
  the provider's first token as any client of the provider would see it;
- ``through dedalus``: the gateway's dedalus client -> the local service binding (``fetch``) ->
  dedalus's ASGI app -> routing, resilience, the adapter -> the same provider, and the token event
  back, parsed from the event stream at the gateway.

"Added" is the difference of the two distributions' percentiles. Then throughput: one reply of
``--tokens`` text deltas, streamed as fast as the server writes them, counted as token events
arriving at the gateway per second. The usage row is written to the local D1 in both paths.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

from dedalus.providers.base import ProviderRequest, TextDelta
from dedalus.providers.openai_compat import OpenAICompatibleProvider
from edgerag.contracts.dedalus import CallContext, ChatCall
from edgerag.llm import events
from edgerag.llm.types import ChatMessage
from edgerag.store.tenants import TenantStore
from edgerag_local.fakeprovider import FakeProvider, openai_stream
from edgerag_local.runtime.stack import open_stack
from edgerag_local.sdk.http_client import HttpxClient
from gateway.dedalus import DedalusClient

ROOT = Path(__file__).resolve().parents[1]
MESSAGES = [ChatMessage(role="user", content="Say something.")]


def _config(base_url: str) -> str:
    model = {"provider": "fake", "input_usd_per_mtok": 1, "output_usd_per_mtok": 2, "context_window": 32000}
    return json.dumps(
        {
            "providers": {"fake": {"kind": "openai", "base_url": base_url, "api_key_secret": "FAKE_API_KEY"}},
            "models": {"chat": "bench-model", "catalog": {"bench-model": model}},
        }
    )


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def main(runs: int, tokens: int) -> None:
    async with FakeProvider() as fake, HttpxClient() as http:
        state = Path(tempfile.mkdtemp(prefix="bench-dedalus-"))
        stack = open_stack(
            ROOT,
            state_dir=state / "state",
            extra_vars={
                "dedalus": {"MODELS_CONFIG": _config(fake.openai_base_url), "FAKE_API_KEY": "sk-bench"}
            },
        )
        try:
            env = stack.workers["gateway"].env
            tenant = await TenantStore(env.DB).create_tenant("bench", "free")
            client = DedalusClient(env.DEDALUS)
            provider = OpenAICompatibleProvider("fake", fake.openai_base_url, "sk-bench", http)

            def call(n: int) -> ChatCall:
                context = CallContext(tenant_id=tenant.id, request_id=f"req_bench_{n}")
                return ChatCall(context=context, messages=MESSAGES, stream=True)

            async def through(n: int) -> float:
                fake.reply(openai_stream(["hello", " world"]))
                began = time.perf_counter()
                first = None
                async for event in client.chat(call(n)):
                    if first is None and isinstance(event, events.TokenEvent):
                        first = time.perf_counter() - began
                assert first is not None
                return first * 1000

            async def direct() -> float:
                fake.reply(openai_stream(["hello", " world"]))
                began = time.perf_counter()
                first = None
                async for part in provider.stream(ProviderRequest(model="bench", messages=MESSAGES)):
                    if first is None and isinstance(part, TextDelta) and part.text:
                        first = time.perf_counter() - began
                assert first is not None
                return first * 1000

            for n in range(20):  # warm-up: imports, connection pools, SQLite pages
                await through(-n)
                await direct()
            ttft_dedalus, ttft_direct = [], []
            for n in range(runs):
                ttft_dedalus.append(await through(n))
                ttft_direct.append(await direct())

            fake.reply(openai_stream([f"t{i} " for i in range(tokens)]))
            began = time.perf_counter()
            count = 0
            async for event in client.chat(call(10**6)):
                count += isinstance(event, events.TokenEvent)
            elapsed = time.perf_counter() - began
        finally:
            await stack.stop()
            stack.close()

    print(
        f"## dedalus overhead ({runs} runs, scripted provider on loopback, Python {sys.version.split()[0]})\n"
    )
    print("| measure | p50 | p95 |")
    print("|---|---:|---:|")
    for name, values in (
        ("time to first token, direct (ms)", ttft_direct),
        ("through dedalus (ms)", ttft_dedalus),
    ):
        print(f"| {name} | {_pct(values, 0.5):.2f} | {_pct(values, 0.95):.2f} |")
    added50 = _pct(ttft_dedalus, 0.5) - _pct(ttft_direct, 0.5)
    added95 = _pct(ttft_dedalus, 0.95) - _pct(ttft_direct, 0.95)
    print(f"| **added by gateway client + binding + dedalus (ms)** | **{added50:.2f}** | **{added95:.2f}** |")
    print(f"\nmean added: {statistics.mean(ttft_dedalus) - statistics.mean(ttft_direct):.2f} ms")
    print(f"stream throughput: {count} token events in {elapsed:.2f} s = **{count / elapsed:,.0f} events/s**")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--tokens", type=int, default=5000)
    args = parser.parse_args()
    asyncio.run(main(args.runs, args.tokens))
