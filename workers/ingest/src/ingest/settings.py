"""The ingest worker's settings, parsed once from its env vars.

The processing budget of one document: ``MAX_FILE_BYTES`` caps the stored file (checked before its
body is read), ``MAX_DOCUMENT_CHARS`` the extracted text (checked as each section is reached, so a
huge file costs one extraction, not a chunking run) and ``MAX_DOCUMENT_CHUNKS`` the chunks (chunking
stops one past it). A document over one fails permanently with a reason naming the limit; retrying
cannot make it smaller. The defaults are sized for a 100,000-row CSV (``MAX_TABLE_ROWS``) of rows up
to ~400 rendered characters (40 MB of text; a 6-column row renders to ~100).

One queue message processes one slice of at most ``INGEST_SLICE_CHUNKS`` chunks (ingest/pipeline.py):
that is what must fit a Worker invocation, not the document. At the defaults a slice makes
``500 / EMBED_BATCH_SIZE`` = 10 embedding calls, one Vectorize upsert and one D1 batch of ~75
statements (plus a few progress writes), well inside an invocation's subrequest and query limits.
Per-format caps (:class:`edgerag.formats.FormatLimits`, checked by the extractors): ``MAX_PDF_PAGES``,
``MAX_TABLE_ROWS`` (data rows of a CSV/TSV/XLSX), ``MAX_ZIP_ENTRIES`` and ``MAX_ZIP_UNCOMPRESSED_BYTES``
(DOCX/XLSX containers: the zip-bomb guard). To add a limit: a ``var`` here with a default, the check in
the pipeline (or the extractor), the var in wrangler.toml.
"""

from __future__ import annotations

from dataclasses import dataclass

from edgerag.chunking import ChunkingSettings
from edgerag.formats import FormatLimits
from edgerag.settings import SettingsError, positive_int, var

__all__ = ["IngestSettings"]


@dataclass(frozen=True)
class IngestSettings:
    embedding_model: str = var("EMBEDDING_MODEL")
    chunk_max_tokens: int = var("CHUNK_MAX_TOKENS", positive_int, 400)
    chunk_overlap_tokens: int = var("CHUNK_OVERLAP_TOKENS", int, 60)
    embed_batch_size: int = var("EMBED_BATCH_SIZE", positive_int, 50)
    # The stored file's size, checked before its body is read: 50 MiB, the gateway's largest upload
    # (MAX_DIRECT_UPLOAD_BYTES); a Python Worker has 128 MB, and each slice reads the file whole (a
    # text format keeps only its decoded text after that).
    max_document_bytes: int = var("MAX_FILE_BYTES", positive_int, 50 * 1024 * 1024)
    max_document_chars: int = var("MAX_DOCUMENT_CHARS", positive_int, 40_000_000)
    max_document_chunks: int = var("MAX_DOCUMENT_CHUNKS", positive_int, 30_000)
    slice_chunks: int = var("INGEST_SLICE_CHUNKS", positive_int, 500)
    max_pdf_pages: int = var("MAX_PDF_PAGES", positive_int, FormatLimits.max_pdf_pages)
    max_table_rows: int = var("MAX_TABLE_ROWS", positive_int, FormatLimits.max_table_rows)
    max_zip_entries: int = var("MAX_ZIP_ENTRIES", positive_int, FormatLimits.max_zip_entries)
    max_zip_uncompressed_bytes: int = var(
        "MAX_ZIP_UNCOMPRESSED_BYTES", positive_int, FormatLimits.max_zip_uncompressed_bytes
    )

    def __post_init__(self) -> None:
        # A bad combination must fail when settings load, not as a retried "transient" ingest error.
        try:
            self.chunking()
        except (TypeError, ValueError) as exc:
            raise SettingsError(f"CHUNK_MAX_TOKENS/CHUNK_OVERLAP_TOKENS: {exc}") from exc

    def format_limits(self) -> FormatLimits:
        return FormatLimits(
            max_pdf_pages=self.max_pdf_pages,
            max_table_rows=self.max_table_rows,
            max_zip_entries=self.max_zip_entries,
            max_zip_uncompressed_bytes=self.max_zip_uncompressed_bytes,
        )

    def chunking(self) -> ChunkingSettings:
        return ChunkingSettings(max_tokens=self.chunk_max_tokens, overlap_tokens=self.chunk_overlap_tokens)
