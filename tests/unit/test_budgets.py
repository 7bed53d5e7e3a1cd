"""edgerag.budgets.admit and the 0007 triggers on the local D1 emulator: window and month boundaries,
plan defaults and overrides, monthly totals kept from llm_calls, and the cache generation bumps."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from edgerag.budgets import BudgetExhausted, Limits, RequestLimitExceeded, admit, save_limits
from edgerag.cache import read_generation
from edgerag.counters import UsageCounters
from edgerag_local.d1 import LocalD1Database
from edgerag_local.d1.migrations import apply_migrations

MIGRATIONS = Path(__file__).resolve().parents[2] / "migrations"


def at(text: str) -> float:
    return dt.datetime.fromisoformat(text).replace(tzinfo=dt.UTC).timestamp()


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[LocalD1Database]:
    database = LocalD1Database(tmp_path / "db.sqlite")
    apply_migrations(database, MIGRATIONS)
    await database.batch(
        [
            database.prepare("INSERT INTO tenants (id, name, plan) VALUES (?, ?, ?)").bind(
                "t1", "acme", "free"
            ),
            database.prepare("INSERT INTO tenants (id, name, plan) VALUES (?, ?, ?)").bind(
                "t2", "globex", "enterprise"
            ),
        ]
    )
    yield database
    database.close()


async def call(db: LocalD1Database, tenant: str, created_at: str, tokens: int, cost: int) -> None:
    await (
        db.prepare(
            "INSERT INTO llm_calls (id, tenant_id, request_id, purpose, model, provider, prompt_tokens,"
            " completion_tokens, cost_micro_usd, status, created_at)"
            " VALUES (?1, ?2, 'req', 'chat', 'm', 'p', ?3, 0, ?4, 'ok', ?5)"
        )
        .bind(f"llm_{created_at}_{tenant}", tenant, tokens, cost, created_at)
        .run()
    )


async def test_the_window_is_the_utc_hour_and_retry_after_reaches_its_end(db: LocalD1Database) -> None:
    await save_limits(db, "t1", Limits(2, None, None))
    now = at("2026-03-04T05:59:58.500")
    assert (await admit(db, "t1", now)).requests_this_hour == 1
    assert (await admit(db, "t1", now)).requests_this_hour == 2
    with pytest.raises(RequestLimitExceeded) as refused:
        await admit(db, "t1", now)
    assert refused.value.retry_after == 2 and refused.value.headers == {"Retry-After": "2"}
    assert refused.value.extra["resets_at"] == "2026-03-04T06:00:00Z"
    assert (await admit(db, "t1", at("2026-03-04T06:00:00"))).requests_this_hour == 1


async def test_plans_differ_and_null_overrides_mean_the_plan_default(db: LocalD1Database) -> None:
    paid = await admit(db, "t2", at("2026-03-04T05:00:00"))
    assert paid.limits == Limits(1000, None, None)  # enterprise: no storage limits
    await save_limits(db, "t1", Limits(None, 50, None))
    free = await admit(db, "t1", at("2026-03-04T05:00:00"))
    assert free.limits == Limits(100, 50, None, max_documents=1_000, max_stored_bytes=2**30)


async def test_month_totals_come_from_llm_calls_per_utc_month(db: LocalD1Database) -> None:
    await save_limits(db, "t1", Limits(None, 100, None))
    await call(db, "t1", "2026-12-31T23:59:59.999Z", 100, 7)  # December's budget is used up
    await call(db, "t2", "2027-01-01T00:00:00.000Z", 10**6, 10**6)  # another tenant's
    with pytest.raises(BudgetExhausted) as refused:
        await admit(db, "t1", at("2026-12-31T23:59:59.999"))
    assert refused.value.status == 402
    assert refused.value.extra["resets_at"] == "2027-01-01T00:00:00Z"  # December rolls the year
    january = await admit(db, "t1", at("2027-01-01T00:00:00"))
    assert (january.tokens_this_month, january.cost_this_month_micro_usd) == (0, 0)


async def test_document_changes_bump_the_generation_and_a_deleted_tenant_leaves_none(
    db: LocalD1Database,
) -> None:
    assert await read_generation(db, "t1") == 0
    await db.prepare(
        "INSERT INTO documents (id, tenant_id, title, content_type, size_bytes, r2_key, content_sha256)"
        " VALUES ('d1', 't1', 'T', 'text/plain', 1, 'k', 's')"
    ).run()
    assert await read_generation(db, "t1") == 0  # queued: nothing searchable changed yet
    await db.prepare("UPDATE documents SET status = 'ready', chunk_count = 1 WHERE id = 'd1'").run()
    await db.prepare("UPDATE documents SET metadata = '{\"a\": 1}' WHERE id = 'd1'").run()
    await db.prepare("UPDATE documents SET attempts = 3 WHERE id = 'd1'").run()  # not visible in search
    assert await read_generation(db, "t1") == 2
    await db.prepare("DELETE FROM documents WHERE id = 'd1'").run()
    assert (await read_generation(db, "t1"), await read_generation(db, "t2")) == (3, 0)
    await db.prepare(
        "INSERT INTO documents (id, tenant_id, title, content_type, size_bytes, r2_key, content_sha256)"
        " VALUES ('d2', 't1', 'T', 'text/plain', 1, 'k', 's2')"
    ).run()
    await db.prepare("DELETE FROM tenants WHERE id = 't1'").run()
    left = await db.prepare("SELECT count(*) AS n FROM cache_generations").first()
    assert left["n"] == 0


async def test_counters_are_written_once_and_summed(db: LocalD1Database) -> None:
    counters = UsageCounters()
    counters.add("t1", "cache_hit:search")
    counters.add("t1", "cache_hit:search")
    counters.add("t2", "rate_limited")
    await counters.flush(db, at("2026-03-04T05:10:00"))
    await counters.flush(db, at("2026-03-04T05:11:00"))  # nothing left: no write
    counters.add("t1", "cache_hit:search")
    await counters.flush(db, at("2026-03-04T05:12:00"))
    rows = await db.prepare(
        "SELECT tenant_id, hour, name, value FROM usage_counters ORDER BY tenant_id"
    ).all()
    assert [dict(r) for r in rows["results"]] == [
        {"tenant_id": "t1", "hour": "2026-03-04T05", "name": "cache_hit:search", "value": 3},
        {"tenant_id": "t2", "hour": "2026-03-04T05", "name": "rate_limited", "value": 1},
    ]


async def test_a_failing_counter_write_does_not_raise(db: LocalD1Database) -> None:
    counters = UsageCounters()
    counters.add("no-such-tenant", "rate_limited")  # the foreign key refuses the row
    await counters.flush(db, at("2026-03-04T05:10:00"))
