"""The D1 side of a sliced ingestion run: its cursor on the document row and its staged chunks.

A run moves a document's ``ingest_cursor`` (migrations/0013) from one committed slice to the next.
Every write here is a compare-and-set on the cursor the caller started from: the slice's staged
chunks and the cursor's new value go in one batch, and each statement of the batch carries the guard
``ingest_cursor = <the cursor the slice started from>``. A batch is one transaction, so either the
slice is committed whole and the cursor moves, or (a duplicate delivery got there first, the
document was deleted, failed or restarted) nothing is written at all. Callers learn which from the
return value and stop when they lost.

:meth:`StagingStore.finish` swaps the staged chunks into ``chunks`` (and so into the FTS index, by
its triggers), deletes them from staging and marks the document ``ready``, all in the last slice's
batch: search sees the previous chunks (a reindex) or none (a new document) until that instant, and
the complete new set after it.

Rows are written several per statement (``_ROWS_PER_STATEMENT``, bounded by D1's 100 bound
parameters), so a slice of 500 chunks is ~72 statements rather than 500: D1 counts every statement
of a batch against the invocation's query limit.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from edgerag.ports import D1Database, D1PreparedStatement
from edgerag.store.d1 import fetch_one, now_iso, statement
from edgerag.store.documents import NewChunk

__all__ = ["StagingStore"]

_COLUMNS = (
    "tenant_id, document_id, seq, id, text, char_start, char_end, token_count,"
    " page_start, page_end, section, row_start, row_end"
)
_PER_ROW = 13
_GUARD_PARAMS = 3  # ?1 document, ?2 tenant, ?3 the cursor the slice started from
_ROWS_PER_STATEMENT = (100 - _GUARD_PARAMS) // _PER_ROW  # 7
_GUARD = "EXISTS (SELECT 1 FROM documents WHERE id = ?1 AND tenant_id = ?2 AND ingest_cursor = ?3)"


class StagingStore:
    def __init__(self, db: D1Database) -> None:
        self._db = db

    async def begin(self, tenant_id: str, document_id: str, cursor: str) -> None:
        """Start a run from nothing: drop whatever an abandoned run staged, then set the cursor."""
        await self._db.batch(
            [
                statement(
                    self._db,
                    "DELETE FROM staged_chunks WHERE document_id = ?1 AND tenant_id = ?2",
                    document_id,
                    tenant_id,
                ),
                statement(
                    self._db,
                    "UPDATE documents SET ingest_cursor = ?3 WHERE id = ?1 AND tenant_id = ?2",
                    document_id,
                    tenant_id,
                    cursor,
                ),
            ]
        )

    async def move(self, tenant_id: str, document_id: str, expected: str, cursor: str) -> bool:
        """Replace the cursor ``expected`` by ``cursor`` with nothing else; False if it was not it."""
        results = await self._db.batch([self._set_cursor(tenant_id, document_id, expected, cursor)])
        return _changed(results[-1])

    async def commit(
        self, tenant_id: str, document_id: str, expected: str, cursor: str, chunks: Sequence[NewChunk]
    ) -> bool:
        """Stage ``chunks`` and move the cursor from ``expected`` to ``cursor``, atomically."""
        batch = self._stage(tenant_id, document_id, expected, chunks)
        batch.append(self._set_cursor(tenant_id, document_id, expected, cursor))
        return _changed((await self._db.batch(batch))[-1])

    async def finish(
        self,
        tenant_id: str,
        document_id: str,
        expected: str,
        chunks: Sequence[NewChunk],
        total: int,
        timings: str,
    ) -> bool:
        """Stage the last ``chunks``, swap all ``total`` staged chunks in for the document's current
        ones and mark it ``ready`` (cursor cleared), in one batch guarded by ``expected``."""
        now = now_iso()
        params = (document_id, tenant_id, expected)
        batch = self._stage(tenant_id, document_id, expected, chunks)
        batch += [
            statement(
                self._db,
                f"DELETE FROM chunks WHERE document_id = ?1 AND tenant_id = ?2 AND {_GUARD}",
                *params,
            ),
            statement(
                self._db,
                "INSERT INTO chunks (id, tenant_id, document_id, seq, text, title, char_start, char_end,"
                " token_count, created_at, page_start, page_end, section, row_start, row_end)"
                " SELECT s.id, s.tenant_id, s.document_id, s.seq, s.text, d.title, s.char_start, s.char_end,"
                " s.token_count, ?4, s.page_start, s.page_end, s.section, s.row_start, s.row_end"
                " FROM staged_chunks s JOIN documents d ON d.id = s.document_id AND d.tenant_id = s.tenant_id"
                " WHERE s.document_id = ?1 AND s.tenant_id = ?2 AND d.ingest_cursor = ?3 ORDER BY s.seq",
                *params,
                now,
            ),
            statement(
                self._db,
                f"DELETE FROM staged_chunks WHERE document_id = ?1 AND tenant_id = ?2 AND {_GUARD}",
                *params,
            ),
            statement(
                self._db,
                "UPDATE documents SET status = 'ready', error = NULL, chunk_count = ?4, updated_at = ?5,"
                " stage = 'ready', progress_done = ?4, progress_total = ?4, timings = ?6,"
                " reindex_requested_at = NULL, ingest_cursor = NULL"
                " WHERE id = ?1 AND tenant_id = ?2 AND ingest_cursor = ?3",
                *params,
                total,
                now,
                timings,
            ),
        ]
        return _changed((await self._db.batch(batch))[-1])

    async def staged_count(self, tenant_id: str, document_id: str) -> int:
        row = await fetch_one(
            self._db,
            "SELECT COUNT(*) AS n FROM staged_chunks WHERE document_id = ?1 AND tenant_id = ?2",
            document_id,
            tenant_id,
        )
        return int(row["n"]) if row else 0

    def _set_cursor(
        self, tenant_id: str, document_id: str, expected: str, cursor: str
    ) -> D1PreparedStatement:
        return statement(
            self._db,
            "UPDATE documents SET ingest_cursor = ?4 WHERE id = ?1 AND tenant_id = ?2 AND ingest_cursor = ?3",
            document_id,
            tenant_id,
            expected,
            cursor,
        )

    def _stage(
        self, tenant_id: str, document_id: str, expected: str, chunks: Sequence[NewChunk]
    ) -> list[D1PreparedStatement]:
        batch: list[D1PreparedStatement] = []
        for start in range(0, len(chunks), _ROWS_PER_STATEMENT):
            part = chunks[start : start + _ROWS_PER_STATEMENT]
            rows: list[str] = []
            values: list[Any] = []
            for index, chunk in enumerate(part):
                first = _GUARD_PARAMS + index * _PER_ROW + 1
                rows.append("(" + ", ".join(f"?{n}" for n in range(first, first + _PER_ROW)) + ")")
                values += [
                    tenant_id,
                    document_id,
                    chunk.seq,
                    chunk.id,
                    chunk.text,
                    chunk.char_start,
                    chunk.char_end,
                    chunk.token_count,
                    chunk.page_start,
                    chunk.page_end,
                    chunk.section,
                    chunk.row_start,
                    chunk.row_end,
                ]
            # (document, seq) is the key; OR REPLACE makes a row the guard admits win over any stale one.
            batch.append(
                statement(
                    self._db,
                    f"INSERT OR REPLACE INTO staged_chunks ({_COLUMNS})"
                    f" SELECT * FROM (VALUES {', '.join(rows)}) WHERE {_GUARD}",
                    document_id,
                    tenant_id,
                    expected,
                    *values,
                )
            )
        return batch


def _changed(result: Any) -> bool:
    return int(result["meta"]["changes"]) > 0
