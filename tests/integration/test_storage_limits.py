"""Per-tenant storage limits (documents, stored bytes) at every way a document comes in.

Plan defaults, operator overrides (``PUT /v1/admin/tenants/{t}/limits``) and the usage are reported by
``GET /v1/usage/limits``; an upload, a batch, a presigned upload (declared and completed) and a URL
source that would go past a limit answer 402 ``storage-limit`` naming it, and store nothing.
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from edgerag_local.core.clock import ManualClock
from edgerag_local.runtime.stack import open_stack

from tests.integration.conftest import ROOT, StackHarness, Tenant

STORAGE_LIMIT = "https://edgerag.dev/problems/storage-limit"


@pytest.fixture
async def stack(tmp_path: Path) -> AsyncIterator[StackHarness]:
    """The conftest harness with presigned uploads configured (nothing is ever sent to the endpoint:
    these tests sign URLs and put the bytes through the binding)."""
    clock = ManualClock()
    opened = open_stack(ROOT, state_dir=tmp_path / "state", clock=clock, r2_endpoint="http://127.0.0.1:9/r2")
    transport = httpx.ASGITransport(app=opened.asgi("gateway"))
    token = opened.admin_token_file.read_text().strip() if opened.admin_token_file else ""
    admin = httpx.AsyncClient(
        transport=transport, base_url="http://127.0.0.1:8787", headers={"authorization": f"Bearer {token}"}
    )
    try:
        yield StackHarness(opened, admin, transport, clock)
    finally:
        await admin.aclose()
        await opened.stop()
        opened.close()


async def set_limits(harness: StackHarness, tenant: Tenant, **limits: int | None) -> dict[str, Any]:
    response = await harness.admin.put(f"/v1/admin/tenants/{tenant.id}/limits", json=limits)
    assert response.status_code == 200, response.text
    return dict(response.json())


async def upload(tenant: Tenant, text: str) -> httpx.Response:
    return await tenant.client.post("/v1/documents", json={"title": text[:20], "text": text})


async def limits(tenant: Tenant) -> dict[str, Any]:
    response = await tenant.client.get("/v1/usage/limits")
    assert response.status_code == 200, response.text
    return dict(response.json())


async def stored(harness: StackHarness, tenant: Tenant) -> tuple[int, int, int]:
    """(document rows, pending uploads, R2 objects) of the tenant."""
    env = harness.stack.workers["gateway"].env
    rows = (
        await env.DB.prepare("SELECT COUNT(*) AS n FROM documents WHERE tenant_id = ?1")
        .bind(tenant.id)
        .first("n")
    )
    pending = (
        await env.DB.prepare("SELECT COUNT(*) AS n FROM pending_uploads WHERE tenant_id = ?1")
        .bind(tenant.id)
        .first("n")
    )
    listed = await env.FILES.list(prefix=f"tenants/{tenant.id}/")
    return int(rows), int(pending), len(listed.objects)


def refused(response: httpx.Response, limit: str) -> dict[str, Any]:
    assert response.status_code == 402, response.text
    problem = dict(response.json())
    assert response.headers["content-type"].startswith("application/problem+json")
    assert problem["type"] == STORAGE_LIMIT and problem["limit"] == limit, problem
    return problem


def declaration(data: bytes, name: str = "notes.md") -> dict[str, Any]:
    return {
        "filename": name,
        "content_type": "text/markdown",
        "size_bytes": len(data),
        "sha256": hashlib.sha256(data).hexdigest(),
    }


async def test_plan_defaults_overrides_and_usage_are_reported(stack: StackHarness) -> None:
    acme = await stack.tenant("acme")
    fresh = await limits(acme)
    assert (fresh["limits"]["max_documents"], fresh["limits"]["max_stored_bytes"]) == (1_000, 1024**3)
    assert (fresh["documents_stored"], fresh["bytes_stored"]) == (0, 0)
    assert (await upload(acme, "Kerosene and liquid oxygen.")).status_code == 202
    used = await limits(acme)
    assert (used["documents_stored"], used["bytes_stored"]) == (1, len(b"Kerosene and liquid oxygen."))
    changed = await set_limits(stack, acme, max_documents=5, max_stored_bytes=None)
    assert changed["limits"]["max_documents"] == 5 and changed["overrides"]["max_documents"] == 5
    assert changed["limits"]["max_stored_bytes"] == 1024**3  # null: the plan's
    enterprise = await stack.admin.post("/v1/admin/tenants", json={"name": "big", "plan": "enterprise"})
    big = (await stack.admin.get(f"/v1/admin/tenants/{enterprise.json()['id']}/limits")).json()
    assert (big["limits"]["max_documents"], big["limits"]["max_stored_bytes"]) == (None, None)


async def test_uploads_past_the_document_limit_are_refused_and_store_nothing(stack: StackHarness) -> None:
    acme, globex = await stack.tenant("acme"), await stack.tenant("globex")
    await set_limits(stack, acme, max_documents=2)
    first = await upload(acme, "First rocket note.")
    assert first.status_code == 202 and (await upload(acme, "Second rocket note.")).status_code == 202
    before = await stored(stack, acme)
    problem = refused(await upload(acme, "Third rocket note."), "max_documents")
    assert (problem["allowed"], problem["used"], problem["requested"]) == (2, 2, 1)
    assert "2 documents" in problem["detail"]
    files = {"file": ("third.txt", b"Third rocket note, as a file.", "text/plain")}
    refused(await acme.client.post("/v1/documents", files=files), "max_documents")
    assert await stored(stack, acme) == before
    # Bytes the tenant already has store nothing: the duplicate is answered even at the limit.
    duplicate = await upload(acme, "First rocket note.")
    assert duplicate.status_code == 200 and duplicate.json()["duplicate"] is True
    assert (await upload(globex, "Globex is not limited by acme's limit.")).status_code == 202
    deleted = await acme.client.delete(f"/v1/documents/{first.json()['document']['id']}")
    assert deleted.status_code == 204
    assert (await upload(acme, "Third rocket note.")).status_code == 202


async def test_the_byte_limit_holds_for_single_uploads_and_whole_batches(stack: StackHarness) -> None:
    acme = await stack.tenant("acme")
    await set_limits(stack, acme, max_stored_bytes=100)
    assert (await upload(acme, "x" * 60)).status_code == 202
    problem = refused(await upload(acme, "y" * 50), "max_stored_bytes")
    assert (problem["allowed"], problem["used"], problem["requested"]) == (100, 60, 50)
    before = await stored(stack, acme)
    batch = {"documents": [{"title": "a", "text": "a" * 30}, {"title": "b", "text": "b" * 30}]}
    refused(await acme.client.post("/v1/documents/batch", json=batch), "max_stored_bytes")
    assert await stored(stack, acme) == before  # the first item, which fitted, was undone
    assert (await limits(acme))["bytes_stored"] == 60


async def test_presigned_uploads_hold_their_place_and_are_checked_when_completed(stack: StackHarness) -> None:
    acme = await stack.tenant("acme")
    await set_limits(stack, acme, max_documents=2)
    assert (await upload(acme, "Stored the ordinary way.")).status_code == 202
    data = b"# Turbopumps\n\nThey feed the chamber."
    declared = await acme.client.post("/v1/uploads", json=declaration(data))
    assert declared.status_code == 201, declared.text
    assert (await limits(acme))["documents_stored"] == 2  # the pending upload counts
    refused(await acme.client.post("/v1/uploads", json=declaration(b"# Other\n\nfile")), "max_documents")
    refused(await upload(acme, "No room left while the upload is pending."), "max_documents")
    document_id = declared.json()["document"]["id"]
    key = f"tenants/{acme.id}/documents/{document_id}/original"
    await stack.stack.workers["gateway"].env.FILES.put(key, data)
    # The operator lowers the limit before the client completes: the upload stays pending.
    await set_limits(stack, acme, max_documents=1)
    refused(await acme.client.post(f"/v1/documents/{document_id}/complete"), "max_documents")
    assert (await stored(stack, acme))[1] == 1
    await set_limits(stack, acme, max_documents=2)
    completed = await acme.client.post(f"/v1/documents/{document_id}/complete")
    assert completed.status_code == 202, completed.text
    assert (await limits(acme))["documents_stored"] == 2  # the pending row became the document
    await set_limits(stack, acme, max_documents=None, max_stored_bytes=10)
    refused(
        await acme.client.post("/v1/uploads", json=declaration(b"# Big\n\n" + b"z" * 20)), "max_stored_bytes"
    )


async def test_url_sources_are_refused_at_the_limit_before_anything_is_recorded(stack: StackHarness) -> None:
    acme = await stack.tenant("acme")
    await set_limits(stack, acme, max_documents=1)
    assert (await upload(acme, "The only document acme may keep.")).status_code == 202
    response = await acme.client.post("/v1/documents", json={"url": "https://example.com/page"})
    refused(response, "max_documents")
    env = stack.stack.workers["gateway"].env
    sources = await env.DB.prepare("SELECT COUNT(*) AS n FROM url_sources").first("n")
    assert sources == 0 and (await stored(stack, acme))[0] == 1


async def test_limits_put_validates_the_new_fields(stack: StackHarness) -> None:
    acme = await stack.tenant("acme")
    for bad in ({"max_documents": -1}, {"max_stored_bytes": "5"}, {"max_documents": 1.5}):
        response = await stack.admin.put(f"/v1/admin/tenants/{acme.id}/limits", json=bad)
        assert response.status_code == 422, (bad, response.text)
