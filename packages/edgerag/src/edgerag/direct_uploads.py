"""Direct-to-R2 uploads: the pending upload between a presigned PUT URL and a queued document.

The flow (routes in ``gateway.routes.uploads``):

1. :meth:`PendingUploadStore.create` records what the client declared (size, SHA-256, type, title,
   metadata) under the document id the file will have; the gateway signs a PUT URL for the final R2
   key with that size and type bound in (:mod:`edgerag.presign`).
2. The client PUTs the bytes to R2 itself.
3. :func:`complete_upload` checks the object (present, the declared size, the declared SHA-256 —
   hashed while streaming it from R2, never holding the file), then creates the document row
   (``queued``, with the same duplicate rule as every other upload, :mod:`edgerag.intake`), queues
   it, and only then drops the pending row. Completing twice answers with the same document.
4. :func:`sweep_pending_uploads` (the cron trigger) deletes pending uploads never completed, their
   R2 object included, once their URL has expired and a grace period has passed.

Nothing half-written: a wrong object (size or hash) is deleted and the pending row kept, so the
client may PUT again while the URL lasts; a queue failure removes the document row and keeps the
object and the pending row, so completing again retries; a pending row whose document exists (a
crash between queueing and dropping the row) is dropped by the sweep without touching the object.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from edgerag.intake import StoredDocument, ingest_message, r2_key_of
from edgerag.ports import D1Database
from edgerag.problems import Conflict, NotFound, ServiceUnavailable, ValidationFailed
from edgerag.store.d1 import fetch_all, fetch_one, run
from edgerag.store.documents import DocumentStore
from edgerag.streams import iter_bytes

__all__ = [
    "PendingUpload",
    "PendingUploadStore",
    "complete_upload",
    "iso",
    "sweep_pending_uploads",
]

log = logging.getLogger("edgerag.uploads")
_SWEEP_BATCH = 100


def iso(moment: datetime) -> str:
    """The schema's timestamp text (UTC, milliseconds, ``Z``)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


@dataclass(frozen=True)
class PendingUpload:
    document_id: str
    tenant_id: str
    r2_key: str
    title: str
    filename: str | None
    content_type: str  # what the document will be extracted as
    signed_type: str  # the Content-Type header the PUT must carry (bound into its signature)
    size_bytes: int
    sha256: str
    metadata: dict[str, Any]
    expires_at: str
    created_at: str

    def to_public(self) -> dict[str, Any]:
        """The API's pending document (no storage keys)."""
        return {
            "id": self.document_id,
            "title": self.title,
            "filename": self.filename,
            "content_type": self.content_type,
            "size_bytes": self.size_bytes,
            "sha256": self.sha256,
            "status": "pending",
            "metadata": self.metadata,
            "created_at": self.created_at,
            "expires_at": self.expires_at,
        }


def _pending(row: dict[str, Any]) -> PendingUpload:
    return PendingUpload(
        document_id=row["document_id"],
        tenant_id=row["tenant_id"],
        r2_key=row["r2_key"],
        title=row["title"],
        filename=row["filename"],
        content_type=row["content_type"],
        signed_type=row["signed_type"],
        size_bytes=int(row["size_bytes"]),
        sha256=row["sha256"],
        metadata=json.loads(row["metadata"] or "{}"),
        expires_at=row["expires_at"],
        created_at=row["created_at"],
    )


class PendingUploadStore:
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
        signed_type: str,
        size_bytes: int,
        sha256: str,
        metadata: dict[str, Any],
        now: datetime,
        expires_at: datetime,
    ) -> PendingUpload:
        await run(
            self._db,
            "INSERT INTO pending_uploads (document_id, tenant_id, r2_key, title, filename, content_type,"
            " signed_type, size_bytes, sha256, metadata, expires_at, created_at)"
            " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
            document_id,
            tenant_id,
            r2_key_of(tenant_id, document_id),
            title,
            filename,
            content_type,
            signed_type,
            size_bytes,
            sha256,
            json.dumps(metadata, separators=(",", ":")),
            iso(expires_at),
            iso(now),
        )
        found = await self.find(tenant_id, document_id)
        assert found is not None  # just inserted
        return found

    async def find(self, tenant_id: str, document_id: str) -> PendingUpload | None:
        row = await fetch_one(
            self._db,
            "SELECT * FROM pending_uploads WHERE document_id = ?1 AND tenant_id = ?2",
            document_id,
            tenant_id,
        )
        return None if row is None else _pending(row)

    async def delete(self, tenant_id: str, document_id: str) -> None:
        await run(
            self._db,
            "DELETE FROM pending_uploads WHERE document_id = ?1 AND tenant_id = ?2",
            document_id,
            tenant_id,
        )

    async def expired(self, before: datetime, limit: int = _SWEEP_BATCH) -> list[PendingUpload]:
        """Pending uploads of every tenant whose URL expired before ``before``, oldest first."""
        rows = await fetch_all(
            self._db,
            "SELECT * FROM pending_uploads WHERE expires_at < ?1 ORDER BY expires_at LIMIT ?2",
            iso(before),
            limit,
        )
        return [_pending(r) for r in rows]


async def _stored_sha256(files: Any, key: str) -> tuple[int, str] | None:
    """(size, SHA-256 hex) of the object, read as a stream; None if it is absent."""
    obj = await files.get(key)
    if obj is None:
        return None
    digest = hashlib.sha256()
    size = 0
    async for chunk in iter_bytes(obj.body):
        digest.update(chunk)
        size += len(chunk)
    return size, digest.hexdigest()


def _mismatch(detail: str, field: str) -> ValidationFailed:
    error = {"loc": ["body", field], "msg": detail, "type": "upload_mismatch"}
    return ValidationFailed(detail, errors=[error])


async def complete_upload(
    db: D1Database, files: Any, queue: Any, tenant_id: str, document_id: str
) -> StoredDocument:
    """Check the uploaded object and queue its document; see the module docstring.

    Returns the new document with its message, or (``message=None``) an existing document: this one
    (already completed) or the tenant's live copy of the same bytes (a duplicate: the object is
    deleted). Raises 404 (no such pending upload), 409 (nothing uploaded yet), 422 (wrong size or
    hash; the object is deleted) or 503 (queue down; complete again).
    """
    documents = DocumentStore(db)
    pending_store = PendingUploadStore(db)
    existing = await documents.find(tenant_id, document_id)
    if existing is not None:  # completed already (a retry, or a crash before the row was dropped)
        await pending_store.delete(tenant_id, document_id)
        return StoredDocument(existing, None)
    pending = await pending_store.find(tenant_id, document_id)
    if pending is None:
        raise NotFound(f"no pending upload {document_id}")
    head = await files.head(pending.r2_key)
    if head is None:
        raise Conflict("nothing has been uploaded yet: PUT the file to the upload URL, then complete")
    if int(head.size) != pending.size_bytes:
        await files.delete(pending.r2_key)
        raise _mismatch(
            f"the uploaded file is {int(head.size)} bytes, not the declared {pending.size_bytes}; "
            "it was deleted: PUT the right file again",
            "size_bytes",
        )
    measured = await _stored_sha256(files, pending.r2_key)
    if measured is None:
        raise Conflict("the uploaded file disappeared while it was being checked; PUT it again")
    if measured != (pending.size_bytes, pending.sha256):
        await files.delete(pending.r2_key)
        raise _mismatch(
            f"the uploaded file's SHA-256 is {measured[1]}, not the declared {pending.sha256}; "
            "it was deleted: PUT the right file again",
            "sha256",
        )
    record = await documents.create(
        document_id=pending.document_id,
        tenant_id=tenant_id,
        title=pending.title,
        filename=pending.filename,
        content_type=pending.content_type,
        size_bytes=pending.size_bytes,
        r2_key=pending.r2_key,
        sha256=pending.sha256,
        metadata=pending.metadata,
        dedup=True,
    )
    if record is None:  # the tenant got the same bytes another way meanwhile
        await files.delete(pending.r2_key)
        await pending_store.delete(tenant_id, document_id)
        duplicate = await documents.find_duplicate(tenant_id, pending.sha256)
        if duplicate is None:  # that copy failed or went away since: let the client try again
            raise Conflict("an identical upload was being stored at the same time; upload again")
        return StoredDocument(duplicate, None)
    message = ingest_message(record)
    try:
        await queue.send(message.to_body(), contentType="json")
    except Exception as exc:
        log.exception("could not enqueue completed upload %s", document_id)
        await documents.delete(tenant_id, document_id)
        raise ServiceUnavailable("the ingestion queue is unavailable; complete the upload again") from exc
    await pending_store.delete(tenant_id, document_id)
    return StoredDocument(record, message)


async def sweep_pending_uploads(db: D1Database, files: Any, *, now: datetime, grace_seconds: int) -> int:
    """Delete pending uploads whose URL expired more than ``grace_seconds`` ago; returns how many.

    The R2 object goes first, then the row, so an interrupted sweep is finished by the next one. A
    row whose document exists was completed (the crash came after queueing): only the row goes.
    """
    pending_store = PendingUploadStore(db)
    documents = DocumentStore(db)
    swept = 0
    cutoff = now - timedelta(seconds=grace_seconds)
    while batch := await pending_store.expired(cutoff):
        for pending in batch:
            if await documents.find(pending.tenant_id, pending.document_id) is None:
                await files.delete(pending.r2_key)
            await pending_store.delete(pending.tenant_id, pending.document_id)
            swept += 1
        if len(batch) < _SWEEP_BATCH:
            break
    if swept:
        log.info("swept %d pending upload(s) never completed", swept)
    return swept
