-- 0014_evaluations: stored retrieval evaluations (POST /v1/evaluations), so a tenant can compare a run
-- before and after a configuration change.
--
-- Conventions of 0001 hold: ids are TEXT chosen by the application (eval_ + 26 characters),
-- timestamps are ISO-8601 UTC TEXT with milliseconds, tenant-owned rows carry tenant_id with ON DELETE
-- CASCADE, and a query row points at (tenant_id, evaluation_id), so it cannot belong to another
-- tenant's run. A run and all its query rows are written in one batch (all or nothing).
--
-- JSON columns hold what the API returns (edgerag.store.evaluations): config {modes, cutoffs,
-- embedding model, fusion and search settings}, summary {mode: {metric: mean}}, unresolved [{query
-- index, reference, reason}], not_ready [document ids]; per query: judgements {document id: grade}
-- and results {mode: {metrics, ranking, first_relevant_rank}} ({} when the query had nothing
-- relevant to find and was not searched).

CREATE TABLE evaluations (
    id               TEXT PRIMARY KEY,
    tenant_id        TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    name             TEXT CHECK (name IS NULL OR length(name) <= 200),
    config           TEXT NOT NULL CHECK (json_valid(config)),
    summary          TEXT NOT NULL CHECK (json_valid(summary)),
    query_count      INTEGER NOT NULL CHECK (query_count >= 0),
    evaluated_count  INTEGER NOT NULL CHECK (evaluated_count >= 0),
    unresolved       TEXT NOT NULL DEFAULT '[]' CHECK (json_valid(unresolved)),
    not_ready        TEXT NOT NULL DEFAULT '[]' CHECK (json_valid(not_ready)),
    duration_ms      REAL NOT NULL DEFAULT 0,
    created_at       TEXT NOT NULL,
    UNIQUE (tenant_id, id)
);
-- GET /v1/evaluations: newest first, (created_at, id) cursors.
CREATE INDEX evaluations_tenant_idx ON evaluations (tenant_id, created_at, id);

CREATE TABLE evaluation_queries (
    tenant_id      TEXT NOT NULL,
    evaluation_id  TEXT NOT NULL,
    seq            INTEGER NOT NULL CHECK (seq >= 0),
    query_id       TEXT,
    query          TEXT NOT NULL,
    judgements     TEXT NOT NULL CHECK (json_valid(judgements)),
    results        TEXT NOT NULL CHECK (json_valid(results)),
    PRIMARY KEY (evaluation_id, seq),
    FOREIGN KEY (tenant_id, evaluation_id) REFERENCES evaluations (tenant_id, id) ON DELETE CASCADE
);
