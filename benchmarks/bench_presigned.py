"""Presigned upload throughput (not a test; prints a table).

    .venv/bin/python benchmarks/bench_presigned.py [--mb 8 32] [--repeat 3]

Serves the local stack in this process on a loopback port (the gateway plus the presigned R2 endpoint
under /r2, as ``edgerag dev`` does), then for each size: ``POST /v1/uploads`` -> ``PUT`` the bytes to
the presigned URL (a real HTTP upload) -> ``POST /v1/documents/{id}/complete`` (the gateway streams
the object back from R2 and hashes it). Reports the PUT's MB/s and the complete call's latency
(median of ``--repeat``). The files are random bytes declared as text/plain: completion checks size
and SHA-256 only, so nothing is ingested (the queue is never drained).
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import os
import socket
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx
import uvicorn

ROOT = Path(__file__).resolve().parents[1]


async def main(sizes_mb: list[int], repeat: int) -> None:
    from edgerag_local.runtime.serving import R2_PREFIX, serve_app
    from edgerag_local.runtime.stack import open_stack

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    base = f"http://127.0.0.1:{sock.getsockname()[1]}"
    with tempfile.TemporaryDirectory() as state:
        stack = open_stack(ROOT, state_dir=Path(state), r2_endpoint=base + R2_PREFIX)
        server = uvicorn.Server(uvicorn.Config(serve_app(stack), lifespan="off", log_level="warning"))
        task = asyncio.create_task(server.serve(sockets=[sock]))
        while not server.started:  # noqa: ASYNC110 - uvicorn has no started event
            await asyncio.sleep(0.01)
        token = (Path(state) / "admin-token").read_text().strip()
        async with httpx.AsyncClient(base_url=base, timeout=300) as http:
            admin = {"authorization": f"Bearer {token}"}
            tenant = (await http.post("/v1/admin/tenants", json={"name": "bench"}, headers=admin)).json()
            scopes = {"name": "b", "scopes": ["write"]}
            key = await http.post(f"/v1/admin/tenants/{tenant['id']}/keys", json=scopes, headers=admin)
            auth = {"authorization": f"Bearer {key.json()['key']}"}
            print(f"{'size':>8} {'PUT MB/s':>10} {'complete ms':>12}")
            for mb in sizes_mb:
                rates, completes = [], []
                for _ in range(repeat):
                    data = os.urandom(mb * 1024 * 1024)
                    declared = {
                        "filename": "blob.txt",
                        "content_type": "text/plain",
                        "size_bytes": len(data),
                        "sha256": hashlib.sha256(data).hexdigest(),
                    }
                    created = (await http.post("/v1/uploads", json=declared, headers=auth)).json()
                    upload = created["upload"]
                    start = time.perf_counter()
                    put = await http.put(upload["url"], content=data, headers=upload["headers"])
                    rates.append(mb / (time.perf_counter() - start))
                    assert put.status_code == 200, put.text
                    start = time.perf_counter()
                    done = await http.post(created["complete_url"], headers=auth)
                    completes.append((time.perf_counter() - start) * 1000)
                    assert done.status_code == 202, done.text
                print(f"{mb:>6}MB {statistics.median(rates):>10.1f} {statistics.median(completes):>12.0f}")
        server.should_exit = True
        await task
        await stack.stop()
        stack.close()
        sock.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mb", type=int, nargs="+", default=[8, 32])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    sys.exit(asyncio.run(main(args.mb, args.repeat)))
