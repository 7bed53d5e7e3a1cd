"""How long ``POST /v1/evaluations`` takes, by run size and mode (not a test; prints a markdown table).

    .venv/bin/python benchmarks/bench_evaluations.py [--docs 400] [--queries 50 100 200]

The whole local stack runs in this process (local D1, KV, Vectorize, the local embedding and rerank
models); requests go through the gateway's real ASGI app with an API key. The corpus is the start of
SciFact train (``../shared/datasets/scifact-train``, read in place): the documents the first queries
judge relevant plus distractors, ``--docs`` in all. Each row is one evaluation run of that many
queries in the given modes: wall time and process CPU time of the whole request, and per search
(queries x modes), nDCG@10 per mode, and how many reranks fell back to the fused order (timeout).
The largest runs the API accepts are 200 queries in two modes (400 searches). The local models are
the runtime's defaults (bge-small, the cross-encoder) unless EDGERAG_LOCAL_EMBEDDINGS /
EDGERAG_LOCAL_RERANKER choose others.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path
from typing import Any

from _stack import bench_stack
from edgerag_local.evaluation import load_beir

ROOT = Path(__file__).resolve().parents[1]
DATASET = ROOT.parent / "shared" / "datasets" / "scifact-train"
RUNS: list[tuple[str, ...]] = [("keyword",), ("hybrid",), ("hybrid_rerank",), ("keyword", "hybrid")]


async def main(docs: int, sizes: list[int]) -> None:
    corpus, queries, qrels = load_beir(DATASET)
    chosen = sorted((q for q in qrels if q in queries), key=int)[: max(sizes)]
    wanted = dict.fromkeys(d for q in chosen for d in sorted(qrels[q]))
    for doc in corpus:
        if len(wanted) >= docs:
            break
        wanted.setdefault(doc, None)
    async with bench_stack("enterprise", "admin", http_timeout_s=600) as bench:
        stack, client = bench.stack, bench.client
        ids: dict[str, str] = {}
        items = list(wanted)
        for start in range(0, len(items), 100):
            part = items[start : start + 100]
            batch = [{"title": corpus[d].title or d, "text": corpus[d].text} for d in part]
            reply = await client.post("/v1/documents/batch", json={"documents": batch})
            reply.raise_for_status()
            ids.update(zip(part, (doc["id"] for doc in reply.json()["documents"]), strict=True))
        await stack.drain_queues()

        def body(size: int, modes: tuple[str, ...]) -> dict[str, Any]:
            return {
                "modes": list(modes),
                "queries": [
                    {
                        "id": q,
                        "query": queries[q],
                        "judgements": [{"document_id": ids[d], "relevance": g} for d, g in qrels[q].items()],
                    }
                    for q in chosen[:size]
                ],
            }

        # Warm up (model loading, first-use costs) with a small run in every mode.
        (
            await client.post("/v1/evaluations", json=body(5, ("keyword", "vector", "hybrid_rerank")))
        ).raise_for_status()
        print(f"{len(wanted)} SciFact documents; times of one POST /v1/evaluations\n")
        print(
            "| queries | modes | searches | wall s | CPU s | CPU ms / search | nDCG@10 | rerank fallbacks |"
        )
        print("|---:|---|---:|---:|---:|---:|---:|---:|")
        for size in sizes:
            for modes in RUNS:
                if size * len(modes) > 400:
                    continue
                wall, cpu = time.perf_counter(), time.process_time()
                reply = await client.post("/v1/evaluations", json=body(size, modes))
                wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
                reply.raise_for_status()
                run = reply.json()
                ndcg = " / ".join(f"{run['summary'][mode]['ndcg@10']:.4f}" for mode in modes)
                searches = size * len(modes)
                print(
                    f"| {size} | {' + '.join(modes)} | {searches} | {wall:.2f} | {cpu:.2f} |"
                    f" {cpu * 1000 / searches:.1f} | {ndcg} | {run['rerank_fallbacks']} |"
                )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--docs", type=int, default=400)
    parser.add_argument("--queries", type=int, nargs="+", default=[50, 100, 200])
    args = parser.parse_args()
    if not (DATASET / "corpus.jsonl").is_file():
        sys.exit(f"dataset not present: {DATASET}")
    asyncio.run(main(args.docs, args.queries))
