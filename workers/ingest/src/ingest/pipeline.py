"""Ingest one document: R2 object -> text -> chunks -> embeddings -> Vectorize + D1 (chunks, FTS).

**Slices.** A document is processed as a sequence of queue messages, each handling a bounded slice
of at most ``INGEST_SLICE_CHUNKS`` chunks (a Worker invocation has CPU, wall-time and subrequest
limits; a 100,000-row CSV makes thousands of chunks). A slice reads the file, opens the extractor at
the run's cursor (:mod:`ingest.cursor`: the format's position, e.g. a PDF page or a CSV record, see
:mod:`edgerag.formats.resume`), chunks until the slice is full, embeds, upserts the vectors, and
then commits its chunks to ``staged_chunks`` in the same D1 batch that moves the cursor past them
(:mod:`edgerag.store.staging`). It then queues a continuation (the same message again: all the
state is in D1) and acks. The last slice swaps every staged chunk into ``chunks`` and marks the
document ``ready`` in one batch.

**Crashes.** A crash anywhere in a slice (before its batch) leaves the cursor where the slice
started; the redelivery repeats just that slice: the same file and cursor give the same chunks,
chunk and vector ids are (document, seq) and vectors are upserts, so nothing is duplicated and
nothing from before the slice is redone. A crash after the batch but before the continuation was
queued is the same: the redelivered message resumes from the moved cursor. Two deliveries of one
slice (a continuation plus a redelivery) race on the cursor's compare-and-set: one commits, the other
writes nothing and stops (outcome ``superseded``) without queueing a continuation.

**Visibility.** Search reads ``chunks`` only: a new document's staged chunks are invisible until the
swap (its vectors exist in Vectorize meanwhile, but a vector whose chunk is not in D1 resolves to
nothing, so the only effect is that such a match takes one of the ``topK`` places). A reindexed
document stays ``ready`` and keeps answering from its previous chunks until the swap; its vector ids
are stable per (document, seq), so each upsert replaces one old vector in place (never a moment with
neither) and surplus vectors of a longer old version are deleted after the swap. A changed embedding
model with the same dimensions is rebuilt in place; another dimension needs a new Vectorize index.

**Nothing half-written.** Before a slice writes any vector, the cursor's high-water mark
(``vectors``) is raised past the slice, so a permanent failure (this slice's, or a later give-up from
the dead-letter queue) knows every vector id to delete and leaves the document ``failed`` with no
chunks, staged chunks, FTS rows or vectors.

**Budgets** (ingest/settings.py): the stored size is checked before the body is read; the
extracted text (``MAX_DOCUMENT_CHARS``) as each section is reached; the chunk count
(``MAX_DOCUMENT_CHUNKS``) as chunks are made, in whichever slice reaches it (the slices before are
then discarded). Each ends the document ``failed`` with a reason naming the limit.

**Memory** per slice: the file's bytes (for a PDF, kept by its parser; for text formats dropped once
decoded, leaving the decoded text), the current section's text, and the slice's chunks and vectors.
Formats and provenance (:mod:`edgerag.formats`): a chunk never spans two pages, sheets or sections
and records its page, section, row range and offsets in the document's full text.

Progress (:mod:`ingest.progress`): each stage is written as it starts in every slice; ``done``
counts chunks (all earlier slices' plus this one's), ``total`` is what is known so far (earlier
slices plus this slice), and both equal ``chunk_count`` once ready. ``timings_ms`` sums the slices.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass, replace
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
from edgerag.formats.resume import positioned_sections
from edgerag.ids import chunk_id
from edgerag.store.documents import DocumentRecord, DocumentStore, NewChunk
from edgerag.store.staging import StagingStore
from edgerag.tokens import estimate_tokens

from ingest.cursor import Cursor
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
    """``status``: ``ready``, ``continued`` (a slice committed, the rest queued), ``superseded``
    (another delivery committed this slice first) or ``deleted``."""

    document_id: str
    status: str
    chunks: int


@dataclass(frozen=True)
class _Slice:
    chunks: list[NewChunk]
    resume: Cursor | None  # where the next slice starts; None: this slice ends the document


def embedding_input(title: str, text: str, title_tokens: int = _TITLE_TOKENS) -> str:
    """What gets embedded for a chunk: a short title prefix gives the chunk its document's context."""
    words = title.split()
    while words and estimate_tokens(" ".join(words)) > title_tokens:
        words.pop()
    short = " ".join(words)
    return f"{short}\n\n{text}" if short else text


def _fresh_cursor(settings: IngestSettings, message: IngestMessage) -> Cursor:
    chunking = settings.chunking()
    return Cursor(message.sha256, settings.embedding_model, (chunking.max_tokens, chunking.overlap_tokens))


async def ingest_document(env: Any, settings: IngestSettings, message: IngestMessage) -> IngestOutcome:
    """Process the next slice of the document (see the module docstring)."""
    store = DocumentStore(env.DB)
    staging = StagingStore(env.DB)
    document = await store.find(message.tenant_id, message.document_id)
    if document is None:
        # Deleted while queued: nothing to do, and nothing must be written for it.
        return IngestOutcome(message.document_id, "deleted", 0)
    reindex = document.reindex_requested_at is not None
    if document.status == "ready" and document.content_sha256 == message.sha256 and not reindex:
        return IngestOutcome(document.id, "ready", document.chunk_count)
    cursor = await _cursor(staging, settings, message, document)
    await store.mark_processing(message.tenant_id, message.document_id)
    progress = Progress(store, message.tenant_id, document.id, base=cursor.seq, timings=cursor.timings)
    await progress.stage("extracting")
    extracted = await _extract(env, settings, message, document)

    await progress.stage("chunking")
    chunking = settings.chunking()
    planned = _plan_slice(document.id, extracted, cursor, chunking, settings)
    del extracted  # the file and its parser: from here on the chunks are the only copy of the text
    chunks = planned.chunks
    if planned.resume is None and cursor.seq + len(chunks) == 0:
        raise PermanentIngestError("the document contains no text")
    # Record how far this slice's vectors may reach before writing any, so cleanup can find them.
    end = cursor.seq + len(chunks)
    if end > cursor.vectors:
        raised = cursor.with_vectors(end)
        if not await staging.move(message.tenant_id, document.id, cursor.dump(), raised.dump()):
            return IngestOutcome(document.id, "superseded", cursor.seq)
        cursor = raised

    await _embed_and_index(env, settings, message, document, chunks, chunking, progress)
    if planned.resume is not None:
        await progress.flush()  # a slice ends: pollers see how far the document got
    progress.finish()
    if planned.resume is None:
        won = await staging.finish(
            message.tenant_id,
            document.id,
            cursor.dump(),
            chunks,
            end,
            json.dumps(progress.timings, separators=(",", ":")),
        )
        if not won:
            return await _lost(env, message, cursor.seq, end)
        # An older version (or an abandoned run) may have written more vectors: drop the surplus.
        surplus = [
            chunk_id(document.id, seq) for seq in range(end, max(document.chunk_count, cursor.vectors))
        ]
        for start in range(0, len(surplus), _DELETE_BATCH):
            await env.VECTORS.deleteByIds(surplus[start : start + _DELETE_BATCH])
        return IngestOutcome(document.id, "ready", end)
    following = replace(
        planned.resume, vectors=cursor.vectors, slices=cursor.slices + 1, timings=dict(progress.timings)
    )
    if not await staging.commit(message.tenant_id, document.id, cursor.dump(), following.dump(), chunks):
        return await _lost(env, message, cursor.seq, end)
    # The rest is a new message (the same one: the state is in D1). Lost if this fails: the message
    # is then retried, and its redelivery resumes from the cursor just committed.
    await env.INGEST_QUEUE.send(message.to_body(), contentType="json")
    return IngestOutcome(document.id, "continued", end)


async def _lost(env: Any, message: IngestMessage, first: int, end: int) -> IngestOutcome:
    """The slice's batch found another cursor: a duplicate delivery committed it (nothing to do), or
    the document was deleted meanwhile, after its delete removed the vectors it knew of: this
    slice's own vectors, written since, are deleted here so that none is orphaned."""
    if await DocumentStore(env.DB).find(message.tenant_id, message.document_id) is None:
        ids = [chunk_id(message.document_id, seq) for seq in range(first, end)]
        for start in range(0, len(ids), _DELETE_BATCH):
            await env.VECTORS.deleteByIds(ids[start : start + _DELETE_BATCH])
        return IngestOutcome(message.document_id, "deleted", 0)
    return IngestOutcome(message.document_id, "superseded", first)


async def _cursor(
    staging: StagingStore, settings: IngestSettings, message: IngestMessage, document: DocumentRecord
) -> Cursor:
    """The run's cursor: the stored one if it is this run's, else a new run (abandoned rows dropped)."""
    fresh = _fresh_cursor(settings, message)
    stored = Cursor.load(document.ingest_cursor)
    if stored is not None and stored.same_run(fresh):
        return stored
    if stored is not None:
        fresh = fresh.with_vectors(stored.vectors)  # the abandoned run's vectors still need cleaning
    await staging.begin(message.tenant_id, document.id, fresh.dump())
    return fresh


async def _extract(
    env: Any, settings: IngestSettings, message: IngestMessage, document: DocumentRecord
) -> ExtractedDocument:
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
        # Text formats keep only their decoded text, so this frame's reference is the last to the bytes.
        return extract_text(data, message.content_type, document.filename, registry=registry)
    except (UnsupportedContentType, ExtractionError) as exc:
        raise PermanentIngestError(str(exc)) from exc


async def _embed_and_index(
    env: Any,
    settings: IngestSettings,
    message: IngestMessage,
    document: DocumentRecord,
    chunks: list[NewChunk],
    chunking: ChunkingSettings,
    progress: Progress,
) -> None:
    embedder = Embedder(env.AI, settings.embedding_model, batch_size=settings.embed_batch_size)
    # The title prefix must not push a full chunk past the model's input limit.
    title_budget = min(_TITLE_TOKENS, chunking.hard_limit_tokens - chunking.max_tokens)
    await progress.stage("embedding", total=len(chunks))
    vectors: list[list[float]] = []
    step = settings.embed_batch_size
    for start in range(0, len(chunks), step):  # one batch per call, so progress moves per batch
        batch = chunks[start : start + step]
        vectors += await embedder.embed(
            [embedding_input(document.title, c.text, title_budget) for c in batch]
        )
        await progress.advance(len(batch))
    await progress.stage("indexing", total=len(chunks))
    for start in range(0, len(chunks), _UPSERT_BATCH):
        records = [
            {
                "id": c.id,
                "values": v,
                "namespace": message.tenant_id,
                "metadata": {"tenant_id": message.tenant_id, "document_id": document.id, "seq": c.seq},
            }
            for c, v in zip(
                chunks[start : start + _UPSERT_BATCH], vectors[start : start + _UPSERT_BATCH], strict=True
            )
        ]
        await env.VECTORS.upsert(records)
        await progress.advance(len(records))


def _plan_slice(
    document_id: str,
    extracted: ExtractedDocument,
    cursor: Cursor,
    chunking: ChunkingSettings,
    settings: IngestSettings,
) -> _Slice:
    """The next slice's chunks with their provenance and where the slice after it starts, or a
    permanent failure naming the budget the document is over.

    Sections are chunked one at a time as the extractor produces them from the cursor (a PDF page, a
    batch of rows), so a chunk never crosses a page, sheet or heading section, and only one section's
    text exists besides the chunks. Offsets are in the document's full text (sections joined by
    SECTION_SEPARATOR). When the slice is full, the next chunk is made but not kept: its start is
    where the next slice resumes chunking.
    """
    planned: list[NewChunk] = []
    limit, cap = settings.slice_chunks, settings.max_document_chunks
    seq, offset, first_char = cursor.seq, cursor.offset, cursor.char
    previous_end: int | None = None  # where the section before ends in the full text
    try:
        for position, section in positioned_sections(extracted, cursor.position):
            if previous_end is not None:
                offset = previous_end + len(SECTION_SEPARATOR)
            if offset + len(section.text) > settings.max_document_chars:
                seen = offset + len(section.text)
                size = f"{seen:,}" if extracted.text else f"more than {seen:,}"
                raise PermanentIngestError(
                    f"the document's text is {size} characters, more than the limit of "
                    f"{settings.max_document_chars:,} (MAX_DOCUMENT_CHARS)"
                )
            for c in iter_chunks(section.text, chunking, start=first_char):
                if seq == cap:
                    seen = offset + len(section.text)
                    whole = f"of its {seen:,}" if extracted.text else f"of the first {seen:,} extracted"
                    covered = planned[-1].char_end if planned else offset + c.char_start
                    raise PermanentIngestError(
                        f"the document needs more than {cap:,} chunks (MAX_DOCUMENT_CHUNKS): the first "
                        f"{cap:,} cover only {covered:,} {whole} characters"
                    )
                if len(planned) == limit:
                    resume = replace(cursor, position=position, char=c.char_start, offset=offset, seq=seq)
                    return _Slice(planned, resume)
                rows = section.rows_between(c.char_start, c.char_end)
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
                seq += 1
            first_char = 0
            previous_end = offset + len(section.text)
    except ExtractionError as exc:  # lazy extractors fail when the damaged page or row is reached
        raise PermanentIngestError(str(exc)) from exc
    except ChunkTooLargeError as exc:
        raise PermanentIngestError(f"the document cannot be chunked: {exc}") from exc
    return _Slice(planned, None)


async def discard_document_index(env: Any, tenant_id: str, document_id: str, reason: str) -> None:
    """Fail a document and remove everything an attempt may have indexed for it: its chunks, staged
    chunks (with :meth:`DocumentStore.mark_failed`) and every vector any slice may have written."""
    store = DocumentStore(env.DB)
    document = await store.find(tenant_id, document_id)
    if document is None:
        return
    known: set[str] = set(await store.chunk_ids(tenant_id, document_id))
    known.update(chunk_id(document_id, seq) for seq in range(document.vector_reach))
    ids = sorted(known)
    for start in range(0, len(ids), _DELETE_BATCH):
        await env.VECTORS.deleteByIds(ids[start : start + _DELETE_BATCH])
    await store.mark_failed(tenant_id, document_id, reason)
    log.warning("document %s failed: %s", document_id, reason)
