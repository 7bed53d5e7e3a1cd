"""The in-process stack the API benchmarks share (not a benchmark itself).

:func:`bench_stack` opens the whole local stack on a fresh state directory with a manual clock (the
gateway's ``get_clock`` follows it, so a benchmark can move time past rate-limit windows), creates one
tenant on ``plan`` with a key of ``scopes``, and yields an HTTP client for the gateway over in-process
ASGI (the same app uvicorn serves). Everything is closed on exit. Benchmarks run as scripts
(``python benchmarks/bench_x.py``), so this directory is on ``sys.path`` and ``from _stack import
bench_stack`` works.
"""

from __future__ import annotations

import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
from edgerag.store.tenants import TenantStore
from edgerag_local.core.clock import ManualClock
from edgerag_local.runtime.stack import LocalStack, open_stack
from gateway.app import get_app
from gateway.deps import get_clock

ROOT = Path(__file__).resolve().parents[1]


@dataclass
class BenchStack:
    stack: LocalStack
    clock: ManualClock
    client: httpx.AsyncClient
    tenant_id: str


@asynccontextmanager
async def bench_stack(plan: str, scopes: str, *, http_timeout_s: float = 60) -> AsyncIterator[BenchStack]:
    """The local stack with one tenant on ``plan`` and a client holding a key of ``scopes``
    (space-separated, e.g. ``"read write admin"``)."""
    with tempfile.TemporaryDirectory() as tmp:
        clock = ManualClock()
        stack = open_stack(ROOT, state_dir=Path(tmp) / "state", clock=clock)
        get_app().dependency_overrides[get_clock] = lambda: clock
        try:
            store = TenantStore(stack.workers["gateway"].env.DB)
            tenant = await store.create_tenant("bench", plan)
            key = (await store.issue_key(tenant.id, "bench", scopes)).plaintext
            async with httpx.AsyncClient(
                transport=httpx.ASGITransport(app=stack.asgi("gateway")),
                base_url="http://bench",
                headers={"authorization": f"Bearer {key}"},
                timeout=http_timeout_s,
            ) as client:
                yield BenchStack(stack, clock, client, tenant.id)
        finally:
            get_app().dependency_overrides.pop(get_clock, None)
            await stack.stop()
            stack.close()
