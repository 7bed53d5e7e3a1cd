"""Large documents ingest in slices, one queue message each, and survive a crash at any point.

The stacks here ingest a few chunks per slice (INGEST_SLICE_CHUNKS), so small generated files take
several slices; one 100,000-row CSV runs at the deployed settings. A crash is the isolate being
killed (``IsolateKilled`` is a BaseException: nothing after it runs, not even ``except Exception``),
injected between two slices (after a slice's D1 batch, before its continuation is queued) and in the
middle of one (after its vectors were written, before its batch). Every crashed run must end with
exactly the chunks and vectors of an uncrashed run of the same file, having redone at most the slice
that crashed; until the last slice, search must not see a new document's chunks, and a reindexed
document must keep answering from its previous ones.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from edgerag.ids import chunk_id

from tests.integration.conftest import StackHarness, Tenant, open_harness
from tests.unit.format_samples import make_pdf, make_xlsx

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
SLICE = 6


class IsolateKilled(BaseException):
    """What the consumer sees of being killed: nothing after this runs."""


def make_csv(rows: int) -> bytes:
    lines = ["sku,colour,warehouse,qty"]
    lines += [f"S{n:05d},colour{n % 13},W{n % 7},{n * 7 % 101}" for n in range(1, rows + 1)]
    return ("\n".join(lines) + "\n").encode()


def make_sheets() -> bytes:
    rows: dict[str, list[list[str | int | float]]] = {}
    for sheet in ("North", "South"):
        table: list[list[str | int | float]] = [["sku", "colour", "qty"]]
        table += [[f"{sheet[0]}{n:05d}", f"colour{n % 13}", n % 101] for n in range(1, 241)]
        rows[sheet] = table
    return make_xlsx(rows)


def make_pages() -> bytes:
    return make_pdf(
        [
            [f"Page {p} line {n}: pallet {p * 100 + n} shipped to depot {n % 7}." for n in range(30)]
            for p in range(1, 13)
        ]
    )


FILES = {
    "csv": ("stock.csv", make_csv(600), "text/csv"),
    "xlsx": ("stock.xlsx", make_sheets(), XLSX),
    "pdf": ("pallets.pdf", make_pages(), "application/pdf"),
}


@pytest.fixture
async def sliced(tmp_path: Path) -> AsyncIterator[StackHarness]:
    async with open_harness(tmp_path, extra_vars={"ingest": {"INGEST_SLICE_CHUNKS": str(SLICE)}}) as opened:
        yield opened


async def upload(tenant: Tenant, name: str, data: bytes, content_type: str) -> str:
    response = await tenant.client.post("/v1/documents", files={"file": (name, data, content_type)})
    assert response.status_code == 202, response.text
    return str(response.json()["document"]["id"])


async def document(tenant: Tenant, document_id: str) -> dict[str, Any]:
    response = await tenant.client.get(f"/v1/documents/{document_id}")
    assert response.status_code == 200, response.text
    return dict(response.json())


async def found(tenant: Tenant, query: str, mode: str) -> set[str]:
    response = await tenant.client.post("/v1/search", json={"query": query, "mode": mode})
    assert response.status_code == 200, response.text
    return {hit["document_id"] for hit in response.json()["results"]}


def ingest_env(harness: StackHarness) -> Any:
    return harness.stack.workers["ingest"].env


async def chunks_of(harness: StackHarness, document_id: str) -> list[tuple[Any, ...]]:
    rows = await (
        ingest_env(harness)
        .DB.prepare(
            "SELECT seq, id, text, char_start, char_end, page_start, section, row_start, row_end"
            " FROM chunks WHERE document_id = ?1 ORDER BY seq"
        )
        .bind(document_id)
        .all()
    )
    # Ids embed the document id; compare them as (seq) so two documents' chunks can be compared.
    return [
        (
            r["seq"],
            r["text"],
            r["char_start"],
            r["char_end"],
            r["page_start"],
            r["section"],
            r["row_start"],
            r["row_end"],
            r["id"] == chunk_id(document_id, r["seq"]),
        )
        for r in rows["results"]
    ]


async def vector_count(harness: StackHarness, document_id: str, upto: int) -> int:
    ids = [chunk_id(document_id, seq) for seq in range(upto)]
    found_ids: list[str] = []
    for start in range(0, len(ids), 20):
        found_ids += [v["id"] for v in await ingest_env(harness).VECTORS.getByIds(ids[start : start + 20])]
    return len(found_ids)


async def leftovers(harness: StackHarness, document_id: str) -> tuple[int, Any]:
    db = ingest_env(harness).DB
    staged = (
        await db.prepare("SELECT COUNT(*) AS n FROM staged_chunks WHERE document_id = ?1")
        .bind(document_id)
        .first("n")
    )
    cursor = (
        await db.prepare("SELECT ingest_cursor FROM documents WHERE id = ?1")
        .bind(document_id)
        .first("ingest_cursor")
    )
    return int(staged), cursor


class Embeddings:
    """Counts the texts the ingest worker embeds (delegating to the real local model)."""

    def __init__(self, run: Callable[..., Awaitable[Any]]) -> None:
        self._run = run
        self.texts = 0

    async def run(self, model: str, inputs: Any, options: Any = None) -> Any:
        texts = inputs.get("text") if isinstance(inputs, dict) else None
        self.texts += len(texts) if isinstance(texts, list) else 1
        return await self._run(model, inputs, options)


def kill_on_call(
    original: Callable[..., Awaitable[Any]], call: int, after: bool
) -> Callable[..., Awaitable[Any]]:
    """``original``, except that its ``call``-th call kills the isolate (``after`` it took effect, or
    instead of it)."""
    calls = 0

    async def wrapper(*args: Any, **kwargs: Any) -> Any:
        nonlocal calls
        calls += 1
        if calls == call and not after:
            raise IsolateKilled
        result = await original(*args, **kwargs)
        if calls == call:
            raise IsolateKilled
        return result

    return wrapper


async def drain_through_crashes(harness: StackHarness, expected_kills: int) -> None:
    kills = 0
    for _ in range(10):
        try:
            await harness.ingest()
        except IsolateKilled:
            kills += 1
            harness.clock.advance(60)  # the unsettled delivery comes back after its visibility window
            continue
        break
    assert kills == expected_kills


async def clean_run(
    harness: StackHarness, name: str, data: bytes, content_type: str
) -> list[tuple[Any, ...]]:
    """The chunks of an uncrashed run of the same file, in another tenant (dedup is per tenant)."""
    reference = await harness.tenant("reference")
    doc = await upload(reference, name, data, content_type)
    await harness.ingest()
    assert (await document(reference, doc))["status"] == "ready"
    return await chunks_of(harness, doc)


# Every format's resume positions are pinned in tests/unit/test_formats_resume.py; here the stack runs
# the table and page formats; a CSV's 500-row sections make its slices end inside a section too.
@pytest.mark.parametrize("kind", sorted(FILES))
async def test_a_crash_between_slices_resumes_from_the_committed_slice(
    sliced: StackHarness, monkeypatch: pytest.MonkeyPatch, kind: str
) -> None:
    name, data, content_type = FILES[kind]
    expected = await clean_run(sliced, name, data, content_type)
    n = len(expected)
    assert n > 3 * SLICE, f"{kind}: {n} chunks is too few to need several slices"
    acme = await sliced.tenant("acme")
    doc = await upload(acme, name, data, content_type)
    env = ingest_env(sliced)
    embeddings = Embeddings(env.AI.run)
    monkeypatch.setattr(env.AI, "run", embeddings.run)
    # The second slice's D1 batch commits, then the isolate dies before queueing the third.
    monkeypatch.setattr(env.INGEST_QUEUE, "send", kill_on_call(env.INGEST_QUEUE.send, 2, after=False))
    await drain_through_crashes(sliced, 1)
    ready = await document(acme, doc)
    assert ready["status"] == "ready" and ready["chunk_count"] == n, ready
    assert ready["progress"] == {"done": n, "total": n}
    assert await chunks_of(sliced, doc) == expected  # the same chunks as the uncrashed run, once each
    assert await vector_count(sliced, doc, n + SLICE) == n
    assert embeddings.texts == n  # nothing was embedded twice: the redelivery resumed at slice 3
    assert await leftovers(sliced, doc) == (0, None)


async def test_a_crash_inside_a_slice_redoes_only_that_slice(
    sliced: StackHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    name, data, content_type = FILES["csv"]
    expected = await clean_run(sliced, name, data, content_type)
    n = len(expected)
    acme = await sliced.tenant("acme")
    doc = await upload(acme, name, data, content_type)
    env = ingest_env(sliced)
    embeddings = Embeddings(env.AI.run)
    monkeypatch.setattr(env.AI, "run", embeddings.run)
    # The third slice's vectors are written, then the isolate dies before its D1 batch.
    monkeypatch.setattr(env.VECTORS, "upsert", kill_on_call(env.VECTORS.upsert, 3, after=True))
    await drain_through_crashes(sliced, 1)
    assert (await document(acme, doc))["status"] == "ready"
    assert await chunks_of(sliced, doc) == expected
    assert await vector_count(sliced, doc, n + SLICE) == n  # the re-upserted ones replaced themselves
    assert embeddings.texts == n + SLICE  # the crashed slice, and only it, was embedded again
    assert await leftovers(sliced, doc) == (0, None)


async def test_a_half_ingested_document_is_invisible_to_search(
    sliced: StackHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    acme = await sliced.tenant("acme")
    name, data, content_type = FILES["csv"]
    doc = await upload(acme, name, data, content_type)
    env = ingest_env(sliced)
    monkeypatch.setattr(env.INGEST_QUEUE, "send", kill_on_call(env.INGEST_QUEUE.send, 1, after=False))
    with pytest.raises(IsolateKilled):
        await sliced.ingest()  # slice 1 committed; the rest is not queued yet
    partial = await document(acme, doc)
    assert partial["status"] == "processing" and partial["progress"]["done"] == SLICE, partial
    assert await leftovers(sliced, doc) != (0, None)
    # S00001 is in the first slice's rows; its vectors are in Vectorize, its chunks only staged.
    for mode in ("keyword", "vector", "hybrid"):
        assert doc not in await found(acme, "S00001", mode), mode
    monkeypatch.undo()
    sliced.clock.advance(60)
    await sliced.ingest()
    assert (await document(acme, doc))["status"] == "ready"
    for mode in ("keyword", "hybrid"):
        assert doc in await found(acme, "S00001", mode), mode


async def test_a_reindex_keeps_the_previous_version_searchable_until_its_last_slice(
    sliced: StackHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    acme = await sliced.tenant("acme")
    name, data, content_type = FILES["csv"]
    doc = await upload(acme, name, data, content_type)
    await sliced.ingest()
    before = await chunks_of(sliced, doc)
    accepted = await acme.client.post(f"/v1/documents/{doc}/reindex")
    assert accepted.status_code == 202, accepted.text
    env = ingest_env(sliced)
    monkeypatch.setattr(env.INGEST_QUEUE, "send", kill_on_call(env.INGEST_QUEUE.send, 2, after=False))
    with pytest.raises(IsolateKilled):
        await sliced.ingest()  # two slices of the new version committed
    midway = await document(acme, doc)
    assert midway["status"] == "ready" and midway["chunk_count"] == len(before), midway
    assert await chunks_of(sliced, doc) == before
    for mode in ("keyword", "vector", "hybrid"):
        assert doc in await found(acme, "S00001", mode), mode
    monkeypatch.undo()
    sliced.clock.advance(60)
    await sliced.ingest()
    after = await document(acme, doc)
    assert after["status"] == "ready" and after["reindex_requested_at"] is None
    assert await chunks_of(sliced, doc) == before  # same file, same settings: the same chunks
    assert await leftovers(sliced, doc) == (0, None)


async def test_a_deleted_document_stops_its_run(
    sliced: StackHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    acme = await sliced.tenant("acme")
    name, data, content_type = FILES["csv"]
    doc = await upload(acme, name, data, content_type)
    env = ingest_env(sliced)
    monkeypatch.setattr(env.INGEST_QUEUE, "send", kill_on_call(env.INGEST_QUEUE.send, 1, after=False))
    with pytest.raises(IsolateKilled):
        await sliced.ingest()
    monkeypatch.undo()
    assert await vector_count(sliced, doc, 4 * SLICE) == SLICE  # the first slice's vectors
    assert (await acme.client.delete(f"/v1/documents/{doc}")).status_code == 204
    assert await vector_count(sliced, doc, 4 * SLICE) == 0  # the delete knew the run's mark
    sliced.clock.advance(60)
    await sliced.ingest()
    db = env.DB
    assert await db.prepare("SELECT COUNT(*) AS n FROM staged_chunks").first("n") == 0
    assert (
        await db.prepare("SELECT COUNT(*) AS n FROM chunks WHERE document_id = ?1").bind(doc).first("n") == 0
    )
    assert await vector_count(sliced, doc, 4 * SLICE) == 0


async def test_a_delete_during_a_slice_leaves_none_of_its_vectors(
    sliced: StackHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    acme = await sliced.tenant("acme")
    name, data, content_type = FILES["csv"]
    doc = await upload(acme, name, data, content_type)
    env = ingest_env(sliced)
    upsert = env.VECTORS.upsert
    calls = 0

    async def delete_before_the_second_upsert(records: Any) -> Any:
        nonlocal calls
        calls += 1
        if calls == 2:  # the delete removes what exists; slice 2's vectors are written after it
            assert (await acme.client.delete(f"/v1/documents/{doc}")).status_code == 204
        return await upsert(records)

    monkeypatch.setattr(env.VECTORS, "upsert", delete_before_the_second_upsert)
    await sliced.ingest()
    assert calls == 2  # the run stopped at the slice whose batch found the document gone
    assert await vector_count(sliced, doc, 4 * SLICE) == 0
    assert await env.DB.prepare("SELECT COUNT(*) AS n FROM staged_chunks").first("n") == 0


async def test_a_100000_row_csv_ingests_at_the_deployed_settings(harness: StackHarness) -> None:
    # One short column keeps the embedding work small (~1,600 chunks, four slices of 500); the row
    # count is the table limit (MAX_TABLE_ROWS), which the old 2,000-chunk budget could not take.
    words = "ledger invoice vendor pallet audit".split()
    lines = ["kind"] + [words[n % 5] for n in range(1, 100_001)]
    acme = await harness.tenant("acme")
    doc = await upload(acme, "kinds.csv", ("\n".join(lines) + "\n").encode(), "text/csv")
    deliveries = await harness.ingest()
    ready = await document(acme, doc)
    assert ready["status"] == "ready", ready
    n = ready["chunk_count"]
    assert deliveries == -(-n // 500) > 1  # one message per slice of INGEST_SLICE_CHUNKS
    db = ingest_env(harness).DB
    rows = await (
        db.prepare(
            "SELECT MIN(row_start) AS first, MAX(row_end) AS last, COUNT(DISTINCT seq) AS seqs,"
            " MAX(seq) AS top FROM chunks WHERE document_id = ?1"
        )
        .bind(doc)
        .first()
    )
    assert (rows["first"], rows["last"]) == (2, 100_001)  # the header is row 1
    assert rows["seqs"] == n == rows["top"] + 1
    assert doc in await found(acme, "pallet", "keyword")
