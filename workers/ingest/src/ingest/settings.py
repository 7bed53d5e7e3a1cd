"""The ingest worker's settings, parsed once from its env vars."""

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

    def __post_init__(self) -> None:
        # A bad combination must fail when settings load, not as a retried "transient" ingest error.
        try:
            self.chunking()
        except (TypeError, ValueError) as exc:
            raise SettingsError(f"CHUNK_MAX_TOKENS/CHUNK_OVERLAP_TOKENS: {exc}") from exc

    def chunking(self) -> ChunkingSettings:
        return ChunkingSettings(max_tokens=self.chunk_max_tokens, overlap_tokens=self.chunk_overlap_tokens)
