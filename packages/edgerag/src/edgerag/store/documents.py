"""Documents and their chunks in D1 (the FTS5 index follows ``chunks`` through triggers).

Writes that must not be half-done go through ``db.batch``, which D1 runs atomically: replacing a
document's chunks and marking it ``ready`` is one batch, so a failure leaves the previous state intact.

Duplicates: a document created with ``dedup=True`` claims its content hash in the tenant
(``dedup_sha256``, unique per tenant; migrations/0002_document_dedup.sql). :meth:`DocumentStore.create`
then returns ``None`` instead of a second row when a live copy exists, even if two uploads race, and
:meth:`DocumentStore.find_duplicate` names that copy. A failed document gives its claim up.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from edgerag.ports import D1Database
from edgerag.problems import NotFound
from edgerag.store.d1 import fetch_all, fetch_one, now_iso, placeholders, run, statement

__all__ = ["ChunkRow", "DocumentRecord", "DocumentStore", "NewChunk"]

Status = Literal["queued", "processing", "ready", "failed"]
Stage = Literal["queued", "extracting", "chunking", "embedding", "indexing", "ready", "failed"]


@dataclass(frozen=True)
class DocumentRecord:
    id: str
    tenant_id: str
    title: str
    filename: str | None
    content_type: str
    size_bytes: int
    r2_key: str
    content_sha256: str
    status: Status
    error: str | None
    chunk_count: int
    metadata: dict[str, Any]
    attempts: int
    created_at: str
    updated_at: str
    # migrations/0011: the pipeline's stage and progress (a reindex runs them on a ready document)
    stage: Stage = "queued"
    progress_done: int = 0
    progress_total: int = 0
    timings: dict[str, float] | None = None
    reindex_requested_at: str | None = None
    # migrations/0013: the progress marker of the ingestion run in flight (JSON; ingest/cursor.py)
    ingest_cursor: str | None = None

    @property
    def vector_reach(self) -> int:
        """One past the highest chunk seq that may have a vector: the ready chunks, or further what a
        run in flight may have written (its cursor's ``vectors``). Deleting ids below it removes them all."""
        reach = self.chunk_count
        if self.ingest_cursor:
            try:
                reach = max(reach, int(json.loads(self.ingest_cursor).get("vectors", 0)))
            except (ValueError, TypeError, AttributeError):
                pass  # unreadable: the chunk count is all that is known
        return reach

    def to_public(self) -> dict[str, Any]:
        """The API representation (no storage keys)."""
        return {
            "id": self.id,
            "title": self.title,
            "filename": self.filename,
            "content_type": self.content_type,
            "size_bytes": self.size_bytes,
            "sha256": self.content_sha256,
            "status": self.status,
            "error": self.error,
            "chunk_count": self.chunk_count,
            "metadata": self.metadata,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            "stage": self.stage,
            "progress": {"done": self.progress_done, "total": self.progress_total},
            "timings_ms": dict(self.timings or {}),
            "reindex_requested_at": self.reindex_requested_at,
        }


@dataclass(frozen=True)
class NewChunk:
    """A chunk to write, with its provenance (migrations/0009_chunk_provenance.sql says what each is)."""

    id: str
    seq: int
    text: str
    char_start: int
    char_end: int
    token_count: int
    page_start: int | None = None
    page_end: int | None = None
    section: str | None = None
    row_start: int | None = None
    row_end: int | None = None


_PROVENANCE = ("page_start", "page_end", "section", "row_start", "row_end", "char_start", "char_end")
_PROVENANCE_COLUMNS = ", ".join(f"c.{name}" for name in _PROVENANCE)


@dataclass(frozen=True)
class ChunkRow:
    id: str
    document_id: str
    seq: int
    text: str
    title: str
    provenance: dict[str, int | str] = field(default_factory=dict)  # the non-NULL provenance columns


def _document(row: dict[str, Any]) -> DocumentRecord:
    return DocumentRecord(
        id=row["id"],
        tenant_id=row["tenant_id"],
        title=row["title"],
        filename=row["filename"],
        content_type=row["content_type"],
        size_bytes=row["size_bytes"],
        r2_key=row["r2_key"],
        content_sha256=row["content_sha256"],
        status=row["status"],
        error=row["error"],
        chunk_count=row["chunk_count"],
        metadata=json.loads(row["metadata"] or "{}"),
        attempts=row["attempts"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        stage=row["stage"],
        progress_done=row["progress_done"],
        progress_total=row["progress_total"],
        timings=json.loads(row["timings"] or "{}"),
        reindex_requested_at=row["reindex_requested_at"],
        ingest_cursor=row.get("ingest_cursor"),
    )


class DocumentStore:
    def __init__(self, db: D1Database) -> None:
        self._db = db

    async def create(
        self,
        *,
        document_id: str,
        tenant_id: str,
        title: str,
        filename: str | None,
        content_type: str,
        size_bytes: int,
        r2_key: str,
        sha256: str,
        metadata: dict[str, Any],
        dedup: bool = False,
    ) -> DocumentRecord | None:
        """Insert a ``queued`` document; with ``dedup``, ``None`` if the tenant has a live copy already.

        One statement (``RETURNING``): a separate read-back that failed after the insert committed left
        a ``queued`` row that the caller, seeing an error, never enqueued (found by benchmarks/load.py
        with D1 faults injected)."""
        now = now_iso()
        row = await fetch_one(
            self._db,
            "INSERT INTO documents (id, tenant_id, title, filename, content_type, size_bytes, r2_key,"
            " content_sha256, status, metadata, created_at, updated_at, dedup_sha256)"
            " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, 'queued', ?9, ?10, ?10, ?11)"
            " ON CONFLICT (tenant_id, dedup_sha256) DO NOTHING RETURNING *",
            document_id,
            tenant_id,
            title,
            filename,
            content_type,
            size_bytes,
            r2_key,
            sha256,
            json.dumps(metadata, separators=(",", ":")),
            now,
            sha256 if dedup else None,
        )
        return None if row is None else _document(row)

    async def find_duplicate(self, tenant_id: str, sha256: str) -> DocumentRecord | None:
        """The tenant's live copy of the content with this SHA-256 (not failed, not a forced copy)."""
        row = await fetch_one(
            self._db,
            "SELECT * FROM documents WHERE tenant_id = ?1 AND dedup_sha256 = ?2",
            tenant_id,
            sha256,
        )
        return None if row is None else _document(row)

    async def find(self, tenant_id: str, document_id: str) -> DocumentRecord | None:
        row = await fetch_one(
            self._db, "SELECT * FROM documents WHERE id = ?1 AND tenant_id = ?2", document_id, tenant_id
        )
        return None if row is None else _document(row)

    async def get(self, tenant_id: str, document_id: str) -> DocumentRecord:
        record = await self.find(tenant_id, document_id)
        if record is None:
            raise NotFound(f"no document {document_id}")
        return record

    async def list_page(
        self,
        tenant_id: str,
        *,
        limit: int,
        after: tuple[str, str] | None = None,
        status: Status | None = None,
    ) -> list[DocumentRecord]:
        """Newest first; ``after`` is the (created_at, id) of the last item of the previous page."""
        clauses: list[str] = ["tenant_id = ?1"]
        params: list[Any] = [tenant_id]
        if status is not None:
            params.append(status)
            clauses.append(f"status = ?{len(params)}")
        if after is not None:
            params += [after[0], after[1]]
            n = len(params)
            clauses.append(f"(created_at < ?{n - 1} OR (created_at = ?{n - 1} AND id < ?{n}))")
        params.append(limit)
        sql = (
            f"SELECT * FROM documents WHERE {' AND '.join(clauses)}"
            f" ORDER BY created_at DESC, id DESC LIMIT ?{len(params)}"
        )
        return [_document(r) for r in await fetch_all(self._db, sql, *params)]

    async def delete(self, tenant_id: str, document_id: str) -> bool:
        """Delete the document row; chunks and FTS rows follow through the cascade and triggers."""
        return (
            await run(
                self._db, "DELETE FROM documents WHERE id = ?1 AND tenant_id = ?2", document_id, tenant_id
            )
            > 0
        )

    async def update_details(
        self, tenant_id: str, document_id: str, *, title: str, metadata: dict[str, Any]
    ) -> bool:
        """Set title and metadata (``PATCH``); the chunks' copy of the title follows, so keyword search
        matches the new one (FTS follows chunks through its trigger). One atomic batch."""
        now = now_iso()
        # Writing title every time also fires the cache-generation trigger (UPDATE OF title), so a
        # metadata-only change invalidates cached filtered searches too.
        results = await self._db.batch(
            [
                statement(
                    self._db,
                    "UPDATE documents SET title = ?3, metadata = ?4, updated_at = ?5"
                    " WHERE id = ?1 AND tenant_id = ?2",
                    document_id,
                    tenant_id,
                    title,
                    json.dumps(metadata, separators=(",", ":")),
                    now,
                ),
                statement(
                    self._db,
                    "UPDATE chunks SET title = ?3 WHERE document_id = ?1 AND tenant_id = ?2 AND title != ?3",
                    document_id,
                    tenant_id,
                    title,
                ),
            ]
        )
        return int(results[0]["meta"]["changes"]) > 0

    async def request_reindex(self, tenant_id: str, document_ids: Sequence[str]) -> None:
        """Flag documents for re-embedding; their status (and searchability) does not change."""
        now = now_iso()
        for start in range(0, len(document_ids), 90):
            part = list(document_ids[start : start + 90])
            await run(
                self._db,
                "UPDATE documents SET reindex_requested_at = ?2, stage = 'queued', progress_done = 0,"
                f" progress_total = 0 WHERE tenant_id = ?1 AND id IN ({placeholders(part, start=3)})",
                tenant_id,
                now,
                *part,
            )

    async def reindexable(self, tenant_id: str, *, after: str = "", limit: int = 500) -> list[DocumentRecord]:
        """The tenant's ready documents by id, after ``after`` (a tenant-wide reindex pages through them)."""
        rows = await fetch_all(
            self._db,
            "SELECT * FROM documents WHERE tenant_id = ?1 AND status = 'ready' AND id > ?2"
            " ORDER BY id LIMIT ?3",
            tenant_id,
            after,
            limit,
        )
        return [_document(r) for r in rows]

    async def set_progress(
        self, tenant_id: str, document_id: str, stage: Stage, done: int, total: int, timings: dict[str, float]
    ) -> None:
        await run(
            self._db,
            "UPDATE documents SET stage = ?3, progress_done = ?4, progress_total = ?5, timings = ?6"
            " WHERE id = ?1 AND tenant_id = ?2",
            document_id,
            tenant_id,
            stage,
            done,
            total,
            json.dumps(timings, separators=(",", ":")),
        )

    async def mark_processing(self, tenant_id: str, document_id: str) -> int:
        """Count an attempt; returns the number of attempts so far (0 if the document is gone)."""
        await run(
            self._db,
            "UPDATE documents SET status = 'processing', attempts = attempts + 1, updated_at = ?3"
            " WHERE id = ?1 AND tenant_id = ?2 AND status != 'ready'",
            document_id,
            tenant_id,
            now_iso(),
        )
        row = await fetch_one(
            self._db,
            "SELECT attempts FROM documents WHERE id = ?1 AND tenant_id = ?2",
            document_id,
            tenant_id,
        )
        return 0 if row is None else int(row["attempts"])

    async def mark_failed(self, tenant_id: str, document_id: str, reason: str) -> None:
        """Mark failed and drop any chunks, staged ones included (one atomic batch): a failed document
        has no partial index, and no run in flight (its cursor is cleared).

        It also gives up its claim on its content hash, so the same file may be uploaded again.
        """
        await self._db.batch(
            [
                statement(
                    self._db,
                    "DELETE FROM chunks WHERE document_id = ?1 AND tenant_id = ?2",
                    document_id,
                    tenant_id,
                ),
                statement(
                    self._db,
                    "DELETE FROM staged_chunks WHERE document_id = ?1 AND tenant_id = ?2",
                    document_id,
                    tenant_id,
                ),
                statement(
                    self._db,
                    "UPDATE documents SET status = 'failed', error = ?3, chunk_count = 0, updated_at = ?4,"
                    " dedup_sha256 = NULL, stage = 'failed', reindex_requested_at = NULL,"
                    " ingest_cursor = NULL"
                    " WHERE id = ?1 AND tenant_id = ?2",
                    document_id,
                    tenant_id,
                    reason[:1000],
                    now_iso(),
                ),
            ]
        )

    async def chunk_ids(self, tenant_id: str, document_id: str) -> list[str]:
        rows = await fetch_all(
            self._db,
            "SELECT id FROM chunks WHERE document_id = ?1 AND tenant_id = ?2 ORDER BY seq",
            document_id,
            tenant_id,
        )
        return [r["id"] for r in rows]

    async def replace_chunks(
        self, tenant_id: str, document_id: str, title: str, chunks: Sequence[NewChunk]
    ) -> None:
        """Swap in a document's chunks and mark it ready, atomically (a redelivery leaves one copy)."""
        now = now_iso()
        batch = [
            statement(
                self._db,
                "DELETE FROM chunks WHERE document_id = ?1 AND tenant_id = ?2",
                document_id,
                tenant_id,
            )
        ]
        for chunk in chunks:
            batch.append(
                statement(
                    self._db,
                    "INSERT INTO chunks (id, tenant_id, document_id, seq, text, title, char_start, char_end,"
                    " token_count, created_at, page_start, page_end, section, row_start, row_end)"
                    " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)",
                    chunk.id,
                    tenant_id,
                    document_id,
                    chunk.seq,
                    chunk.text,
                    title,
                    chunk.char_start,
                    chunk.char_end,
                    chunk.token_count,
                    now,
                    chunk.page_start,
                    chunk.page_end,
                    chunk.section,
                    chunk.row_start,
                    chunk.row_end,
                )
            )
        batch.append(
            statement(
                self._db,
                "UPDATE documents SET status = 'ready', error = NULL, chunk_count = ?3, updated_at = ?4,"
                " stage = 'ready', progress_done = ?3, progress_total = ?3, reindex_requested_at = NULL"
                " WHERE id = ?1 AND tenant_id = ?2",
                document_id,
                tenant_id,
                len(chunks),
                now,
            )
        )
        await self._db.batch(batch)

    async def chunks_by_ids(self, tenant_id: str, chunk_ids: Sequence[str]) -> dict[str, ChunkRow]:
        """The tenant's chunks among ``chunk_ids`` (others' ids are silently absent)."""
        found: dict[str, ChunkRow] = {}
        for start in range(0, len(chunk_ids), 90):  # stay under D1's 100 bound parameters
            part = list(chunk_ids[start : start + 90])
            rows = await fetch_all(
                self._db,
                f"SELECT c.id, c.document_id, c.seq, c.text, d.title, {_PROVENANCE_COLUMNS} FROM chunks c"
                f" JOIN documents d ON d.id = c.document_id"
                f" WHERE c.tenant_id = ?1 AND c.id IN ({placeholders(part, start=2)})",
                tenant_id,
                *part,
            )
            for r in rows:
                provenance = {name: r[name] for name in _PROVENANCE if r[name] is not None}
                found[r["id"]] = ChunkRow(
                    r["id"], r["document_id"], r["seq"], r["text"], r["title"], provenance
                )
        return found
