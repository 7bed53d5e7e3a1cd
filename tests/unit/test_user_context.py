"""edgerag.store.user_context on the local D1: validated, size-capped, tenant-scoped records."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from edgerag.problems import ValidationFailed
from edgerag.store.d1 import fetch_all, run
from edgerag.store.tenants import TenantStore
from edgerag.store.user_context import MAX_CONTEXT_BYTES, UserContext, UserContextStore
from edgerag_local.d1 import LocalD1Database
from edgerag_local.d1.migrations import apply_migrations
from pydantic import ValidationError

MIGRATIONS = Path(__file__).resolve().parents[2] / "migrations"


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[LocalD1Database]:
    database = LocalD1Database(tmp_path / "db.sqlite")
    apply_migrations(database, MIGRATIONS)
    yield database
    database.close()


async def test_put_get_replace_delete(db: LocalD1Database) -> None:
    tenant = await TenantStore(db).create_tenant("acme")
    store = UserContextStore(db)
    assert await store.get(tenant.id, "alice") is None

    first = await store.put(
        tenant.id, "alice", UserContext(goals=["  ship v2  "], preferences={"units": "metric"})
    )
    assert first.context.goals == ["ship v2"]  # items are trimmed
    second = await store.put(tenant.id, "alice", UserContext(constraints=["no weekends"]))
    assert second.created_at == first.created_at and second.updated_at >= first.updated_at
    fetched = await store.get(tenant.id, "alice")
    assert fetched is not None and fetched.context == UserContext(
        constraints=["no weekends"]
    )  # replaced whole
    assert fetched.to_public()["end_user"] == "alice"

    assert await store.delete(tenant.id, "alice") is True
    assert await store.delete(tenant.id, "alice") is False
    assert await store.get(tenant.id, "alice") is None


async def test_records_are_per_tenant_and_go_with_their_tenant(db: LocalD1Database) -> None:
    tenants = TenantStore(db)
    acme, globex = await tenants.create_tenant("acme"), await tenants.create_tenant("globex")
    store = UserContextStore(db)
    await store.put(acme.id, "alice", UserContext(goals=["acme goal"]))

    assert await store.get(globex.id, "alice") is None
    assert await store.delete(globex.id, "alice") is False
    assert (await store.get(acme.id, "alice")) is not None

    await run(db, "DELETE FROM tenants WHERE id = ?1", acme.id)
    assert await fetch_all(db, "SELECT * FROM user_contexts") == []  # cascaded


@pytest.mark.parametrize(
    "data",
    [
        {"goals": ["x"], "mood": "grumpy"},  # unknown field
        {"goals": [""]},
        {"goals": ["x" * 501]},
        {"goals": ["g"] * 21},
        {"preferences": {"bad key!": "v"}},
        {"preferences": {"nested": {"a": 1}}},
        {"preferences": {f"k{i}": "v" * 200 for i in range(45)}},  # under every item bound, over the total
    ],
)
def test_invalid_or_oversized_contexts_are_rejected(data: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        UserContext.model_validate(data)


def test_the_size_cap_is_on_the_canonical_json() -> None:
    context = UserContext(preferences={f"k{i}": "v" * 150 for i in range(40)})
    assert len(context.canonical_json().encode()) <= MAX_CONTEXT_BYTES


async def test_an_end_user_id_out_of_bounds_is_a_validation_problem(db: LocalD1Database) -> None:
    tenant = await TenantStore(db).create_tenant("acme")
    with pytest.raises(ValidationFailed):
        await UserContextStore(db).put(tenant.id, "", UserContext())
    with pytest.raises(ValidationFailed):
        await UserContextStore(db).put(tenant.id, "u" * 129, UserContext())
