-- 0001_initial: tenants, API keys, documents, chunks with their FTS5 keyword index, usage events.
--
-- Applied remotely by `wrangler d1 migrations apply` and locally by edgerag_local.migrations, both
-- recording the file name in d1_migrations. Never edit this file once deployed: add 0002_*.sql.
--
-- Conventions (every later migration keeps them):
-- * Ids are TEXT chosen by the application; timestamps are ISO-8601 UTC TEXT with milliseconds
--   ('2026-01-02T03:04:05.678Z'), so they sort as strings.
-- * Every tenant-owned row carries tenant_id and every query filters by it. Foreign keys make a
--   cross-tenant reference impossible: chunks point at (tenant_id, document_id), not document_id.
-- * D1 enforces foreign keys, so ON DELETE CASCADE really runs: deleting a tenant removes its keys,
--   documents, chunks (and their FTS rows, through the chunk delete trigger) and usage events.
-- * Trigger bodies use upper-case BEGIN and END on their own lines: wrangler's local statement
--   splitter only recognises that spelling (a lower-case body is cut at its first semicolon).
-- * Write chunks with INSERT ... ON CONFLICT DO UPDATE, never INSERT OR REPLACE: the implicit
--   delete of REPLACE does not fire delete triggers, which would leave stale rows in chunks_fts.

CREATE TABLE tenants (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    plan        TEXT NOT NULL DEFAULT 'free',
    status      TEXT NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'suspended')),
    created_at  TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);

-- An API key is shown once as "er_<prefix>_<secret>"; only the prefix (the public lookup part) and a
-- hash of the whole key are stored. scopes is a space-separated list ("read write admin").
CREATE TABLE api_keys (
    id            TEXT PRIMARY KEY,
    tenant_id     TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    name          TEXT NOT NULL,
    prefix        TEXT NOT NULL UNIQUE,
    key_hash      TEXT NOT NULL,
    scopes        TEXT NOT NULL,
    created_at    TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    last_used_at  TEXT,
    revoked_at    TEXT
);
CREATE INDEX api_keys_tenant_idx ON api_keys (tenant_id);

-- One uploaded file. The bytes live in R2 under r2_key; status follows the ingest pipeline:
-- queued -> processing -> ready | failed (error says why; attempts counts processing runs).
-- metadata is a JSON object supplied by the client.
CREATE TABLE documents (
    id              TEXT PRIMARY KEY,
    tenant_id       TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    title           TEXT NOT NULL,
    filename        TEXT,
    content_type    TEXT NOT NULL,
    size_bytes      INTEGER NOT NULL CHECK (size_bytes >= 0),
    r2_key          TEXT NOT NULL,
    content_sha256  TEXT NOT NULL,
    status          TEXT NOT NULL DEFAULT 'queued'
                    CHECK (status IN ('queued', 'processing', 'ready', 'failed')),
    error           TEXT,
    chunk_count     INTEGER NOT NULL DEFAULT 0 CHECK (chunk_count >= 0),
    metadata        TEXT NOT NULL DEFAULT '{}'
                    CHECK (json_valid(metadata) AND json_type(metadata) = 'object'),
    attempts        INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    created_at      TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    updated_at      TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    -- The target of the chunks foreign key, which pins a chunk to its document's tenant.
    UNIQUE (tenant_id, id)
);
CREATE INDEX documents_tenant_created_idx ON documents (tenant_id, created_at);

-- One retrievable passage of a document. rid is the rowid the FTS index points at: an explicit
-- INTEGER PRIMARY KEY alias, because an implicit rowid may be renumbered by VACUUM, which would
-- silently detach chunks_fts from its content. Applications address chunks by id.
CREATE TABLE chunks (
    rid          INTEGER PRIMARY KEY,
    id           TEXT NOT NULL UNIQUE,
    tenant_id    TEXT NOT NULL,
    document_id  TEXT NOT NULL,
    seq          INTEGER NOT NULL CHECK (seq >= 0),
    text         TEXT NOT NULL,
    title        TEXT NOT NULL DEFAULT '',
    char_start   INTEGER,
    char_end     INTEGER,
    token_count  INTEGER,
    created_at   TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    UNIQUE (document_id, seq),
    FOREIGN KEY (tenant_id, document_id) REFERENCES documents (tenant_id, id) ON DELETE CASCADE
);
CREATE INDEX chunks_tenant_document_idx ON chunks (tenant_id, document_id);

-- Keyword index over chunk titles and texts. External content: the text is stored once, in
-- chunks; the triggers below keep the index in step with every insert, update and delete
-- (including deletes cascaded from documents and tenants). Query it joined back to chunks and
-- filtered by tenant:
--   SELECT c.id, bm25(chunks_fts) AS score FROM chunks_fts JOIN chunks c ON c.rid = chunks_fts.rowid
--   WHERE chunks_fts MATCH ?1 AND c.tenant_id = ?2 ORDER BY score LIMIT ?3
CREATE VIRTUAL TABLE chunks_fts USING fts5 (
    title,
    text,
    content = 'chunks',
    content_rowid = 'rid',
    tokenize = 'porter unicode61 remove_diacritics 2'
);

CREATE TRIGGER chunks_fts_after_insert AFTER INSERT ON chunks
BEGIN
    INSERT INTO chunks_fts (rowid, title, text) VALUES (new.rid, new.title, new.text);
END;

CREATE TRIGGER chunks_fts_after_delete AFTER DELETE ON chunks
BEGIN
    INSERT INTO chunks_fts (chunks_fts, rowid, title, text)
    VALUES ('delete', old.rid, old.title, old.text);
END;

CREATE TRIGGER chunks_fts_after_update AFTER UPDATE OF rid, title, text ON chunks
BEGIN
    INSERT INTO chunks_fts (chunks_fts, rowid, title, text)
    VALUES ('delete', old.rid, old.title, old.text);
    INSERT INTO chunks_fts (rowid, title, text) VALUES (new.rid, new.title, new.text);
END;

-- Metered activity (tokens, embeddings, uploads, ...), appended by the workers.
CREATE TABLE usage_events (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id   TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    kind        TEXT NOT NULL,
    units       INTEGER NOT NULL,
    detail      TEXT,
    created_at  TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);
CREATE INDEX usage_events_tenant_created_idx ON usage_events (tenant_id, created_at);
