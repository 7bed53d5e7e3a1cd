"""URL documents: ``POST /v1/documents`` with ``{"url": ...}``, and ``GET /v1/documents/{id}/source``.

The gateway never fetches the page. It checks the URL (:func:`edgerag.url_policy.check_url`: http(s)
to a public address; a refusal is a 422 with nothing stored and no traffic anywhere), records a
``queued`` document with its source (``url_sources``, migrations/0012) and queues it; the ingest
worker fetches it through its outbound HTTP port within ``URL_FETCH_*`` limits
(:mod:`ingest.url_source`) and ingests it like an upload. With ``resync.interval_hours`` the ingest
worker's cron re-fetches it conditionally after each interval and re-ingests only a changed page.

URL documents are not deduplicated by content (two sources may serve the same page today and differ
tomorrow). Deleting the document deletes its source row (foreign-key cascade) with everything else.

To accept another field: add it to :class:`UrlDocument` and store it in :func:`create_url_document`.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from edgerag.budgets import admit_storage
from edgerag.ids import new_id
from edgerag.intake import ingest_message, r2_key_of
from edgerag.metadata import validate_metadata
from edgerag.problems import NotFound, ServiceUnavailable, ValidationFailed
from edgerag.settings import load_settings
from edgerag.store.documents import DocumentRecord, DocumentStore
from edgerag.store.tenants import Principal
from edgerag.store.url_sources import EMPTY_SHA256, PENDING_CONTENT_TYPE, UrlSourceStore
from edgerag.url_fetch import UrlSourceSettings
from edgerag.url_policy import MAX_URL_LENGTH, UrlRefused, check_url
from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from gateway.deps import READER, get_env
from gateway.openapi import problems
from gateway.paging import id_path

__all__ = ["UrlDocument", "UrlSourceView", "create_url_document", "read_url_document", "router"]

log = logging.getLogger("edgerag.gateway")
router = APIRouter(prefix="/v1/documents", tags=["documents"])
# The same convertor gateway.routes.documents registers (that module imports this one).
_DOCUMENT_ID_PARAM = id_path(
    "document_id", "doc_[0-9a-z]{26}", "a document id (doc_ + 26 characters); any other path is a 404"
)


class Resync(BaseModel):
    model_config = ConfigDict(extra="forbid")
    interval_hours: int = Field(ge=1, le=24 * 90, description="re-fetch after this many hours (1 to 2160)")


class UrlDocument(BaseModel):
    """A document whose source is a web page (the ingest worker fetches it)."""

    model_config = ConfigDict(extra="forbid")
    url: str = Field(
        min_length=1,
        max_length=MAX_URL_LENGTH,
        description="http or https URL of a public host (private, loopback, link-local and metadata "
        "addresses are refused with 422)",
    )
    title: str | None = Field(None, min_length=1, max_length=500, description="default: the URL")
    metadata: dict[str, Any] = Field(default_factory=dict, description="as for uploads")
    resync: Resync | None = Field(None, description="scheduled re-sync; omitted: fetched once")


class UrlSourceView(BaseModel):
    url: str
    resync: Resync | None
    etag: str | None = Field(description="of the last good fetch (sent as If-None-Match on re-sync)")
    last_modified: str | None = Field(description="of the last good fetch (sent as If-Modified-Since)")
    last_fetched_at: str | None = Field(description="when the stored version was fetched")
    last_checked_at: str | None = Field(description="when the page was last asked for (304s included)")
    last_error: str | None = Field(description="why the last re-sync failed; the last good version stays")
    next_check_at: str | None = Field(description="when the re-sync cron picks it next (null: never)")


def read_url_document(body: bytes) -> UrlDocument | None:
    """The URL document a JSON upload body describes, or None when it is not one (no ``url`` key)."""
    if b'"url"' not in body:  # cheap: most JSON uploads are text documents
        return None
    try:
        parsed = json.loads(body)
    except ValueError:
        return None  # the text-document parser reports it
    if not isinstance(parsed, dict) or "url" not in parsed:
        return None
    try:
        return UrlDocument.model_validate(parsed)
    except ValidationError as exc:
        raise ValidationFailed.from_pydantic(exc) from exc


async def create_url_document(env: Any, tenant_id: str, doc: UrlDocument) -> DocumentRecord:
    """Check the URL, record the document and its source, queue it; all or nothing."""
    settings = load_settings(UrlSourceSettings, env)
    try:
        url = check_url(doc.url.strip(), settings.allow_hosts)
    except UrlRefused as exc:
        raise ValidationFailed(
            f"the URL cannot be fetched: {exc}",
            errors=[{"loc": ["body", "url"], "msg": str(exc), "type": "url_refused"}],
        ) from exc
    metadata = validate_metadata(doc.metadata)
    # Its size is unknown until the page is fetched (then it counts): it needs room for a byte at least.
    await admit_storage(env.DB, tenant_id, documents=1, size_bytes=1)
    documents = DocumentStore(env.DB)
    document_id = new_id("doc")
    record = await documents.create(
        document_id=document_id,
        tenant_id=tenant_id,
        title=doc.title or url[:500],
        filename=None,
        content_type=PENDING_CONTENT_TYPE,
        size_bytes=0,
        r2_key=r2_key_of(tenant_id, document_id),
        sha256=EMPTY_SHA256,
        metadata=metadata,
    )
    assert record is not None  # no dedup claim, so nothing to collide with
    try:
        await UrlSourceStore(env.DB).create(
            tenant_id, document_id, url, doc.resync.interval_hours if doc.resync else None
        )
        await env.INGEST_QUEUE.send(ingest_message(record).to_body(), contentType="json")
    except Exception as exc:
        log.exception("could not record or queue URL document %s", document_id)
        await documents.delete(tenant_id, document_id)  # the source row goes with it (cascade)
        raise ServiceUnavailable(
            "the URL document could not be queued; nothing was stored, try again"
        ) from exc
    return record


@router.get("/{document_id:document_id}/source", responses=problems(401, 403, 404, 429))
async def get_source(
    document_id: str = _DOCUMENT_ID_PARAM,
    principal: Principal = Depends(READER),
    env: Any = Depends(get_env),
) -> UrlSourceView:
    """A URL document's source and re-sync state; 404 for an uploaded file (it has no source URL)."""
    source = await UrlSourceStore(env.DB).find(principal.tenant_id, document_id)
    if source is None:
        await DocumentStore(env.DB).get(principal.tenant_id, document_id)  # 404 if no such document
        raise NotFound(f"document {document_id} was uploaded, not fetched from a URL")
    return UrlSourceView.model_validate(source.to_public())
