"""After a load run: did every accepted upload end where it should, with exactly one copy of each chunk?

Runs once the stack process has stopped, against its state directory, through the same binding
emulators the stack used (``open_stack`` builds the envs; no consumer is started, nothing is served):

- per accepted document: its row, status and error, the chunk rows (count, distinct ``seq``, range), the
  FTS rows joined to them and the vectors under the ids ingestion derives (``edgerag.ids.chunk_id``);
  ``expected`` is what the chunker makes of the text the client sent, with the ingest worker's settings;
- every document of the run's tenants: one the client never got a 2xx for (an upload answered with an
  injected 500) must also end ``ready`` or ``failed``, never stay ``queued``/``processing``;
- chat messages still ``pending`` (an answer whose final write failed; the next read of the session
  marks them ``interrupted`` after ``CHAT_PENDING_TIMEOUT_S``).
"""

from __future__ import annotations

import asyncio
import tomllib
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgerag.chunking import ChunkingSettings, iter_chunks
from edgerag.ids import chunk_id
from edgerag_local.runtime.stack import open_stack

__all__ = ["Audit", "DocumentCheck", "audit", "expected_chunks"]

ROOT = Path(__file__).resolve().parents[1]
TERMINAL = ("ready", "failed")


def _ingest_chunking() -> ChunkingSettings:
    variables = tomllib.loads((ROOT / "workers" / "ingest" / "wrangler.toml").read_text())["vars"]
    return ChunkingSettings(
        max_tokens=int(variables["CHUNK_MAX_TOKENS"]), overlap_tokens=int(variables["CHUNK_OVERLAP_TOKENS"])
    )


_CHUNKING = _ingest_chunking()


def expected_chunks(text: str) -> int:
    """How many chunks ingestion should make of ``text`` (a plain-text upload)."""
    return sum(1 for _ in iter_chunks(text, _CHUNKING))


@dataclass
class DocumentCheck:
    document_id: str
    status: str | None  # None: no row at all
    error: str | None
    expected: int
    chunk_count: int
    rows: int
    distinct_seqs: int
    fts_rows: int
    vectors: int

    @property
    def duplicated(self) -> int:
        """Chunk rows, FTS rows or vectors beyond one per position."""
        return (self.rows - self.distinct_seqs) + max(0, self.fts_rows - self.distinct_seqs)

    @property
    def consistent(self) -> bool:
        """A ready document has exactly its expected chunks everywhere; a failed one has none."""
        if self.status == "ready":
            counts = {self.chunk_count, self.rows, self.distinct_seqs, self.fts_rows, self.vectors}
            return counts == {self.expected}
        if self.status == "failed":
            return self.rows == self.fts_rows == self.vectors == 0
        return False


@dataclass
class Audit:
    documents: list[DocumentCheck]
    tenant_statuses: Counter[str]  # every document of the run's tenants, by status
    unaccepted_stuck: int  # documents the client got no 2xx for that are not ready/failed
    pending_messages: int
    failures: list[str] = field(default_factory=list)

    @property
    def accepted(self) -> int:
        return len(self.documents)

    def count(self, status: str) -> int:
        return sum(1 for d in self.documents if d.status == status)

    @property
    def lost(self) -> int:
        """Accepted uploads that are gone or never reached ready/failed."""
        return sum(1 for d in self.documents if d.status not in TERMINAL)

    @property
    def duplicated(self) -> int:
        return sum(d.duplicated for d in self.documents)

    @property
    def inconsistent(self) -> int:
        return sum(1 for d in self.documents if d.status in TERMINAL and not d.consistent)

    @property
    def failed_reasons(self) -> Counter[str]:
        return Counter(_reason(d.error) for d in self.documents if d.status == "failed")

    def to_dict(self) -> dict[str, Any]:
        return {
            "accepted": self.accepted,
            "ready": self.count("ready"),
            "failed": self.count("failed"),
            "failed_without_reason": sum(1 for d in self.documents if d.status == "failed" and not d.error),
            "failed_reasons": dict(self.failed_reasons),
            "lost": self.lost,
            "duplicated_chunks": self.duplicated,
            "inconsistent_index": self.inconsistent,
            "tenant_documents": dict(self.tenant_statuses),
            "unaccepted_stuck": self.unaccepted_stuck,
            "pending_chat_messages": self.pending_messages,
            "examples": self.failures[:10],
        }


def _reason(error: str | None) -> str:
    if not error:
        return "(no reason)"
    return "gave up after the queue's retries" if "gave up" in error else error[:80]


async def _check(env: Any, document_id: str, expected: int) -> DocumentCheck:
    db = env.DB
    row = (
        await db.prepare("SELECT status, error, chunk_count FROM documents WHERE id = ?1")
        .bind(document_id)
        .first()
    )
    counts = (
        await db.prepare("SELECT COUNT(*) AS n, COUNT(DISTINCT seq) AS d FROM chunks WHERE document_id = ?1")
        .bind(document_id)
        .first()
    )
    fts = (
        await db.prepare(
            "SELECT COUNT(*) AS n FROM chunks_fts f JOIN chunks c ON c.rowid = f.rowid"
            " WHERE c.document_id = ?1"
        )
        .bind(document_id)
        .first("n")
    )
    # Ids ingestion derives for every position it could have written (a stray extra vector shows too).
    ids = [chunk_id(document_id, seq) for seq in range(max(expected, int(counts["n"] or 0)) + 5)]
    vectors = await env.VECTORS.getByIds(ids)
    return DocumentCheck(
        document_id=document_id,
        status=None if row is None else str(row["status"]),
        error=None if row is None else row["error"],
        expected=expected,
        chunk_count=0 if row is None else int(row["chunk_count"] or 0),
        rows=int(counts["n"] or 0),
        distinct_seqs=int(counts["d"] or 0),
        fts_rows=int(fts or 0),
        vectors=len(vectors),
    )


async def _audit(state: Path, accepted: Mapping[str, int], tenants: Iterable[str]) -> Audit:
    stack = open_stack(ROOT, state_dir=state)
    try:
        env = stack.workers["ingest"].env
        checks = [await _check(env, doc, expected) for doc, expected in accepted.items()]
        tenant_ids = sorted(set(tenants))
        statuses: Counter[str] = Counter()
        stuck = 0
        for tenant in tenant_ids:
            rows = (
                await env.DB.prepare("SELECT id, status FROM documents WHERE tenant_id = ?1")
                .bind(tenant)
                .all()
            )
            for row in rows["results"]:
                statuses[str(row["status"])] += 1
                if row["id"] not in accepted and row["status"] not in TERMINAL:
                    stuck += 1
        pending = 0
        for tenant in tenant_ids:
            pending += int(
                await env.DB.prepare(
                    "SELECT COUNT(*) AS n FROM chat_messages WHERE tenant_id = ?1 AND status = 'pending'"
                )
                .bind(tenant)
                .first("n")
                or 0
            )
        result = Audit(checks, statuses, stuck, pending)
        for check in checks:
            if check.status not in TERMINAL or check.duplicated or not check.consistent:
                result.failures.append(
                    f"{check.document_id}: status={check.status} expected={check.expected} "
                    f"chunk_count={check.chunk_count} rows={check.rows} seqs={check.distinct_seqs} "
                    f"fts={check.fts_rows} vectors={check.vectors} error={check.error!r}"
                )
        return result
    finally:
        await stack.stop()
        stack.close()


def audit(state: Path, accepted: Mapping[str, int], tenants: Iterable[str]) -> Audit:
    """``accepted``: document id -> expected chunk count; ``tenants``: the run's tenant ids."""
    return asyncio.run(_audit(state, accepted, tenants))
