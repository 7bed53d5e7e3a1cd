"""Ingestion and search benchmark through the HTTP API (not a test; prints a table).

    .venv/bin/python benchmarks/bench_ingest.py [--limit N] [--state DIR] [--embeddings wordllama]
    .venv/bin/python benchmarks/bench_ingest.py --search-only --state DIR   # latency on a kept corpus

Starts the local stack as its own process (``edgerag dev`` on a free loopback port, a fresh state
directory), uploads the BEIR SciFact corpus from ../shared/datasets/scifact-train (5,183 documents)
through ``POST /v1/documents``, waits until every document is ``ready``, then measures search latency
at concurrency 1 and 8 (distinct queries in each run: a repeated one would be a cache hit). Reports
ingestion throughput (chunks/s), time to ready, search p50/p95 and the stack process's peak resident
memory (VmHWM). The state directory is kept (with a map from our document ids to the corpus ids, and
the embedding model in ``embeddings``) so ``eval_retrieval.py`` can reuse the ingested corpus.
``--embeddings`` picks the local model behind the bge ids (``EDGERAG_LOCAL_EMBEDDINGS``:
``bge-small``, the default, or ``wordllama``); the stack's log goes to ``stack.log`` in the state
directory.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
DATASET = ROOT.parent / "shared" / "datasets" / "scifact-train"
DEFAULT_STATE = ROOT / ".edgerag" / "bench-scifact"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def start_stack(state: Path, port: int, embeddings: str) -> tuple[subprocess.Popen[str], str]:
    command = [
        str(ROOT / ".venv" / "bin" / "edgerag"),
        "dev",
        "--state",
        str(state),
        "--port",
        str(port),
        "--log-level",
        "warning",
    ]
    env = {**os.environ, "EDGERAG_LOCAL_EMBEDDINGS": embeddings}
    process = subprocess.Popen(
        command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env
    )
    key = ""
    assert process.stdout is not None
    for line in process.stdout:
        if match := re.search(r"demo API key \([^)]*\): (\S+)", line):
            key = match.group(1)
        if line.startswith("serving http://"):
            break
    if not key:
        process.kill()
        raise RuntimeError("the stack did not print a demo key")
    # Keep draining the stack's output (it logs every request): a full pipe would block the stack.
    threading.Thread(target=drain, args=(process.stdout, state / "stack.log"), daemon=True).start()
    return process, key


def drain(stream: Any, path: Path) -> None:
    with path.open("w") as log:
        for line in stream:
            log.write(line)


async def wait_until_listening(base: str) -> None:
    async with httpx.AsyncClient() as client:
        for _ in range(200):
            try:
                await client.get(f"{base}/openapi.json")
                return
            except httpx.TransportError:
                await asyncio.sleep(0.05)
    raise RuntimeError("the stack never started listening")


async def lift_document_limit(base: str, state: Path, documents: int) -> None:
    """The demo tenant is on the free plan (1,000 documents); give it room for the whole corpus."""
    token = (state / "admin-token").read_text().strip()
    async with httpx.AsyncClient(base_url=base, headers={"authorization": f"Bearer {token}"}) as admin:
        response = await admin.put(
            "/v1/admin/tenants/demo/limits", json={"max_documents": max(documents, 1000)}
        )
        response.raise_for_status()


def load_corpus(limit: int | None) -> list[dict[str, str]]:
    docs = []
    with (DATASET / "corpus.jsonl").open() as handle:
        for line in handle:
            docs.append(json.loads(line))
            if limit and len(docs) >= limit:
                break
    return docs


def judged_subset(queries: int, distractors: int) -> tuple[list[dict[str, str]], list[str]]:
    """The first ``queries`` judged train queries, every document judged for them, and the first
    ``distractors`` other documents of the corpus: a smaller corpus on which those queries are fully
    judged (for a slow model; figures are higher than on the whole corpus, compare like with like)."""
    judged: dict[str, set[str]] = {}
    with (DATASET / "qrels" / "train.tsv").open() as handle:
        next(handle)
        for line in handle:
            qid, cid, score = line.rstrip("\n").split("\t")
            if int(score) > 0:
                judged.setdefault(qid, set()).add(cid)
    order = [json.loads(line)["_id"] for line in (DATASET / "queries.jsonl").open()]
    chosen = [q for q in order if q in judged][:queries]
    wanted = set().union(*(judged[q] for q in chosen)) if chosen else set()
    docs: list[dict[str, str]] = []
    extra = 0
    with (DATASET / "corpus.jsonl").open() as handle:
        for line in handle:
            doc = json.loads(line)
            if doc["_id"] in wanted:
                docs.append(doc)
            elif extra < distractors:
                docs.append(doc)
                extra += 1
    return docs, chosen


async def upload(client: httpx.AsyncClient, docs: list[dict[str, str]], concurrency: int) -> dict[str, str]:
    """Bulk upload through POST /v1/documents/batch (100 documents a request)."""
    mapping: dict[str, str] = {}
    gate = asyncio.Semaphore(concurrency)

    async def one(batch: list[dict[str, str]]) -> None:
        async with gate:
            body = {
                "documents": [
                    {
                        "title": d["title"] or d["_id"],
                        "text": d["text"] or d["title"],
                        "metadata": {"corpus_id": d["_id"]},
                    }
                    for d in batch
                ]
            }
            response = await client.post("/v1/documents/batch", json=body)
            response.raise_for_status()
            for doc, created in zip(batch, response.json()["documents"], strict=True):
                mapping[created["id"]] = doc["_id"]

    await asyncio.gather(*(one(docs[i : i + 100]) for i in range(0, len(docs), 100)))
    return mapping


async def wait_ready(client: httpx.AsyncClient, expected: int) -> tuple[int, int]:
    """Poll (cheaply) until nothing is queued or processing; then count ready documents and chunks."""
    while True:
        pending = 0
        for status in ("queued", "processing"):
            page = (await client.get("/v1/documents", params={"status": status, "limit": 1})).json()
            pending += len(page["documents"])
        if pending == 0:
            break
        await asyncio.sleep(2.0)
    ready = failed = chunks = 0
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 100, **({"cursor": cursor} if cursor else {})}
        page = (await client.get("/v1/documents", params=params)).json()
        for doc in page["documents"]:
            ready += doc["status"] == "ready"
            failed += doc["status"] == "failed"
            chunks += doc["chunk_count"] if doc["status"] == "ready" else 0
        cursor = page["next_cursor"]
        if cursor is None:
            break
    if failed or ready != expected:
        print(f"warning: {ready} ready, {failed} failed of {expected}", file=sys.stderr)
    return ready, chunks


async def search_latency(client: httpx.AsyncClient, queries: list[str], concurrency: int) -> list[float]:
    gate = asyncio.Semaphore(concurrency)
    samples: list[float] = []

    async def one(query: str) -> None:
        async with gate:
            began = time.perf_counter()
            response = await client.post("/v1/search", json={"query": query, "top_k": 10})
            response.raise_for_status()
            samples.append((time.perf_counter() - began) * 1000)

    await asyncio.gather(*(one(q) for q in queries))
    return samples


async def latency_runs(client: httpx.AsyncClient, n: int) -> tuple[list[float], list[float]]:
    """A warm-up, then ``n`` searches at concurrency 1 and ``n`` at concurrency 8, each with queries no
    earlier search sent (a repeated query would be a result-cache hit)."""
    texts = list(dict.fromkeys(json.loads(line)["text"] for line in (DATASET / "queries.jsonl").open()))
    await search_latency(client, texts[:10], 1)
    c1 = await search_latency(client, texts[10 : 10 + n], 1)
    c8 = await search_latency(client, texts[10 + n : 10 + 2 * n], 8)
    return c1, c8


def stop_stack(process: subprocess.Popen[str]) -> None:
    process.send_signal(signal.SIGINT)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()


def pct(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))]


async def run(args: argparse.Namespace) -> list[tuple[str, str]]:
    chosen: list[str] | None = None
    if args.judged_queries:
        docs, chosen = judged_subset(args.judged_queries, args.distractors)
    else:
        docs = load_corpus(args.limit)
    state: Path = args.state
    shutil.rmtree(state, ignore_errors=True)  # a fresh stack: nothing ingested before the clock starts
    port = free_port()
    process, key = start_stack(state, port, args.embeddings)
    base = f"http://127.0.0.1:{port}"
    try:
        await wait_until_listening(base)
        await lift_document_limit(base, state, len(docs))
        limits = httpx.Limits(max_connections=16)
        async with httpx.AsyncClient(
            base_url=base, headers={"authorization": f"Bearer {key}"}, timeout=120, limits=limits
        ) as client:
            began = time.perf_counter()
            mapping = await upload(client, docs, concurrency=4)
            uploaded = time.perf_counter() - began
            ready, chunks = await wait_ready(client, len(docs))
            to_ready = time.perf_counter() - began
            (state / "corpus-map.json").write_text(json.dumps(mapping))
            (state / "demo-key").write_text(key)
            (state / "embeddings").write_text(args.embeddings)
            if chosen is not None:
                (state / "queries.json").write_text(json.dumps(chosen))
            c1, c8 = await latency_runs(client, args.queries)
        peak = peak_rss_mib(process.pid)
    finally:
        stop_stack(process)
    return [
        ("embedding model behind the bge ids", args.embeddings),
        (
            "corpus",
            "whole" if chosen is None else f"judged for {len(chosen)} queries + {args.distractors} others",
        ),
        (
            "documents uploaded (HTTP batches of 100, concurrency 4)",
            f"{len(docs)} in {uploaded:.1f} s ({len(docs) / uploaded:.0f} docs/s)",
        ),
        ("documents ready", f"{ready} of {len(docs)}"),
        ("chunks indexed", f"{chunks}"),
        ("time from first upload to all ready", f"{to_ready:.1f} s"),
        ("ingestion throughput", f"{chunks / to_ready:.1f} chunks/s"),
        (
            "search latency, concurrency 1 (p50 / p95)",
            f"{pct(c1, 0.5):.1f} / {pct(c1, 0.95):.1f} ms ({len(c1)} queries)",
        ),
        (
            "search latency, concurrency 8 (p50 / p95)",
            f"{pct(c8, 0.5):.1f} / {pct(c8, 0.95):.1f} ms ({len(c8)} queries)",
        ),
        ("search throughput, concurrency 8", f"{len(c8) / (sum(c8) / 8 / 1000):.0f} queries/s (approx.)"),
        ("peak memory of the local stack (VmHWM)", f"{peak:.0f} MiB"),
    ]


async def search_only(args: argparse.Namespace) -> list[tuple[str, str]]:
    """Search latency over HTTP on a corpus ingested before (``--state``), left as it was: the stack
    runs on a copy without its KV (so no result or embedding is cached yet)."""
    embeddings = (args.state / "embeddings").read_text().strip()
    with tempfile.TemporaryDirectory() as tmp:
        state = Path(tmp) / "state"
        shutil.copytree(args.state, state, ignore=shutil.ignore_patterns("kv", "stack.log"))
        port = free_port()
        process, key = start_stack(state, port, embeddings)
        base = f"http://127.0.0.1:{port}"
        try:
            await wait_until_listening(base)
            async with httpx.AsyncClient(
                base_url=base, headers={"authorization": f"Bearer {key}"}, timeout=120
            ) as client:
                c1, c8 = await latency_runs(client, args.queries)
        finally:
            stop_stack(process)
    return [
        ("embedding model behind the bge ids", embeddings),
        ("search latency, concurrency 1 (p50 / p95)", f"{pct(c1, 0.5):.1f} / {pct(c1, 0.95):.1f} ms"),
        ("search latency, concurrency 8 (p50 / p95)", f"{pct(c8, 0.5):.1f} / {pct(c8, 0.95):.1f} ms"),
        ("search throughput, concurrency 8", f"{len(c8) / (sum(c8) / 8 / 1000):.0f} queries/s (approx.)"),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--limit", type=int, default=None, help="ingest only the first N documents")
    parser.add_argument(
        "--queries",
        type=int,
        default=200,
        help="queries per latency run (the demo tenant is rate limited to 600 requests/min)",
    )
    parser.add_argument(
        "--judged-queries",
        type=int,
        default=0,
        help="ingest only the documents judged for the first N train queries plus --distractors others "
        "(eval_retrieval.py then evaluates those N queries)",
    )
    parser.add_argument("--distractors", type=int, default=500)
    parser.add_argument("--state", type=Path, default=DEFAULT_STATE)
    parser.add_argument(
        "--embeddings",
        choices=("bge-small", "wordllama"),
        default="bge-small",
        help="the local model behind the bge ids (EDGERAG_LOCAL_EMBEDDINGS)",
    )
    parser.add_argument(
        "--search-only",
        action="store_true",
        help="no ingestion: measure search latency on the corpus --state holds (left unchanged)",
    )
    args = parser.parse_args()
    if not DATASET.is_dir():
        sys.exit(f"dataset not found at {DATASET}")
    if args.search_only and not (args.state / "embeddings").is_file():
        sys.exit(f"no ingested corpus in {args.state}: run this script without --search-only first")
    rows = asyncio.run(search_only(args) if args.search_only else run(args))
    print("| measure | value |")
    print("|---|---|")
    for name, value in rows:
        print(f"| {name} | {value} |")
    kept = "read from" if args.search_only else "kept in"
    load = os.getloadavg()[0]
    print(
        f"\nstate {kept} {args.state} (python {sys.version.split()[0]}, {os.cpu_count()} cpus, "
        f"load {load:.1f})"
    )


if __name__ == "__main__":
    main()
