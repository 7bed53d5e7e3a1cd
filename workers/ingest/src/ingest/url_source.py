"""URL documents in the ingest consumer: fetch the page before the pipeline runs, and only when needed.

:func:`prepare_url_source` runs before :func:`ingest.pipeline.ingest_document` for every message. For
an uploaded file it changes nothing. For a URL document (a row in ``url_sources``, never something
the message says) it fetches the page (:func:`edgerag.url_fetch.fetch_url`, conditional on the last
good fetch's ETag/Last-Modified) when the document was never fetched or the cron queued a re-sync:

- first fetch: the page goes to the document's R2 key and its type, size and hash onto the row, then
  the pipeline ingests it; a failure (timeout, too large, refused address, redirect loop, 4xx/5xx,
  a type no extractor reads) raises :class:`~ingest.pipeline.PermanentIngestError`, so the document
  ends ``failed`` with that reason;
- re-sync: a 304, or a body with the hash the document already has, only moves ``last_checked_at``
  (nothing is re-embedded); a changed body replaces the R2 object and is re-ingested as a reindex,
  so the document stays ready and searchable on its old version until the new one is swapped in; a
  failure is recorded as ``last_error`` and the last good version stays.

Any other message for a URL document (a reindex, or the redelivery of an attempt whose fetch was
already stored) ingests what R2 holds, with the type and hash the row records.
"""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote, urlsplit

from edgerag.contracts.ingest import IngestMessage
from edgerag.extract import ExtractorRegistry, default_registry, normalize_content_type
from edgerag.ports import HttpClient
from edgerag.settings import load_settings
from edgerag.sniff import detect_type
from edgerag.store.d1 import now_iso, run
from edgerag.store.documents import DocumentRecord, DocumentStore
from edgerag.store.url_sources import UrlSourceStore
from edgerag.url_fetch import FetchedPage, UrlFetchError, UrlSourceSettings, fetch_url

from ingest.pipeline import PermanentIngestError
from ingest.settings import IngestSettings

__all__ = ["prepare_url_source"]

_CHARSET = re.compile(r"charset=\"?([A-Za-z0-9][A-Za-z0-9_.:-]{0,39})\"?", re.IGNORECASE)
_GENERIC = frozenset({"", "application/octet-stream", "binary/octet-stream"})


async def prepare_url_source(
    env: Any, settings: IngestSettings, http: HttpClient | None, job: IngestMessage
) -> IngestMessage | None:
    """The message to ingest with, or None when there is nothing to ingest (unchanged, or failed re-sync)."""
    sources = UrlSourceStore(env.DB)
    source = await sources.find(job.tenant_id, job.document_id)
    if source is None:
        return job  # an uploaded file
    document = await DocumentStore(env.DB).find(job.tenant_id, job.document_id)
    if document is None:
        return job  # deleted while queued: the pipeline skips it
    first = source.last_fetched_at is None
    if not first and source.resync_requested_at is None:
        return _message(document, job)
    now = datetime.now(UTC)
    registry = default_registry(settings.format_limits())
    try:
        if http is None:
            raise UrlFetchError("this worker has no outbound HTTP client")
        limits = load_settings(UrlSourceSettings, env).limits()
        page = await fetch_url(
            http,
            source.url,
            limits,
            etag=None if first else source.etag,
            last_modified=None if first else source.last_modified,
        )
        content_type = None if page.status == 304 else _content_type(page, registry)
    except UrlFetchError as exc:
        if first:
            raise PermanentIngestError(f"could not fetch {_shown(source.url)}: {exc}") from exc
        await sources.record_error(source, f"re-sync failed: {exc}", now)
        return None
    sha256 = hashlib.sha256(page.body).hexdigest()
    if not first and (page.status == 304 or sha256 == document.content_sha256):
        await sources.record_fetch(
            source, etag=page.etag, last_modified=page.last_modified, changed=False, now=now
        )
        # A re-sync whose earlier attempt stored the new page but did not finish ingesting it.
        return None if document.reindex_requested_at is None else _message(document, job)
    assert content_type is not None  # a 200
    await _store_page(env, document, page.body, content_type, sha256, reindex=not first)
    await sources.record_fetch(
        source, etag=page.etag, last_modified=page.last_modified, changed=True, now=now
    )
    return IngestMessage(
        tenant_id=document.tenant_id,
        document_id=document.id,
        r2_key=document.r2_key,
        content_type=content_type,
        sha256=sha256,
        enqueued_at=job.enqueued_at,
    )


def _message(document: DocumentRecord, job: IngestMessage) -> IngestMessage:
    """What R2 holds for the document, as its row records it (not what an older message said)."""
    return job.model_copy(update={"content_type": document.content_type, "sha256": document.content_sha256})


def _content_type(page: FetchedPage, registry: ExtractorRegistry) -> str:
    """The extractable type of the page (the server's, else what its bytes or path say), with its
    charset when it declared one; a type no extractor reads is a fetch failure."""
    declared = page.content_type or ""
    base = normalize_content_type(declared)
    if base in _GENERIC:
        name = unquote(urlsplit(page.url).path).rsplit("/", 1)[-1] or None
        detected = detect_type(page.body, name)
        # No type said and none evident from the bytes or the path's extension: text is what is left.
        sniffed = detected.media_type if detected is not None else registry.sniff(name)
        base = normalize_content_type(sniffed or "text/plain")
    if base not in registry.content_types:
        raise UrlFetchError(
            f"the page is {base or 'of no declared type'}, which cannot be ingested "
            f"(supported: {', '.join(sorted(registry.content_types))})"
        )
    charset = _CHARSET.search(declared)
    return f"{base}; charset={charset.group(1).lower()}" if charset else base


async def _store_page(
    env: Any, document: DocumentRecord, body: bytes, content_type: str, sha256: str, *, reindex: bool
) -> None:
    await env.FILES.put(
        document.r2_key,
        body,
        httpMetadata={"contentType": content_type},
        customMetadata={"tenant_id": document.tenant_id, "document_id": document.id},
    )
    await run(
        env.DB,
        "UPDATE documents SET content_type = ?3, size_bytes = ?4, content_sha256 = ?5, updated_at = ?6"
        " WHERE id = ?1 AND tenant_id = ?2",
        document.id,
        document.tenant_id,
        content_type,
        len(body),
        sha256,
        now_iso(),
    )
    if reindex:  # a ready document is rebuilt in place, searchable on its old version meanwhile
        await DocumentStore(env.DB).request_reindex(document.tenant_id, [document.id])


def _shown(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}{parts.path}"
