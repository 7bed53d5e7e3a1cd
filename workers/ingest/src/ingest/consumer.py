"""The ingest queue consumer: one message per uploaded document.

Outcomes per message (delivery is at-least-once, so every path is idempotent):

- ingested -> ``ack``;
- permanent failure (unsupported type, undecodable or missing file, over the processing budget) ->
  document ``failed``, ``ack``;
- transient failure (AI, Vectorize or D1 error) -> the error is recorded on the document and the
  message is retried with the queue's retry delay; after ``max_retries`` the platform moves it to the
  dead-letter queue;
- a message from the dead-letter queue -> document ``failed`` with its partial index removed and a
  reason (the last recorded error, or that no attempt finished), ``ack``. A message whose deliveries
  keep dying with the process (out of memory, CPU limit) gets there too: the queue counts a delivery
  when it hands the batch out, not when it is settled;
- a malformed message -> logged and acked (retrying cannot fix it);
- a URL document: its page is fetched first when due (:mod:`ingest.url_source`); a re-sync that finds
  nothing new, or fails to fetch (recorded on the source), is acked without re-ingesting.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from edgerag.contracts.ingest import IngestMessage
from edgerag.convert import to_py
from edgerag.ids import new_id
from edgerag.observability import Observation, annotate, finish, observe, sane_request_id, span
from edgerag.observability.instrument import instrument_env
from edgerag.ports import HttpClient
from edgerag.settings import load_settings, var
from edgerag.store.d1 import run
from edgerag.store.documents import DocumentStore
from pydantic import ValidationError

from ingest.pipeline import PermanentIngestError, discard_document_index, ingest_document
from ingest.settings import IngestSettings
from ingest.url_source import prepare_url_source

__all__ = ["handle_batch"]

log = logging.getLogger("edgerag.ingest")


@dataclass(frozen=True)
class _Routing:
    dead_letter_queue: str = var("DEAD_LETTER_QUEUE", str, "")


async def handle_batch(batch: Any, env: Any, http: HttpClient | None = None) -> None:
    """``http``: the outbound port URL documents are fetched through (:mod:`ingest.url_source`).

    Each message is one observed unit of work (:mod:`edgerag.observability`): one log line and one
    metrics point with its outcome (``acked``, ``failed``, ``retried``, ``dropped``, ``gave_up``),
    under the request id the gateway put in the message (a new one for messages without).
    """
    routing = load_settings(_Routing, env)
    from_dead_letters = bool(routing.dead_letter_queue) and batch.queue == routing.dead_letter_queue
    # Give-ups do not need the ingest settings: a bad var must not also keep documents "processing".
    settings = None if from_dead_letters else load_settings(IngestSettings, env)
    observed_env = instrument_env(env)
    for message in batch.messages:
        body = to_py(message.body)
        obs = Observation(
            worker="ingest",
            kind="message",
            request_id=_request_id_of(body),
            route=str(batch.queue),
            method="queue",
            fields={"attempts": getattr(message, "attempts", None)},
        )
        with observe(obs):
            try:
                obs.status = await _handle(message, body, observed_env, settings, http)
            except BaseException as exc:
                obs.status, obs.error = "failed", type(exc).__name__
                raise
            finally:
                finish(obs, env)


def _request_id_of(body: Any) -> str:
    request_id = body.get("request_id") if isinstance(body, dict) else None
    return sane_request_id(request_id if isinstance(request_id, str) else None) or new_id("req")


async def _handle(
    message: Any, body: Any, env: Any, settings: IngestSettings | None, http: HttpClient | None
) -> str:
    try:
        job = IngestMessage.from_body(body)
    except (ValidationError, TypeError, ValueError) as exc:
        log.error("dropping malformed ingest message %s: %s", message.id, exc)
        message.ack()
        return "dropped"
    annotate(tenant=job.tenant_id, document_id=job.document_id)
    if settings is None:
        await discard_document_index(env, job.tenant_id, job.document_id, await _give_up_reason(env, job))
        message.ack()
        return "gave_up"
    try:
        async with span("ingest.document", document_id=job.document_id):
            prepared = await prepare_url_source(env, settings, http, job)
            if prepared is not None:  # None: a URL re-sync found nothing new (or recorded its error)
                await ingest_document(env, settings, prepared)
    except PermanentIngestError as exc:
        await discard_document_index(env, job.tenant_id, job.document_id, str(exc))
        message.ack()
        annotate(error="permanent")
        return "failed"
    except Exception as exc:
        log.warning(
            "ingest of %s failed (attempt %s), will retry: %s", job.document_id, message.attempts, exc
        )
        annotate(error=type(exc).__name__)
        await _note_error(env, job, f"attempt {message.attempts} failed: {exc}")
        message.retry()
        return "retried"
    message.ack()
    return "acked"


async def _give_up_reason(env: Any, job: IngestMessage) -> str:
    # The message's attempts here count deliveries from the dead-letter queue, not the ingest queue's.
    # What the ingest attempts left on the document says why: a recorded error, or none at all when
    # every attempt died with its process (out of memory or CPU time) before it could record one.
    document = await DocumentStore(env.DB).find(job.tenant_id, job.document_id)
    last = document.error if document is not None else None
    if last:
        return f"ingestion gave up after the ingest queue's retries; the last error: {last}"
    return (
        "ingestion gave up after the ingest queue's retries: no attempt finished or recorded an error "
        "(the consumer was stopped each time, e.g. out of memory or CPU time, or could not start)"
    )


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
