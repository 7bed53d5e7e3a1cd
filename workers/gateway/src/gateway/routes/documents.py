"""Documents: upload (multipart file or JSON text), list, get, delete.

Upload order keeps "nothing half-written": the original goes to R2, then the D1 row (``queued``), then
the ingest message; if a later step fails the earlier ones are undone before the error is returned.
Delete removes vectors, then the R2 object, then the D1 row (chunks and FTS rows cascade), so a
failure part-way leaves the document visible and a repeated DELETE finishes the job.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import logging
from dataclasses import dataclass
from typing import Any, Literal

from edgerag.contracts.ingest import IngestMessage
from edgerag.extract import UnsupportedContentType, default_registry
from edgerag.ids import chunk_id, new_id
from edgerag.problems import (
    BadRequest,
    PayloadTooLarge,
    ServiceUnavailable,
    UnsupportedMediaType,
    ValidationFailed,
)
from edgerag.store.d1 import now_iso
from edgerag.store.documents import DocumentRecord, DocumentStore
from edgerag.store.tenants import Principal
from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.datastructures import UploadFile

from gateway.deps import READER, WRITER, get_env, get_settings
from gateway.settings import GatewaySettings

router = APIRouter(prefix="/v1/documents", tags=["documents"])
log = logging.getLogger("edgerag.gateway")

_MULTIPART_OVERHEAD = 64 * 1024  # boundaries and form fields around the file itself


class TextDocument(BaseModel):
    """A document sent as JSON text."""

    model_config = ConfigDict(extra="forbid")
    title: str = Field(min_length=1, max_length=500)
    text: str = Field(min_length=1)
    content_type: Literal["text/plain", "text/markdown"] = "text/plain"
    metadata: dict[str, str | int | float | bool] = Field(default_factory=dict, max_length=32)


def _base_type(content_type: str | None) -> str:
    return (content_type or "").split(";", 1)[0].strip().lower()


def _document_type(declared: str | None, filename: str | None) -> str:
    """The extractable content type (aliases such as text/x-markdown resolved, untyped files sniffed)."""
    try:
        return default_registry().resolve(declared, filename)
    except UnsupportedContentType as exc:
        raise UnsupportedMediaType(str(exc)) from exc


async def _read_upload(request: Request, limit: int) -> tuple[bytes, str, str | None, str, dict[str, Any]]:
    """(data, title, filename, content_type, metadata) from a multipart or JSON request."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit + _MULTIPART_OVERHEAD:
        raise PayloadTooLarge(f"the upload is {declared} bytes; the limit is {limit} bytes")
    kind = _base_type(request.headers.get("content-type"))
    if kind == "application/json":
        try:
            doc = TextDocument.model_validate_json(await request.body())
        except ValidationError as exc:
            raise ValidationFailed.from_pydantic(exc) from exc
        data = doc.text.encode("utf-8")
        return data, doc.title, None, doc.content_type, dict(doc.metadata)
    if kind == "multipart/form-data":
        async with request.form(max_files=1, max_fields=8, max_part_size=limit + 1) as form:
            upload = form.get("file")
            if not isinstance(upload, UploadFile):
                raise BadRequest("multipart uploads need a 'file' part")
            data = await upload.read(limit + 1)
            content_type = _document_type(upload.content_type, upload.filename)
            filename = upload.filename
            title_field = form.get("title")
            raw_metadata = form.get("metadata")
        title = (
            title_field if isinstance(title_field, str) and title_field.strip() else (filename or "untitled")
        )
        metadata: dict[str, Any] = {}
        if isinstance(raw_metadata, str) and raw_metadata.strip():
            try:
                metadata = json.loads(raw_metadata)
            except json.JSONDecodeError as exc:
                raise BadRequest(f"'metadata' must be a JSON object: {exc}") from exc
            if not isinstance(metadata, dict):
                raise BadRequest("'metadata' must be a JSON object")
        return data, title.strip()[:500], filename, content_type, metadata
    raise UnsupportedMediaType("send multipart/form-data with a 'file' part, or application/json text")


@dataclass(frozen=True)
class _Upload:
    data: bytes
    title: str
    filename: str | None
    content_type: str
    metadata: dict[str, Any]


def _check_size(upload: _Upload, limit: int, where: str = "the document") -> None:
    if len(upload.data) > limit:
        raise PayloadTooLarge(f"{where} exceeds the {limit}-byte limit")
    if not upload.data.strip():
        raise ValidationFailed(
            f"{where} is empty", errors=[{"loc": ["body"], "msg": "empty", "type": "empty"}]
        )


async def _store(env: Any, tenant: str, upload: _Upload) -> tuple[DocumentRecord, IngestMessage]:
    """R2 object, then the D1 row; undoes the object if the row fails."""
    document_id = new_id("doc")
    r2_key = f"tenants/{tenant}/documents/{document_id}/original"
    sha256 = hashlib.sha256(upload.data).hexdigest()
    await env.FILES.put(
        r2_key,
        upload.data,
        httpMetadata={"contentType": upload.content_type},
        customMetadata={"tenant_id": tenant, "document_id": document_id},
    )
    try:
        record = await DocumentStore(env.DB).create(
            document_id=document_id,
            tenant_id=tenant,
            title=upload.title,
            filename=upload.filename,
            content_type=upload.content_type,
            size_bytes=len(upload.data),
            r2_key=r2_key,
            sha256=sha256,
            metadata=upload.metadata,
        )
    except Exception:
        await env.FILES.delete(r2_key)
        raise
    message = IngestMessage(
        v=1,
        tenant_id=tenant,
        document_id=document_id,
        r2_key=r2_key,
        content_type=upload.content_type,
        sha256=sha256,
        enqueued_at=now_iso(),
    )
    return record, message


async def _undo(env: Any, tenant: str, records: list[DocumentRecord]) -> None:
    store = DocumentStore(env.DB)
    for record in records:
        await store.delete(tenant, record.id)
        await env.FILES.delete(record.r2_key)


async def _store_and_enqueue(env: Any, tenant: str, uploads: list[_Upload]) -> list[DocumentRecord]:
    """Store every upload and enqueue one ingest message each; all or nothing."""
    stored: list[tuple[DocumentRecord, IngestMessage]] = []
    try:
        for upload in uploads:
            stored.append(await _store(env, tenant, upload))
    except Exception:
        await _undo(env, tenant, [record for record, _ in stored])
        raise
    try:
        if len(stored) == 1:
            await env.INGEST_QUEUE.send(stored[0][1].to_body(), contentType="json")
        else:
            await env.INGEST_QUEUE.sendBatch(
                [{"body": message.to_body(), "contentType": "json"} for _, message in stored]
            )
    except Exception as exc:
        log.exception("could not enqueue %d document(s)", len(stored))
        await _undo(env, tenant, [record for record, _ in stored])
        raise ServiceUnavailable("the ingestion queue is unavailable; nothing was stored, try again") from exc
    return [record for record, _ in stored]


@router.post("", status_code=202)
async def upload_document(
    request: Request,
    principal: Principal = Depends(WRITER),
    env: Any = Depends(get_env),
    settings: GatewaySettings = Depends(get_settings),
) -> dict[str, Any]:
    upload = _Upload(*await _read_upload(request, settings.max_upload_bytes))
    _check_size(upload, settings.max_upload_bytes)
    (record,) = await _store_and_enqueue(env, principal.tenant_id, [upload])
    return {"document": record.to_public(), "status_url": f"/v1/documents/{record.id}"}


MAX_BATCH_DOCUMENTS = 100  # one queue sendBatch holds at most 100 messages


class DocumentBatch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    documents: list[TextDocument] = Field(min_length=1, max_length=MAX_BATCH_DOCUMENTS)


@router.post("/batch", status_code=202)
async def upload_documents(
    request: Request,
    principal: Principal = Depends(WRITER),
    env: Any = Depends(get_env),
    settings: GatewaySettings = Depends(get_settings),
) -> dict[str, Any]:
    """Up to 100 JSON text documents in one request (bulk ingestion); all are accepted or none."""
    if _base_type(request.headers.get("content-type")) != "application/json":
        raise UnsupportedMediaType('send application/json: {"documents": [{"title", "text"}, ...]}')
    declared = request.headers.get("content-length")
    limit = settings.max_upload_bytes * 2
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"a batch request may carry at most {limit} bytes")
    try:
        batch = DocumentBatch.model_validate_json(await request.body())
    except ValidationError as exc:
        raise ValidationFailed.from_pydantic(exc) from exc
    uploads = [
        _Upload(doc.text.encode("utf-8"), doc.title, None, doc.content_type, dict(doc.metadata))
        for doc in batch.documents
    ]
    for index, upload in enumerate(uploads):
        _check_size(upload, settings.max_upload_bytes, f"documents[{index}]")
    records = await _store_and_enqueue(env, principal.tenant_id, uploads)
    return {"documents": [r.to_public() for r in records]}


def _encode_cursor(created_at: str, document_id: str) -> str:
    return base64.urlsafe_b64encode(f"{created_at}|{document_id}".encode()).decode().rstrip("=")


def _decode_cursor(cursor: str) -> tuple[str, str]:
    try:
        created_at, _, document_id = (
            base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode().partition("|")
        )
    except (binascii.Error, UnicodeDecodeError) as exc:
        raise BadRequest("the cursor is not one this API returned") from exc
    if not created_at or not document_id:
        raise BadRequest("the cursor is not one this API returned")
    return created_at, document_id


@router.get("")
async def list_documents(
    limit: int = Query(20, ge=1, le=100),
    cursor: str | None = Query(None, max_length=200),
    status: Literal["queued", "processing", "ready", "failed"] | None = None,
    principal: Principal = Depends(READER),
    env: Any = Depends(get_env),
) -> dict[str, Any]:
    after = _decode_cursor(cursor) if cursor else None
    page = await DocumentStore(env.DB).list_page(
        principal.tenant_id, limit=limit + 1, after=after, status=status
    )
    more = len(page) > limit
    page = page[:limit]
    next_cursor = _encode_cursor(page[-1].created_at, page[-1].id) if more and page else None
    return {"documents": [d.to_public() for d in page], "next_cursor": next_cursor}


@router.get("/{document_id}")
async def get_document(
    document_id: str, principal: Principal = Depends(READER), env: Any = Depends(get_env)
) -> dict[str, Any]:
    return (await DocumentStore(env.DB).get(principal.tenant_id, document_id)).to_public()


@router.delete("/{document_id}", status_code=204)
async def delete_document(
    document_id: str, principal: Principal = Depends(WRITER), env: Any = Depends(get_env)
) -> Response:
    store = DocumentStore(env.DB)
    record = await store.get(principal.tenant_id, document_id)
    ids: set[str] = set(await store.chunk_ids(principal.tenant_id, document_id))
    ids.update(chunk_id(document_id, seq) for seq in range(record.chunk_count))
    ordered = sorted(ids)
    for start in range(0, len(ordered), 1000):
        await env.VECTORS.deleteByIds(ordered[start : start + 1000])
    await env.FILES.delete(record.r2_key)
    await store.delete(principal.tenant_id, document_id)
    return Response(status_code=204)
