"""The ingest queue consumer: one message per uploaded document.

Outcomes per message (delivery is at-least-once, so every path is idempotent):

- ingested -> ``ack``;
- permanent failure (unsupported type, undecodable or missing file) -> document ``failed``, ``ack``;
- transient failure (AI, Vectorize or D1 error) -> the error is recorded on the document and the
  message is retried with the queue's retry delay; after ``max_retries`` the platform moves it to the
  dead-letter queue;
- a message from the dead-letter queue -> document ``failed`` with its partial index removed, ``ack``;
- a malformed message -> logged and acked (retrying cannot fix it).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from edgerag.contracts.ingest import IngestMessage
from edgerag.convert import to_py
from edgerag.settings import load_settings, var
from edgerag.store.d1 import run
from pydantic import ValidationError

from ingest.pipeline import PermanentIngestError, discard_document_index, ingest_document
from ingest.settings import IngestSettings

__all__ = ["handle_batch"]

log = logging.getLogger("edgerag.ingest")


@dataclass(frozen=True)
class _Routing:
    dead_letter_queue: str = var("DEAD_LETTER_QUEUE", str, "")


async def handle_batch(batch: Any, env: Any) -> None:
    settings = load_settings(IngestSettings, env)
    routing = load_settings(_Routing, env)
    from_dead_letters = bool(routing.dead_letter_queue) and batch.queue == routing.dead_letter_queue
    for message in batch.messages:
        try:
            job = IngestMessage.from_body(to_py(message.body))
        except (ValidationError, TypeError, ValueError) as exc:
            log.error("dropping malformed ingest message %s: %s", message.id, exc)
            message.ack()
            continue
        if from_dead_letters:
            reason = f"ingestion gave up after {message.attempts} delivery attempts on the ingest queue"
            await discard_document_index(env, job.tenant_id, job.document_id, reason)
            message.ack()
            continue
        try:
            await ingest_document(env, settings, job)
        except PermanentIngestError as exc:
            await discard_document_index(env, job.tenant_id, job.document_id, str(exc))
            message.ack()
        except Exception as exc:
            log.warning(
                "ingest of %s failed (attempt %s), will retry: %s", job.document_id, message.attempts, exc
            )
            await _note_error(env, job, f"attempt {message.attempts} failed: {exc}")
            message.retry()
        else:
            message.ack()


async def _note_error(env: Any, job: IngestMessage, error: str) -> None:
    try:
        await run(
            env.DB,
            "UPDATE documents SET error = ?3 WHERE id = ?1 AND tenant_id = ?2",
            job.document_id,
            job.tenant_id,
            error[:1000],
        )
    except Exception:
        log.exception("could not record the ingest error for %s", job.document_id)
