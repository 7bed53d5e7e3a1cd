"""Documents: upload (multipart file or JSON text, one or a batch), list, get, delete.

Upload order keeps "nothing half-written": the original goes to R2, then the D1 row (``queued``), then
the ingest message; if a later step fails the earlier ones are undone before the error is returned.
Delete removes vectors, then the R2 object, then the D1 row (chunks and FTS rows cascade), so a
failure part-way leaves the document visible and a repeated DELETE finishes the job.

What is accepted, and what is refused before anything is stored, is :mod:`gateway.uploads`.

Duplicates: uploading bytes the tenant already has (same SHA-256, a document that has not failed)
stores nothing and answers 200 with that document and ``"duplicate": true``; ``?allow_duplicate=true``
stores a copy anyway. D1's unique index settles two identical uploads racing each other (one
document; the other request gets it as its duplicate). Another tenant's identical file is never a
duplicate. In a batch, each item is judged against the tenant's documents and the items before it.

Lifecycle (the routes at the end of this module): ``PATCH`` sets a document's title and merges its
metadata (:mod:`edgerag.metadata`: JSON Merge Patch, ``null`` removes a key); ``POST .../reindex``
re-embeds one ready document, ``POST /v1/documents/reindex`` all of the tenant's, without taking them
out of search (see :mod:`ingest.pipeline`); ``stage``, ``progress`` and ``timings_ms`` say how far
ingestion got.
"""

from __future__ import annotations

import logging
import re
from typing import Any, Literal

from edgerag.contracts.ingest import IngestMessage
from edgerag.ids import chunk_id
from edgerag.intake import StoredDocument, store_and_enqueue
from edgerag.metadata import merge_metadata
from edgerag.problems import Conflict, NotFound, ServiceUnavailable
from edgerag.store.d1 import now_iso
from edgerag.store.documents import DocumentRecord, DocumentStore
from edgerag.store.tenants import Principal
from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from gateway.deps import ADMIN, READER, WRITER, get_env, get_settings
from gateway.openapi import problems
from gateway.paging import CURSOR_QUERY, decode_cursor, encode_cursor, id_path
from gateway.settings import GatewaySettings
from gateway.uploads import BATCH_BODY, UPLOAD_BODY, Upload, base_type, read_batch, read_upload
from gateway.url_documents import create_url_document, read_url_document

# What edgerag.ids.new_id("doc") makes. Routing on it keeps "/v1/documents/batch" from also matching
# "/{document_id}" (so a wrong method there answers 405 with Allow: POST, not GET and DELETE too).
DOCUMENT_ID = "doc_[0-9a-z]{26}"


_DOCUMENT_ID_PARAM = id_path(
    "document_id", DOCUMENT_ID, "a document id (doc_ + 26 characters); any other path is a 404"
)

router = APIRouter(prefix="/v1/documents", tags=["documents"])
log = logging.getLogger("edgerag.gateway")

Status = Literal["queued", "processing", "ready", "failed"]
Stage = Literal["queued", "extracting", "chunking", "embedding", "indexing", "ready", "failed"]


class Progress(BaseModel):
    done: int = Field(ge=0, description="units of the current stage done (chunks embedded, vectors written)")
    total: int = Field(ge=0, description="units the current stage has (0 while it is unknown)")


class Document(BaseModel):
    id: str = Field(description="doc_ + 26 characters, time-sortable")
    title: str
    filename: str | None = Field(description="the uploaded file's name (null for JSON text)")
    content_type: str = Field(
        description="what the text is extracted as, with the declared charset if any "
        "(text/plain; charset=shift_jis)"
    )
    size_bytes: int = Field(ge=0, description="size of the stored original")
    sha256: str = Field(description="SHA-256 of the stored original, hex (the duplicate check's key)")
    status: Status = Field(description="queued -> processing -> ready | failed")
    error: str | None = Field(description="why ingestion failed (failed only)")
    chunk_count: int = Field(ge=0, description="indexed passages (ready only)")
    metadata: dict[str, Any] = Field(description="the client's key/value pairs")
    created_at: str = Field(description="ISO-8601 UTC, e.g. 2026-01-02T03:04:05.678Z")
    updated_at: str
    stage: Stage = Field(
        description="queued -> extracting -> chunking -> embedding -> indexing -> ready | failed; a "
        "reindex runs the stages again while status stays ready"
    )
    progress: Progress
    timings_ms: dict[str, float] = Field(
        description="milliseconds per finished stage of the latest run (extracting_ms, ..., total_ms)"
    )
    reindex_requested_at: str | None = Field(description="set while a requested reindex has not finished")

    @classmethod
    def of(cls, record: DocumentRecord) -> Document:
        return cls.model_validate(record.to_public())


class UploadAccepted(BaseModel):
    document: Document
    status_url: str = Field(description="poll it until status is ready or failed")
    duplicate: bool = Field(
        description="true: the tenant already had these bytes; this is that document and nothing new "
        "was stored (send ?allow_duplicate=true to store a copy)"
    )


class BatchAccepted(BaseModel):
    documents: list[Document] = Field(
        description="one per item of the request, in order; a duplicate's entry is the document it "
        "duplicates (an existing one, or an earlier item of the same batch)"
    )
    duplicates: list[int] = Field(description="indexes of the items that were duplicates")


class DocumentList(BaseModel):
    documents: list[Document] = Field(description="newest first")
    next_cursor: str | None = Field(description="pass as ?cursor= for the next page; null on the last")


_ALLOW_DUPLICATE = Query(
    False, description="store the upload even if the tenant already has a document with the same bytes"
)
_DUPLICATE = {"description": "A duplicate: the existing document; nothing was stored"}


async def _store_and_enqueue(
    env: Any, tenant: str, uploads: list[Upload], allow_duplicate: bool
) -> list[StoredDocument]:
    return await store_and_enqueue(
        env.DB, env.FILES, env.INGEST_QUEUE, tenant, uploads, allow_duplicate=allow_duplicate
    )


@router.post(
    "",
    status_code=202,
    responses={
        200: {"model": UploadAccepted, **_DUPLICATE},
        **problems(400, 401, 402, 403, 409, 413, 415, 422, 429, 503),
    },
    openapi_extra=UPLOAD_BODY,
)
async def upload_document(
    request: Request,
    response: Response,
    allow_duplicate: bool = _ALLOW_DUPLICATE,
    principal: Principal = Depends(WRITER),
    env: Any = Depends(get_env),
    settings: GatewaySettings = Depends(get_settings),
) -> UploadAccepted:
    """Upload one document: a multipart file, JSON text, or JSON ``{"url": ...}`` (a web page the ingest
    worker fetches, optionally re-synced: :mod:`gateway.url_documents`). 202: queued; 200: a duplicate.

    Refused before anything is stored: a file whose bytes are not text (415, naming what it is), a
    type the extractors do not know (415), text that does not decode in its declared charset, UTF-8 by
    default (422). 402: the tenant's storage limits (documents, bytes) leave no room
    (:mod:`edgerag.budgets`).
    """
    if base_type(request.headers.get("content-type")) == "application/json":
        url_document = read_url_document(await request.body())
        if url_document is not None:  # {"url": ...}: the ingest worker fetches it (gateway.url_documents)
            record = await create_url_document(env, principal.tenant_id, url_document)
            return UploadAccepted(
                document=Document.of(record), status_url=f"/v1/documents/{record.id}", duplicate=False
            )
    upload = await read_upload(request, settings.max_upload_bytes)
    (stored,) = await _store_and_enqueue(env, principal.tenant_id, [upload], allow_duplicate)
    if stored.message is None:
        response.status_code = 200
    return UploadAccepted(
        document=Document.of(stored.record),
        status_url=f"/v1/documents/{stored.record.id}",
        duplicate=stored.message is None,
    )


@router.post(
    "/batch",
    status_code=202,
    responses={
        200: {"model": BatchAccepted, "description": "Every item was a duplicate; nothing was stored"},
        **problems(401, 402, 403, 409, 413, 415, 422, 429, 503),
    },
    openapi_extra=BATCH_BODY,
)
async def upload_documents(
    request: Request,
    response: Response,
    allow_duplicate: bool = _ALLOW_DUPLICATE,
    principal: Principal = Depends(WRITER),
    env: Any = Depends(get_env),
    settings: GatewaySettings = Depends(get_settings),
) -> BatchAccepted:
    """Up to 100 JSON text documents in one request (bulk ingestion); all are accepted or none."""
    uploads = await read_batch(request, settings.max_upload_bytes)
    results = await _store_and_enqueue(env, principal.tenant_id, uploads, allow_duplicate)
    # An item identical to an earlier one finds it through D1 like any other duplicate.
    if all(r.message is None for r in results):
        response.status_code = 200
    return BatchAccepted(
        documents=[Document.of(r.record) for r in results],
        duplicates=[index for index, r in enumerate(results) if r.message is None],
    )


# A cursor is base64url("<created_at>|<document id>") of the last item of the previous page.
# Matched with fullmatch: "$" would also accept a trailing newline.
_CURSOR_SHAPE = re.compile(rf"(\d{{4}}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{{3}}Z)\|({DOCUMENT_ID})")


@router.get("", responses=problems(400, 401, 403, 422, 429))
async def list_documents(
    limit: int = Query(20, ge=1, le=100),
    cursor: str | None = CURSOR_QUERY,
    status: Status | None = Query(None, description="only documents in this state"),
    principal: Principal = Depends(READER),
    env: Any = Depends(get_env),
) -> DocumentList:
    after = None
    if cursor:
        match = decode_cursor(cursor, _CURSOR_SHAPE)
        after = (match.group(1), match.group(2))  # (created_at, id)
    page = await DocumentStore(env.DB).list_page(
        principal.tenant_id, limit=limit + 1, after=after, status=status
    )
    more = len(page) > limit
    page = page[:limit]
    next_cursor = encode_cursor(f"{page[-1].created_at}|{page[-1].id}") if more and page else None
    return DocumentList(documents=[Document.of(d) for d in page], next_cursor=next_cursor)


@router.get("/{document_id:document_id}", responses=problems(401, 403, 404, 429))
async def get_document(
    document_id: str = _DOCUMENT_ID_PARAM, principal: Principal = Depends(READER), env: Any = Depends(get_env)
) -> Document:
    return Document.of(await DocumentStore(env.DB).get(principal.tenant_id, document_id))


@router.delete("/{document_id:document_id}", status_code=204, responses=problems(401, 403, 404, 429))
async def delete_document(
    document_id: str = _DOCUMENT_ID_PARAM, principal: Principal = Depends(WRITER), env: Any = Depends(get_env)
) -> Response:
    store = DocumentStore(env.DB)
    record = await store.get(principal.tenant_id, document_id)
    ids: set[str] = set(await store.chunk_ids(principal.tenant_id, document_id))
    # vector_reach covers what a sliced ingestion in flight has written too (its cursor's mark).
    ids.update(chunk_id(document_id, seq) for seq in range(record.vector_reach))
    ordered = sorted(ids)
    for start in range(0, len(ordered), 1000):
        await env.VECTORS.deleteByIds(ordered[start : start + 1000])
    await env.FILES.delete(record.r2_key)
    await store.delete(principal.tenant_id, document_id)
    return Response(status_code=204)


# --- Lifecycle: PATCH and reindex -----------------------------------------------------------------


class DocumentPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    title: str | None = Field(None, min_length=1, max_length=500)
    metadata: dict[str, Any] | None = Field(
        None,
        description="merged into the document's metadata (JSON Merge Patch): a key set to null is "
        "removed; flat keys, string/number/boolean values, at most 32 keys and 8 KB",
    )


class ReindexAccepted(BaseModel):
    queued: int = Field(ge=0, description="documents queued for re-embedding")


def _reindex_message(record: DocumentRecord) -> IngestMessage:
    return IngestMessage(
        tenant_id=record.tenant_id,
        document_id=record.id,
        r2_key=record.r2_key,
        content_type=record.content_type,
        sha256=record.content_sha256,
        enqueued_at=now_iso(),
    )


async def _send(env: Any, messages: list[IngestMessage]) -> None:
    try:
        if len(messages) == 1:
            await env.INGEST_QUEUE.send(messages[0].to_body(), contentType="json")
        elif messages:
            await env.INGEST_QUEUE.sendBatch([{"body": m.to_body(), "contentType": "json"} for m in messages])
    except Exception as exc:
        # The flag stays set, which is harmless: the documents stay ready, and a retry re-sends.
        log.exception("could not enqueue %d reindex message(s)", len(messages))
        raise ServiceUnavailable("the ingestion queue is unavailable; try the reindex again") from exc


@router.patch("/{document_id:document_id}", responses=problems(401, 403, 404, 422, 429))
async def patch_document(
    body: DocumentPatch,
    document_id: str = _DOCUMENT_ID_PARAM,
    principal: Principal = Depends(WRITER),
    env: Any = Depends(get_env),
) -> Document:
    """Set the title and/or merge metadata (JSON Merge Patch: ``{}`` changes nothing and answers the
    document as it is). The chunks' keyword index follows the new title at once; their vectors keep
    the old title in their embedded text until the document is reindexed."""
    store = DocumentStore(env.DB)
    record = await store.get(principal.tenant_id, document_id)
    if body.title is None and not body.metadata:
        return Document.of(record)
    metadata = record.metadata if body.metadata is None else merge_metadata(record.metadata, body.metadata)
    title = record.title if body.title is None else body.title
    if not await store.update_details(principal.tenant_id, document_id, title=title, metadata=metadata):
        raise NotFound(f"no document {document_id}")  # deleted meanwhile
    return Document.of(await store.get(principal.tenant_id, document_id))


@router.post(
    "/{document_id:document_id}/reindex", status_code=202, responses=problems(401, 403, 404, 409, 429, 503)
)
async def reindex_document(
    document_id: str = _DOCUMENT_ID_PARAM, principal: Principal = Depends(WRITER), env: Any = Depends(get_env)
) -> Document:
    """Re-extract, re-chunk and re-embed a ready document (e.g. after a model change); it stays
    searchable on its current index until the new one is swapped in. 409 unless it is ready."""
    store = DocumentStore(env.DB)
    record = await store.get(principal.tenant_id, document_id)
    if record.status != "ready":
        raise Conflict(f"the document is {record.status}; only a ready document can be reindexed")
    await store.request_reindex(principal.tenant_id, [document_id])
    await _send(env, [_reindex_message(record)])
    return Document.of(await store.get(principal.tenant_id, document_id))


@router.post("/reindex", status_code=202, responses=problems(401, 403, 429, 503))
async def reindex_tenant(
    principal: Principal = Depends(ADMIN), env: Any = Depends(get_env)
) -> ReindexAccepted:
    """Reindex every ready document of the tenant (admin scope): each keeps answering searches from
    its current chunks and vectors until its new ones replace them, so search never goes empty."""
    store = DocumentStore(env.DB)
    queued, after = 0, ""
    while page := await store.reindexable(principal.tenant_id, after=after, limit=100):
        await store.request_reindex(principal.tenant_id, [d.id for d in page])
        await _send(env, [_reindex_message(d) for d in page])  # sendBatch takes at most 100
        queued += len(page)
        after = page[-1].id
    return ReindexAccepted(queued=queued)
