-- 0013_sliced_ingest_and_storage_limits: large documents ingest in slices, one queue message each;
-- tenants get document-count and stored-byte limits.
--
-- * documents.ingest_cursor: the progress marker of the ingestion run in flight (NULL when none). A
--   JSON object written by the ingest worker (ingest/cursor.py): where the next slice starts (the
--   format's position, e.g. a PDF page or a CSV record, and the character in that section), the next
--   chunk seq, and the highest vector seq any slice may have written. Every slice's chunks are
--   written in the same D1 batch that moves the cursor, and only while the cursor is still the one
--   the slice started from (a compare-and-set), so a redelivered or duplicated message can neither
--   write a slice twice nor move a finished run backwards.
-- * staged_chunks: the chunks of the run in flight, until its last slice swaps them into chunks in
--   one batch. Search reads only chunks (and chunks_fts), so a half-ingested document is invisible
--   and a reindexed one keeps answering from its previous chunks until the swap. Same columns as
--   chunks' content; the title is taken from the document when the chunks are swapped in.
-- * tenant_limits.max_documents / max_stored_bytes: operator overrides of the plan's storage limits
--   (edgerag.budgets.PLAN_STORAGE); NULL means the plan's default, like the other columns of 0007.
--
-- No CHECK constraints on added columns (see 0011: D1's authorizer refuses the schema check).

ALTER TABLE documents ADD COLUMN ingest_cursor TEXT;

CREATE TABLE staged_chunks (
    tenant_id    TEXT NOT NULL,
    document_id  TEXT NOT NULL,
    seq          INTEGER NOT NULL CHECK (seq >= 0),
    id           TEXT NOT NULL,
    text         TEXT NOT NULL,
    char_start   INTEGER,
    char_end     INTEGER,
    token_count  INTEGER,
    page_start   INTEGER,
    page_end     INTEGER,
    section      TEXT,
    row_start    INTEGER,
    row_end      INTEGER,
    PRIMARY KEY (document_id, seq),
    FOREIGN KEY (tenant_id, document_id) REFERENCES documents (tenant_id, id) ON DELETE CASCADE
);
CREATE INDEX staged_chunks_tenant_document_idx ON staged_chunks (tenant_id, document_id);

ALTER TABLE tenant_limits ADD COLUMN max_documents INTEGER;
ALTER TABLE tenant_limits ADD COLUMN max_stored_bytes INTEGER;

-- * tenant_storage: what each tenant stores, kept by triggers in the same transaction as every change
--   (so the upload check reads one row instead of summing the tenant's documents): documents and
--   pending presigned uploads (pending_uploads, 0010: a declared upload holds its place until it is
--   completed or expires) each count one document and their size_bytes. A URL document counts 0
--   bytes until its page is fetched (its size_bytes is then updated). Failed documents count until
--   deleted. A missing row reads as nothing stored.
CREATE TABLE tenant_storage (
    tenant_id  TEXT PRIMARY KEY REFERENCES tenants (id) ON DELETE CASCADE,
    documents  INTEGER NOT NULL DEFAULT 0,
    bytes      INTEGER NOT NULL DEFAULT 0
);

INSERT INTO tenant_storage (tenant_id, documents, bytes)
SELECT tenant_id, COUNT(*), SUM(size_bytes) FROM (
    SELECT tenant_id, size_bytes FROM documents UNION ALL SELECT tenant_id, size_bytes FROM pending_uploads
) GROUP BY tenant_id;

CREATE TRIGGER documents_storage_after_insert AFTER INSERT ON documents
BEGIN
    INSERT INTO tenant_storage (tenant_id, documents, bytes) VALUES (NEW.tenant_id, 1, NEW.size_bytes)
    ON CONFLICT (tenant_id) DO UPDATE SET documents = documents + 1, bytes = bytes + NEW.size_bytes;
END;

-- The UPDATEs below are no-ops when a tenant's deletion cascades (its tenant_storage row goes too).
CREATE TRIGGER documents_storage_after_delete AFTER DELETE ON documents
BEGIN
    UPDATE tenant_storage SET documents = documents - 1, bytes = bytes - OLD.size_bytes
    WHERE tenant_id = OLD.tenant_id;
END;

CREATE TRIGGER documents_storage_after_resize AFTER UPDATE OF size_bytes ON documents
BEGIN
    UPDATE tenant_storage SET bytes = bytes - OLD.size_bytes + NEW.size_bytes WHERE tenant_id = NEW.tenant_id;
END;

CREATE TRIGGER pending_uploads_storage_after_insert AFTER INSERT ON pending_uploads
BEGIN
    INSERT INTO tenant_storage (tenant_id, documents, bytes) VALUES (NEW.tenant_id, 1, NEW.size_bytes)
    ON CONFLICT (tenant_id) DO UPDATE SET documents = documents + 1, bytes = bytes + NEW.size_bytes;
END;

CREATE TRIGGER pending_uploads_storage_after_delete AFTER DELETE ON pending_uploads
BEGIN
    UPDATE tenant_storage SET documents = documents - 1, bytes = bytes - OLD.size_bytes
    WHERE tenant_id = OLD.tenant_id;
END;
