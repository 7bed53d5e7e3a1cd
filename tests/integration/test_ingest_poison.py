"""A document that can never be ingested ends ``failed`` with a reason; none makes the consumer spin.

Issue 7, defect 1: a 9 MB text with no whitespace used to keep the consumer chunking forever, and again
after every restart. Now it fails fast on the processing budget (ingest/settings.py), a document just
past the budget fails naming the limit and its size, an over-long word under the budget is simply
ingested, and a document whose every delivery dies with the consumer (out of memory, CPU time)
reaches the dead-letter queue after ``max_retries`` and ends ``failed`` with a reason.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from edgerag.ids import chunk_id
from edgerag_local.core.clock import ManualClock

from .conftest import StackHarness, Tenant, make_stack

POISON = b"a" * 9_000_000
WORD_PIECE_CHARS = 1185  # "a" costs a third of a token: 395 tokens of text fit 400 with the base 5


async def _upload(tenant: Tenant, data: bytes, name: str = "poison.txt") -> str:
    response = await tenant.client.post("/v1/documents", files={"file": (name, data, "text/plain")})
    assert response.status_code == 202, response.text
    return str(response.json()["document"]["id"])


async def _document(tenant: Tenant, document_id: str) -> dict[str, Any]:
    response = await tenant.client.get(f"/v1/documents/{document_id}")
    assert response.status_code == 200, response.text
    return dict(response.json())


async def _no_index(harness: StackHarness, tenant: Tenant, document_id: str) -> None:
    env = harness.stack.workers["ingest"].env
    rows = (
        await env.DB.prepare("SELECT COUNT(*) AS n FROM chunks WHERE document_id = ?1")
        .bind(document_id)
        .first("n")
    )
    assert rows == 0
    assert await env.VECTORS.getByIds([chunk_id(document_id, seq) for seq in range(20)]) == []


@asynccontextmanager
async def _stack_with(tmp_path: Path, ingest_vars: dict[str, str]) -> AsyncIterator[StackHarness]:
    """The conftest harness, with some of the ingest worker's vars overridden."""
    clock = ManualClock()
    stack = make_stack(tmp_path, extra_vars={"ingest": ingest_vars}, clock=clock)
    transport = httpx.ASGITransport(app=stack.asgi("gateway"))
    token = stack.admin_token_file.read_text().strip() if stack.admin_token_file else ""
    admin = httpx.AsyncClient(
        transport=transport, base_url="http://127.0.0.1:8787", headers={"authorization": f"Bearer {token}"}
    )
    try:
        yield StackHarness(stack, admin, transport, clock)
    finally:
        await admin.aclose()
        await stack.stop()
        stack.close()


@pytest.fixture
async def narrow(tmp_path: Path) -> AsyncIterator[StackHarness]:
    """A stack whose text budget is below the poison (the default, 40 MB of text, admits it)."""
    async with _stack_with(tmp_path, {"MAX_DOCUMENT_CHARS": "4000000"}) as harness:
        yield harness


CHUNK_CAP = 20


@pytest.fixture
async def roomy(tmp_path: Path) -> AsyncIterator[StackHarness]:
    """A stack whose text budget admits the poison, so the chunk budget is what stops it."""
    async with _stack_with(
        tmp_path, {"MAX_DOCUMENT_CHARS": "10000000", "MAX_DOCUMENT_CHUNKS": str(CHUNK_CAP)}
    ) as harness:
        yield harness


@pytest.fixture
async def roomy_sliced(tmp_path: Path) -> AsyncIterator[StackHarness]:
    """The same, ingesting 8 chunks per slice: the budget is reached in the third slice."""
    ingest_vars = {"MAX_DOCUMENT_CHARS": "10000000", "MAX_DOCUMENT_CHUNKS": str(CHUNK_CAP)}
    async with _stack_with(tmp_path, {**ingest_vars, "INGEST_SLICE_CHUNKS": "8"}) as harness:
        yield harness


async def test_the_9mb_poison_fails_on_the_text_budget_and_the_stack_keeps_serving(
    narrow: StackHarness,
) -> None:
    harness = narrow
    acme = await harness.tenant("acme")
    document_id = await _upload(acme, POISON)
    assert await harness.ingest() == 1  # one delivery, settled: no retry, no redelivery
    doc = await _document(acme, document_id)
    assert doc["status"] == "failed", doc
    assert "9,000,000 characters" in doc["error"] and "MAX_DOCUMENT_CHARS" in doc["error"], doc
    await _no_index(harness, acme, document_id)
    assert (await harness.client().get("/health")).status_code == 200
    assert await harness.ingest() == 0  # nothing left to redeliver


async def test_the_poison_past_the_text_budget_is_chunked_and_fails_on_the_chunk_budget(
    roomy: StackHarness,
) -> None:
    acme = await roomy.tenant("acme")
    document_id = await _upload(acme, POISON)
    assert await roomy.ingest() == 1
    doc = await _document(acme, document_id)
    assert doc["status"] == "failed", doc
    assert f"more than {CHUNK_CAP:,} chunks (MAX_DOCUMENT_CHUNKS)" in doc["error"], doc
    assert f"cover only {CHUNK_CAP * WORD_PIECE_CHARS:,} of its 9,000,000 characters" in doc["error"], doc
    await _no_index(roomy, acme, document_id)


async def test_a_chunk_budget_reached_in_a_later_slice_discards_the_earlier_slices(
    roomy_sliced: StackHarness,
) -> None:
    harness = roomy_sliced
    acme = await harness.tenant("acme")
    document_id = await _upload(acme, POISON[:300_000])  # a smaller poison: each slice counts it
    assert await harness.ingest() == 3  # two committed slices, then the one that meets the budget
    doc = await _document(acme, document_id)
    assert doc["status"] == "failed", doc
    assert f"cover only {CHUNK_CAP * WORD_PIECE_CHARS:,} of its 300,000 characters" in doc["error"], doc
    await _no_index(harness, acme, document_id)
    env = harness.stack.workers["ingest"].env
    staged = await env.DB.prepare("SELECT COUNT(*) AS n FROM staged_chunks").first("n")
    assert staged == 0


async def test_an_over_long_word_within_the_budget_is_split_and_ingested(harness: StackHarness) -> None:
    acme = await harness.tenant("acme")
    document_id = await _upload(acme, b"a" * (50 * WORD_PIECE_CHARS), "blob.txt")
    await harness.ingest()
    doc = await _document(acme, document_id)
    assert doc["status"] == "ready", doc
    assert doc["chunk_count"] == 50


class IsolateKilled(BaseException):
    """What the consumer sees of being killed: nothing after this runs, not even ``except Exception``."""


class DyingEmbedder:
    """``Ai.run`` of an isolate that is killed (out of memory) whenever it embeds; records the calls."""

    def __init__(self) -> None:
        self.calls = 0

    async def run(self, model: str, inputs: Any, options: Any = None) -> Any:
        self.calls += 1
        raise IsolateKilled


async def test_a_document_that_kills_every_delivery_ends_failed_after_the_retries(
    harness: StackHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    acme = await harness.tenant("acme")
    document_id = await _upload(acme, b"Every attempt to embed this document kills the consumer. " * 20)
    dying = DyingEmbedder()
    monkeypatch.setattr(harness.stack.workers["ingest"].env.AI, "run", dying.run)
    kills = 0
    for _ in range(10):  # bounded: the queue must give up by itself, long before this
        try:
            await harness.ingest()
        except IsolateKilled:
            kills += 1  # the host "restarts"; the delivery was never settled
            harness.clock.advance(60)
            continue
        break
    max_retries = 3  # workers/ingest/wrangler.toml, [[queues.consumers]] edgerag-ingest
    assert kills == dying.calls == max_retries + 1
    doc = await _document(acme, document_id)
    assert doc["status"] == "failed", doc
    assert "gave up" in doc["error"] and "no attempt finished" in doc["error"], doc
    await _no_index(harness, acme, document_id)
    assert await harness.ingest() == 0


async def test_a_misconfigured_ingest_worker_still_fails_its_documents_from_the_dead_letter_queue(
    tmp_path: Path,
) -> None:
    # Every delivery fails at settings load; the give-ups must not need those settings, or the
    # documents would stay "queued" after the dead-letter queue dropped them.
    async with _stack_with(tmp_path, {"CHUNK_OVERLAP_TOKENS": "400"}) as harness:
        acme = await harness.tenant("acme")
        document_id = await _upload(acme, b"Short and harmless.")
        for _ in range(10):  # bounded: retries with their delay until the dead-letter queue
            await harness.ingest()
            if (await _document(acme, document_id))["status"] == "failed":
                break
            harness.clock.advance(60)
        doc = await _document(acme, document_id)
        assert doc["status"] == "failed", doc
        assert "gave up" in doc["error"], doc
