"""The ingest worker's cron trigger (``[triggers] crons`` in its wrangler config): URL re-sync.

``entry.py``'s ``scheduled`` handler calls :func:`handle_scheduled` with the trigger's cron
expression and scheduled time. Each tick picks up to ``URL_RESYNC_BATCH`` URL documents (every
tenant's, each with its own interval) whose next check has come, claims each (moving its next check
one interval on, so a slow re-sync is never queued twice) and queues one ingest message per document
with ``resync_requested_at`` set; the consumer then fetches conditionally and re-ingests only a
changed page (:mod:`ingest.url_source`). The fetching happens in the consumer, not here, so it gets
the queue's retries and one Worker invocation per batch, and a tick stays a few D1 queries long.
Sources left over past the batch are picked by the next tick (they stay due).
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from edgerag.contracts.ingest import IngestMessage
from edgerag.settings import load_settings
from edgerag.store.d1 import now_iso
from edgerag.store.documents import DocumentStore
from edgerag.store.url_sources import UrlSourceStore
from edgerag.url_fetch import UrlSourceSettings

__all__ = ["handle_scheduled"]

log = logging.getLogger("edgerag.ingest.cron")


async def handle_scheduled(env: Any, cron: str, scheduled_time_ms: float) -> int:
    """Queue the re-sync of every due URL source (up to the batch); returns how many were queued."""
    now = datetime.fromtimestamp(float(scheduled_time_ms) / 1000, UTC)
    settings = load_settings(UrlSourceSettings, env)
    sources = UrlSourceStore(env.DB)
    documents = DocumentStore(env.DB)
    queued = 0
    for source in await sources.due(now, settings.resync_batch):
        if not await sources.claim(source, now):
            continue  # another tick got there first
        document = await documents.find(source.tenant_id, source.document_id)
        if document is None:
            continue
        message = IngestMessage(
            tenant_id=document.tenant_id,
            document_id=document.id,
            r2_key=document.r2_key,
            content_type=document.content_type,
            sha256=document.content_sha256,
            enqueued_at=now_iso(),
        )
        await env.INGEST_QUEUE.send(message.to_body(), contentType="json")
        queued += 1
    log.info("cron %r: queued %d URL re-sync(s)", cron, queued)
    return queued
