-- 0002_document_dedup: at most one live copy of the same bytes per tenant, enforced by D1.
--
-- dedup_sha256 is the document's content_sha256 while the document counts for duplicate detection,
-- and NULL when it does not: a copy the client forced (?allow_duplicate=true) and a document that
-- failed (so the same file may be uploaded again). SQLite treats NULLs as distinct in a UNIQUE index,
-- so only the live copies collide. The index, not a read-then-write check in the gateway, settles two
-- identical uploads racing each other: the second INSERT ... ON CONFLICT DO NOTHING changes no row,
-- and the gateway answers with the document that won.
--
-- Existing rows: the oldest document of each (tenant, content) that has not failed becomes the live
-- copy; any older duplicates stay as they are, uncounted.

ALTER TABLE documents ADD COLUMN dedup_sha256 TEXT;

UPDATE documents SET dedup_sha256 = content_sha256
WHERE status != 'failed'
  AND id = (
    SELECT d2.id FROM documents d2
    WHERE d2.tenant_id = documents.tenant_id
      AND d2.content_sha256 = documents.content_sha256
      AND d2.status != 'failed'
    ORDER BY d2.created_at, d2.id
    LIMIT 1
  );

CREATE UNIQUE INDEX documents_tenant_dedup_idx ON documents (tenant_id, dedup_sha256);
