"""A whole local stack per test: the three workers through their entry modules, on a fresh state dir.

HTTP goes through httpx's ASGITransport into ``stack.asgi("gateway")`` — the same ASGI app uvicorn
serves for ``edgerag dev`` — and queues are delivered with ``stack.drain_queues()`` so tests decide when
ingestion happens.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from edgerag_local.core.clock import ManualClock
from edgerag_local.runtime.host import LocalStack
from edgerag_local.runtime.stack import open_stack
from gateway.app import get_app
from gateway.deps import get_clock

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Tenant:
    id: str
    name: str
    key: str
    client: httpx.AsyncClient


@dataclass
class StackHarness:
    stack: LocalStack
    admin: httpx.AsyncClient
    transport: httpx.ASGITransport
    clock: ManualClock

    def client(self, key: str | None = None) -> httpx.AsyncClient:
        headers = {"authorization": f"Bearer {key}"} if key else {}
        return httpx.AsyncClient(transport=self.transport, base_url="http://127.0.0.1:8787", headers=headers)

    async def tenant(self, name: str, scopes: tuple[str, ...] = ("read", "write", "admin")) -> Tenant:
        created = await self.admin.post("/v1/admin/tenants", json={"name": name})
        assert created.status_code == 201, created.text
        tenant_id = created.json()["id"]
        key = await self.admin.post(
            f"/v1/admin/tenants/{tenant_id}/keys", json={"name": "test", "scopes": list(scopes)}
        )
        assert key.status_code == 201, key.text
        return Tenant(tenant_id, name, key.json()["key"], self.client(key.json()["key"]))

    async def ingest(self) -> int:
        return await self.stack.drain_queues()


def make_stack(
    tmp_path: Path, extra_vars: dict[str, dict[str, Any]] | None = None, clock: ManualClock | None = None
) -> LocalStack:
    return open_stack(ROOT, state_dir=tmp_path / "state", extra_vars=extra_vars, clock=clock)


@contextlib.asynccontextmanager
async def open_harness(
    tmp_path: Path, extra_vars: dict[str, dict[str, Any]] | None = None
) -> AsyncIterator[StackHarness]:
    """A whole stack with an admin client; tests with their own worker vars (a scripted provider's
    MODELS_CONFIG, say) open one with ``extra_vars``."""
    clock = ManualClock()
    stack = make_stack(tmp_path, extra_vars=extra_vars, clock=clock)
    # The gateway's own notion of time (Retry-After, last_used_at) follows the emulators' clock.
    get_app().dependency_overrides[get_clock] = lambda: clock
    transport = httpx.ASGITransport(app=stack.asgi("gateway"))
    token = stack.admin_token_file.read_text().strip() if stack.admin_token_file else ""
    admin = httpx.AsyncClient(
        transport=transport, base_url="http://127.0.0.1:8787", headers={"authorization": f"Bearer {token}"}
    )
    try:
        yield StackHarness(stack, admin, transport, clock)
    finally:
        get_app().dependency_overrides.pop(get_clock, None)
        await admin.aclose()
        await stack.stop()
        stack.close()


@pytest.fixture
async def harness(tmp_path: Path) -> AsyncIterator[StackHarness]:
    async with open_harness(tmp_path) as opened:
        yield opened
