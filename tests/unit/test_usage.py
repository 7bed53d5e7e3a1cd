"""Usage: cost from the price table, and one tenant-scoped ``llm_calls`` row per model call
(migrations/0004_llm_usage.sql, run through the local D1 emulator)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from dedalus.routing import ModelCatalog, ModelRoute
from dedalus.usage import UsageRecorder, cost_micro_usd, cost_usd
from edgerag.contracts.dedalus import CallContext
from edgerag.llm.config import ModelsConfig
from edgerag.llm.types import Usage
from edgerag_local.d1 import LocalD1Database
from edgerag_local.d1.errors import D1Error
from edgerag_local.d1.migrations import apply_migrations

MIGRATIONS = Path(__file__).resolve().parents[2] / "migrations"
NOW = 1767323045.678  # 2026-01-02T03:04:05.678Z

ROUTE: ModelRoute = ModelCatalog(
    ModelsConfig.model_validate(
        {
            "providers": {"oai": {"kind": "openai", "base_url": "https://api.openai.com/v1"}},
            "models": {
                "chat": "gpt",
                "catalog": {
                    "gpt": {
                        "provider": "oai",
                        "model": "gpt-4o-mini",
                        "input_usd_per_mtok": 0.282,
                        "cached_input_usd_per_mtok": 0.1,
                        "output_usd_per_mtok": 0.827,
                        "context_window": 128000,
                    }
                },
            },
        }
    )
).route("gpt")
CONTEXT = CallContext(tenant_id="t1", plan="pro", key_id="key_1", end_user="alice", request_id="req_1")


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[LocalD1Database]:
    database = LocalD1Database(tmp_path / "db.sqlite")
    apply_migrations(database, MIGRATIONS)
    await database.batch(
        [
            database.prepare("INSERT INTO tenants (id, name) VALUES (?, ?)").bind("t1", "Acme"),
            database.prepare("INSERT INTO tenants (id, name) VALUES (?, ?)").bind("t2", "Globex"),
        ]
    )
    yield database
    database.close()


async def rows(db: LocalD1Database, tenant: str | None = None) -> list[dict[str, Any]]:
    if tenant is None:
        result = await db.prepare("SELECT * FROM llm_calls ORDER BY id").all()
    else:
        result = (
            await db.prepare("SELECT * FROM llm_calls WHERE tenant_id = ?1 ORDER BY id").bind(tenant).all()
        )
    return list(result.results)


def test_cost_prices_cached_prompt_tokens_at_the_cached_rate() -> None:
    usage = Usage(prompt_tokens=1000, cached_prompt_tokens=400, completion_tokens=500)
    # 600 x 0.282 + 400 x 0.1 + 500 x 0.827 = 622.7 micro-dollars (a token costs "price" micro-dollars)
    assert cost_micro_usd(ROUTE, usage) == 623
    assert cost_usd(ROUTE, usage) == pytest.approx(0.000623)
    assert cost_micro_usd(ROUTE, Usage()) == 0
    # Cached tokens never exceed the prompt (a provider that says otherwise is clamped, not negative).
    assert cost_micro_usd(ROUTE, Usage(prompt_tokens=10, cached_prompt_tokens=50)) == 1


def test_a_million_tokens_cost_the_list_price() -> None:
    assert cost_usd(ROUTE, Usage(prompt_tokens=1_000_000)) == pytest.approx(0.282)
    assert cost_usd(ROUTE, Usage(completion_tokens=2_000_000)) == pytest.approx(1.654)


async def test_record_writes_one_tenant_scoped_row(db: LocalD1Database) -> None:
    recorder = UsageRecorder(db, clock=lambda: NOW)
    usage = Usage(prompt_tokens=1000, cached_prompt_tokens=400, completion_tokens=500)
    recorded = await recorder.record(CONTEXT, ROUTE, usage, "ok", purpose="summarize", latency_ms=12.6)
    (row,) = await rows(db)
    assert row == {
        "id": recorded.id,
        "tenant_id": "t1",
        "request_id": "req_1",
        "key_id": "key_1",
        "end_user": "alice",
        "purpose": "summarize",
        "model": "gpt",  # the configured id, not the provider's name for it
        "provider": "oai",
        "prompt_tokens": 1000,
        "completion_tokens": 500,
        "cached_prompt_tokens": 400,
        "estimated": 0,
        "cost_micro_usd": 623,
        "status": "ok",
        "error_code": None,
        "latency_ms": 13,
        "created_at": "2026-01-02T03:04:05.678Z",
    }
    assert recorded.id.startswith("llm_") and recorded.cost_micro_usd == 623
    assert await rows(db, "t2") == []


async def test_failed_and_interrupted_calls_are_recorded_with_what_they_consumed(db: LocalD1Database) -> None:
    recorder = UsageRecorder(db, clock=lambda: NOW)
    anonymous = CallContext(tenant_id="t2", request_id="req_2")
    await recorder.record(
        anonymous, ROUTE, Usage(prompt_tokens=80, estimated=True), "failed", error_code="upstream"
    )
    await recorder.record(
        anonymous,
        ROUTE,
        Usage(prompt_tokens=80, completion_tokens=7),
        "interrupted",
        error_code="interrupted",
    )
    # Both rows carry the same timestamp, so their order is not defined: pick them by status.
    by_status = {row["status"]: row for row in await rows(db, "t2")}
    failed, interrupted = by_status["failed"], by_status["interrupted"]
    assert (failed["status"], failed["error_code"], failed["estimated"]) == ("failed", "upstream", 1)
    assert (failed["key_id"], failed["end_user"]) == (None, None)
    assert (interrupted["status"], interrupted["completion_tokens"]) == ("interrupted", 7)


async def test_status_and_error_code_go_together(db: LocalD1Database) -> None:
    recorder = UsageRecorder(db, clock=lambda: NOW)
    with pytest.raises(ValueError, match="error_code"):
        await recorder.record(CONTEXT, ROUTE, Usage(), "failed")
    with pytest.raises(ValueError, match="error_code"):
        await recorder.record(CONTEXT, ROUTE, Usage(), "ok", error_code="upstream")
    # The schema enforces it too, for any other writer.
    with pytest.raises(D1Error, match="CHECK constraint failed"):
        await db.prepare(
            "INSERT INTO llm_calls (id, tenant_id, request_id, purpose, model, provider, status) "
            "VALUES ('x', 't1', 'r', 'chat', 'm', 'p', 'failed')"
        ).run()
    with pytest.raises(D1Error, match="CHECK constraint failed"):
        await db.prepare(
            "INSERT INTO llm_calls (id, tenant_id, request_id, purpose, model, provider, status) "
            "VALUES ('x', 't1', 'r', 'chat', 'm', 'p', 'maybe')"
        ).run()


async def test_rows_need_an_existing_tenant_and_go_with_it(db: LocalD1Database) -> None:
    recorder = UsageRecorder(db, clock=lambda: NOW)
    with pytest.raises(D1Error, match="FOREIGN KEY constraint failed"):
        await recorder.record(CallContext(tenant_id="nobody", request_id="r"), ROUTE, Usage(), "ok")
    await recorder.record(CONTEXT, ROUTE, Usage(prompt_tokens=1), "ok")
    await db.prepare("DELETE FROM tenants WHERE id = 't1'").run()
    assert await rows(db) == []


async def test_per_tenant_time_range_and_request_queries_use_the_indexes(db: LocalD1Database) -> None:
    recorder = UsageRecorder(db, clock=lambda: NOW)
    for _ in range(3):
        await recorder.record(CONTEXT, ROUTE, Usage(prompt_tokens=1000), "ok")
    total = await (
        db.prepare(
            "SELECT sum(cost_micro_usd) AS cost FROM llm_calls WHERE tenant_id = ?1 AND created_at >= ?2"
        )
        .bind("t1", "2026-01-01T00:00:00.000Z")
        .first("cost")
    )
    assert total == 3 * 282  # exact: integer micro-dollars
    for sql in (
        "SELECT * FROM llm_calls WHERE tenant_id = 't1' AND created_at >= '2026'",
        "SELECT * FROM llm_calls WHERE tenant_id = 't1' AND request_id = 'req_1'",
    ):
        plan = await db.prepare(f"EXPLAIN QUERY PLAN {sql}").all()
        detail = " ".join(str(r["detail"]) for r in plan.results)
        assert "USING INDEX llm_calls_tenant_" in detail, detail
