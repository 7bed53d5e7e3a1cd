"""``/health`` latency while a large document ingests through ``edgerag dev`` (not a test; prints a table).

    .venv/bin/python benchmarks/bench_health_under_ingest.py [--mb 5] [--interval-ms 20]

Starts the local stack as its own process (``edgerag dev`` on a free loopback port, a fresh state
directory), measures ``GET /health`` at rest, uploads one text document of ``--mb`` megabytes (English-
like words in sentences and paragraphs, so the cost is extraction, chunking, embedding and indexing
rather than a pathological input), then polls ``/health`` every ``--interval-ms`` until the document is
``ready`` or ``failed``. Samples are grouped by the document's status when they were taken, so the
"processing" row is the latency while the consumer works (issue 7, defect 2: 5.7 s before the consumer
got its own thread). An authenticated ``GET /v1/documents/{id}`` (a D1 read) is sampled alongside.

To measure another version of the local host, put its ``edgerag_local`` first on ``PYTHONPATH``; the
stack process inherits it.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import re
import shutil
import signal
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import httpx
from bench_ingest import ROOT, free_port, pct, wait_until_listening

WORDS = (
    "the of and to in is that for it as with was on be by this are from at or an have which not but "
    "retrieval index vector query document chunk token embedding model search ranking gateway tenant "
    "queue worker binding latency throughput batch storage request response stream isolate runtime "
    "edge cache score fusion keyword dense sparse hybrid filter namespace metadata upload status"
).split()


def start_stack(state: Path, port: int) -> tuple[subprocess.Popen[str], str]:
    """``edgerag dev`` on ``port``; returns the process and the demo key it prints."""
    command = [str(ROOT / ".venv" / "bin" / "edgerag"), "dev", "--state", str(state), "--port", str(port)]
    process = subprocess.Popen(
        [*command, "--log-level", "warning"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    key = ""
    assert process.stdout is not None
    for line in process.stdout:
        if match := re.search(r"demo API key[^:]*: (\S+)", line):
            key = match.group(1)
        if line.startswith("serving http://"):
            break
    if not key:
        process.kill()
        raise RuntimeError("the stack did not print a demo key")
    # Keep reading its output, so a chatty stack never blocks on a full pipe.
    asyncio.get_running_loop().run_in_executor(None, process.stdout.read)
    return process, key


def document(megabytes: float, seed: int = 7) -> bytes:
    rng = random.Random(seed)
    target = int(megabytes * 1_000_000)
    parts: list[str] = []
    size = 0
    while size < target:
        sentences = []
        for _ in range(rng.randint(3, 8)):
            words = [rng.choice(WORDS) for _ in range(rng.randint(6, 22))]
            sentences.append(" ".join(words).capitalize() + ".")
        paragraph = " ".join(sentences) + "\n\n"
        parts.append(paragraph)
        size += len(paragraph)
    return "".join(parts).encode()[:target]


async def sample(client: httpx.AsyncClient, path: str) -> float:
    began = time.perf_counter()
    response = await client.get(path)
    response.raise_for_status()
    return (time.perf_counter() - began) * 1000


def row(label: str, samples: list[float]) -> str:
    if not samples:
        return f"{label:<36} {'-':>6}"
    return (
        f"{label:<36} {len(samples):>6} {statistics.median(samples):>9.1f} {pct(samples, 0.95):>9.1f} "
        f"{max(samples):>9.1f}"
    )


async def run(args: argparse.Namespace) -> None:
    state = Path(tempfile.mkdtemp(prefix="bench-health-"))
    port = free_port()
    process, key = start_stack(state, port)
    base = f"http://127.0.0.1:{port}"
    interval = args.interval_ms / 1000
    samples: dict[str, list[float]] = {}
    try:
        await wait_until_listening(base)
        async with httpx.AsyncClient(
            base_url=base, headers={"authorization": f"Bearer {key}"}, timeout=600
        ) as client:
            for _ in range(50):  # at rest
                samples.setdefault("/health at rest", []).append(await sample(client, "/health"))
            body = document(args.mb)
            began = time.perf_counter()
            created = await client.post(
                "/v1/documents", files={"file": ("big.txt", body, "text/plain")}, data={"title": "big"}
            )
            created.raise_for_status()
            document_id = created.json()["document"]["id"]
            status = "queued"
            while status not in ("ready", "failed"):
                health = await sample(client, "/health")
                began_get = time.perf_counter()
                got = await client.get(f"/v1/documents/{document_id}")
                read = (time.perf_counter() - began_get) * 1000
                for label in (f"while {status}", "upload -> ready (all)"):
                    samples.setdefault(f"/health {label}", []).append(health)
                    samples.setdefault(f"GET document {label}", []).append(read)
                status = got.json()["status"]
                await asyncio.sleep(interval)
            elapsed = time.perf_counter() - began
            chunks = got.json().get("chunk_count")
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=120)
        except subprocess.TimeoutExpired:
            process.kill()
        shutil.rmtree(state, ignore_errors=True)
    print(f"document: {len(body) / 1e6:.1f} MB -> {status} with {chunks} chunks in {elapsed:.1f} s")
    print(f"{'samples (ms)':<36} {'n':>6} {'p50':>9} {'p95':>9} {'max':>9}")
    for label, values in samples.items():
        print(row(label, values))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mb", type=float, default=5.0, help="document size in megabytes")
    parser.add_argument("--interval-ms", type=float, default=20.0, help="pause between two samples")
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
