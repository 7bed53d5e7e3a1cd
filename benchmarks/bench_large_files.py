"""Large files through sliced ingestion: time to ready, CPU, heap growth, chunks/s and where the time goes.

    .venv/bin/python benchmarks/bench_large_files.py [--pages 100] [--rows 10000 100000] [--xlsx]
        [--slice 500] [--profile csv|pdf]

Not a test: prints two tables. Each file is generated here (the PDF by the tests' PDF writer, the CSV
as bench_formats.py makes it: five columns, ~70 rendered characters a row; ``--xlsx`` adds a workbook
of the largest CSV's rows), uploaded through ``POST /v1/documents`` on a fresh in-process LocalStack
and ingested by delivering the queue until it is idle, one slice of ``INGEST_SLICE_CHUNKS`` chunks
per message. Every file is ingested twice: once timed (wall and this process's CPU time: the gateway,
the ingest worker and every emulator run in it, so CPU time is the honest figure on a busy machine)
and once under tracemalloc for the peak Python heap growth of the whole ingestion (tracemalloc slows
Python down, so that run is never the timed one; the local embedding model is loaded before it).

The second table splits the ingest worker's time by stage, from the document's own ``timings_ms``
(summed over its slices): extract+chunk (sections are extracted lazily as the chunker reaches them,
so the two are one stage: ``chunking_ms``, plus ``extracting_ms`` for reading the file and opening
the parser), embed (the local stand-in for Workers AI), index (Vectorize upserts), and the rest of
``total_ms`` (D1: the staged batches, the swap into chunks/FTS, progress writes). ``--profile`` runs
pyinstrument (install it ad hoc: ``uv pip install pyinstrument``) over the ingestion of one file.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys
import tempfile
import time
import tracemalloc
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from edgerag_local.runtime.stack import open_stack  # noqa: E402

from benchmarks.bench_formats import WORDS, make_big_pdf, make_csv  # noqa: E402
from tests.unit.format_samples import make_xlsx  # noqa: E402

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def make_workbook(rows: int) -> bytes:
    table: list[list[str | int | float]] = [["order", "customer", "city", "item", "amount"]]
    table += [
        [i, f"customer{i % 997}", f"city{i % 50}", WORDS[i % 10], i * 3 % 1000 + 0.5] for i in range(rows)
    ]
    return make_xlsx({"Orders": table})


@dataclass
class Run:
    wall: float
    cpu: float
    chunks: int
    slices: int
    heap_mib: float
    timings: dict[str, float]


async def ingest(name: str, data: bytes, content_type: str, slice_chunks: int, traced: bool) -> Run:
    with tempfile.TemporaryDirectory() as tmp:
        extra = {"ingest": {"INGEST_SLICE_CHUNKS": str(slice_chunks)}}
        stack = open_stack(ROOT, state_dir=Path(tmp) / "state", extra_vars=extra)
        transport = httpx.ASGITransport(app=stack.asgi("gateway"))
        token = stack.admin_token_file.read_text().strip() if stack.admin_token_file else ""
        base = "http://127.0.0.1:8787"
        try:
            async with httpx.AsyncClient(
                transport=transport, base_url=base, headers={"authorization": f"Bearer {token}"}
            ) as admin:
                created = await admin.post("/v1/admin/tenants", json={"name": "bench", "plan": "enterprise"})
                tenant = created.json()["id"]
                key = (
                    await admin.post(
                        f"/v1/admin/tenants/{tenant}/keys", json={"name": "b", "scopes": ["write", "read"]}
                    )
                ).json()["key"]
            async with httpx.AsyncClient(
                transport=transport, base_url=base, headers={"authorization": f"Bearer {key}"}, timeout=600
            ) as client:
                # Warm up on a tiny document first: the local embedding model loads (and builds its
                # projection) per stack, seconds that Workers AI does not charge to an ingestion.
                warm = await client.post("/v1/documents", json={"title": "warm-up", "text": "Warm up."})
                assert warm.status_code == 202, warm.text
                await stack.drain_queues()
                if traced:
                    tracemalloc.start()
                began, began_cpu = time.perf_counter(), time.process_time()
                uploaded = await client.post("/v1/documents", files={"file": (name, data, content_type)})
                assert uploaded.status_code == 202, uploaded.text
                slices = await stack.drain_queues()
                wall, cpu = time.perf_counter() - began, time.process_time() - began_cpu
                heap = 0.0
                if traced:
                    heap = tracemalloc.get_traced_memory()[1] / 2**20
                    tracemalloc.stop()
                doc: dict[str, Any] = (
                    await client.get(f"/v1/documents/{uploaded.json()['document']['id']}")
                ).json()
                assert doc["status"] == "ready", doc
                return Run(wall, cpu, int(doc["chunk_count"]), slices, heap, dict(doc["timings_ms"]))
        finally:
            await stack.stop()
            stack.close()


def files(args: argparse.Namespace) -> list[tuple[str, str, bytes, str]]:
    out = [(f"{args.pages}-page PDF", "big.pdf", make_big_pdf(args.pages), "application/pdf")]
    out += [(f"{rows:,}-row CSV", "big.csv", make_csv(rows), "text/csv") for rows in args.rows]
    if args.xlsx:
        rows = max(args.rows)
        out.append((f"{rows:,}-row XLSX", "big.xlsx", make_workbook(rows), XLSX))
    return out


async def run(args: argparse.Namespace, null: TextIO) -> None:
    print(f"INGEST_SLICE_CHUNKS={args.slice}; times include upload, every slice and the final swap.\n")
    print(
        "| file | size | chunks | slices | time to ready | CPU | chunks/s (wall) | chunks/s (CPU) |"
        " peak Python heap growth |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|", flush=True)
    results = []
    for label, name, data, content_type in files(args):
        # The workers' JSON logs go to stdout; the tables are what this prints.
        with contextlib.redirect_stdout(null):
            timed = await ingest(name, data, content_type, args.slice, traced=False)
            traced = await ingest(name, data, content_type, args.slice, traced=True)
        results.append((label, timed))
        print(
            f"| {label} | {len(data) / 2**20:.2f} MiB | {timed.chunks:,} | {timed.slices} |"
            f" {timed.wall:.2f} s | {timed.cpu:.2f} s | {timed.chunks / timed.wall:.0f} |"
            f" {timed.chunks / timed.cpu:.0f} | {traced.heap_mib:.1f} MiB |",
            flush=True,
        )
    print("\nWhere the ingest worker's time goes (ms, summed over the slices of the timed run):\n")
    print(
        "| file | read + open | extract + chunk | embed (local model) | Vectorize upserts | D1 and the rest |"
        " ingest total |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|")
    for label, timed in results:
        t = timed.timings
        stages = [t.get(k, 0.0) for k in ("extracting_ms", "chunking_ms", "embedding_ms", "indexing_ms")]
        total = t.get("total_ms", 0.0)
        cells = " | ".join(f"{v:,.0f}" for v in [*stages, total - sum(stages), total])
        print(f"| {label} | {cells} |")


async def profile(args: argparse.Namespace, null: TextIO) -> None:
    from pyinstrument import Profiler

    chosen = {"csv": 1, "pdf": 0, "xlsx": -1}[args.profile]
    label, name, data, content_type = files(args)[chosen]
    profiler = Profiler(async_mode="enabled")
    with contextlib.redirect_stdout(null):
        await ingest(name, data, content_type, args.slice, traced=False)  # warm: imports
        profiler.start()
        await ingest(name, data, content_type, args.slice, traced=False)
        profiler.stop()
    print(f"profile of {label}")
    print(profiler.output_text(unicode=False, color=False))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pages", type=int, default=100)
    parser.add_argument("--rows", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--xlsx", action="store_true", help="also a workbook of the largest CSV's rows")
    parser.add_argument("--slice", type=int, default=500, help="INGEST_SLICE_CHUNKS")
    parser.add_argument("--profile", choices=("csv", "pdf", "xlsx"))
    args = parser.parse_args()
    with open(os.devnull, "w") as null:
        asyncio.run(profile(args, null) if args.profile else run(args, null))


if __name__ == "__main__":
    main()
