"""Taking documents in: store the original, record it, queue it for ingestion — all or nothing.

One implementation for every way a document enters the system: the gateway's upload routes (a file,
JSON text, a batch) and dedalus's ``ingest_document`` tool both call :func:`store_and_enqueue`, so a
document a model files is stored exactly like one a client uploads.

Order keeps "nothing half-written": the original goes to R2, then the D1 row (``queued``), then the
ingest message; if a later step fails the earlier ones are undone before the error is raised.

Duplicates (unless ``allow_duplicate``): bytes the tenant already has (same SHA-256, a document that
has not failed) store nothing, and the result carries that document with ``message=None``. D1's
unique index settles two identical uploads racing each other (migrations/0002). In a batch, each item
is judged against the tenant's documents and the items before it.

What may be stored (types, charsets, sizes) is the caller's to check first: this module stores bytes.
It does check the tenant's storage limits (:func:`edgerag.budgets.admit_storage`), for each new
document before its bytes go to R2, so every way in is held to them: a refusal
(:class:`~edgerag.budgets.StorageLimitReached`, 402) undoes the batch's earlier items like any failure.
A duplicate stores nothing and is answered even at the limit.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from edgerag.budgets import admit_storage
from edgerag.contracts.ingest import IngestMessage
from edgerag.ids import new_id
from edgerag.ports import D1Database
from edgerag.problems import Conflict, ServiceUnavailable
from edgerag.store.d1 import now_iso
from edgerag.store.documents import DocumentRecord, DocumentStore

__all__ = ["NewDocument", "StoredDocument", "ingest_message", "r2_key_of", "store_and_enqueue"]

log = logging.getLogger("edgerag.intake")
_RACE_RETRIES = 3


class NewDocument(Protocol):
    """What is stored: the bytes and how to describe them (the gateway's ``Upload`` is one)."""

    @property
    def data(self) -> bytes: ...
    @property
    def title(self) -> str: ...
    @property
    def filename(self) -> str | None: ...
    @property
    def content_type(self) -> str: ...  # the stored one, with "; charset=..." when one was declared
    @property
    def metadata(self) -> dict[str, Any]: ...


@dataclass(frozen=True)
class StoredDocument:
    record: DocumentRecord
    message: IngestMessage | None  # None: a duplicate, nothing was stored or enqueued

    @property
    def duplicate(self) -> bool:
        return self.message is None


def r2_key_of(tenant_id: str, document_id: str) -> str:
    return f"tenants/{tenant_id}/documents/{document_id}/original"


def ingest_message(record: DocumentRecord) -> IngestMessage:
    """The queue message that asks the ingest worker to process a stored document."""
    return IngestMessage(
        v=1,
        tenant_id=record.tenant_id,
        document_id=record.id,
        r2_key=record.r2_key,
        content_type=record.content_type,
        sha256=record.content_sha256,
        enqueued_at=now_iso(),
    )


async def _store(
    db: D1Database, files: Any, tenant: str, doc: NewDocument, sha256: str, dedup: bool
) -> StoredDocument:
    """R2 object, then the D1 row; undoes the object if the row fails or loses a duplicate race."""
    store = DocumentStore(db)
    for _ in range(_RACE_RETRIES):  # a lost race whose winner then failed (or was deleted) may be retried
        if dedup and (existing := await store.find_duplicate(tenant, sha256)) is not None:
            return StoredDocument(existing, None)
        # The counters include the batch's earlier items (triggers), so each item is judged after them.
        await admit_storage(db, tenant, documents=1, size_bytes=len(doc.data))
        document_id = new_id("doc")
        r2_key = r2_key_of(tenant, document_id)
        await files.put(
            r2_key,
            doc.data,
            httpMetadata={"contentType": doc.content_type},
            customMetadata={"tenant_id": tenant, "document_id": document_id},
        )
        try:
            record = await store.create(
                document_id=document_id,
                tenant_id=tenant,
                title=doc.title,
                filename=doc.filename,
                content_type=doc.content_type,
                size_bytes=len(doc.data),
                r2_key=r2_key,
                sha256=sha256,
                metadata=doc.metadata,
                dedup=dedup,
            )
        except Exception:
            await files.delete(r2_key)
            raise
        if record is None:  # an identical upload committed first: answer with its document
            await files.delete(r2_key)
            continue
        return StoredDocument(record, ingest_message(record))
    raise Conflict("identical uploads kept colliding; try again")


async def _undo(db: D1Database, files: Any, tenant: str, records: list[DocumentRecord]) -> None:
    store = DocumentStore(db)
    for record in records:
        await store.delete(tenant, record.id)
        await files.delete(record.r2_key)


async def store_and_enqueue(
    db: D1Database,
    files: Any,  # the R2Bucket port
    queue: Any,  # the ingest Queue port
    tenant_id: str,
    documents: Sequence[NewDocument],
    *,
    allow_duplicate: bool = False,
) -> list[StoredDocument]:
    """Store every document (or find its duplicate) and enqueue one message per new one; all or
    nothing. A queue failure undoes everything and raises :class:`~edgerag.problems.ServiceUnavailable`."""
    results: list[StoredDocument] = []
    try:
        for doc in documents:
            sha256 = hashlib.sha256(doc.data).hexdigest()
            results.append(await _store(db, files, tenant_id, doc, sha256, dedup=not allow_duplicate))
    except Exception:
        await _undo(db, files, tenant_id, [r.record for r in results if r.message is not None])
        raise
    messages = [r.message for r in results if r.message is not None]
    try:
        if len(messages) == 1:
            await queue.send(messages[0].to_body(), contentType="json")
        elif messages:
            await queue.sendBatch(
                [{"body": message.to_body(), "contentType": "json"} for message in messages]
            )
    except Exception as exc:
        log.exception("could not enqueue %d document(s)", len(messages))
        await _undo(db, files, tenant_id, [r.record for r in results if r.message is not None])
        raise ServiceUnavailable("the ingestion queue is unavailable; nothing was stored, try again") from exc
    return results
