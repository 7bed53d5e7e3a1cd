"""Retrieval quality on BEIR SciFact (train split): nDCG@10 and Recall@100 for keyword-only,
vector-only and fused search, plus a fusion-weight sweep (not a test; prints tables).

    .venv/bin/python benchmarks/bench_ingest.py        # ingests the corpus once (state is kept)
    .venv/bin/python benchmarks/eval_retrieval.py      # evaluates against that state

Queries go through the gateway's real HTTP interface (in-process ASGI, no server needed) in each mode.
Results are chunks; a document's rank is that of its best chunk. The sweep re-fuses the keyword and
vector rankings the API returned with the same ``edgerag.retrieval.fusion.fuse`` the gateway uses, for
a grid of RRF k and vector weights (keyword weight 1); check a choice end to end with ``--weights`` and
``--rrf-k``.

The query side uses the embedding model the state was ingested with (``embeddings`` in the state
directory, written by bench_ingest.py; ``EDGERAG_LOCAL_EMBEDDINGS``), and a state ingested for a judged
subset (``--judged-queries``) is evaluated on those queries only. ``--rerank N`` adds hybrid + rerank of
the top N fused chunks through the API's rerank stage (the local ``@cf/baai/bge-reranker-base``: the
ms-marco-MiniLM-L-12-v2 cross-encoder), on the first ``--rerank-queries`` queries (the cross-encoder
costs seconds per query on 2 cores), next to plain hybrid on the same queries.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import httpx
from edgerag.retrieval.fusion import fuse
from edgerag_local.ai import BGE_RERANKER, LocalAi
from edgerag_local.core.clock import ManualClock
from edgerag_local.evaluation import evaluate, load_beir
from edgerag_local.evaluation.beir import BeirDocument
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
    client: httpx.AsyncClient,
    queries: dict[str, str],
    mode: str,
    clock: ManualClock,
    rerank: dict[str, int] | None = None,
    info: dict[str, dict[str, Any]] | None = None,
) -> dict[str, list[dict[str, Any]]]:
    gate = asyncio.Semaphore(1 if rerank else 4)
    out: dict[str, list[dict[str, Any]]] = {}

    async def one(qid: str, text: str) -> None:
        body: dict[str, Any] = {"query": text, "top_k": TOP, "mode": mode}
        if rerank:
            body["rerank"] = rerank
        async with gate:
            while True:
                response = await client.post("/v1/search", json=body)
                if response.status_code != 429:
                    break
                # Rate limited like any client: wait Retry-After (on the stack's clock, not the wall's).
                clock.advance(int(response.headers.get("retry-after", "60")))
            response.raise_for_status()
            out[qid] = response.json()["results"]
            if info is not None:
                info[qid] = response.json().get("rerank") or {}

    await asyncio.gather(*(one(q, t) for q, t in queries.items()))
    return out


async def rerank_documents(
    queries: dict[str, str],
    hybrid: dict[str, list[dict[str, Any]]],
    mapping: dict[str, str],
    corpus: dict[str, BeirDocument],
    top_n: int,
) -> tuple[dict[str, list[str]], list[float]]:
    """Rerank each query's top ``top_n`` hybrid documents with the local ``@cf/baai/bge-reranker-base``
    (the binding's call and result shape, no timeout), the rest keeping their fused order."""
    ai = LocalAi()
    run: dict[str, list[str]] = {}
    spent: list[float] = []
    for qid, text in queries.items():
        ranked = doc_ranking(hybrid[qid], mapping)
        head, tail = ranked[:top_n], ranked[top_n:]
        contexts = [{"text": f"{corpus[c].title}\n{corpus[c].text}"} for c in head]
        began = time.perf_counter()
        result = await ai.run(BGE_RERANKER, {"query": text, "contexts": contexts})
        spent.append((time.perf_counter() - began) * 1000)
        run[qid] = [head[item["id"]] for item in result["response"]] + tail
    return run, spent


def scores_for(
    raw: dict[str, list[dict[str, Any]]], mapping: dict[str, str], qrels: dict[str, dict[str, int]]
) -> dict[str, float]:
    run = {q: doc_ranking(raw[q], mapping) for q in raw}
    return evaluate(run, {q: qrels[q] for q in raw})


async def evaluate_state(
    state: Path,
    weights: tuple[float, float] | None,
    rrf_k: int | None,
    rerank_top_n: int,
    rerank_queries: int,
) -> None:
    dataset = load_beir(DATASET)
    queries, qrels = dataset.queries, dataset.qrels
    queries = {q: t for q, t in queries.items() if q in qrels}
    if (state / "queries.json").is_file():
        subset = json.loads((state / "queries.json").read_text())
        queries = {q: queries[q] for q in subset if q in queries}
    mapping: dict[str, str] = json.loads((state / "corpus-map.json").read_text())
    key = (state / "demo-key").read_text().strip()
    embeddings_file = state / "embeddings"
    # States written before the file existed were ingested with WordLlama.
    embeddings = embeddings_file.read_text().strip() if embeddings_file.is_file() else "wordllama"
    os.environ["EDGERAG_LOCAL_EMBEDDINGS"] = embeddings
    os.environ.setdefault("EDGERAG_LOCAL_RERANKER", "cross-encoder")
    gateway: dict[str, str] = {}
    if weights is not None:
        gateway.update({"FUSION_KEYWORD_WEIGHT": str(weights[0]), "FUSION_VECTOR_WEIGHT": str(weights[1])})
    if rrf_k is not None:
        gateway["FUSION_RRF_K"] = str(rrf_k)
    extra = {"gateway": gateway} if gateway else {}
    clock = ManualClock()
    stack = open_stack(ROOT, state_dir=state, extra_vars=extra, clock=clock)
    transport = httpx.ASGITransport(app=stack.asgi("gateway"))
    async with httpx.AsyncClient(
        transport=transport, base_url="http://local", headers={"authorization": f"Bearer {key}"}, timeout=300
    ) as client:
        raw = {mode: await run_mode(client, queries, mode, clock) for mode in ("keyword", "vector", "hybrid")}
    stack.close()
    reranked: dict[str, list[str]] = {}
    rerank_ms: list[float] = []
    if rerank_top_n:
        reranked, rerank_ms = await rerank_documents(
            dict(list(queries.items())[:rerank_queries]), raw["hybrid"], mapping, dataset.corpus, rerank_top_n
        )

    configured = "configured" if weights is None else f"keyword {weights[0]} / vector {weights[1]}"
    if rrf_k is not None:
        configured += f", RRF k {rrf_k}"
    print(
        f"\nQuality on {len(queries)} SciFact train queries, {len(mapping)} documents "
        f"(embeddings: {embeddings}; hybrid weights: {configured})\n"
    )
    print("| retriever | nDCG@10 | Recall@100 |")
    print("|---|---:|---:|")
    for mode in ("keyword", "vector", "hybrid"):
        scores = scores_for(raw[mode], mapping, qrels)
        print(f"| {mode} | {scores['ndcg@10']:.4f} | {scores['recall@100']:.4f} |")
    if rerank_top_n:
        plain = scores_for({q: raw["hybrid"][q] for q in reranked}, mapping, qrels)
        scores = evaluate(reranked, {q: qrels[q] for q in reranked})
        print(f"\nRerank of the top {rerank_top_n} hybrid documents, first {len(reranked)} queries:\n")
        print("| retriever | nDCG@10 | Recall@100 |")
        print("|---|---:|---:|")
        print(f"| hybrid | {plain['ndcg@10']:.4f} | {plain['recall@100']:.4f} |")
        print(f"| hybrid + rerank | {scores['ndcg@10']:.4f} | {scores['recall@100']:.4f} |")
        ms = sorted(rerank_ms)
        print(f"\nrerank call p50 {ms[len(ms) // 2]:.0f} ms, p95 {ms[int(len(ms) * 0.95)]:.0f} ms per query")

    # Sweep: fuse the two single-retriever chunk rankings the API returned, for a grid of weights.
    print("\nFusion sweep (same fuse() as the gateway; keyword weight 1.0):\n")
    print("| RRF k | vector weight | nDCG@10 | Recall@100 |")
    print("|---:|---:|---:|---:|")
    results = []
    kw = 1.0
    for k in (5, 10, 20, 30, 60, 100):
        for vw in (0.1, 0.2, 0.3, 0.5, 0.7, 1.0, 1.5, 2.0, 2.5, 3.0, 4.0, 6.0):
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
            scores = evaluate(run, {q: qrels[q] for q in run})
            print(f"| {k} | {vw} | {scores['ndcg@10']:.4f} | {scores['recall@100']:.4f} |")
            results.append((scores["ndcg@10"], scores["recall@100"], k, vw))
    best = max(results)
    print(f"\nbest on train: RRF k {best[2]}, keyword 1.0 / vector {best[3]} (nDCG@10 {best[0]:.4f})")


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
    parser.add_argument("--rrf-k", type=int, default=None, help="override the configured RRF k")
    parser.add_argument("--rerank", type=int, default=0, metavar="N", help="also rerank the top N (0: no)")
    parser.add_argument("--rerank-queries", type=int, default=100, help="queries to rerank")
    args = parser.parse_args()
    if not (args.state / "corpus-map.json").is_file():
        sys.exit(f"no ingested corpus in {args.state}: run benchmarks/bench_ingest.py first")
    weights = tuple(args.weights) if args.weights else None
    asyncio.run(evaluate_state(args.state, weights, args.rrf_k, args.rerank, args.rerank_queries))


if __name__ == "__main__":
    main()
