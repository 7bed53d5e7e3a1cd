"""Ingest one document: R2 object -> text -> chunks -> embeddings -> Vectorize + D1 (chunks, FTS).

Idempotent by construction: chunk and vector ids are derived from (document id, position), vectors are
upserted, and the D1 side replaces the document's chunks and marks it ``ready`` in one atomic batch. A
redelivered message therefore converges on exactly one copy of every chunk.

Nothing half-written: the planned chunk count is recorded before any vector is written, so a failure
(this attempt's, or a later give-up from the dead-letter queue) knows which vector ids to delete and
leaves the document ``failed`` with no chunks, FTS rows or vectors.

Bounded work: a document over its processing budget (stored size, extracted characters, chunks; see
ingest/settings.py) fails permanently before the expensive step, with a reason naming the limit and
the document's size. Chunking is linear and lazy, so finding out that a document needs too many
chunks costs at most one chunk more than the budget.

Formats and provenance (:mod:`edgerag.formats`): the extractor yields sections (a PDF page, a heading
section, a batch of table rows), lazily for the large formats, and each is chunked as it arrives, so
a chunk never spans two pages or sheets and records its page, section, row range and offsets. The
file's bytes and one section's text are the only other copies while planning; both are dropped
before embedding. A crash anywhere leaves the document for the redelivery to redo from the start:
chunk ids are (document, seq), vectors are upserts and the D1 swap is one batch at the end, so a
second run converges on the same rows (and deletes a longer earlier run's surplus).

Progress (:mod:`ingest.progress`): each stage is written to the document as it starts, and embedding
and indexing report chunks done of total per batch.

Reindex (``reindex_requested_at`` set by the gateway): a ready document with unchanged bytes is
processed again instead of skipped. It stays ``ready`` and searchable throughout: vector ids are
stable per (document, position), so each upsert replaces one old vector with its new one in place
(never a moment with neither), the old D1 chunks stay until the batch that swaps in the new ones, and
surplus vectors of a longer old version are deleted only after that. A changed embedding model with
the same dimensions is therefore rebuilt in place; another dimension needs a new Vectorize index.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from typing import Any

from edgerag.chunking import ChunkingSettings, ChunkTooLargeError, iter_chunks
from edgerag.contracts.ingest import IngestMessage
from edgerag.embedding import Embedder
from edgerag.extract import (
    SECTION_SEPARATOR,
    ExtractedDocument,
    ExtractionError,
    UnsupportedContentType,
    default_registry,
    extract_text,
)
from edgerag.ids import chunk_id
from edgerag.store.d1 import run
from edgerag.store.documents import DocumentStore, NewChunk
from edgerag.tokens import estimate_tokens

from ingest.progress import Progress
from ingest.settings import IngestSettings

__all__ = ["PermanentIngestError", "discard_document_index", "embedding_input", "ingest_document"]

log = logging.getLogger("edgerag.ingest")

_TITLE_TOKENS = 48  # the title rides along in every embedded chunk; keep it short
_UPSERT_BATCH = 500  # Vectorize accepts at most 1000 vectors per call from a Worker
_DELETE_BATCH = 1000  # and at most 1000 ids per deleteByIds


class PermanentIngestError(Exception):
    """Retrying cannot help (unsupported type, undecodable file, changed content): fail the document."""


@dataclass(frozen=True)
class IngestOutcome:
    document_id: str
    status: str
    chunks: int


def embedding_input(title: str, text: str, title_tokens: int = _TITLE_TOKENS) -> str:
    """What gets embedded for a chunk: a short title prefix gives the chunk its document's context."""
    words = title.split()
    while words and estimate_tokens(" ".join(words)) > title_tokens:
        words.pop()
    short = " ".join(words)
    return f"{short}\n\n{text}" if short else text


async def ingest_document(env: Any, settings: IngestSettings, message: IngestMessage) -> IngestOutcome:
    store = DocumentStore(env.DB)
    document = await store.find(message.tenant_id, message.document_id)
    if document is None:
        # Deleted while queued: nothing to do, and nothing must be written for it.
        return IngestOutcome(message.document_id, "deleted", 0)
    reindex = document.reindex_requested_at is not None
    if document.status == "ready" and document.content_sha256 == message.sha256 and not reindex:
        return IngestOutcome(document.id, "ready", document.chunk_count)
    await store.mark_processing(message.tenant_id, message.document_id)
    progress = Progress(store, message.tenant_id, document.id)
    await progress.stage("extracting")

    obj = await env.FILES.get(message.r2_key)
    if obj is None:
        raise PermanentIngestError(f"the uploaded file {message.r2_key} is missing from storage")
    size = getattr(obj, "size", None)  # a JS number at the edge: int or float
    if isinstance(size, int | float) and size > settings.max_document_bytes:
        # Checked before reading the body: an over-size object must not be loaded into memory.
        raise PermanentIngestError(
            f"the file is {int(size):,} bytes, more than the limit of {settings.max_document_bytes:,} "
            "(MAX_FILE_BYTES)"
        )
    data = bytes(await obj.arrayBuffer())
    if hashlib.sha256(data).hexdigest() != message.sha256:
        raise PermanentIngestError("the stored file does not match the uploaded file's SHA-256")
    try:
        registry = default_registry(settings.format_limits())
        extracted = extract_text(data, message.content_type, document.filename, registry=registry)
    except (UnsupportedContentType, ExtractionError) as exc:
        raise PermanentIngestError(str(exc)) from exc

    await progress.stage("chunking")
    chunking = settings.chunking()
    planned = _plan_chunks(document.id, extracted, chunking, settings)
    if not planned:
        raise PermanentIngestError("the document contains no text")
    del data, extracted  # the file and its parser: from here on the chunks are the only copy of the text
    # Record how many vectors this attempt may write before writing any, so cleanup can find them.
    await _record_planned(env, message, len(planned))
    embedder = Embedder(env.AI, settings.embedding_model, batch_size=settings.embed_batch_size)
    # The title prefix must not push a full chunk past the model's input limit.
    title_budget = min(_TITLE_TOKENS, chunking.hard_limit_tokens - chunking.max_tokens)
    await progress.stage("embedding", total=len(planned))
    vectors: list[list[float]] = []
    step = settings.embed_batch_size
    for start in range(0, len(planned), step):  # one batch per call, so progress moves per batch
        batch = planned[start : start + step]
        vectors += await embedder.embed(
            [embedding_input(document.title, c.text, title_budget) for c in batch]
        )
        await progress.advance(len(batch))
    records = [
        {
            "id": c.id,
            "values": v,
            "namespace": message.tenant_id,
            "metadata": {"tenant_id": message.tenant_id, "document_id": document.id, "seq": c.seq},
        }
        for c, v in zip(planned, vectors, strict=True)
    ]
    await progress.stage("indexing", total=len(records))
    for start in range(0, len(records), _UPSERT_BATCH):
        await env.VECTORS.upsert(records[start : start + _UPSERT_BATCH])
        await progress.advance(len(records[start : start + _UPSERT_BATCH]))
    # A previous attempt with another chunking may have written more vectors: drop the surplus.
    surplus = [chunk_id(document.id, seq) for seq in range(len(planned), max(document.chunk_count, 0))]
    for start in range(0, len(surplus), _DELETE_BATCH):
        await env.VECTORS.deleteByIds(surplus[start : start + _DELETE_BATCH])
    await progress.finish()
    await store.replace_chunks(message.tenant_id, document.id, document.title, planned)
    return IngestOutcome(document.id, "ready", len(planned))


def _plan_chunks(
    document_id: str, extracted: ExtractedDocument, chunking: ChunkingSettings, settings: IngestSettings
) -> list[NewChunk]:
    """The document's chunks with their provenance, or a permanent failure naming the budget it is over.

    Sections are chunked one at a time as the extractor produces them (a PDF page, a batch of rows), so
    a chunk never crosses a page, sheet or heading section, and only one section's text exists besides
    the chunks. Offsets are in the document's full text (sections joined by SECTION_SEPARATOR).
    """
    planned: list[NewChunk] = []
    cap = settings.max_document_chunks
    offset = 0  # where the current section starts in the full text
    try:
        for index, section in enumerate(extracted.iter_sections()):
            offset += len(SECTION_SEPARATOR) if index else 0
            if offset + len(section.text) > settings.max_document_chars:
                seen = offset + len(section.text)
                size = f"{seen:,}" if extracted.text else f"more than {seen:,}"
                raise PermanentIngestError(
                    f"the document's text is {size} characters, more than the limit of "
                    f"{settings.max_document_chars:,} (MAX_DOCUMENT_CHARS)"
                )
            for c in iter_chunks(section.text, chunking):
                if len(planned) == cap:
                    seen = offset + len(section.text)
                    whole = f"of its {seen:,}" if extracted.text else f"of the first {seen:,} extracted"
                    raise PermanentIngestError(
                        f"the document needs more than {cap:,} chunks (MAX_DOCUMENT_CHUNKS): the first "
                        f"{cap:,} cover only {planned[-1].char_end:,} {whole} characters"
                    )
                rows = section.rows_between(c.char_start, c.char_end)
                seq = len(planned)
                planned.append(
                    NewChunk(
                        chunk_id(document_id, seq),
                        seq,
                        c.text,
                        offset + c.char_start,
                        offset + c.char_end,
                        c.token_estimate,
                        page_start=section.page,
                        page_end=section.page,
                        section=section.section,
                        row_start=rows[0] if rows else None,
                        row_end=rows[1] if rows else None,
                    )
                )
            offset += len(section.text)
    except ExtractionError as exc:  # lazy extractors fail when the damaged page or row is reached
        raise PermanentIngestError(str(exc)) from exc
    except ChunkTooLargeError as exc:
        raise PermanentIngestError(f"the document cannot be chunked: {exc}") from exc
    return planned


async def _record_planned(env: Any, message: IngestMessage, count: int) -> None:
    await run(
        env.DB,
        "UPDATE documents SET chunk_count = MAX(chunk_count, ?3) WHERE id = ?1 AND tenant_id = ?2",
        message.document_id,
        message.tenant_id,
        count,
    )


async def discard_document_index(env: Any, tenant_id: str, document_id: str, reason: str) -> None:
    """Fail a document and remove everything an attempt may have indexed for it."""
    store = DocumentStore(env.DB)
    document = await store.find(tenant_id, document_id)
    if document is None:
        return
    known: set[str] = set(await store.chunk_ids(tenant_id, document_id))
    known.update(chunk_id(document_id, seq) for seq in range(document.chunk_count))
    ids = sorted(known)
    for start in range(0, len(ids), _DELETE_BATCH):
        await env.VECTORS.deleteByIds(ids[start : start + _DELETE_BATCH])
    await store.mark_failed(tenant_id, document_id, reason)
    log.warning("document %s failed: %s", document_id, reason)
