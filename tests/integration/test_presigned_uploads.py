"""Direct uploads end to end over real HTTP: presign -> PUT to the local R2 endpoint -> complete ->
ready -> presigned download; and every way a presigned URL or an upload can be wrong.

The whole stack is served by uvicorn on a loopback port (the gateway plus the presigned R2 endpoint
under /r2, as ``edgerag dev`` serves them); clients are real HTTP clients (httpx over a socket, and
botocore's own SigV4 presigner). Time is the stack's ManualClock, so expiry is exact, and the cron
tick is fired with ``stack.run_scheduled``.
"""

from __future__ import annotations

import asyncio
import hashlib
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit, urlunsplit

import httpx
import pytest
import uvicorn
from botocore.auth import S3SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from edgerag_local.core.clock import ManualClock
from edgerag_local.r2.presigned import R2_PREFIX, PresignedR2
from edgerag_local.runtime.host import LocalStack
from edgerag_local.runtime.serving import serve_app
from edgerag_local.runtime.stack import open_stack
from gateway.app import get_app
from gateway.deps import get_clock

ROOT = Path(__file__).resolve().parents[2]
TEXT = b"# Field notes\n\nThe heron waits at the weir until the eels run at dusk.\n"


@dataclass
class Live:
    stack: LocalStack
    base: str
    clock: ManualClock
    admin: httpx.AsyncClient
    http: httpx.AsyncClient  # unauthenticated: what a browser uploading to R2 is
    clients: list[httpx.AsyncClient] = field(default_factory=list)

    async def tenant(self, name: str) -> httpx.AsyncClient:
        created = await self.admin.post("/v1/admin/tenants", json={"name": name})
        assert created.status_code == 201, created.text
        key = await self.admin.post(
            f"/v1/admin/tenants/{created.json()['id']}/keys",
            json={"name": "t", "scopes": ["read", "write"]},
        )
        assert key.status_code == 201, key.text
        bearer = {"authorization": f"Bearer {key.json()['key']}"}
        client = httpx.AsyncClient(base_url=self.base, headers=bearer)
        self.clients.append(client)
        return client


@pytest.fixture
async def live(tmp_path: Path) -> AsyncIterator[Live]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    base = f"http://127.0.0.1:{sock.getsockname()[1]}"
    clock = ManualClock()
    stack = open_stack(ROOT, state_dir=tmp_path / "state", clock=clock, r2_endpoint=base + R2_PREFIX)
    get_app().dependency_overrides[get_clock] = lambda: clock
    server = uvicorn.Server(uvicorn.Config(serve_app(stack), lifespan="off", log_level="warning"))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        await asyncio.sleep(0.01)
        assert not task.done(), "the server did not start"
    token = stack.admin_token_file.read_text().strip() if stack.admin_token_file else ""
    admin = httpx.AsyncClient(base_url=base, headers={"authorization": f"Bearer {token}"})
    http = httpx.AsyncClient()
    live = Live(stack, base, clock, admin, http)
    try:
        yield live
    finally:
        get_app().dependency_overrides.pop(get_clock, None)
        for client in [admin, http, *live.clients]:
            await client.aclose()
        server.should_exit = True
        await asyncio.wait_for(task, 30)
        await stack.stop()
        stack.close()
        sock.close()


async def _objects(live: Live, prefix: str = "tenants/") -> list[str]:
    listed = await live.stack.workers["gateway"].env.FILES.list(prefix=prefix)
    return [obj.key for obj in listed.objects]


def _declare(data: bytes = TEXT, **over: Any) -> dict[str, Any]:
    return {
        "filename": "notes.md",
        "content_type": "text/markdown",
        "size_bytes": len(data),
        "sha256": hashlib.sha256(data).hexdigest(),
        **over,
    }


async def _presign(client: httpx.AsyncClient, data: bytes = TEXT, **over: Any) -> dict[str, Any]:
    created = await client.post("/v1/uploads", json=_declare(data, **over))
    assert created.status_code == 201, created.text
    body: dict[str, Any] = created.json()
    return body


def _s3_code(response: httpx.Response) -> str:
    assert response.headers["content-type"] == "application/xml", response.text
    return response.text.split("<Code>")[1].split("</Code>")[0]


async def test_presigned_upload_complete_ready_download(live: Live) -> None:
    client = await live.tenant("acme")
    created = await _presign(client)
    doc, upload = created["document"], created["upload"]
    assert doc["status"] == "pending" and created["duplicate"] is False
    assert upload["method"] == "PUT"
    assert upload["headers"] == {"Content-Type": "text/markdown", "Content-Length": str(len(TEXT))}
    query = dict(parse_qsl(urlsplit(upload["url"]).query))
    assert query["X-Amz-Expires"] == "600"
    assert query["X-Amz-SignedHeaders"] == "content-length;content-type;host"
    # Not a document yet: nothing to complete before the bytes are there.
    early = await client.post(created["complete_url"])
    assert early.status_code == 409, early.text

    put = await live.http.put(upload["url"], content=TEXT, headers=upload["headers"])
    assert put.status_code == 200, put.text
    assert put.headers["etag"] == f'"{hashlib.md5(TEXT).hexdigest()}"'

    done = await client.post(created["complete_url"])
    assert done.status_code == 202, done.text
    assert done.json()["document"]["status"] == "queued"
    again = await client.post(created["complete_url"])  # idempotent
    assert again.status_code == 200 and again.json()["duplicate"] is False
    assert await live.stack.drain_queues() >= 1
    ready = (await client.get(f"/v1/documents/{doc['id']}")).json()
    assert ready["status"] == "ready", ready
    assert ready["sha256"] == hashlib.sha256(TEXT).hexdigest() and ready["size_bytes"] == len(TEXT)
    hits = (await client.post("/v1/search", json={"query": "heron weir eels"})).json()
    assert any(h["document_id"] == doc["id"] for h in hits["results"]), hits

    link = await client.get(f"/v1/documents/{doc['id']}/download")
    assert link.status_code == 200, link.text
    got = await live.http.get(link.json()["url"])
    assert got.status_code == 200 and got.content == TEXT
    assert got.headers["content-disposition"].startswith('attachment; filename="notes.md"')
    # The same bytes again are reported, not uploaded twice.
    dup = await client.post("/v1/uploads", json=_declare())
    assert dup.status_code == 200 and dup.json()["duplicate"] is True and dup.json()["upload"] is None
    assert dup.json()["document"]["id"] == doc["id"]


async def test_botocore_presigned_urls_work_against_the_emulator(live: Live) -> None:
    env = live.stack.workers["gateway"].env
    url = f"{live.base}{R2_PREFIX}/edgerag-files/tenants/x/botocore.txt"

    def boto(method: str, secret: str, headers: dict[str, str]) -> str:
        request = AWSRequest(method=method, url=url, headers=headers)
        creds = Credentials(env.R2_ACCESS_KEY_ID, secret)
        S3SigV4QueryAuth(creds, "s3", "auto", expires=60).add_auth(request)
        assert request.url is not None
        return request.url

    headers = {"Content-Type": "text/plain", "Content-Length": "5"}
    put = await live.http.put(
        boto("PUT", env.R2_SECRET_ACCESS_KEY, headers), content=b"hello", headers=headers
    )
    assert put.status_code == 200, put.text
    got = await live.http.get(boto("GET", env.R2_SECRET_ACCESS_KEY, {}))
    assert got.status_code == 200 and got.content == b"hello"
    assert got.headers["content-type"] == "text/plain"
    forged = await live.http.get(boto("GET", "not-the-secret", {}))
    assert forged.status_code == 403 and _s3_code(forged) == "SignatureDoesNotMatch"
    anonymous = await live.http.get(url)
    assert anonymous.status_code == 403 and _s3_code(anonymous) == "AccessDenied"


async def test_expired_tampered_resized_and_retyped_puts_are_refused(live: Live) -> None:
    client = await live.tenant("acme")
    created = await _presign(client)
    url, headers = created["upload"]["url"], created["upload"]["headers"]

    longer = await live.http.put(url, content=TEXT + b"!", headers={"Content-Type": "text/markdown"})
    assert longer.status_code == 403 and _s3_code(longer) == "SignatureDoesNotMatch"
    retyped = await live.http.put(url, content=TEXT, headers={"Content-Type": "text/html"})
    assert retyped.status_code == 403 and _s3_code(retyped) == "SignatureDoesNotMatch"
    parts = urlsplit(url)
    other_key = parts.path.replace("/original", "/other")
    moved = await live.http.put(urlunsplit(parts._replace(path=other_key)), content=TEXT, headers=headers)
    assert moved.status_code == 403 and _s3_code(moved) == "SignatureDoesNotMatch"
    query = dict(parse_qsl(parts.query))
    query["X-Amz-Expires"] = "3600"  # stretching the lifetime breaks the signature too
    stretched = urlunsplit(parts._replace(query=httpx.QueryParams(query).__str__()))
    assert _s3_code(await live.http.put(stretched, content=TEXT, headers=headers)) == "SignatureDoesNotMatch"

    live.clock.advance(601)
    expired = await live.http.put(url, content=TEXT, headers=headers)
    assert expired.status_code == 403 and _s3_code(expired) == "AccessDenied"
    assert "Request has expired" in expired.text
    # Nothing reached R2, and completing says so.
    assert (await _objects(live)) == []
    assert (await client.post(created["complete_url"])).status_code == 409


async def test_a_body_shorter_than_its_content_length_is_incomplete(live: Live) -> None:
    """(An HTTP client cannot send this on purpose; the emulator's ASGI app is driven directly.)"""
    client = await live.tenant("acme")
    created = await _presign(client)
    parts = urlsplit(created["upload"]["url"])
    app = PresignedR2(
        {"edgerag-files": live.stack.pool.r2("edgerag-files")},
        {
            live.stack.workers["gateway"].env.R2_ACCESS_KEY_ID: live.stack.workers[
                "gateway"
            ].env.R2_SECRET_ACCESS_KEY
        },
        prefix=R2_PREFIX,
        clock=live.clock,
    )
    sent: list[dict[str, Any]] = []
    messages = iter([{"type": "http.request", "body": TEXT[:10], "more_body": False}])

    async def receive() -> dict[str, Any]:
        return next(messages)

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "method": "PUT",
        "path": parts.path,
        "query_string": parts.query.encode(),
        "headers": [
            (b"host", parts.netloc.encode()),
            (b"content-type", b"text/markdown"),
            (b"content-length", str(len(TEXT)).encode()),
        ],
    }
    await app(scope, receive, send)
    assert sent[0]["status"] == 400 and b"<Code>IncompleteBody</Code>" in sent[1]["body"]
    assert (await _objects(live)) == []


async def test_wrong_bytes_are_deleted_at_complete_and_can_be_put_again(live: Live) -> None:
    client = await live.tenant("acme")
    impostor = TEXT.replace(b"heron", b"egret")  # same length, other bytes
    created = await _presign(client)
    upload = created["upload"]
    assert (
        await live.http.put(upload["url"], content=impostor, headers=upload["headers"])
    ).status_code == 200
    wrong = await client.post(created["complete_url"])
    assert wrong.status_code == 422, wrong.text
    assert "SHA-256" in wrong.json()["detail"]
    assert (await _objects(live)) == []  # the wrong file is gone; the pending upload stays
    assert (await live.http.put(upload["url"], content=TEXT, headers=upload["headers"])).status_code == 200
    assert (await client.post(created["complete_url"])).status_code == 202


async def test_cron_tick_sweeps_uploads_never_completed(live: Live) -> None:
    client = await live.tenant("acme")
    abandoned = await _presign(client)
    up = abandoned["upload"]
    assert (await live.http.put(up["url"], content=TEXT, headers=up["headers"])).status_code == 200
    never_put = await _presign(client, TEXT + b"more", filename="b.md")
    kept = await _presign(client, b"kept: " + TEXT, filename="k.md")
    up = kept["upload"]
    assert (
        await live.http.put(up["url"], content=b"kept: " + TEXT, headers=up["headers"])
    ).status_code == 200
    assert (await client.post(kept["complete_url"])).status_code == 202

    # Within the grace period after expiry nothing goes (it may still be completed).
    live.clock.advance(601)
    assert await live.stack.run_scheduled(worker="gateway") == 1
    assert len(await _objects(live)) == 2
    live.clock.advance(3600)
    assert await live.stack.run_scheduled(worker="gateway") == 1

    kept_key = f"/documents/{kept['document']['id']}/original"
    remaining = await _objects(live)
    assert len(remaining) == 1 and remaining[0].endswith(kept_key)
    for gone in (abandoned, never_put):
        assert (await client.post(gone["complete_url"])).status_code == 404
    db = live.stack.workers["gateway"].env.DB
    rows = await db.prepare("SELECT COUNT(*) AS n FROM pending_uploads").first()
    assert rows["n"] == 0
    assert (await client.get(f"/v1/documents/{kept['document']['id']}")).status_code == 200


async def test_other_tenants_and_bad_declarations(live: Live) -> None:
    acme, globex = await live.tenant("acme"), await live.tenant("globex")
    created = await _presign(acme)
    up = created["upload"]
    assert (await live.http.put(up["url"], content=TEXT, headers=up["headers"])).status_code == 200
    assert (await globex.post(created["complete_url"])).status_code == 404
    assert (await acme.post(created["complete_url"])).status_code == 202
    doc_id = created["document"]["id"]
    assert (await globex.get(f"/v1/documents/{doc_id}/download")).status_code == 404

    too_big = await acme.post("/v1/uploads", json=_declare(size_bytes=200 * 1024 * 1024))
    assert too_big.status_code == 413, too_big.text
    unknown = await acme.post(
        "/v1/uploads", json=_declare(filename="x.bin", content_type="application/x-foo")
    )
    assert unknown.status_code == 415, unknown.text
    bad_hash = await acme.post("/v1/uploads", json=_declare(sha256="abc"))
    assert bad_hash.status_code == 422


async def test_unconfigured_deployment_answers_503(harness: Any) -> None:
    tenant = await harness.tenant("acme")
    reply = await tenant.client.post("/v1/uploads", json=_declare())
    assert reply.status_code == 503
    assert "R2_S3_ENDPOINT" in reply.json()["detail"]
    assert reply.headers["content-type"] == "application/problem+json"
