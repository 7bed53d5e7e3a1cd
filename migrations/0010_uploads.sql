-- 0010_uploads: direct-to-R2 uploads that have been handed a presigned PUT URL but not completed yet.
--
-- A pending upload is not a document: it has no row in documents (whose status CHECK would need a
-- table rebuild to learn a 'pending' state) until POST /v1/documents/{id}/complete has checked the
-- object in R2 and queued it. document_id is the id the document will get, reserved now so that the
-- R2 key (tenants/<tenant>/documents/<id>/original) is final from the start and nothing is copied.
-- size_bytes and sha256 are what the client declared: complete compares the stored object with them.
--
-- The gateway's cron trigger deletes rows (and their R2 objects) whose expires_at, plus a grace
-- period, has passed; expires_at is when the presigned URL stops working.

CREATE TABLE pending_uploads (
    document_id   TEXT PRIMARY KEY,
    tenant_id     TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    r2_key        TEXT NOT NULL,
    title         TEXT NOT NULL,
    filename      TEXT,
    content_type  TEXT NOT NULL,
    signed_type   TEXT NOT NULL,
    size_bytes    INTEGER NOT NULL CHECK (size_bytes > 0),
    sha256        TEXT NOT NULL CHECK (length(sha256) = 64),
    metadata      TEXT NOT NULL DEFAULT '{}'
                  CHECK (json_valid(metadata) AND json_type(metadata) = 'object'),
    expires_at    TEXT NOT NULL,
    created_at    TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);
CREATE INDEX pending_uploads_tenant_idx ON pending_uploads (tenant_id, created_at);
CREATE INDEX pending_uploads_expires_idx ON pending_uploads (expires_at);
