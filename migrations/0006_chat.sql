-- 0006_chat: chat sessions and their messages, owned by (tenant, end user).
--
-- Conventions of 0001 hold: ids are TEXT chosen by the application, timestamps are ISO-8601 UTC TEXT
-- with milliseconds, tenant-owned rows carry tenant_id with ON DELETE CASCADE, and a cross-tenant
-- reference is impossible because messages point at (tenant_id, session_id), not session_id.
--
-- end_user is the X-End-User header ('' = the tenant's default end user, see
-- workers/gateway/src/gateway/enduser.py); every query filters by tenant_id AND end_user, so another
-- end user's session is as invisible as another tenant's.

CREATE TABLE chat_sessions (
    id            TEXT PRIMARY KEY,
    tenant_id     TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    end_user      TEXT NOT NULL CHECK (length(end_user) <= 128),
    title         TEXT CHECK (title IS NULL OR length(title) <= 200),
    -- NULL: retrieval over all the tenant's documents; a JSON array of document ids: only those.
    document_ids  TEXT CHECK (document_ids IS NULL OR (json_valid(document_ids)
                              AND json_type(document_ids) = 'array')),
    created_at    TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    updated_at    TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    UNIQUE (tenant_id, id)
);
CREATE INDEX chat_sessions_owner_idx ON chat_sessions (tenant_id, end_user, created_at, id);

-- seq orders a session's messages (1, 2, ...; assigned inside the INSERT, so two writers never share
-- one). status: a user message is 'complete' when stored; an assistant message is 'pending' while it
-- is generated, then 'complete', 'failed' (the model service answered an error; error holds it) or
-- 'interrupted' (the client went away or the worker stopped; content holds the partial text). The JSON
-- columns hold what the API returns: sources and citations given to/produced by the model, tool calls
-- with their results, the usage totals, the error as {code, status, message}.
CREATE TABLE chat_messages (
    id          TEXT PRIMARY KEY,
    tenant_id   TEXT NOT NULL,
    session_id  TEXT NOT NULL,
    seq         INTEGER NOT NULL CHECK (seq >= 1),
    role        TEXT NOT NULL CHECK (role IN ('user', 'assistant')),
    content     TEXT NOT NULL DEFAULT '',
    status      TEXT NOT NULL CHECK (status IN ('pending', 'complete', 'failed', 'interrupted')),
    sources     TEXT NOT NULL DEFAULT '[]' CHECK (json_valid(sources)),
    citations   TEXT NOT NULL DEFAULT '[]' CHECK (json_valid(citations)),
    confidence  REAL CHECK (confidence IS NULL OR (confidence >= 0 AND confidence <= 1)),
    tool_calls  TEXT NOT NULL DEFAULT '[]' CHECK (json_valid(tool_calls)),
    usage       TEXT CHECK (usage IS NULL OR json_valid(usage)),
    model       TEXT,
    error       TEXT CHECK (error IS NULL OR json_valid(error)),
    request_id  TEXT,
    created_at  TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    updated_at  TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    UNIQUE (session_id, seq),
    FOREIGN KEY (tenant_id, session_id) REFERENCES chat_sessions (tenant_id, id) ON DELETE CASCADE
);
CREATE INDEX chat_messages_session_idx ON chat_messages (tenant_id, session_id, seq);
-- Finds messages a stopped worker left 'pending' (recovered as 'interrupted' when the session is read).
CREATE INDEX chat_messages_pending_idx ON chat_messages (tenant_id, session_id) WHERE status = 'pending';
