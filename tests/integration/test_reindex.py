"""Progress and reindexing through the API: a document reports its stage, progress and timings; a
reindex (one document, or the whole tenant) re-runs ingestion while the document stays ready and
searchable, and a redelivery without a reindex request is still skipped."""

from __future__ import annotations

from typing import Any

from .conftest import StackHarness, Tenant

TEXT = "Liquid rocket engines burn kerosene and liquid oxygen. " * 40


async def upload(tenant: Tenant, title: str, text: str = TEXT) -> str:
    response = await tenant.client.post("/v1/documents", json={"title": title, "text": text})
    assert response.status_code == 202, response.text
    return str(response.json()["document"]["id"])


async def get(tenant: Tenant, doc: str) -> dict[str, Any]:
    response = await tenant.client.get(f"/v1/documents/{doc}")
    assert response.status_code == 200, response.text
    return dict(response.json())


async def found(tenant: Tenant, mode: str) -> set[str]:
    response = await tenant.client.post("/v1/search", json={"query": "kerosene rocket", "mode": mode})
    assert response.status_code == 200, response.text
    return {hit["document_id"] for hit in response.json()["results"]}


async def test_stage_progress_and_timings(harness: StackHarness) -> None:
    acme = await harness.tenant("acme")
    doc = await upload(acme, "Engines")
    queued = await get(acme, doc)
    assert queued["stage"] == "queued" and queued["progress"] == {"done": 0, "total": 0}
    await harness.ingest()
    ready = await get(acme, doc)
    assert ready["status"] == "ready" and ready["stage"] == "ready"
    assert ready["chunk_count"] > 1
    assert ready["progress"] == {"done": ready["chunk_count"], "total": ready["chunk_count"]}
    stages = {"extracting_ms", "chunking_ms", "embedding_ms", "indexing_ms", "total_ms"}
    assert set(ready["timings_ms"]) == stages and all(v >= 0 for v in ready["timings_ms"].values())


async def fail_one(harness: StackHarness, tenant: Tenant) -> str:
    """A document that ingestion fails permanently: its stored original vanished before the run."""
    doc = await upload(tenant, "Doomed", "Doomed rocket text.")
    env = harness.stack.workers["gateway"].env
    record = await env.DB.prepare("SELECT r2_key FROM documents WHERE id = ?1").bind(doc).first()
    await env.FILES.delete(record["r2_key"])
    return doc


async def test_failed_documents_report_the_failed_stage(harness: StackHarness) -> None:
    acme = await harness.tenant("acme")
    doc = await fail_one(harness, acme)
    await harness.ingest()
    failed = await get(acme, doc)
    assert failed["status"] == "failed" and failed["stage"] == "failed" and "missing" in failed["error"]
    refused = await acme.client.post(f"/v1/documents/{doc}/reindex")
    assert refused.status_code == 409 and "failed" in refused.json()["detail"]


async def test_reindex_one_document_keeps_it_searchable(harness: StackHarness) -> None:
    acme = await harness.tenant("acme")
    doc = await upload(acme, "Engines")
    await harness.ingest()
    before = await get(acme, doc)
    accepted = await acme.client.post(f"/v1/documents/{doc}/reindex")
    assert accepted.status_code == 202, accepted.text
    pending = accepted.json()
    assert pending["status"] == "ready" and pending["stage"] == "queued"
    assert pending["reindex_requested_at"] is not None
    # Until the new index is swapped in, the old one answers in every mode.
    for mode in ("keyword", "vector", "hybrid"):
        assert doc in await found(acme, mode)
    assert await harness.ingest() == 1
    after = await get(acme, doc)
    assert after["status"] == "ready" and after["stage"] == "ready" and after["reindex_requested_at"] is None
    assert after["chunk_count"] == before["chunk_count"]
    assert after["updated_at"] > before["updated_at"]  # the chunks were rebuilt and swapped
    for mode in ("keyword", "vector"):
        assert doc in await found(acme, mode)


async def test_without_a_request_an_unchanged_ready_document_is_skipped(harness: StackHarness) -> None:
    acme = await harness.tenant("acme")
    doc = await upload(acme, "Engines")
    await harness.ingest()
    before = await get(acme, doc)
    accepted = await acme.client.post(f"/v1/documents/{doc}/reindex")
    assert accepted.status_code == 202
    await harness.ingest()
    reindexed = await get(acme, doc)
    # Redeliver the same message (at-least-once delivery): no reindex is pending, nothing is redone.
    record = (
        await harness.stack.workers["gateway"]
        .env.DB.prepare("SELECT r2_key, content_type, content_sha256 FROM documents WHERE id = ?1")
        .bind(doc)
        .first()
    )
    message = {
        "v": 1,
        "tenant_id": acme.id,
        "document_id": doc,
        "r2_key": record["r2_key"],
        "content_type": record["content_type"],
        "sha256": record["content_sha256"],
        "enqueued_at": "2026-01-01T00:00:00.000Z",
    }
    await harness.stack.workers["gateway"].env.INGEST_QUEUE.send(message, contentType="json")
    await harness.ingest()
    assert (await get(acme, doc))["updated_at"] == reindexed["updated_at"] > before["updated_at"]


async def test_reindex_refusals(harness: StackHarness) -> None:
    acme, globex = await harness.tenant("acme"), await harness.tenant("globex")
    doc = await upload(acme, "Engines")
    queued = await acme.client.post(f"/v1/documents/{doc}/reindex")
    assert queued.status_code == 409 and "queued" in queued.json()["detail"]
    await harness.ingest()
    assert (await globex.client.post(f"/v1/documents/{doc}/reindex")).status_code == 404
    writer = await harness.tenant("writer-only", scopes=("read", "write"))
    assert (await writer.client.post("/v1/documents/reindex")).status_code == 403


async def test_tenant_wide_reindex(harness: StackHarness) -> None:
    acme, globex = await harness.tenant("acme"), await harness.tenant("globex")
    docs = [await upload(acme, f"Engines {i}", TEXT + f" Variant {i}.") for i in range(3)]
    other = await upload(globex, "Globex engines")
    await harness.ingest()
    failed = await fail_one(harness, acme)
    await harness.ingest()
    before = {d: await get(acme, d) for d in docs}
    other_before = await get(globex, other)
    response = await acme.client.post("/v1/documents/reindex")
    assert response.status_code == 202, response.text
    assert response.json() == {"queued": 3}  # ready documents only
    assert docs[0] in await found(acme, "vector")
    await harness.ingest()
    for d in docs:
        after = await get(acme, d)
        assert after["stage"] == "ready" and after["updated_at"] > before[d]["updated_at"]
    assert await get(globex, other) == other_before
    assert (await get(acme, failed))["status"] == "failed"
