"""Retrieval quality on BEIR SciFact (train split): nDCG@10 and Recall@100 for keyword-only,
vector-only and fused search, plus a fusion-weight sweep (not a test; prints tables).

    .venv/bin/python benchmarks/bench_ingest.py        # ingests the corpus once (state is kept)
    .venv/bin/python benchmarks/eval_retrieval.py      # evaluates against that state

Queries go through the gateway's real HTTP interface (in-process ASGI, no server needed) in each mode.
Results are chunks; a document's rank is that of its best chunk. The sweep re-fuses the keyword and
vector rankings the API returned with the same ``edgerag.retrieval.fusion.fuse`` the gateway uses, for
a grid of weights, and the chosen weights are then checked end to end through the API.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path
from typing import Any

import httpx
from edgerag.retrieval.fusion import fuse
from edgerag_local.core.clock import ManualClock
from edgerag_local.evaluation import evaluate, load_beir
from edgerag_local.runtime.stack import open_stack

ROOT = Path(__file__).resolve().parents[1]
DATASET = ROOT.parent / "shared" / "datasets" / "scifact-train"
DEFAULT_STATE = ROOT / ".edgerag" / "bench-scifact"
TOP = 100


def doc_ranking(results: list[dict[str, Any]], mapping: dict[str, str]) -> list[str]:
    ranked: list[str] = []
    for hit in results:
        corpus_id = mapping.get(hit["document_id"])
        if corpus_id is not None and corpus_id not in ranked:
            ranked.append(corpus_id)
    return ranked


async def run_mode(
    client: httpx.AsyncClient, queries: dict[str, str], mode: str, clock: ManualClock
) -> dict[str, list[dict[str, Any]]]:
    gate = asyncio.Semaphore(4)
    out: dict[str, list[dict[str, Any]]] = {}

    async def one(qid: str, text: str) -> None:
        async with gate:
            while True:
                response = await client.post("/v1/search", json={"query": text, "top_k": TOP, "mode": mode})
                if response.status_code != 429:
                    break
                # Rate limited like any client: wait Retry-After (on the stack's clock, not the wall's).
                clock.advance(int(response.headers.get("retry-after", "60")))
            response.raise_for_status()
            out[qid] = response.json()["results"]

    await asyncio.gather(*(one(q, t) for q, t in queries.items()))
    return out


async def evaluate_state(state: Path, weights: tuple[float, float] | None) -> None:
    dataset = load_beir(DATASET)
    queries, qrels = dataset.queries, dataset.qrels
    queries = {q: t for q, t in queries.items() if q in qrels}
    mapping: dict[str, str] = json.loads((state / "corpus-map.json").read_text())
    key = (state / "demo-key").read_text().strip()
    extra = {}
    if weights is not None:
        extra = {
            "gateway": {"FUSION_KEYWORD_WEIGHT": str(weights[0]), "FUSION_VECTOR_WEIGHT": str(weights[1])}
        }
    clock = ManualClock()
    stack = open_stack(ROOT, state_dir=state, extra_vars=extra, clock=clock)
    transport = httpx.ASGITransport(app=stack.asgi("gateway"))
    async with httpx.AsyncClient(
        transport=transport, base_url="http://local", headers={"authorization": f"Bearer {key}"}, timeout=300
    ) as client:
        raw = {mode: await run_mode(client, queries, mode, clock) for mode in ("keyword", "vector", "hybrid")}
    stack.close()

    rows = []
    for mode in ("keyword", "vector", "hybrid"):
        run = {q: doc_ranking(raw[mode][q], mapping) for q in queries}
        scores = evaluate(run, qrels)
        rows.append((mode, scores["ndcg@10"], scores["recall@100"]))
    configured = "configured" if weights is None else f"keyword {weights[0]} / vector {weights[1]}"
    print(f"\nQuality on {len(queries)} SciFact train queries (hybrid weights: {configured})\n")
    print("| retriever | nDCG@10 | Recall@100 |")
    print("|---|---:|---:|")
    for mode, ndcg, recall in rows:
        print(f"| {mode} | {ndcg:.4f} | {recall:.4f} |")

    # Sweep: fuse the two single-retriever chunk rankings the API returned, for a grid of weights.
    print("\nFusion sweep (same fuse() as the gateway; keyword weight 1.0):\n")
    print("| RRF k | vector weight | nDCG@10 | Recall@100 |")
    print("|---:|---:|---:|---:|")
    best = None
    kw = 1.0
    for k in (10, 30, 60, 100):
        for vw in (0.0, 0.05, 0.1, 0.15, 0.2, 0.3, 0.5, 1.0):
            run = {}
            for q in queries:
                lists = {
                    "keyword": [h["chunk_id"] for h in raw["keyword"][q]],
                    "vector": [h["chunk_id"] for h in raw["vector"][q]],
                }
                owner = {
                    h["chunk_id"]: h["document_id"] for mode in ("keyword", "vector") for h in raw[mode][q]
                }
                fused = fuse(lists, {"keyword": kw, "vector": vw}, k=k, limit=TOP * 2)
                run[q] = doc_ranking([{"document_id": owner[h.id]} for h in fused], mapping)
            scores = evaluate(run, qrels)
            print(f"| {k} | {vw} | {scores['ndcg@10']:.4f} | {scores['recall@100']:.4f} |")
            if best is None or scores["ndcg@10"] > best[0]:
                best = (scores["ndcg@10"], k, vw)
    assert best is not None
    print(f"\nbest on train: RRF k {best[1]}, keyword 1.0 / vector {best[2]} (nDCG@10 {best[0]:.4f})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--state", type=Path, default=DEFAULT_STATE)
    parser.add_argument(
        "--weights",
        type=float,
        nargs=2,
        metavar=("KEYWORD", "VECTOR"),
        default=None,
        help="override the configured fusion weights",
    )
    args = parser.parse_args()
    if not (args.state / "corpus-map.json").is_file():
        sys.exit(f"no ingested corpus in {args.state}: run benchmarks/bench_ingest.py first")
    asyncio.run(evaluate_state(args.state, tuple(args.weights) if args.weights else None))


if __name__ == "__main__":
    main()
