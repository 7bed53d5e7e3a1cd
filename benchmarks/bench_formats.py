"""Large-document ingestion benchmark: a 100-page PDF and a 10,000-row CSV (not a test; prints a table).

    .venv/bin/python benchmarks/bench_formats.py [--pages 100] [--rows 10000]

Runs the local stack in-process (the same LocalStack the integration tests use, fresh state dir), uploads
each generated file through ``POST /v1/documents``, and delivers the ingest queue. Each file is ingested
twice on a fresh stack: once timed (time to ready = upload + extract + chunk + embed + index, and
chunks/s), once under tracemalloc for the peak Python heap growth of ingestion (tracemalloc slows
Python down, so it is never the timed run). The files are generated here: the PDF by the tests' own
hand-written PDF writer (tests/unit/format_samples.py), the CSV as plain text.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from edgerag_local.runtime.stack import open_stack  # noqa: E402

from tests.unit.format_samples import make_pdf  # noqa: E402

WORDS = "ledger invoice vendor shipment quarter revenue margin audit forecast pallet".split()


def make_big_pdf(pages: int) -> bytes:
    """``pages`` pages of 40 short lines each (about a page of prose per page)."""
    return make_pdf(
        [
            [
                f"Page {p} line {n}: the {WORDS[(p + n) % 10]} report for region {p % 7} notes {n * p} units."
                for n in range(40)
            ]
            for p in range(1, pages + 1)
        ]
    )


def make_csv(rows: int) -> bytes:
    out = ["order,customer,city,item,amount"]
    out += [f"{i},customer{i % 997},city{i % 50},{WORDS[i % 10]},{i * 3 % 1000}.50" for i in range(rows)]
    return ("\n".join(out) + "\n").encode()


async def ingest_once(name: str, data: bytes, content_type: str, traced: bool) -> tuple[float, int, float]:
    with tempfile.TemporaryDirectory() as tmp:
        stack = open_stack(ROOT, state_dir=Path(tmp) / "state")
        transport = httpx.ASGITransport(app=stack.asgi("gateway"))
        token = stack.admin_token_file.read_text().strip() if stack.admin_token_file else ""
        base = "http://127.0.0.1:8787"
        try:
            async with httpx.AsyncClient(
                transport=transport, base_url=base, headers={"authorization": f"Bearer {token}"}
            ) as admin:
                tenant = (await admin.post("/v1/admin/tenants", json={"name": "bench"})).json()["id"]
                key = (
                    await admin.post(
                        f"/v1/admin/tenants/{tenant}/keys", json={"name": "b", "scopes": ["write", "read"]}
                    )
                ).json()["key"]
            async with httpx.AsyncClient(
                transport=transport, base_url=base, headers={"authorization": f"Bearer {key}"}, timeout=120
            ) as client:
                if traced:
                    tracemalloc.start()
                began = time.perf_counter()
                uploaded = await client.post("/v1/documents", files={"file": (name, data, content_type)})
                assert uploaded.status_code == 202, uploaded.text
                await stack.drain_queues()
                elapsed = time.perf_counter() - began
                peak = 0.0
                if traced:
                    _, peak_bytes = tracemalloc.get_traced_memory()
                    tracemalloc.stop()
                    peak = peak_bytes / 2**20
                doc = (await client.get(f"/v1/documents/{uploaded.json()['document']['id']}")).json()
                assert doc["status"] == "ready", doc
                return elapsed, int(doc["chunk_count"]), peak
        finally:
            await stack.stop()
            stack.close()


async def run(args: argparse.Namespace) -> None:
    files = [
        (f"{args.pages}-page PDF", "big.pdf", make_big_pdf(args.pages), "application/pdf"),
        (f"{args.rows:,}-row CSV", "big.csv", make_csv(args.rows), "text/csv"),
    ]
    print("| file | size | chunks | time to ready | chunks/s | peak Python heap growth |")
    print("|---|---:|---:|---:|---:|---:|")
    for label, name, data, content_type in files:
        elapsed, chunks, _ = await ingest_once(name, data, content_type, traced=False)
        _, _, peak = await ingest_once(name, data, content_type, traced=True)
        print(
            f"| {label} | {len(data) / 2**20:.2f} MiB | {chunks} | {elapsed:.2f} s | {chunks / elapsed:.0f} |"
            f" {peak:.1f} MiB |"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pages", type=int, default=100)
    parser.add_argument("--rows", type=int, default=10_000)
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
