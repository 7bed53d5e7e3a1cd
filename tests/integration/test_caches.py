"""The tenant-scoped KV caches through POST /v1/search on the whole local stack: result cache hits,
invalidation by the cache generation when documents change (upload+ingest, delete), the query-embedding
cache, tenant isolation, hit/miss counts in GET /v1/usage, and a failing KV as a miss."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
from gateway.app import get_app

from .conftest import StackHarness, Tenant

ROCKETS = "Liquid rocket engines burn kerosene and liquid oxygen in a combustion chamber."
NOZZLES = "A rocket nozzle accelerates exhaust gases to produce thrust."


class EnvOverlay:
    """The gateway's env with some bindings replaced (the local env itself is read-only)."""

    def __init__(self, env: Any, **bindings: Any) -> None:
        self._env = env
        self._bindings = bindings

    def __getattr__(self, name: str) -> Any:
        return self._bindings[name] if name in self._bindings else getattr(self._env, name)


class CountingAi:
    def __init__(self, ai: Any) -> None:
        self._ai = ai
        self.models: list[str] = []

    async def run(self, model: str, inputs: Any, **options: Any) -> Any:
        self.models.append(model)
        return await self._ai.run(model, inputs, **options)


class FailingKV:
    """Every KV operation fails, as a KV outage would."""

    def __init__(self) -> None:
        self.calls = 0

    async def get(self, *args: Any, **kwargs: Any) -> Any:
        self.calls += 1
        raise RuntimeError("KV GET failed: 503 Service Unavailable")

    async def put(self, *args: Any, **kwargs: Any) -> Any:
        self.calls += 1
        raise RuntimeError("KV PUT failed: 503 Service Unavailable")


def client_with_env(harness: StackHarness, key: str, env: Any) -> httpx.AsyncClient:
    """The gateway's own app, served with ``env`` (what entry.py hands it at the edge)."""
    app = get_app()

    async def asgi(scope: dict[str, Any], receive: Callable[..., Any], send: Callable[..., Any]) -> None:
        await app({**scope, "env": env}, receive, send)

    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=asgi),
        base_url="http://127.0.0.1:8787",
        headers={"authorization": f"Bearer {key}"},
    )


async def upload(harness: StackHarness, tenant: Tenant, title: str, text: str) -> str:
    response = await tenant.client.post("/v1/documents", json={"title": title, "text": text})
    assert response.status_code == 202, response.text
    await harness.ingest()
    return str(response.json()["document"]["id"])


async def search(client: httpx.AsyncClient, query: str, **extra: Any) -> dict[str, Any]:
    response = await client.post("/v1/search", json={"query": query, **extra})
    assert response.status_code == 200, response.text
    return dict(response.json())


def cache_counts(usage: dict[str, Any], kind: str) -> tuple[int, int]:
    days = usage["days"]
    hits = sum(day["cache"].get(kind, {}).get("hits", 0) for day in days)
    misses = sum(day["cache"].get(kind, {}).get("misses", 0) for day in days)
    return hits, misses


async def test_search_results_are_cached_until_the_tenants_documents_change(harness: StackHarness) -> None:
    acme = await harness.tenant("acme")
    rockets = await upload(harness, acme, "Rocket engines", ROCKETS)

    first = await search(acme.client, "rocket")
    again = await search(acme.client, "rocket")
    assert (first["cached"], again["cached"]) == (False, True)
    assert again["results"] == first["results"]
    assert [r["document_id"] for r in first["results"]] == [rockets]

    nozzles = await upload(harness, acme, "Nozzles", NOZZLES)  # ready: the generation moves on
    after_upload = await search(acme.client, "rocket")
    assert after_upload["cached"] is False
    assert {r["document_id"] for r in after_upload["results"]} == {rockets, nozzles}

    assert (await acme.client.delete(f"/v1/documents/{rockets}")).status_code == 204
    after_delete = await search(acme.client, "rocket")
    assert after_delete["cached"] is False
    assert [r["document_id"] for r in after_delete["results"]] == [nozzles]
    assert (await search(acme.client, "rocket"))["cached"] is True

    usage = (await acme.client.get("/v1/usage")).json()
    assert cache_counts(usage, "search") == (2, 3)


async def test_the_cache_is_per_tenant(harness: StackHarness) -> None:
    acme = await harness.tenant("acme")
    globex = await harness.tenant("globex")
    await upload(harness, acme, "Rocket engines", ROCKETS)
    assert (await search(acme.client, "rocket"))["results"]
    assert (await search(acme.client, "rocket"))["cached"] is True

    other = await search(globex.client, "rocket")  # the same request, another tenant
    assert other == {**other, "cached": False, "results": []}
    assert cache_counts((await globex.client.get("/v1/usage")).json(), "search") == (0, 1)


async def test_a_repeated_query_is_embedded_once(harness: StackHarness) -> None:
    acme = await harness.tenant("acme")
    await upload(harness, acme, "Rocket engines", ROCKETS)
    env = harness.stack.workers["gateway"].env
    ai = CountingAi(env.AI)
    async with client_with_env(harness, acme.key, EnvOverlay(env, AI=ai)) as client:
        await search(client, "rocket engines")
        # Different result requests (so the result cache misses), the same query text.
        await search(client, "rocket engines", top_k=3)
        await search(client, "rocket engines", mode="vector")
    assert ai.models == [env.EMBEDDING_MODEL]
    usage = (await acme.client.get("/v1/usage")).json()
    assert cache_counts(usage, "embedding") == (2, 1)


async def test_a_failing_kv_degrades_to_a_miss_never_an_error(harness: StackHarness) -> None:
    acme = await harness.tenant("acme")
    rockets = await upload(harness, acme, "Rocket engines", ROCKETS)
    env = harness.stack.workers["gateway"].env
    kv = FailingKV()
    async with client_with_env(harness, acme.key, EnvOverlay(env, CACHE=kv)) as client:
        for _ in range(2):
            answer = await search(client, "rocket")
            assert answer["cached"] is False
            assert [r["document_id"] for r in answer["results"]] == [rockets]
    assert kv.calls >= 4  # the cache was tried every time
    usage = (await acme.client.get("/v1/usage")).json()
    assert cache_counts(usage, "search") == (0, 2)
