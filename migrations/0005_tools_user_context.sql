-- 0005_tools_user_context: dedalus's tool registry (per-tenant enablement, an audit row per call) and
-- the per-end-user context record that tools and prompts read.
--
-- Conventions of 0001 hold: tenant-owned rows carry tenant_id with ON DELETE CASCADE, timestamps are
-- ISO-8601 UTC TEXT with milliseconds.

-- Per-tenant tool switches. No row = the tool's default (workers/dedalus/src/dedalus/tools/registry.py:
-- tools needing the read or chat scope are on, tools needing write are off); a row overrides it.
CREATE TABLE tenant_tools (
    tenant_id   TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    tool        TEXT NOT NULL CHECK (length(tool) BETWEEN 1 AND 64),
    enabled     INTEGER NOT NULL CHECK (enabled IN (0, 1)),
    updated_at  TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    PRIMARY KEY (tenant_id, tool)
);

-- One row per tool call a model asked for, whatever became of it. args_sha256 is the SHA-256 (hex) of
-- the canonical JSON of the arguments (sorted keys, no spaces, UTF-8) — or of the raw text when the
-- model sent invalid JSON — so two calls can be compared without the arguments ever being stored.
-- outcome: ok | error (the tool ran and failed, or the model's answer inside it was unusable) |
-- invalid (unknown tool, invalid JSON, arguments the schema rejects) | denied (not enabled for the
-- tenant, scope missing, call budget spent) | timeout. key_id is not a foreign key: the audit outlives
-- a key.
CREATE TABLE tool_calls_audit (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id    TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    key_id       TEXT,
    end_user     TEXT,
    request_id   TEXT NOT NULL,
    tool         TEXT NOT NULL,
    args_sha256  TEXT NOT NULL CHECK (length(args_sha256) = 64),
    outcome      TEXT NOT NULL CHECK (outcome IN ('ok', 'error', 'invalid', 'denied', 'timeout')),
    latency_ms   REAL NOT NULL CHECK (latency_ms >= 0),
    created_at   TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);
CREATE INDEX tool_calls_audit_tenant_created_idx ON tool_calls_audit (tenant_id, created_at);
CREATE INDEX tool_calls_audit_request_idx ON tool_calls_audit (request_id);

-- What an end user of a tenant wants (goals, constraints, preferences): a JSON object validated by
-- edgerag.store.user_context.UserContext before it is written, and capped here too.
CREATE TABLE user_contexts (
    tenant_id   TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    end_user    TEXT NOT NULL CHECK (length(end_user) BETWEEN 1 AND 128),
    context     TEXT NOT NULL
                CHECK (json_valid(context) AND json_type(context) = 'object' AND length(context) <= 16384),
    created_at  TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    updated_at  TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    PRIMARY KEY (tenant_id, end_user)
);
