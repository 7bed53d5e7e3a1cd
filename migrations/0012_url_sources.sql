-- 0012_url_sources: documents whose source is a web page, and the state of their scheduled re-sync.
--
-- A URL document is an ordinary row in documents (its R2 object holds the last good fetch, its
-- content_sha256 that fetch's hash) plus one row here. Until the first fetch, the document's
-- content_type is 'text/uri-list' and its hash is that of no bytes; the ingest worker fetches, stores
-- the page in R2 and fills in both (edgerag.store.url_sources, ingest.url_source).
--
-- etag / last_modified: the validators of the last good fetch, sent back as If-None-Match /
-- If-Modified-Since on re-sync. last_fetched_at: when a body was last stored; last_checked_at: when
-- the page was last asked for (a 304 or an unchanged hash moves only this one); last_error: why the
-- last re-sync failed (the document keeps its last good version meanwhile), NULL after a success.
-- interval_hours NULL: never re-synced. next_check_at: when the ingest worker's cron trigger picks it
-- (moved forward when it is queued, so a slow re-sync is not queued twice). resync_requested_at: set
-- by the cron when it queues the document, so the consumer fetches (a reindex message does not).

CREATE TABLE url_sources (
    document_id          TEXT PRIMARY KEY,
    tenant_id            TEXT NOT NULL,
    url                  TEXT NOT NULL CHECK (length(url) <= 2048),
    interval_hours       INTEGER CHECK (interval_hours IS NULL OR interval_hours > 0),
    etag                 TEXT,
    last_modified        TEXT,
    last_fetched_at      TEXT,
    last_checked_at      TEXT,
    last_error           TEXT,
    next_check_at        TEXT,
    resync_requested_at  TEXT,
    created_at           TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    FOREIGN KEY (tenant_id, document_id) REFERENCES documents (tenant_id, id) ON DELETE CASCADE
);
CREATE INDEX url_sources_due_idx ON url_sources (next_check_at) WHERE interval_hours IS NOT NULL;
CREATE INDEX url_sources_tenant_idx ON url_sources (tenant_id);
