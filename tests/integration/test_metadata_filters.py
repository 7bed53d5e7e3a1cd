"""Metadata and filters through the API: metadata set on upload and by PATCH, search filtered on it
and on built-in fields in every retriever mode (Vectorize via document ids, or post-filtered through D1
when many documents match), bad filters and bad metadata answered 422 naming the failing path."""

from __future__ import annotations

from typing import Any

import pytest

from .conftest import StackHarness, Tenant

DOCS = [
    (
        "Rocket engines",
        "Liquid rocket engines burn kerosene and oxygen to make thrust.",
        {"team": "propulsion", "year": 2024},
    ),
    (
        "Rocket nozzles",
        "A rocket nozzle accelerates exhaust gases; bell nozzles are common.",
        {"team": "propulsion", "year": 2025, "draft": True},
    ),
    (
        "Rocket guidance",
        "Rocket guidance computers steer with gimbaled engines.",
        {"team": "avionics", "year": 2025},
    ),
    ("Rocket history", "The first liquid fuelled rocket flew in 1926.", {}),
]


async def upload(
    tenant: Tenant, docs: list[tuple[str, str, dict[str, Any]]], content_type: str = "text/plain"
) -> dict[str, str]:
    ids = {}
    for title, text, metadata in docs:
        body = {"title": title, "text": text, "metadata": metadata, "content_type": content_type}
        response = await tenant.client.post("/v1/documents", json=body)
        assert response.status_code == 202, response.text
        ids[title] = response.json()["document"]["id"]
    return ids


async def titles(tenant: Tenant, query: str = "rocket", mode: str = "hybrid", **filters: Any) -> set[str]:
    response = await tenant.client.post("/v1/search", json={"query": query, "mode": mode, "filters": filters})
    assert response.status_code == 200, response.text
    return {hit["title"] for hit in response.json()["results"]}


@pytest.mark.parametrize("mode", ["keyword", "vector", "hybrid"])
async def test_every_retriever_honours_the_filter(harness: StackHarness, mode: str) -> None:
    acme = await harness.tenant("acme")
    await upload(acme, DOCS)
    await harness.ingest()
    assert await titles(acme, mode=mode) == {t for t, _, _ in DOCS}
    assert await titles(acme, mode=mode, metadata={"team": "propulsion"}) == {
        "Rocket engines",
        "Rocket nozzles",
    }
    assert await titles(acme, mode=mode, metadata={"year": {"$gte": 2025}}) == {
        "Rocket nozzles",
        "Rocket guidance",
    }
    assert await titles(acme, mode=mode, metadata={"team": {"$ne": "propulsion"}}) == {
        "Rocket guidance",
        "Rocket history",
    }
    assert await titles(acme, mode=mode, metadata={"draft": True, "year": 2025}) == {"Rocket nozzles"}
    assert await titles(acme, mode=mode, metadata={"team": {"$in": ["nobody"]}}) == set()
    assert await titles(acme, mode=mode, title={"$in": ["Rocket history", "Rocket engines"]}) == {
        "Rocket history",
        "Rocket engines",
    }


async def test_built_in_fields(harness: StackHarness) -> None:
    acme = await harness.tenant("acme")
    await upload(acme, DOCS[:2])
    await upload(acme, [("Rocket notes", "# Rocket notes\n\nMarkdown about rockets.", {})], "text/markdown")
    await harness.ingest()
    assert await titles(acme, content_type="text/markdown") == {"Rocket notes"}
    assert await titles(acme, content_type={"$ne": "text/markdown"}) == {"Rocket engines", "Rocket nozzles"}
    listed = (await acme.client.get("/v1/documents")).json()["documents"]
    newest = max(d["created_at"] for d in listed)
    assert await titles(acme, created_at={"$gte": newest}) == {
        d["title"] for d in listed if d["created_at"] == newest
    }
    assert await titles(acme, created_at={"$gt": "2999"}) == set()


async def test_filters_never_cross_tenants(harness: StackHarness) -> None:
    acme, globex = await harness.tenant("acme"), await harness.tenant("globex")
    await upload(acme, DOCS)
    await upload(globex, [("Rocket salad", "Rocket is a peppery salad leaf.", {"team": "propulsion"})])
    await harness.ingest()
    for mode in ("keyword", "vector"):
        assert await titles(globex, mode=mode, metadata={"team": "propulsion"}) == {"Rocket salad"}


async def test_many_matching_documents_post_filter_vectors(harness: StackHarness) -> None:
    # More than VECTOR_IN_LIMIT (50) documents match: Vectorize gets no id list and D1 filters its hits.
    acme = await harness.tenant("acme")
    docs = [
        {
            "title": f"Rocket log {i}",
            "text": f"Rocket flight log number {i}: nominal ascent.",
            "metadata": {"fleet": "a" if i < 55 else "b"},
        }
        for i in range(60)
    ]
    response = await acme.client.post("/v1/documents/batch", json={"documents": docs})
    assert response.status_code == 202, response.text
    await harness.ingest()
    wide = await titles(acme, "rocket flight log", mode="vector", metadata={"fleet": "a"})
    assert wide and all(int(t.rsplit(" ", 1)[1]) < 55 for t in wide)
    narrow = await titles(acme, "rocket flight log", mode="vector", metadata={"fleet": "b"})
    assert narrow == {f"Rocket log {i}" for i in range(55, 60)}


async def test_patch_changes_what_filters_find(harness: StackHarness) -> None:
    acme = await harness.tenant("acme")
    ids = await upload(acme, DOCS)
    await harness.ingest()
    assert await titles(acme, metadata={"team": "avionics"}) == {"Rocket guidance"}  # also fills the cache
    patched = await acme.client.patch(
        f"/v1/documents/{ids['Rocket history']}", json={"metadata": {"team": "avionics", "era": "early"}}
    )
    assert patched.status_code == 200, patched.text
    assert patched.json()["metadata"] == {"team": "avionics", "era": "early"}
    assert await titles(acme, metadata={"team": "avionics"}) == {"Rocket guidance", "Rocket history"}
    removed = await acme.client.patch(
        f"/v1/documents/{ids['Rocket history']}", json={"metadata": {"team": None}}
    )
    assert removed.json()["metadata"] == {"era": "early"}
    assert await titles(acme, metadata={"team": "avionics"}) == {"Rocket guidance"}


async def test_patch_title_reaches_keyword_search(harness: StackHarness) -> None:
    acme = await harness.tenant("acme")
    ids = await upload(acme, DOCS[:1])
    await harness.ingest()
    assert await titles(acme, "zeppelin", mode="keyword") == set()
    response = await acme.client.patch(
        f"/v1/documents/{ids['Rocket engines']}", json={"title": "Zeppelin engines"}
    )
    assert response.status_code == 200 and response.json()["title"] == "Zeppelin engines"
    assert await titles(acme, "zeppelin", mode="keyword") == {"Zeppelin engines"}


async def test_bad_input_is_422_with_the_path(harness: StackHarness) -> None:
    acme, globex = await harness.tenant("acme"), await harness.tenant("globex")
    ids = await upload(acme, DOCS[:1])
    doc = ids["Rocket engines"]

    async def problem(method: str, url: str, body: Any, status: int = 422) -> dict[str, Any]:
        response = await acme.client.request(method, url, json=body)
        assert response.status_code == status, response.text
        assert response.headers["content-type"].startswith("application/problem+json")
        return response.json()

    bad = await problem(
        "POST", "/v1/search", {"query": "rocket", "filters": {"metadata": {"year": {"$gt": True}}}}
    )
    assert bad["errors"][0]["loc"] == ["body", "filters", "metadata", "year", "$gt"]
    bad = await problem(
        "POST", "/v1/search", {"query": "rocket", "filters": {"metadata": {"a": {"$like": "x"}}}}
    )
    assert bad["errors"][0]["loc"] == ["body", "filters", "metadata", "a", "$like"]
    bad = await problem("POST", "/v1/search", {"query": "rocket", "filters": {"created_at": {"$gte": 5}}})
    assert bad["errors"][0]["loc"] == ["body", "filters", "created_at", "$gte"]
    bad = await problem("PATCH", f"/v1/documents/{doc}", {"metadata": {"nested": {"a": 1}}})
    assert bad["errors"][0]["loc"] == ["body", "metadata", "nested"]
    bad = await problem("PATCH", f"/v1/documents/{doc}", {"metadata": {f"k{i}": i for i in range(33)}})
    assert bad["errors"][0]["loc"] == ["body", "metadata"]
    empty = await acme.client.patch(f"/v1/documents/{doc}", json={})  # a merge patch that changes nothing
    assert empty.status_code == 200 and empty.json()["title"] == "Rocket engines"
    await problem("PATCH", f"/v1/documents/{doc}", {"owner": "x"})
    other = await globex.client.patch(f"/v1/documents/{doc}", json={"title": "mine"})
    assert other.status_code == 404
    unchanged = (await acme.client.get(f"/v1/documents/{doc}")).json()
    assert unchanged["title"] == "Rocket engines" and unchanged["metadata"] == {
        "team": "propulsion",
        "year": 2024,
    }
