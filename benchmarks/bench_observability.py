"""What observability costs per request (not a test; prints a markdown table).

    .venv/bin/python benchmarks/bench_observability.py [--runs 2000]

CPU only, no I/O beyond writing lines to an in-memory stream: building and writing one unit log line
(:func:`edgerag.observability.logs.unit_record` + ``emit``), one span, one metrics data point into
the local Analytics Engine emulator (validation included), and the gateway's middleware around a
trivial ASGI app against the bare app (request id parsing, the instrumented env, the header, the
line and the point). p50 and p95 in microseconds over the runs.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import statistics
import time
from collections.abc import Awaitable, Callable
from typing import Any

from edgerag.observability import Observation, observe, span
from edgerag.observability.logs import emit, unit_record
from edgerag.observability.metrics import unit_point
from edgerag_local.analytics import AnalyticsStore, LocalAnalyticsEngineDataset
from gateway.observe import ObservabilityMiddleware


def _observation() -> Observation:
    obs = Observation(
        "gateway", "request", "req_01jd4q8m2x0000000000000000", route="/v1/search", method="POST"
    )
    obs.tenant, obs.status, obs.tokens_in, obs.tokens_out = "tnt_01jd4q8m2x", 200, 120, 40
    obs.counts.update({"vectorize_queries": 1, "cache_hit:search": 1})
    return obs


async def _timed(runs: int, step: Callable[[], Awaitable[None]]) -> tuple[float, float]:
    samples = []
    for _ in range(runs):
        began = time.perf_counter()
        await step()
        samples.append((time.perf_counter() - began) * 1e6)
    samples.sort()
    return statistics.median(samples), samples[int(len(samples) * 0.95) - 1]


async def _bare(scope: dict[str, Any], receive: Any, send: Any) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": b"ok"})


async def main(runs: int) -> None:
    sink = io.StringIO()
    dataset = LocalAnalyticsEngineDataset(AnalyticsStore("bench", keep=100))
    obs = _observation()

    async def line() -> None:
        emit(unit_record(obs), sink)

    async def one_span() -> None:
        with contextlib.redirect_stdout(sink), observe(obs):
            async with span("vectorize.query", top_k=10):
                pass

    async def point() -> None:
        dataset.writeDataPoint(unit_point(obs))

    scope = {
        "type": "http",
        "method": "GET",
        "path": "/v1/x",
        "headers": [(b"x-request-id", b"bench-1"), (b"host", b"localhost")],
        "env": type("Env", (), {"METRICS": dataset})(),
    }

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b""}

    async def send(message: Any) -> None:
        return None

    middleware = ObservabilityMiddleware(_bare)

    async def bare() -> None:
        await _bare(dict(scope), receive, send)

    async def wrapped() -> None:
        with contextlib.redirect_stdout(sink):
            await middleware(dict(scope), receive, send)

    rows = [
        ("unit log line (build + write)", await _timed(runs, line)),
        ("span (enter, exit, write)", await _timed(runs, one_span)),
        ("metrics data point (local emulator)", await _timed(runs, point)),
        ("trivial ASGI app, bare", await _timed(runs, bare)),
        ("trivial ASGI app, with ObservabilityMiddleware", await _timed(runs, wrapped)),
    ]
    print(f"| step ({runs} runs) | p50 µs | p95 µs |")
    print("|---|---:|---:|")
    for name, (p50, p95) in rows:
        print(f"| {name} | {p50:.1f} | {p95:.1f} |")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=2000)
    asyncio.run(main(parser.parse_args().runs))
