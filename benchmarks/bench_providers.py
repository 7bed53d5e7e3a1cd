"""Stream throughput of the HTTP provider adapters (not a test; prints a markdown table).

    .venv/bin/python benchmarks/bench_providers.py [--tokens 20000] [--repeat 5]

For the OpenAI-compatible and the Anthropic adapter, streams one reply of ``--tokens`` text deltas
(plus the provider's framing events) and reports stream parts per second, two ways:

- ``in-memory``: the adapter over an HttpClient that hands it the scripted bytes in 4 KiB pieces, so
  the figure is the adapter's own cost (SSE parsing, JSON decoding, assembly);
- ``loopback``: the real httpx client against the scripted provider server on 127.0.0.1, each event
  written and flushed as its own HTTP chunk (the worst case for per-chunk overhead).

Also prints the time to first part over loopback (median of ``--repeat`` one-token streams), i.e.
what the adapter and the local HTTP client add before the first token can be forwarded.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from collections.abc import AsyncIterator, Callable, Mapping

from dedalus.providers.anthropic import AnthropicProvider
from dedalus.providers.base import ChatProvider, ProviderRequest
from dedalus.providers.openai_compat import OpenAICompatibleProvider
from edgerag.llm.types import ChatMessage
from edgerag_local.fakeprovider import FakeProvider, Stream, anthropic_events, openai_chunks, sse
from edgerag_local.sdk.http_client import HttpxClient

REQUEST = ProviderRequest(model="bench", messages=[ChatMessage(role="user", content="go")])


class _Body:
    def __init__(self, data: bytes) -> None:
        self._data = data
        self.status = 200
        self.headers: Mapping[str, str] = {"content-type": "text/event-stream"}

    async def aiter_bytes(self) -> AsyncIterator[bytes]:
        for i in range(0, len(self._data), 4096):
            yield self._data[i : i + 4096]

    async def read(self) -> bytes:
        return self._data

    async def aclose(self) -> None:
        pass


class _MemoryClient:
    def __init__(self, data: bytes) -> None:
        self._data = data

    async def request(
        self, method: str, url: str, *, headers: Mapping[str, str], body: bytes | None = None
    ) -> _Body:
        return _Body(self._data)


def _openai_events(tokens: int) -> list[bytes]:
    return [sse(c) for c in openai_chunks([f"t{i} " for i in range(tokens)])] + [sse("[DONE]")]


def _anthropic_events(tokens: int) -> list[bytes]:
    return anthropic_events([f"t{i} " for i in range(tokens)])


Build = Callable[[str, object], ChatProvider]
ADAPTERS: dict[str, tuple[Callable[[int], list[bytes]], Build, Callable[[FakeProvider], str]]] = {
    "openai-compatible": (
        _openai_events,
        lambda url, http: OpenAICompatibleProvider("bench", url, "k", http),  # type: ignore[arg-type]
        lambda fake: fake.openai_base_url,
    ),
    "anthropic": (
        _anthropic_events,
        lambda url, http: AnthropicProvider("bench", "k", http, base_url=url),  # type: ignore[arg-type]
        lambda fake: fake.base_url,
    ),
}


async def _drain(provider: ChatProvider) -> tuple[int, float]:
    """(parts, seconds to the first part)."""
    start = time.perf_counter()
    first = 0.0
    parts = 0
    async for _ in provider.stream(REQUEST):
        if not parts:
            first = time.perf_counter() - start
        parts += 1
    return parts, first


async def main(tokens: int, repeat: int) -> None:
    print(f"| adapter | transport | parts | parts/s (best of {repeat}) |")
    print("|---|---|---:|---:|")
    ttft: dict[str, list[float]] = {}
    for name, (events, build, base) in ADAPTERS.items():
        wire = b"".join(events(tokens))
        best = 0.0
        for _ in range(repeat):
            start = time.perf_counter()
            parts, _ = await _drain(build("http://memory", _MemoryClient(wire)))
            best = max(best, parts / (time.perf_counter() - start))
        print(f"| {name} | in-memory | {parts} | {best:,.0f} |")
        async with FakeProvider() as fake, HttpxClient() as http:
            best = 0.0
            for _ in range(repeat):
                fake.reply(Stream(events(tokens)))
                start = time.perf_counter()
                parts, _ = await _drain(build(base(fake), http))
                best = max(best, parts / (time.perf_counter() - start))
            print(f"| {name} | loopback (one HTTP chunk per event) | {parts} | {best:,.0f} |")
            for _ in range(repeat):
                fake.reply(Stream(events(1)))
                ttft.setdefault(name, []).append((await _drain(build(base(fake), http)))[1])
    print()
    print("| adapter | time to first part over loopback, median (ms) |")
    print("|---|---:|")
    for name, times in ttft.items():
        print(f"| {name} | {statistics.median(times) * 1000:.2f} |")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    asyncio.run(main(args.tokens, args.repeat))
