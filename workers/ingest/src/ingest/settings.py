"""The ingest worker's settings, parsed once from its env vars.

The processing budget of one document: ``MAX_DOCUMENT_CHARS`` caps the extracted text (checked before
chunking, so a huge file costs one extraction, not a chunking run) and ``MAX_DOCUMENT_CHUNKS`` caps the
chunks (chunking stops one past it). A document over either fails permanently with a reason naming the
limit; retrying cannot make it smaller. The chunk default keeps one document's embedding calls
(``MAX_DOCUMENT_CHUNKS / EMBED_BATCH_SIZE`` = 40) well inside a Worker invocation's subrequest limit.
To add a limit: a ``var`` here with a default, the check in the pipeline, the var in wrangler.toml.
"""

from __future__ import annotations

from dataclasses import dataclass

from edgerag.chunking import ChunkingSettings
from edgerag.settings import SettingsError, positive_int, var

__all__ = ["IngestSettings"]


@dataclass(frozen=True)
class IngestSettings:
    embedding_model: str = var("EMBEDDING_MODEL")
    chunk_max_tokens: int = var("CHUNK_MAX_TOKENS", positive_int, 400)
    chunk_overlap_tokens: int = var("CHUNK_OVERLAP_TOKENS", int, 60)
    embed_batch_size: int = var("EMBED_BATCH_SIZE", positive_int, 50)
    max_document_bytes: int = var("MAX_UPLOAD_BYTES", positive_int, 10 * 1024 * 1024)
    max_document_chars: int = var("MAX_DOCUMENT_CHARS", positive_int, 4_000_000)
    max_document_chunks: int = var("MAX_DOCUMENT_CHUNKS", positive_int, 2_000)

    def __post_init__(self) -> None:
        # A bad combination must fail when settings load, not as a retried "transient" ingest error.
        try:
            self.chunking()
        except (TypeError, ValueError) as exc:
            raise SettingsError(f"CHUNK_MAX_TOKENS/CHUNK_OVERLAP_TOKENS: {exc}") from exc

    def chunking(self) -> ChunkingSettings:
        return ChunkingSettings(max_tokens=self.chunk_max_tokens, overlap_tokens=self.chunk_overlap_tokens)
