"""URL documents through the whole stack: gateway -> queue -> ingest fetching from a loopback server.

The page server is ``http.server`` on 127.0.0.1 in a thread; the stack allows exactly that host
(``URL_FETCH_ALLOW_HOSTS``) and nothing is ever sent anywhere else. Re-syncs are cron ticks fired
with ``LocalStack.run_scheduled(at=...)`` past the interval, then the queue is drained.
"""

from __future__ import annotations

import threading
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from edgerag_local.core.clock import ManualClock
from gateway.app import get_app
from gateway.deps import get_clock

from .conftest import StackHarness, make_stack


@dataclass
class Page:
    status: int = 200
    body: bytes = b""
    content_type: str = "text/html; charset=utf-8"
    headers: dict[str, str] = field(default_factory=dict)
    etag: str | None = None  # answered 304 when If-None-Match matches


@dataclass
class PageServer:
    pages: dict[str, Page] = field(default_factory=dict)
    requests: list[tuple[str, dict[str, str]]] = field(default_factory=list)
    release: threading.Event = field(default_factory=threading.Event)
    port: int = 0

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def hits(self, path: str) -> int:
        return sum(1 for p, _ in self.requests if p == path)


def _handler(server: PageServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def do_GET(self) -> None:
            server.requests.append((self.path, {k.lower(): v for k, v in self.headers.items()}))
            if self.path == "/hang":
                server.release.wait(10)  # until the test ends: the fetch must give up first
                return
            page = server.pages.get(self.path)
            if page is None:
                self.send_response(404)
                self.send_header("content-length", "0")
                self.end_headers()
                return
            if page.etag is not None and self.headers.get("if-none-match") == page.etag:
                self.send_response(304)
                self.send_header("etag", page.etag)
                self.end_headers()
                return
            self.send_response(page.status)
            self.send_header("content-type", page.content_type)
            self.send_header("content-length", str(len(page.body)))
            if page.etag is not None:
                self.send_header("etag", page.etag)
            for name, value in page.headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(page.body)

    return Handler


@pytest.fixture
def pages() -> Iterator[PageServer]:
    state = PageServer()
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    httpd.daemon_threads = True
    httpd.block_on_close = False
    state.port = httpd.server_address[1]
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        state.release.set()
        httpd.shutdown()
        httpd.server_close()


_LIMITS = {
    "URL_FETCH_ALLOW_HOSTS": "127.0.0.1",
    "URL_FETCH_MAX_BYTES": "20000",
    "URL_FETCH_TIMEOUT_SECONDS": "1",
    "URL_FETCH_MAX_REDIRECTS": "3",
}


@pytest.fixture
async def url_harness(tmp_path: Path) -> AsyncIterator[StackHarness]:
    clock = ManualClock()
    stack = make_stack(tmp_path, extra_vars={"gateway": _LIMITS, "ingest": _LIMITS}, clock=clock)
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


def _html(title: str, text: str) -> bytes:
    head = f"<head><title>{title}</title><script>var x=1</script></head>"
    return f"<html>{head}<body><p>{text}</p></body></html>".encode()


async def _add(client: httpx.AsyncClient, url: str, **extra: Any) -> dict[str, Any]:
    created = await client.post("/v1/documents", json={"url": url, **extra})
    assert created.status_code == 202, created.text
    return dict(created.json()["document"])


async def _doc(client: httpx.AsyncClient, document_id: str) -> dict[str, Any]:
    got = await client.get(f"/v1/documents/{document_id}")
    assert got.status_code == 200, got.text
    return dict(got.json())


async def _source(client: httpx.AsyncClient, document_id: str) -> dict[str, Any]:
    got = await client.get(f"/v1/documents/{document_id}/source")
    assert got.status_code == 200, got.text
    return dict(got.json())


async def _search(client: httpx.AsyncClient, query: str) -> list[str]:
    found = await client.post("/v1/search", json={"query": query, "top_k": 5})
    assert found.status_code == 200, found.text
    return [r["snippet"] for r in found.json()["results"]]


async def _resync(h: StackHarness, hours: float) -> int:
    await h.stack.run_scheduled(worker="ingest", at=time.time() + hours * 3600)
    return await h.ingest()


async def test_a_page_is_fetched_ingested_and_found(url_harness: StackHarness, pages: PageServer) -> None:
    h = url_harness
    tenant = await h.tenant("acme")
    pages.pages["/guide"] = Page(body=_html("Guide", "The walrus migration starts in spring."))
    doc = await _add(tenant.client, pages.url("/guide"), metadata={"team": "docs"})
    assert doc["status"] == "queued" and doc["title"] == pages.url("/guide")
    assert pages.requests == []  # the gateway never fetches
    await h.ingest()
    ready = await _doc(tenant.client, doc["id"])
    assert ready["status"] == "ready", ready
    assert ready["content_type"].startswith("text/html") and ready["chunk_count"] >= 1
    assert any("walrus migration" in text for text in await _search(tenant.client, "walrus migration"))
    assert not any("var x" in text for text in await _search(tenant.client, "var x"))
    source = await _source(tenant.client, doc["id"])
    assert source["url"] == pages.url("/guide") and source["last_fetched_at"] and source["resync"] is None
    # An uploaded document has no source.
    up = await tenant.client.post("/v1/documents", json={"title": "t", "text": "plain text"})
    assert (await tenant.client.get(f"/v1/documents/{up.json()['document']['id']}/source")).status_code == 404


async def test_resync_reingests_only_a_changed_page(url_harness: StackHarness, pages: PageServer) -> None:
    h = url_harness
    tenant = await h.tenant("acme")
    other = await h.tenant("globex")
    pages.pages["/news"] = Page(body=_html("News", "Penguins prefer herring."), etag='"v1"')
    pages.pages["/plain"] = Page(body=b"Otters juggle pebbles.", content_type="text/plain")
    news = await _add(tenant.client, pages.url("/news"), resync={"interval_hours": 1})
    plain = await _add(other.client, pages.url("/plain"), resync={"interval_hours": 24})
    await h.ingest()
    first = await _doc(tenant.client, news["id"])
    assert first["status"] == "ready"
    other_before = await _doc(other.client, plain["id"])

    # Not due yet: nothing is fetched.
    assert await _resync(h, 0.5) == 0
    assert pages.hits("/news") == 1

    # Due, 304 (the ETag matches): only last_checked_at moves.
    assert await _resync(h, 1.5) == 1
    assert pages.hits("/news") == 2 and pages.requests[-1][1].get("if-none-match") == '"v1"'
    after_304 = await _doc(tenant.client, news["id"])
    assert after_304["updated_at"] == first["updated_at"] and after_304["sha256"] == first["sha256"]
    source = await _source(tenant.client, news["id"])
    assert source["last_checked_at"] > source["last_fetched_at"] and source["last_error"] is None

    # Due, 200 with the same bytes (new ETag): still nothing re-ingested.
    pages.pages["/news"] = Page(body=_html("News", "Penguins prefer herring."), etag='"v2"')
    await _resync(h, 3)
    same = await _doc(tenant.client, news["id"])
    assert same["updated_at"] == first["updated_at"] and same["timings_ms"] == first["timings_ms"]
    assert (await _source(tenant.client, news["id"]))["etag"] == '"v2"'

    # Changed: re-ingested; search finds the new text, not the old.
    pages.pages["/news"] = Page(body=_html("News", "Penguins now prefer krill."), etag='"v3"')
    await _resync(h, 5)
    changed = await _doc(tenant.client, news["id"])
    assert changed["status"] == "ready" and changed["sha256"] != first["sha256"]
    texts = await _search(tenant.client, "penguins prefer")
    assert any("krill" in t for t in texts) and not any("herring" in t for t in texts)

    # The other tenant's source (24 h interval) was never due, and its data is its own.
    assert await _doc(other.client, plain["id"]) == other_before
    assert pages.hits("/plain") == 1
    assert not any("Penguins" in t for t in await _search(other.client, "penguins krill"))
    assert (await other.client.get(f"/v1/documents/{news['id']}/source")).status_code == 404


async def test_a_failed_resync_keeps_the_last_good_version(
    url_harness: StackHarness, pages: PageServer
) -> None:
    h = url_harness
    tenant = await h.tenant("acme")
    pages.pages["/faq"] = Page(body=_html("FAQ", "Capybaras enjoy warm baths."))
    doc = await _add(tenant.client, pages.url("/faq"), resync={"interval_hours": 2})
    await h.ingest()
    pages.pages["/faq"] = Page(status=503, body=b"down")
    await _resync(h, 3)
    kept = await _doc(tenant.client, doc["id"])
    assert kept["status"] == "ready"
    assert "503" in (await _source(tenant.client, doc["id"]))["last_error"]
    assert any("Capybaras" in t for t in await _search(tenant.client, "capybaras warm baths"))


@pytest.mark.parametrize(
    ("path", "reason"),
    [
        ("/hang", "did not arrive within 1 seconds"),
        ("/big", "too large"),
        ("/loop", "redirect loop"),
        ("/to-private", "refused a redirect to http://10.0.0.1/: 10.0.0.1 is a private address"),
        ("/missing", "answered HTTP 404"),
        ("/image", "image/png, which cannot be ingested"),
    ],
)
async def test_a_first_fetch_that_fails_ends_failed_with_the_reason(
    url_harness: StackHarness, pages: PageServer, path: str, reason: str
) -> None:
    h = url_harness
    tenant = await h.tenant("acme")
    pages.pages["/big"] = Page(body=b"<p>" + b"a" * 30000 + b"</p>")
    pages.pages["/loop"] = Page(status=302, headers={"location": "/loop2"})
    pages.pages["/loop2"] = Page(status=301, headers={"location": pages.url("/loop")})
    pages.pages["/to-private"] = Page(status=302, headers={"location": "http://10.0.0.1/"})
    pages.pages["/image"] = Page(body=b"\x89PNG\r\n\x1a\n....", content_type="image/png")
    doc = await _add(tenant.client, pages.url(path))
    await h.ingest()
    failed = await _doc(tenant.client, doc["id"])
    assert failed["status"] == "failed" and reason in failed["error"], failed["error"]
    assert failed["chunk_count"] == 0


@pytest.mark.parametrize(
    "url",
    [
        "http://169.254.169.254/latest/meta-data/",
        "http://10.0.0.1/",
        "http://localhost:8080/",
        "http://[::1]/",
        "http://2130706433/",
        "file:///etc/passwd",
        "http://127.0.0.2/",  # loopback, but not the allowed host
    ],
)
async def test_private_and_odd_urls_are_refused_at_upload(url_harness: StackHarness, url: str) -> None:
    h = url_harness
    tenant = await h.tenant("acme")
    refused = await tenant.client.post("/v1/documents", json={"url": url})
    assert refused.status_code == 422, refused.text
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert refused.json()["errors"][0]["loc"] == ["body", "url"]
    listed = await tenant.client.get("/v1/documents")
    assert listed.json()["documents"] == []
    assert await h.ingest() == 0  # nothing queued: no fetch will ever be attempted


async def test_url_bodies_are_validated_and_need_write_scope(url_harness: StackHarness) -> None:
    h = url_harness
    tenant = await h.tenant("acme")
    bad = await tenant.client.post(
        "/v1/documents", json={"url": "https://example.com/", "resync": {"interval_hours": 0}}
    )
    assert bad.status_code == 422
    extra = await tenant.client.post("/v1/documents", json={"url": "https://example.com/", "text": "x"})
    assert extra.status_code == 422
    reader = await h.tenant("readers", scopes=("read",))
    assert (
        await reader.client.post("/v1/documents", json={"url": "https://example.com/"})
    ).status_code == 403
    assert await h.ingest() == 0
