-- 0011_document_progress: what ingestion is doing to a document right now, and how far it got.
--
-- stage follows the pipeline: queued -> extracting -> chunking -> embedding -> indexing -> ready | failed.
-- It is separate from status because a reindex runs the stages again on a document that stays
-- 'ready' (and searchable, on its previous chunks and vectors) until the new ones are swapped in.
-- progress_done / progress_total count the current stage's units (chunks embedded, vectors written);
-- timings is a JSON object of milliseconds per finished stage ({"extracting_ms": 12.5, ...}) of the
-- latest run. reindex_requested_at is set by POST /v1/documents/{id}/reindex (and the tenant-wide
-- reindex): the pipeline then re-embeds a ready document whose bytes did not change, and clears it in
-- the batch that swaps the new chunks in.

--
-- No CHECK constraints on the new columns: adding a column with a CHECK makes SQLite verify existing
-- rows through the schema table, which D1's authorizer refuses (SQLITE_AUTH; the local emulator does
-- the same). The values come only from edgerag.store.documents (Stage), which types them.

ALTER TABLE documents ADD COLUMN stage TEXT NOT NULL DEFAULT 'queued';
ALTER TABLE documents ADD COLUMN progress_done INTEGER NOT NULL DEFAULT 0;
ALTER TABLE documents ADD COLUMN progress_total INTEGER NOT NULL DEFAULT 0;
ALTER TABLE documents ADD COLUMN timings TEXT NOT NULL DEFAULT '{}';
ALTER TABLE documents ADD COLUMN reindex_requested_at TEXT;

UPDATE documents SET stage = status WHERE status IN ('ready', 'failed');
