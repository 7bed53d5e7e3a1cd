"""Benchmark of the local Vectorize emulator (not a test; prints a markdown table).

    .venv/bin/python benchmarks/bench_vectorize.py [--sizes 10000 100000] [--queries 50]

For each size it builds an index of seeded random 768-d vectors in one namespace, with a string
(``tenant``, 20 values) and a number (``page``, 0-99) metadata index, by upserting 1000-vector batches
given as Python lists (the shape Workers AI returns). It then reports the p50/p95 latency of topK=10
queries without a filter, with ``$eq`` (5% of vectors), ``$in`` (20%) and a numeric range (50%), the
time to reopen the index from disk, upsert throughput, the bytes held by the index's in-memory matrices
and columns, and the process's peak RSS.

``run(sizes)`` returns the rows (dicts) so the platform benchmark can reuse them; ``platform_rows``
gives them in that script's row shape. Both are synchronous and work inside a running event loop (the
measurements run in a worker thread with their own loop).
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import statistics
import tempfile
import threading
import time
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
from edgerag_local.vectorize import LocalVectorizeIndex, VectorizeIndexConfig

DIMENSIONS = 768
TOP_K = 10
BATCH = 1000
NAMESPACE = "bench"
TENANTS = 20
TEXT = "lorem ipsum " * 16  # an unindexed property, so "all" metadata has some weight
FILTERS: dict[str, dict[str, Any] | None] = {
    "no filter": None,
    "$eq (5%)": {"tenant": "t3"},
    "$in (20%)": {"tenant": {"$in": ["t1", "t2", "t3", "t4"]}},
    "range (50%)": {"page": {"$gte": 10, "$lt": 60}},
}

Row = dict[str, Any]
T = TypeVar("T")


def _percentiles(samples_ms: Sequence[float]) -> tuple[float, float]:
    ordered = sorted(samples_ms)
    p95 = ordered[max(0, round(len(ordered) * 0.95) - 1)]
    return round(statistics.median(ordered), 3), round(p95, 3)


def _row(size: int, operation: str, samples_ms: Sequence[float], detail: str = "") -> Row:
    p50, p95 = _percentiles(samples_ms) if samples_ms else (None, None)
    return {
        "size": size,
        "operation": operation,
        "p50_ms": p50,
        "p95_ms": p95,
        "calls": len(samples_ms),
        "detail": detail,
    }


async def timed(call: Callable[[], Awaitable[Any]], repeat: int) -> list[float]:
    samples = []
    for _ in range(repeat):
        began = time.perf_counter()
        await call()
        samples.append((time.perf_counter() - began) * 1000)
    return samples


def _config(size: int) -> VectorizeIndexConfig:
    return VectorizeIndexConfig(
        f"bench-{size}", DIMENSIONS, "cosine", {"tenant": "string", "page": "number"}
    )


async def _build(index: LocalVectorizeIndex, size: int, rng: np.random.Generator) -> list[float]:
    batch_ms = []
    for start in range(0, size, BATCH):
        block = rng.standard_normal((min(BATCH, size - start), DIMENSIONS), dtype=np.float32)
        vectors = [
            {
                "id": f"v{start + i}",
                "values": row.tolist(),
                "namespace": NAMESPACE,
                "metadata": {"tenant": f"t{(start + i) % TENANTS}", "page": (start + i) % 100, "text": TEXT},
            }
            for i, row in enumerate(block)
        ]
        began = time.perf_counter()
        await index.upsert(vectors)
        batch_ms.append((time.perf_counter() - began) * 1000)
    return batch_ms


async def _bench_size(root: Path, size: int, queries: int) -> list[Row]:
    rng = np.random.default_rng(size)
    path = root / f"bench-{size}.sqlite"
    index = LocalVectorizeIndex(path, _config(size))
    try:
        batch_ms = await _build(index, size, rng)
    finally:
        index.close()
    rows = [
        _row(
            size,
            f"upsert, {BATCH} vectors/batch",
            batch_ms,
            f"{size / (sum(batch_ms) / 1000):,.0f} vectors/s",
        )
    ]
    began = time.perf_counter()
    index = LocalVectorizeIndex(path, _config(size))
    rows.append(_row(size, "open (load from SQLite)", [(time.perf_counter() - began) * 1000]))
    try:
        probes = [rng.standard_normal(DIMENSIONS).tolist() for _ in range(queries)]
        for name, flt in FILTERS.items():
            it = iter(probes)
            options: dict[str, Any] = {"topK": TOP_K, "namespace": NAMESPACE}
            if flt is not None:
                options["filter"] = flt
            result = await index.query(probes[0], options)  # warm-up; also checks the filter matches
            assert result["count"] == TOP_K, (name, result["count"])
            samples = await timed(lambda: index.query(next(it), options), queries)  # noqa: B023
            rows.append(_row(size, f"query topK={TOP_K}, {name}", samples))
        memory = f"{index.memory_bytes / 2**20:,.1f} MiB"
        rows.append(_row(size, "index memory (matrix + columns)", [], memory))
    finally:
        index.close()
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    rows.append(_row(size, "process peak RSS so far", [], f"{peak_mib:,.0f} MiB"))
    return rows


def _in_thread(work: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run a coroutine to completion on a private loop, even if the caller is inside one."""
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["value"] = asyncio.run(work())
        except BaseException as exc:  # handed back to the caller's thread below
            box["error"] = exc

    thread = threading.Thread(target=target, name="bench-vectorize")
    thread.start()
    thread.join()
    if "error" in box:
        raise box["error"]
    value: T = box["value"]
    return value


def run(sizes: Sequence[int] = (10_000, 100_000), queries: int = 50) -> list[Row]:
    """Build one index per size in a temporary directory and measure it; returns the table's rows."""

    async def work() -> list[Row]:
        rows: list[Row] = []
        with tempfile.TemporaryDirectory(prefix="bench-vectorize-") as name:
            for size in sizes:
                rows += await _bench_size(Path(name), size, queries)
        return rows

    return _in_thread(work)


def platform_rows(sizes: Sequence[int] = (10_000, 100_000), queries: int = 50) -> list[Row]:
    """:func:`run`'s rows as ``bench_platform`` prints them (operation, size, p50_ms, p95_ms, calls)."""
    out = []
    for row in run(sizes, queries):
        detail = f" — {row['detail']}" if row["detail"] else ""
        out.append(
            {
                "operation": f"Vectorize {row['operation']}{detail}",
                "size": f"{row['size'] // 1000}k x {DIMENSIONS}-d",
                "p50_ms": row["p50_ms"] if row["p50_ms"] is not None else "",
                "p95_ms": row["p95_ms"] if row["p95_ms"] is not None else "",
                "calls": row["calls"],
            }
        )
    return out


def format_table(rows: Sequence[Row]) -> str:
    lines = ["| vectors | operation | p50 ms | p95 ms | calls | detail |", "|---:|---|---:|---:|---:|---|"]
    for r in rows:
        p50 = "" if r["p50_ms"] is None else r["p50_ms"]
        p95 = "" if r["p95_ms"] is None else r["p95_ms"]
        lines.append(f"| {r['size']:,} | {r['operation']} | {p50} | {p95} | {r['calls']} | {r['detail']} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--queries", type=int, default=50, help="queries per filter kind")
    args = parser.parse_args()
    print(format_table(run(args.sizes, args.queries)))


if __name__ == "__main__":
    main()
