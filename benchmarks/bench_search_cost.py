"""The gateway's own cost per search, apart from the bindings it calls, and its cold start (not a
test; prints tables).

    .venv/bin/python benchmarks/bench_ingest.py --state DIR        # ingests SciFact once (10k chunks)
    .venv/bin/python benchmarks/bench_search_cost.py --state DIR [--runs 200]

At the edge D1, Vectorize, Workers AI, KV and the rate limiter are remote services: their time is not
the Worker's CPU. Locally they are emulators in this process: D1's SQLite and the models run in worker
threads, the rest of their code on the serving thread between the gateway's own steps. So for each
``POST /v1/search`` (in-process ASGI, the same app uvicorn serves; authentication, rate limit and usage
counters included; concurrency 1):

    gateway CPU = serving thread's CPU inside the app - serving thread's CPU inside binding calls

where the second term is measured per coroutine step of every public coroutine method of each binding
class (:class:`_Metered`), which stays exact when binding calls overlap (the gateway runs its two
retrievers concurrently). "In bindings" is the process's CPU over the request (every thread) minus
the gateway's.

Each configuration gets its own slice of the SciFact train queries, so neither the result cache nor the
query-embedding cache ever hits. Cold start runs in fresh interpreters: importing ``gateway.app`` (and
everything it pulls in) and ``build_app()`` (routes, OpenAPI pieces), the part of a Worker's cold start
that is ours. Pyodide's own start-up and the JS<->Python conversions at the edge are not measured here.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import inspect
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from edgerag_local.ai.binding import LocalAi
from edgerag_local.core.clock import ManualClock
from edgerag_local.d1.binding import LocalD1Database, LocalD1PreparedStatement
from edgerag_local.kv.binding import LocalKVNamespace
from edgerag_local.ratelimit.binding import LocalRateLimit
from edgerag_local.runtime.stack import open_stack
from edgerag_local.vectorize.binding import LocalVectorizeIndex

ROOT = Path(__file__).resolve().parents[1]
DATASET = ROOT.parent / "shared" / "datasets" / "scifact-train"
DEFAULT_STATE = ROOT / ".edgerag" / "bench-scifact"
BINDING_CLASSES = (
    LocalD1Database,
    LocalD1PreparedStatement,
    LocalVectorizeIndex,
    LocalKVNamespace,
    LocalAi,
    LocalRateLimit,
)


class _Metered:
    """Awaits a binding coroutine step by step, adding the serving thread's CPU time of each step (the
    binding's own Python code between two suspensions) to ``meter.main``. Work the binding hands to a
    worker thread (SQLite, onnxruntime) never shows in the serving thread's clock."""

    def __init__(self, coro: Any, meter: BindingMeter) -> None:
        self.coro, self.meter = coro, meter

    def __await__(self) -> Any:
        meter, coro = self.meter, self.coro
        value: Any = None
        error: BaseException | None = None
        while True:
            outer = not meter.stepping  # a binding calling another binding counts once
            meter.stepping = True
            began = time.thread_time()
            try:
                yielded = coro.throw(error) if error is not None else coro.send(value)
            except StopIteration as stop:
                return stop.value
            finally:
                if outer:
                    meter.main += time.thread_time() - began
                    meter.stepping = False
            try:
                value, error = (yield yielded), None
            except BaseException as exc:
                value, error = None, exc


@dataclass
class BindingMeter:
    """The serving thread's CPU time spent inside binding calls (``main``) and the number of calls.

    Binding calls may overlap (the gateway runs its retrievers concurrently), so process-wide CPU
    inside calls cannot be summed per call; the serving thread's CPU per coroutine step can."""

    main: float = 0.0
    calls: int = 0
    stepping: bool = False

    def wrap(self, method: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(method)
        async def timed(*args: Any, **kwargs: Any) -> Any:
            self.calls += 1
            return await _Metered(method(*args, **kwargs), self)

        return timed

    def install(self) -> None:
        for cls in BINDING_CLASSES:
            for name, member in list(vars(cls).items()):
                if not name.startswith("_") and inspect.iscoroutinefunction(member):
                    setattr(cls, name, self.wrap(member))

    def reset(self) -> None:
        self.main = 0.0
        self.calls = 0


class ThreadCpu:
    """ASGI wrapper: the serving thread's CPU time of the last request the app handled."""

    def __init__(self, app: Any) -> None:
        self.app, self.last = app, 0.0

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        began = time.thread_time()
        try:
            await self.app(scope, receive, send)
        finally:
            self.last = time.thread_time() - began


@dataclass
class Sample:
    wall_ms: float
    process_cpu_ms: float  # every thread, over the whole request (client side included)
    serving_cpu_ms: float  # the serving thread, inside the gateway app
    binding_main_ms: float  # the serving thread, inside binding calls
    calls: int
    timings: dict[str, float]

    @property
    def gateway_cpu_ms(self) -> float:
        return self.serving_cpu_ms - self.binding_main_ms

    @property
    def binding_cpu_ms(self) -> float:
        """CPU in the bindings (their threads and their steps on the serving thread), approximately:
        the process's CPU over the request minus the gateway's own."""
        return max(0.0, self.process_cpu_ms - self.gateway_cpu_ms)


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))]


async def measure(
    client: httpx.AsyncClient,
    meter: BindingMeter,
    app: ThreadCpu,
    clock: ManualClock,
    queries: list[str],
    extra: dict[str, Any],
) -> list[Sample]:
    samples: list[Sample] = []
    for text in queries:
        while True:
            meter.reset()
            cpu, wall = time.process_time(), time.perf_counter()
            reply = await client.post("/v1/search", json={"query": text, "top_k": 10, **extra})
            wall_ms = (time.perf_counter() - wall) * 1000
            cpu_ms = (time.process_time() - cpu) * 1000
            if reply.status_code != 429:
                break
            clock.advance(int(reply.headers.get("retry-after", "60")))  # rate limited like any client
        reply.raise_for_status()
        data = reply.json()
        assert not data["cached"], "a configuration must not reuse another's queries"
        if extra.get("rerank"):
            assert data["rerank"] and data["rerank"]["applied"], data["rerank"]
        samples.append(
            Sample(wall_ms, cpu_ms, app.last * 1000, meter.main * 1000, meter.calls, data["timings_ms"])
        )
    return samples


COLD_START = """
import time, json
c0, w0 = time.process_time(), time.perf_counter()
import gateway.app
c1, w1 = time.process_time(), time.perf_counter()
gateway.app.build_app()
c2, w2 = time.process_time(), time.perf_counter()
print(json.dumps({"import_ms": (w1 - w0) * 1000, "import_cpu_ms": (c1 - c0) * 1000,
                  "build_ms": (w2 - w1) * 1000, "build_cpu_ms": (c2 - c1) * 1000}))
"""


def cold_start(runs: int) -> dict[str, float]:
    results = []
    for _ in range(runs):
        out = subprocess.run(
            [sys.executable, "-c", COLD_START], capture_output=True, text=True, check=True, cwd=ROOT
        )
        results.append(json.loads(out.stdout.strip().splitlines()[-1]))
    return {key: statistics.median(r[key] for r in results) for key in results[0]}


async def run(state: Path, runs: int) -> None:
    # Distinct queries throughout, on a copy of the state without its KV (caches) from bench_ingest.py.
    texts = list(dict.fromkeys(json.loads(line)["text"] for line in (DATASET / "queries.jsonl").open()))
    configs: list[tuple[str, dict[str, Any]]] = [
        ("hybrid, no rerank", {}),
        ("keyword only", {"mode": "keyword"}),
        ("hybrid + rerank top 20", {"rerank": {"top_n": 20, "timeout_ms": 5000}}),
    ]
    if len(texts) < (runs + 5) * len(configs):
        sys.exit(f"--runs {runs} needs {(runs + 5) * len(configs)} distinct queries, have {len(texts)}")
    key = (state / "demo-key").read_text().strip()
    # Queries are embedded with the model the corpus was ingested with (bench_ingest.py records it).
    embeddings_file = state / "embeddings"
    embeddings = embeddings_file.read_text().strip() if embeddings_file.is_file() else "wordllama"
    os.environ["EDGERAG_LOCAL_EMBEDDINGS"] = embeddings
    meter = BindingMeter()
    meter.install()
    clock = ManualClock()
    stack = open_stack(ROOT, state_dir=state, clock=clock)
    chunks = (await stack.workers["gateway"].env.DB.prepare("SELECT count(*) AS n FROM chunks").first())["n"]
    app = ThreadCpu(stack.asgi("gateway"))
    transport = httpx.ASGITransport(app=app)
    results: list[tuple[str, list[Sample]]] = []
    try:
        async with httpx.AsyncClient(
            transport=transport,
            base_url="http://local",
            headers={"authorization": f"Bearer {key}"},
            timeout=300,
        ) as client:
            for i, (name, extra) in enumerate(configs):
                part = texts[i * (runs + 5) : (i + 1) * (runs + 5)]
                await measure(
                    client, meter, app, clock, part[:5], extra
                )  # warm-up: models loaded, caches primed
                results.append((name, await measure(client, meter, app, clock, part[5:], extra)))
    finally:
        await stack.stop()
        stack.close()

    print(
        f"\nPOST /v1/search on {chunks} chunks, top_k 10, concurrency 1, {runs} queries per row, "
        f"embeddings {embeddings}, reranker {os.environ.get('EDGERAG_LOCAL_RERANKER', 'cross-encoder')}"
    )
    print(
        f"(python {sys.version.split()[0]}, {os.cpu_count()} cpus, load average {os.getloadavg()[0]:.1f})\n"
    )
    print(
        "| configuration | latency p50 | p95 | gateway CPU p50 | p95 | mean | in bindings (CPU) p50 | calls |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for name, samples in results:
        wall = [s.wall_ms for s in samples]
        gateway = [s.gateway_cpu_ms for s in samples]
        inside = [s.binding_cpu_ms for s in samples]
        print(
            f"| {name} | {pct(wall, 0.5):.1f} ms | {pct(wall, 0.95):.1f} ms | {pct(gateway, 0.5):.2f} ms "
            f"| {pct(gateway, 0.95):.2f} ms | {statistics.mean(gateway):.2f} ms | {pct(inside, 0.5):.1f} ms "
            f"| {statistics.median(s.calls for s in samples):.0f} |"
        )
    base = {name: samples for name, samples in results}
    added = pct([s.wall_ms for s in base["hybrid + rerank top 20"]], 0.5) - pct(
        [s.wall_ms for s in base["hybrid, no rerank"]], 0.5
    )
    rerank_ms = [s.timings.get("rerank_ms", 0.0) for s in base["hybrid + rerank top 20"]]
    print(
        f"\nrerank of the top 20 adds {added:.1f} ms at p50 (rerank stage p50 {pct(rerank_ms, 0.5):.1f} ms, "
        f"p95 {pct(rerank_ms, 0.95):.1f} ms, with the local reranker)"
    )
    print("\nStages inside the gateway's search (timings_ms, p50):\n")
    stages = (
        "keyword_ms",
        "embed_ms",
        "vector_ms",
        "retrieve_ms",
        "fusion_ms",
        "resolve_ms",
        "rerank_ms",
        "total_ms",
    )
    print("| configuration | " + " | ".join(stages) + " |")
    print("|---|" + "---:|" * len(stages))
    for name, samples in results:
        cells = [
            f"{pct([s.timings[k] for s in samples], 0.5):.2f}" if k in samples[0].timings else "-"
            for k in stages
        ]
        print(f"| {name} | " + " | ".join(cells) + " |")

    cold = cold_start(5)
    print("\nCold start (fresh interpreter, median of 5):\n")
    print("| step | wall | CPU |")
    print("|---|---:|---:|")
    print(f"| import gateway.app | {cold['import_ms']:.0f} ms | {cold['import_cpu_ms']:.0f} ms |")
    print(f"| build_app() | {cold['build_ms']:.0f} ms | {cold['build_cpu_ms']:.0f} ms |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--state", type=Path, default=DEFAULT_STATE)
    parser.add_argument("--runs", type=int, default=150)
    args = parser.parse_args()
    if not (args.state / "demo-key").is_file():
        sys.exit(f"no ingested corpus in {args.state}: run benchmarks/bench_ingest.py first")
    with tempfile.TemporaryDirectory() as tmp:
        # A copy: the searches write usage counters and cache entries.
        state = Path(tmp) / "state"
        shutil.copytree(args.state, state, ignore=shutil.ignore_patterns("kv"))
        asyncio.run(run(state, args.runs))


if __name__ == "__main__":
    main()
