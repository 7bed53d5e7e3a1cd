-- 0007_usage_budgets: cache generations, per-hour usage counters, monthly model-usage totals and
-- per-tenant limits (plans' request limits and monthly budgets).
--
-- Keeps 0001's conventions (tenant_id on every row, cascading deletes, upper-case BEGIN/END).
--
-- * cache_generations: the number the search-result and answer caches put in their KV keys
--   (edgerag.cache). Triggers bump it in the SAME transaction as any change to a tenant's documents
--   (a status, chunk count, title or metadata change -- search filters on metadata -- or a delete),
--   so no code path can forget to invalidate and a reader never sees new chunks with an old
--   generation. It lives in D1, not KV, because KV is
--   eventually consistent (a bump could take ~60 s to reach other locations) and takes one write per
--   second per key. A missing row reads as generation 0.
-- * usage_counters: per tenant, per UTC hour ('2026-12-01T20'), named counters: 'requests' (requests
--   counted against the plan's hourly limit), 'rate_limited', 'cache_hit:<kind>', 'cache_miss:<kind>'.
--   GET /v1/usage sums them per day. The hourly limit is enforced by one conditional upsert of the
--   'requests' row (edgerag.budgets), so two isolates racing cannot both take the last request.
-- * usage_months: tokens and micro-dollars per tenant and UTC month ('2026-12'), kept by a trigger on
--   dedalus's llm_calls inserts, so the budget check reads one row instead of summing a month of calls.
-- * tenant_limits: per-tenant overrides of the plan defaults (edgerag.budgets.PLAN_DEFAULTS); NULL
--   means "the plan's default" (set a large number for effectively unlimited).

CREATE TABLE cache_generations (
    tenant_id   TEXT PRIMARY KEY REFERENCES tenants (id) ON DELETE CASCADE,
    generation  INTEGER NOT NULL DEFAULT 0 CHECK (generation >= 0)
);

-- The EXISTS guard: when a tenant is deleted its documents cascade, and the trigger must not re-create
-- the tenant's row (the tenant is already gone, so the insert would break the foreign key).
CREATE TRIGGER documents_bump_generation_on_update
AFTER UPDATE OF status, chunk_count, title, metadata ON documents
WHEN EXISTS (SELECT 1 FROM tenants WHERE id = NEW.tenant_id)
BEGIN
    INSERT INTO cache_generations (tenant_id, generation) VALUES (NEW.tenant_id, 1)
    ON CONFLICT (tenant_id) DO UPDATE SET generation = generation + 1;
END;

CREATE TRIGGER documents_bump_generation_on_delete
AFTER DELETE ON documents
WHEN EXISTS (SELECT 1 FROM tenants WHERE id = OLD.tenant_id)
BEGIN
    INSERT INTO cache_generations (tenant_id, generation) VALUES (OLD.tenant_id, 1)
    ON CONFLICT (tenant_id) DO UPDATE SET generation = generation + 1;
END;

CREATE TABLE usage_counters (
    tenant_id  TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    hour       TEXT NOT NULL CHECK (length(hour) = 13),
    name       TEXT NOT NULL CHECK (length(name) BETWEEN 1 AND 64),
    value      INTEGER NOT NULL DEFAULT 0 CHECK (value >= 0),
    PRIMARY KEY (tenant_id, hour, name)
);

CREATE TABLE usage_months (
    tenant_id          TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    month              TEXT NOT NULL CHECK (length(month) = 7),
    tokens             INTEGER NOT NULL DEFAULT 0 CHECK (tokens >= 0),
    cost_micro_usd     INTEGER NOT NULL DEFAULT 0 CHECK (cost_micro_usd >= 0),
    PRIMARY KEY (tenant_id, month)
);

CREATE TRIGGER llm_calls_month_totals
AFTER INSERT ON llm_calls
BEGIN
    INSERT INTO usage_months (tenant_id, month, tokens, cost_micro_usd)
    VALUES (NEW.tenant_id, substr(NEW.created_at, 1, 7),
            NEW.prompt_tokens + NEW.completion_tokens, NEW.cost_micro_usd)
    ON CONFLICT (tenant_id, month) DO UPDATE SET
        tokens = tokens + excluded.tokens,
        cost_micro_usd = cost_micro_usd + excluded.cost_micro_usd;
END;

CREATE TABLE tenant_limits (
    tenant_id                 TEXT PRIMARY KEY REFERENCES tenants (id) ON DELETE CASCADE,
    requests_per_hour         INTEGER CHECK (requests_per_hour >= 0),
    monthly_token_budget      INTEGER CHECK (monthly_token_budget >= 0),
    monthly_cost_budget_micro_usd INTEGER CHECK (monthly_cost_budget_micro_usd >= 0),
    updated_at                TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);
