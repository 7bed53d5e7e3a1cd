"""Ingestion throughput alone: upload first, then time the ingest worker draining the queue (not a test;
prints a table).

    .venv/bin/python benchmarks/bench_ingest_throughput.py [--docs 5183] [--embeddings wordllama]

``bench_ingest.py`` measures first upload -> all ready over HTTP, with uploads and ingestion sharing the
two cores. Here the SciFact corpus (../shared/datasets/scifact-train, read in place) is uploaded through
``POST /v1/documents/batch`` into the in-process stack (benchmarks/_stack.py) while no consumer runs;
then the queue is drained and timed: extraction, chunking, embedding (the local model behind the bge
ids), Vectorize upserts and the D1 batches of chunks and FTS rows, per document as the ingest worker
does them. Reports chunks per second of wall time and the process's CPU time (the tokenizer uses a
second core).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from pathlib import Path

DATASET = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "scifact-train"


async def run(docs: int) -> list[tuple[str, str]]:
    from _stack import bench_stack  # after EDGERAG_LOCAL_EMBEDDINGS is set

    corpus: list[dict[str, str]] = []
    with (DATASET / "corpus.jsonl").open() as handle:
        for line in handle:
            row = json.loads(line)
            corpus.append({"title": row["title"], "text": row["text"]})
            if len(corpus) >= docs:
                break
    async with bench_stack("enterprise", "read write admin", http_timeout_s=600) as bench:
        began = time.perf_counter()
        for start in range(0, len(corpus), 100):
            reply = await bench.client.post(
                "/v1/documents/batch", json={"documents": corpus[start : start + 100]}
            )
            reply.raise_for_status()
        uploaded = time.perf_counter() - began
        wall, cpu = time.perf_counter(), time.process_time()
        await bench.stack.drain_queues()
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        db = bench.stack.workers["gateway"].env.DB
        chunks = (await db.prepare("SELECT count(*) AS n FROM chunks").first())["n"]
        ready = (await db.prepare("SELECT count(*) AS n FROM documents WHERE status = 'ready'").first())["n"]
    return [
        ("embedding model behind the bge ids", os.environ["EDGERAG_LOCAL_EMBEDDINGS"]),
        ("documents uploaded first (batches of 100)", f"{len(corpus):,} in {uploaded:.1f} s"),
        ("documents ready", f"{ready:,} of {len(corpus):,} ({chunks:,} chunks)"),
        ("queue drained in", f"{wall:.1f} s wall, {cpu:.1f} s CPU"),
        ("ingestion throughput", f"{chunks / wall:.0f} chunks/s"),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--docs", type=int, default=5183)
    parser.add_argument("--embeddings", choices=("bge-small", "wordllama"), default="wordllama")
    args = parser.parse_args()
    if not DATASET.is_dir():
        sys.exit(f"dataset not found at {DATASET}")
    os.environ["EDGERAG_LOCAL_EMBEDDINGS"] = args.embeddings
    rows = asyncio.run(run(args.docs))
    print("| measure | value |\n|---|---|")
    for name, value in rows:
        print(f"| {name} | {value} |")
    print(f"\n(python {sys.version.split()[0]}, {os.cpu_count()} cpus, load {os.getloadavg()[0]:.1f})")


if __name__ == "__main__":
    main()
