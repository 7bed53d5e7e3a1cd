-- 0004_llm_usage: one row per model call dedalus makes, for budgets, billing and request traces.
--
-- Written by dedalus.usage.UsageRecorder (one INSERT per call, tenant-scoped like every other row),
-- after the call ends: status says how ('ok', 'failed' after retries and fallbacks, or 'interrupted'
-- when a stream broke after tokens were sent). A failed call still records whatever the provider
-- reported as consumed, so billing sees every token that was paid for.
--
-- Cost is INTEGER micro-dollars (1e-6 USD), not REAL dollars: sums over millions of rows stay exact
-- (floating-point sums drift and depend on the order of addition), and with prices in USD per million
-- tokens a token costs exactly "price" micro-dollars, so cost_micro_usd = tokens x price, rounded to
-- the nearest micro-dollar once per call.
--
-- key_id and end_user are what the gateway authenticated (CallContext), NULL when unknown; key_id has no
-- foreign key because keys are revoked, not deleted, and operator calls have no key. model is the
-- configured id (the catalog key), provider the configured provider name.

CREATE TABLE llm_calls (
    id                    TEXT PRIMARY KEY,
    tenant_id             TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    request_id            TEXT NOT NULL,
    key_id                TEXT,
    end_user              TEXT,
    purpose               TEXT NOT NULL,
    model                 TEXT NOT NULL,
    provider              TEXT NOT NULL,
    prompt_tokens         INTEGER NOT NULL DEFAULT 0 CHECK (prompt_tokens >= 0),
    completion_tokens     INTEGER NOT NULL DEFAULT 0 CHECK (completion_tokens >= 0),
    cached_prompt_tokens  INTEGER NOT NULL DEFAULT 0
                          CHECK (cached_prompt_tokens >= 0 AND cached_prompt_tokens <= prompt_tokens),
    estimated             INTEGER NOT NULL DEFAULT 0 CHECK (estimated IN (0, 1)),
    cost_micro_usd        INTEGER NOT NULL DEFAULT 0 CHECK (cost_micro_usd >= 0),
    status                TEXT NOT NULL CHECK (status IN ('ok', 'failed', 'interrupted')),
    error_code            TEXT,
    latency_ms            INTEGER NOT NULL DEFAULT 0 CHECK (latency_ms >= 0),
    created_at            TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    CHECK ((status = 'ok') = (error_code IS NULL))
);
-- Budgets and billing read a tenant's calls over a time range; traces read one request's calls.
CREATE INDEX llm_calls_tenant_created_idx ON llm_calls (tenant_id, created_at);
CREATE INDEX llm_calls_tenant_request_idx ON llm_calls (tenant_id, request_id);
