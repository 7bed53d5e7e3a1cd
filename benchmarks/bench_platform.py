"""Platform benchmark: how fast the local binding emulators answer (not a test; prints a table).

    .venv/bin/python benchmarks/bench_platform.py [--quick]

Measures D1 point queries and FTS5 queries at 10k and 100k rows, Vectorize queries at 10k and 100k
768-d vectors (topK 10, with and without a metadata filter; see bench_vectorize.py), KV get/put, and
queue send-to-delivery latency through the real dispatcher. Every figure is a latency distribution
over repeated calls on this machine; the README quotes the table.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_vectorize import timed
from edgerag_local.d1 import LocalD1Database
from edgerag_local.d1.migrations import apply_migrations
from edgerag_local.kv import LocalKVNamespace
from edgerag_local.queues import ConsumerSettings, LocalQueueBroker, QueueDispatcher
from edgerag_local.queues import producer as queue_producer

ROOT = Path(__file__).resolve().parents[1]
# Synthetic text with a Zipf-distributed vocabulary (like natural language): a few words are in most
# rows, most words in few. Queries use two words from the middle of the distribution.
VOCABULARY = [f"term{i}" for i in range(20_000)]
ZIPF_WEIGHTS = [1.0 / (rank + 1) for rank in range(len(VOCABULARY))]
QUERY_WORDS = VOCABULARY[100:2000]

Row = dict[str, Any]


def summarise(name: str, size: str, samples: list[float]) -> Row:
    ordered = sorted(samples)
    return {
        "operation": name,
        "size": size,
        "p50_ms": round(statistics.median(ordered), 3),
        "p95_ms": round(ordered[int(len(ordered) * 0.95) - 1], 3),
        "calls": len(ordered),
    }


async def bench_d1(tmp: Path, rows: int, repeat: int) -> list[Row]:
    db = LocalD1Database(tmp / f"d1-{rows}.sqlite")
    apply_migrations(db, ROOT / "migrations")
    rng = random.Random(7)
    await db.exec(
        "INSERT INTO tenants (id, name, plan, status, created_at) VALUES ('t1','t1','free','active','x')"
    )
    await db.exec(
        "INSERT INTO documents (id, tenant_id, title, content_type, size_bytes, r2_key, content_sha256,"
        " status, created_at, updated_at) VALUES ('d1','t1','doc','text/plain',1,'k','s','ready','x','x')"
    )
    batch = []
    for i in range(rows):
        text = " ".join(rng.choices(VOCABULARY, weights=ZIPF_WEIGHTS, k=60))
        batch.append(
            db.prepare(
                "INSERT INTO chunks (id, tenant_id, document_id, seq, text, title, created_at)"
                " VALUES (?1, 't1', 'd1', ?2, ?3, '', 'x')"
            ).bind(f"c{i}", i, text)
        )
        if len(batch) == 500:
            await db.batch(batch)
            batch = []
    if batch:
        await db.batch(batch)
    ids = [f"c{rng.randrange(rows)}" for _ in range(repeat)]
    it = iter(ids)
    point = await timed(
        lambda: db.prepare("SELECT * FROM chunks WHERE id = ?1").bind(next(it)).first(), repeat
    )
    terms = iter([f'"{rng.choice(QUERY_WORDS)}" OR "{rng.choice(QUERY_WORDS)}"' for _ in range(repeat)])
    fts_sql = (
        "SELECT c.id FROM chunks_fts JOIN chunks c ON c.rowid = chunks_fts.rowid"
        " WHERE chunks_fts MATCH ?1 AND c.tenant_id = 't1' ORDER BY bm25(chunks_fts) LIMIT 100"
    )
    fts = await timed(lambda: db.prepare(fts_sql).bind(next(terms)).all(), repeat)
    label = f"{rows // 1000}k rows"
    return [
        summarise("D1 point query (by primary key)", label, point),
        summarise("D1 FTS5 bm25 top-100 (2-term OR, Zipf vocabulary)", label, fts),
    ]


async def bench_kv(tmp: Path, repeat: int) -> list[Row]:
    kv = LocalKVNamespace(tmp / "kv.sqlite")
    value = "x" * 1024
    counter = iter(range(10**9))
    puts = await timed(lambda: kv.put(f"key-{next(counter)}", value), repeat)
    keys = iter([f"key-{i}" for i in range(repeat)])
    gets = await timed(lambda: kv.get(next(keys)), repeat)
    return [
        summarise("KV put (1 KiB)", f"{repeat} keys", puts),
        summarise("KV get (1 KiB)", f"{repeat} keys", gets),
    ]


async def bench_queue(tmp: Path, repeat: int) -> list[Row]:
    broker = LocalQueueBroker(tmp / "queues.sqlite")
    received: asyncio.Queue[float] = asyncio.Queue()

    async def handler(batch: Any) -> None:
        now = time.perf_counter()
        for message in batch.messages:
            received.put_nowait(now - message.body["sent"])

    settings = ConsumerSettings(max_batch_size=1, max_batch_timeout=0)
    dispatcher = QueueDispatcher(broker, "bench", settings, handler, poll_interval=0.001)
    stop = asyncio.Event()
    task = asyncio.create_task(dispatcher.run_forever(stop))
    producer = queue_producer(broker, "bench")
    samples = []
    for _ in range(repeat):
        await producer.send({"sent": time.perf_counter()})
        samples.append((await received.get()) * 1000)
    stop.set()
    await task
    return [summarise("Queue send -> delivery (run_forever)", "batch size 1", samples)]


async def main_async(quick: bool, only: str | None = None) -> list[Row]:
    rows: list[Row] = []
    repeat = 50 if quick else 200
    sizes = (10_000,) if quick else (10_000, 100_000)
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        if only in (None, "d1"):
            for size in sizes:
                rows += await bench_d1(tmp, size, repeat)
        if only in (None, "vectorize"):
            import bench_vectorize

            rows += bench_vectorize.platform_rows(sizes)
        if only in (None, "kv"):
            rows += await bench_kv(tmp, repeat)
        if only in (None, "queue"):
            rows += await bench_queue(tmp, 100 if quick else 300)
    return rows


def print_table(rows: list[Row]) -> None:
    print("| operation | size | p50 ms | p95 ms | calls |")
    print("|---|---|---:|---:|---:|")
    for r in rows:
        print(f"| {r['operation']} | {r['size']} | {r['p50_ms']} | {r['p95_ms']} | {r['calls']} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="10k sizes only, fewer calls")
    parser.add_argument("--only", choices=["d1", "vectorize", "kv", "queue"], default=None)
    args = parser.parse_args()
    print_table(asyncio.run(main_async(args.quick, args.only)))


if __name__ == "__main__":
    main()
