"""The first end-to-end slice through the real HTTP interface: tenants and keys, upload -> queue ->
ingest -> hybrid search, isolation between tenants, errors as problem details, crash and redelivery."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from edgerag_local.d1 import LocalD1Database

from .conftest import StackHarness, Tenant

ACME_DOCS = {
    "Rocket engines": "Liquid rocket engines burn kerosene and liquid oxygen in a combustion chamber. "
    "The nozzle accelerates exhaust gases to produce thrust.\n\nStaged combustion cycles improve efficiency.",
    "Orbital mechanics": "A satellite in low Earth orbit travels at about 7.8 kilometres per second. "
    "Hohmann transfers move a spacecraft between circular orbits with two engine burns.",
}
GLOBEX_DOCS = {
    "Sourdough baking": "Sourdough bread rises with a starter of wild yeast and lactic acid bacteria. "
    "A long cold fermentation develops flavour and an open crumb.",
    "Rocket salad": "Rocket, also called arugula, is a peppery salad leaf. "
    "Dress it with lemon and olive oil.",
}


async def upload_all(tenant: Tenant, docs: dict[str, str]) -> dict[str, str]:
    ids = {}
    for title, text in docs.items():
        response = await tenant.client.post("/v1/documents", json={"title": title, "text": text})
        assert response.status_code == 202, response.text
        body = response.json()
        assert body["document"]["status"] == "queued"
        ids[title] = body["document"]["id"]
    return ids


async def search(tenant: Tenant, query: str, **extra: Any) -> dict[str, Any]:
    response = await tenant.client.post("/v1/search", json={"query": query, **extra})
    assert response.status_code == 200, response.text
    return response.json()


async def test_each_worker_answers_health_through_its_entry(harness: StackHarness) -> None:
    import httpx

    for worker in ("gateway", "dedalus", "ingest"):
        transport = httpx.ASGITransport(app=harness.stack.asgi(worker))
        async with httpx.AsyncClient(transport=transport, base_url="http://local") as client:
            response = await client.get("/health")
        assert response.status_code == 200, (worker, response.text)
        assert response.json()["status"] == "ok"
    gateway = (await harness.client().get("/health")).json()
    # The gateway's health includes dedalus's answer over the real service binding (RPC).
    assert gateway["dedalus"] == {
        "service": "dedalus",
        "status": "ok",
        "bindings": ["AI", "CACHE", "DB", "FILES", "INGEST_QUEUE", "VECTORS"],
    }


async def test_upload_ingest_and_search_isolated_per_tenant(harness: StackHarness) -> None:
    acme = await harness.tenant("acme")
    globex = await harness.tenant("globex")
    acme_ids = await upload_all(acme, ACME_DOCS)
    globex_ids = await upload_all(globex, GLOBEX_DOCS)
    assert await harness.ingest() >= 4

    for tenant, ids in ((acme, acme_ids), (globex, globex_ids)):
        listing = (await tenant.client.get("/v1/documents")).json()["documents"]
        assert {d["id"] for d in listing} == set(ids.values())
        for document_id in ids.values():
            doc = (await tenant.client.get(f"/v1/documents/{document_id}")).json()
            assert doc["status"] == "ready", doc
            assert doc["chunk_count"] >= 1

    # "rocket" matches documents of both tenants; each sees only its own.
    for tenant, own in ((acme, acme_ids), (globex, globex_ids)):
        result = await search(tenant, "rocket")
        found = {r["document_id"] for r in result["results"]}
        assert found, result
        assert found <= set(own.values())
        assert set(result["timings_ms"]) >= {"keyword_ms", "vector_ms", "embed_ms", "total_ms"}

    top = (await search(acme, "how does a rocket nozzle produce thrust"))["results"][0]
    assert top["document_id"] == acme_ids["Rocket engines"]
    assert top["title"] == "Rocket engines"
    assert set(top["retrievers"]) <= {"keyword", "vector"} and top["retrievers"]
    assert "nozzle" in top["snippet"].lower()
    top = (await search(globex, "wild yeast starter for bread"))["results"][0]
    assert top["document_id"] == globex_ids["Sourdough baking"]

    for mode in ("keyword", "vector"):
        result = await search(acme, "orbit transfer burns", mode=mode)
        assert result["results"][0]["document_id"] == acme_ids["Orbital mechanics"]
        assert all(list(r["retrievers"]) == [mode] for r in result["results"])

    # Another tenant's document is not found (404, never 403), for reading and deleting.
    other = globex_ids["Sourdough baking"]
    assert (await acme.client.get(f"/v1/documents/{other}")).status_code == 404
    assert (await acme.client.delete(f"/v1/documents/{other}")).status_code == 404
    assert (await globex.client.get(f"/v1/documents/{other}")).status_code == 200
    filtered = await search(acme, "rocket", filters={"document_ids": [other]})
    assert filtered["results"] == []


async def test_delete_removes_object_chunks_fts_rows_and_vectors(harness: StackHarness) -> None:
    acme = await harness.tenant("acme")
    ids = await upload_all(acme, ACME_DOCS)
    await harness.ingest()
    doomed = ids["Rocket engines"]
    env = harness.stack.workers["gateway"].env
    chunk_ids = [
        r["id"]
        for r in (await env.DB.prepare("SELECT id FROM chunks WHERE document_id = ?1").bind(doomed).all())[
            "results"
        ]
    ]
    assert chunk_ids and len(await env.VECTORS.getByIds(chunk_ids)) == len(chunk_ids)
    r2_key = f"tenants/{acme.id}/documents/{doomed}/original"
    assert await env.FILES.head(r2_key) is not None

    assert (await acme.client.delete(f"/v1/documents/{doomed}")).status_code == 204
    assert (await acme.client.get(f"/v1/documents/{doomed}")).status_code == 404
    assert await env.FILES.head(r2_key) is None
    assert await env.VECTORS.getByIds(chunk_ids) == []
    left = (
        await env.DB.prepare("SELECT COUNT(*) AS n FROM chunks WHERE document_id = ?1")
        .bind(doomed)
        .first("n")
    )
    assert left == 0
    fts = await env.DB.prepare("SELECT COUNT(*) AS n FROM chunks_fts WHERE chunks_fts MATCH 'nozzle'").first(
        "n"
    )
    assert fts == 0
    assert all(r["document_id"] != doomed for r in (await search(acme, "nozzle thrust"))["results"])


async def test_markdown_file_upload_via_multipart(harness: StackHarness) -> None:
    acme = await harness.tenant("acme")
    markdown = (
        b"---\nauthor: x\n---\n# Heat shields\n\nAblative **heat shields** protect capsules on re-entry.\n"
    )
    response = await acme.client.post(
        "/v1/documents",
        files={"file": ("shields.md", markdown, "text/markdown")},
        data={"title": "Heat shields", "metadata": '{"team": "thermal"}'},
    )
    assert response.status_code == 202, response.text
    document = response.json()["document"]
    assert (document["content_type"], document["filename"], document["metadata"]) == (
        "text/markdown",
        "shields.md",
        {"team": "thermal"},
    )
    await harness.ingest()
    result = await search(acme, "ablative re-entry protection")
    assert result["results"][0]["document_id"] == document["id"]
    assert "**" not in result["results"][0]["snippet"]


async def test_authentication_and_scopes(harness: StackHarness) -> None:
    acme = await harness.tenant("acme")
    reader = await harness.tenant("readonly", scopes=("read",))
    anonymous = harness.client()
    assert (await anonymous.get("/v1/documents")).status_code == 401
    unknown = await harness.client("er_unknownprefx_" + "x" * 43).get("/v1/documents")
    assert unknown.status_code == 401
    assert unknown.headers["content-type"] == "application/problem+json"
    assert unknown.headers["www-authenticate"].startswith("Bearer")
    assert (await harness.client("not-a-key").get("/v1/documents")).status_code == 401

    denied = await reader.client.post("/v1/documents", json={"title": "t", "text": "x"})
    assert denied.status_code == 403
    assert denied.json()["status"] == 403
    assert (await reader.client.get("/v1/documents")).status_code == 200

    # Keys: create (shown once), list (never the secret), revoke -> 401 from then on.
    created = await acme.client.post("/v1/keys", json={"name": "ci", "scopes": ["read"]})
    assert created.status_code == 201
    new_key, key_id = created.json()["key"], created.json()["id"]
    listed = (await acme.client.get("/v1/keys")).json()["keys"]
    assert key_id in {k["id"] for k in listed}
    assert all("key" not in k and "key_hash" not in k for k in listed)
    assert (await harness.client(new_key).get("/v1/documents")).status_code == 200
    assert (await acme.client.delete(f"/v1/keys/{key_id}")).status_code == 200
    assert (await harness.client(new_key).get("/v1/documents")).status_code == 401
    # Another tenant cannot revoke acme's key.
    assert (await reader.client.delete(f"/v1/keys/{key_id}")).status_code == 403
    # The admin API needs the operator token.
    assert (await anonymous.post("/v1/admin/tenants", json={"name": "x"})).status_code == 401
    assert (await acme.client.post("/v1/admin/tenants", json={"name": "x"})).status_code == 401


async def test_stored_keys_are_hashed(harness: StackHarness) -> None:
    acme = await harness.tenant("acme")
    db: LocalD1Database = harness.stack.workers["gateway"].env.DB
    rows = (await db.prepare("SELECT * FROM api_keys").all())["results"]
    assert rows
    for row in rows:
        assert acme.key not in " ".join(str(v) for v in row.values())


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"query": ""}, 422),
        ({"query": "   "}, 422),
        ({"query": "+++ !!! ???"}, 422),
        ({"query": "x" * 2001}, 422),
        ({"query": "ok", "top_k": 0}, 422),
        ({"query": "ok", "top_k": 101}, 422),
        ({"query": "ok", "unknown": 1}, 422),
        ({"query": 'NEAR("rocket" AND) OR "unbalanced * ^ : -x'}, 200),
        ({"query": "rocket) OR (1=1"}, 200),
    ],
)
async def test_search_input_is_validated_and_fts_syntax_is_harmless(
    harness: StackHarness, body: dict[str, Any], status: int
) -> None:
    acme = await harness.tenant("acme")
    await upload_all(acme, ACME_DOCS)
    await harness.ingest()
    response = await acme.client.post("/v1/search", json=body)
    assert response.status_code == status, response.text
    if status == 422:
        problem = response.json()
        assert response.headers["content-type"] == "application/problem+json"
        assert problem["status"] == 422 and problem["errors"]


async def test_upload_errors_are_problem_details(tmp_path: Any) -> None:
    import httpx

    from .conftest import (
        ROOT,  # noqa: F401
        make_stack,
    )

    stack = make_stack(tmp_path, extra_vars={"gateway": {"MAX_UPLOAD_BYTES": "1000"}})
    transport = httpx.ASGITransport(app=stack.asgi("gateway"))
    token = stack.admin_token_file.read_text().strip()
    async with httpx.AsyncClient(
        transport=transport, base_url="http://t", headers={"authorization": f"Bearer {token}"}
    ) as admin:
        tenant_id = (await admin.post("/v1/admin/tenants", json={"name": "acme"})).json()["id"]
        key = (await admin.post(f"/v1/admin/tenants/{tenant_id}/keys", json={"name": "k"})).json()["key"]
    async with httpx.AsyncClient(
        transport=transport, base_url="http://t", headers={"authorization": f"Bearer {key}"}
    ) as client:
        too_big = await client.post("/v1/documents", json={"title": "big", "text": "word " * 400})
        assert too_big.status_code == 413, too_big.text
        assert too_big.json()["title"] == "Payload Too Large"
        image = await client.post("/v1/documents", files={"file": ("x.png", b"\x89PNG....", "image/png")})
        assert image.status_code == 415, image.text
        wrong_type = await client.post(
            "/v1/documents", content=b"hello", headers={"content-type": "text/csv"}
        )
        assert wrong_type.status_code == 415
        bad_json = await client.post(
            "/v1/documents", content=b"{not json", headers={"content-type": "application/json"}
        )
        assert bad_json.status_code == 422
        no_file = await client.post("/v1/documents", files={"other": ("a.txt", b"x", "text/plain")})
        assert no_file.status_code == 400
        unknown = await client.get("/v1/nothing-here")
        assert unknown.status_code == 404 and unknown.headers["content-type"] == "application/problem+json"
        wrong_method = await client.put("/v1/search")
        assert wrong_method.status_code == 405
        listing = (await client.get("/v1/documents")).json()["documents"]
        assert listing == []  # nothing half-written by the rejected uploads
        objects = await stack.workers["gateway"].env.FILES.list()
        assert objects["objects"] == []
    await stack.stop()
    stack.close()


async def test_openapi_document_is_served(harness: StackHarness) -> None:
    response = await harness.client().get("/openapi.json")
    assert response.status_code == 200
    paths = response.json()["paths"]
    assert {"/v1/documents", "/v1/search", "/v1/documents/{document_id}", "/v1/keys"} <= set(paths)


async def test_pagination_walks_every_document_once(harness: StackHarness) -> None:
    acme = await harness.tenant("acme")
    created = set()
    for i in range(7):
        response = await acme.client.post(
            "/v1/documents", json={"title": f"doc {i}", "text": f"text number {i}"}
        )
        created.add(response.json()["document"]["id"])
    seen: list[str] = []
    cursor = None
    while True:
        params = {"limit": 3, **({"cursor": cursor} if cursor else {})}
        page = (await acme.client.get("/v1/documents", params=params)).json()
        seen += [d["id"] for d in page["documents"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert sorted(seen) == sorted(created) and len(seen) == len(set(seen))
    assert (await acme.client.get("/v1/documents", params={"cursor": "%%%"})).status_code == 400


async def test_crash_mid_batch_then_redelivery_leaves_one_copy_of_every_chunk(
    harness: StackHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    acme = await harness.tenant("acme")
    ids = await upload_all(acme, {**ACME_DOCS, "Third": "Ion thrusters accelerate xenon ions. " * 40})
    db = harness.stack.workers["ingest"].env.DB
    real_batch = db.batch
    crashes = {"left": 1}

    async def batch_then_crash(statements: Any) -> Any:
        # The D1 write commits, then the isolate dies before the message is acked.
        result = await real_batch(statements)
        if crashes["left"] and any("INSERT INTO chunks" in getattr(s, "statement", "") for s in statements):
            crashes["left"] -= 1
            raise RuntimeError("isolate crashed after writing")
        return result

    monkeypatch.setattr(db, "batch", batch_then_crash)
    await harness.ingest()
    assert crashes["left"] == 0
    for document_id in ids.values():
        doc = (await acme.client.get(f"/v1/documents/{document_id}")).json()
        assert doc["status"] == "ready", doc
        rows = await db.prepare("SELECT id, seq FROM chunks WHERE document_id = ?1").bind(document_id).all()
        seqs = sorted(r["seq"] for r in rows["results"])
        assert seqs == list(range(doc["chunk_count"]))
        fts = (
            await db.prepare(
                "SELECT COUNT(*) AS n FROM chunks_fts f JOIN chunks c ON c.rowid = f.rowid"
                " WHERE c.document_id = ?1"
            )
            .bind(document_id)
            .first("n")
        )
        assert fts == doc["chunk_count"]
        vectors = await harness.stack.workers["ingest"].env.VECTORS.getByIds(
            [r["id"] for r in rows["results"]]
        )
        assert len(vectors) == doc["chunk_count"]
    hits = (await search(acme, "xenon ion thrusters", top_k=50))["results"]
    chunk_hits = [h["chunk_id"] for h in hits]
    assert len(chunk_hits) == len(set(chunk_hits))


async def test_persistent_failure_ends_failed_with_no_partial_index(
    harness: StackHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    acme = await harness.tenant("acme")
    ids = await upload_all(acme, {"Doomed": "Vectors will be written, then every D1 write fails. " * 30})
    env = harness.stack.workers["ingest"].env
    real_batch = env.DB.batch

    async def chunk_writes_fail(statements: Any) -> Any:
        # Vectors get written, then every attempt's D1 chunk write fails; other writes still work.
        if any("INSERT INTO chunks" in getattr(s, "statement", "") for s in statements):
            raise RuntimeError("D1_ERROR: database unavailable")
        return await real_batch(statements)

    monkeypatch.setattr(env.DB, "batch", chunk_writes_fail)
    for _ in range(10):  # retries (with their delay) until the dead-letter queue gives up
        await harness.ingest()
        doc = (await acme.client.get(f"/v1/documents/{ids['Doomed']}")).json()
        if doc["status"] == "failed":
            break
        await asyncio.sleep(0)
        harness.clock.advance(60)
    monkeypatch.undo()
    doc = (await acme.client.get(f"/v1/documents/{ids['Doomed']}")).json()
    assert doc["status"] == "failed", doc
    assert "gave up" in doc["error"]
    assert doc["chunk_count"] == 0
    from edgerag.ids import chunk_id

    assert await env.VECTORS.getByIds([chunk_id(ids["Doomed"], i) for i in range(20)]) == []
    assert (await search(acme, "vectors written")).get("results") == []


async def test_batch_upload_is_all_or_nothing(harness: StackHarness) -> None:
    acme = await harness.tenant("acme")
    docs = [{"title": title, "text": text} for title, text in ACME_DOCS.items()]
    accepted = await acme.client.post("/v1/documents/batch", json={"documents": docs})
    assert accepted.status_code == 202, accepted.text
    ids = [d["id"] for d in accepted.json()["documents"]]
    assert len(ids) == 2 and all(d["status"] == "queued" for d in accepted.json()["documents"])
    await harness.ingest()
    for document_id in ids:
        assert (await acme.client.get(f"/v1/documents/{document_id}")).json()["status"] == "ready"

    too_many = await acme.client.post("/v1/documents/batch", json={"documents": [docs[0]] * 101})
    assert too_many.status_code == 422
    one_bad = await acme.client.post(
        "/v1/documents/batch", json={"documents": [docs[0], {"title": "", "text": "x"}]}
    )
    assert one_bad.status_code == 422
    assert one_bad.json()["errors"][0]["loc"][:3] == ["documents", "1", "title"]
    listing = (await acme.client.get("/v1/documents")).json()["documents"]
    assert sorted(d["id"] for d in listing) == sorted(ids)  # the rejected batches left nothing behind


async def test_queue_outage_leaves_nothing_behind(
    harness: StackHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    acme = await harness.tenant("acme")
    queue = harness.stack.workers["gateway"].env.INGEST_QUEUE

    async def down(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("Queue send failed: internal error")

    monkeypatch.setattr(queue, "send", down)
    monkeypatch.setattr(queue, "sendBatch", down)
    single = await acme.client.post("/v1/documents", json={"title": "t", "text": "some text"})
    assert single.status_code == 503, single.text
    batch = await acme.client.post(
        "/v1/documents/batch", json={"documents": [{"title": "a", "text": "b"}] * 3}
    )
    assert batch.status_code == 503
    assert (await acme.client.get("/v1/documents")).json()["documents"] == []
    assert (await harness.stack.workers["gateway"].env.FILES.list())["objects"] == []


async def test_rate_limit_answers_429_with_retry_after_then_recovers(harness: StackHarness) -> None:
    acme = await harness.tenant("acme")
    globex = await harness.tenant("globex")
    statuses = [(await acme.client.get("/v1/documents", params={"limit": 1})).status_code for _ in range(601)]
    assert statuses[:600] == [200] * 600  # the gateway's binding allows 600 requests a minute per tenant
    limited = await acme.client.get("/v1/documents")
    assert limited.status_code == 429
    assert limited.headers["content-type"] == "application/problem+json"
    assert int(limited.headers["retry-after"]) > 0
    assert (await globex.client.get("/v1/documents")).status_code == 200  # limits are per tenant
    harness.clock.advance(int(limited.headers["retry-after"]))
    assert (await acme.client.get("/v1/documents")).status_code == 200


async def test_a_long_running_host_keeps_no_finished_request_contexts(harness: StackHarness) -> None:
    client = harness.client()
    for _ in range(50):
        assert (await client.get("/health")).status_code == 200
    assert len(harness.stack.workers["gateway"].contexts) <= 1
