-- 0008_safety: each tenant's safety policy and a record of the content the safety checks flagged.
--
-- Conventions of 0001 hold: tenant-owned rows carry tenant_id with ON DELETE CASCADE, timestamps are
-- ISO-8601 UTC TEXT with milliseconds.

-- One policy per tenant: a JSON object validated by edgerag.safety.policy.SafetyPolicy before it is
-- written (input limit, deny-list rules, the threshold and actions for flagged content, output
-- redaction rules). No row = the default policy.
CREATE TABLE safety_policies (
    tenant_id   TEXT PRIMARY KEY REFERENCES tenants (id) ON DELETE CASCADE,
    policy      TEXT NOT NULL
                CHECK (json_valid(policy) AND json_type(policy) = 'object' AND length(policy) <= 65536),
    updated_at  TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);

-- One row per flagged piece of content. The content itself is never stored: content_sha256 (hex
-- SHA-256 of its UTF-8 text) lets two flags of the same text be matched, and excerpt is a short window
-- (at most 200 characters) around what fired, with secrets redacted, for a human to review.
-- location: user_message | source (chunk_id names the chunk) | output. kind: injection (reasons are
-- the detector's rules) | denylist (reasons are deny:<rule>) | length (reasons: too_long) | redaction
-- (output only; reasons name what was redacted, the excerpt is the redaction marker). action: allowed
-- (recorded only) | blocked (the request was refused) | dropped (the source was left out) | redacted.
-- key_id is not a foreign key: the record outlives a key.
CREATE TABLE safety_flags (
    id              TEXT PRIMARY KEY,
    tenant_id       TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    end_user        TEXT NOT NULL DEFAULT '' CHECK (length(end_user) <= 128),
    key_id          TEXT,
    request_id      TEXT NOT NULL CHECK (length(request_id) BETWEEN 1 AND 128),
    location        TEXT NOT NULL CHECK (location IN ('user_message', 'source', 'output')),
    chunk_id        TEXT,
    kind            TEXT NOT NULL CHECK (kind IN ('injection', 'denylist', 'length', 'redaction')),
    score           REAL NOT NULL CHECK (score >= 0 AND score <= 1),
    reasons         TEXT NOT NULL CHECK (json_valid(reasons) AND json_type(reasons) = 'array'),
    action          TEXT NOT NULL CHECK (action IN ('allowed', 'blocked', 'dropped', 'redacted')),
    content_sha256  TEXT NOT NULL CHECK (length(content_sha256) = 64),
    excerpt         TEXT NOT NULL DEFAULT '' CHECK (length(excerpt) <= 200),
    created_at      TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);
CREATE INDEX safety_flags_tenant_created_idx ON safety_flags (tenant_id, created_at, id);
CREATE INDEX safety_flags_request_idx ON safety_flags (tenant_id, request_id);
