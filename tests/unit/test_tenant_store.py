"""edgerag.store.tenants against the local D1 engine: last_used_at throttling, the last-admin-key rule,
tenants addressed by id or name.

The D1 port is wrapped in a recorder that passes every statement to the real emulator and keeps its
SQL, so "no write on a fresh key" is asserted on what reached the database.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from edgerag.problems import Conflict, NotFound, ValidationFailed
from edgerag.store.tenants import TenantStore
from edgerag_local.core.clock import ManualClock
from edgerag_local.d1 import LocalD1Database
from edgerag_local.d1.migrations import apply_migrations

MIGRATIONS = Path(__file__).resolve().parents[2] / "migrations"
T0 = 1_780_000_000.0  # 2026-05-28T20:26:40Z


@dataclass
class RecordingD1:
    """A D1Database that delegates to the emulator and records the SQL of every prepared statement."""

    inner: LocalD1Database
    sql: list[str] = field(default_factory=list)

    def prepare(self, query: str) -> Any:
        self.sql.append(query)
        return self.inner.prepare(query)

    async def batch(self, statements: list[Any]) -> Any:
        return await self.inner.batch(statements)

    async def exec(self, query: str) -> Any:
        self.sql.append(query)
        return await self.inner.exec(query)

    def writes(self) -> list[str]:
        return [q for q in self.sql if q.lstrip().upper().startswith(("UPDATE", "INSERT", "DELETE"))]


@dataclass
class World:
    db: RecordingD1
    clock: ManualClock
    store: TenantStore


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[World]:
    database = LocalD1Database(tmp_path / "db.sqlite")
    apply_migrations(database, MIGRATIONS)
    recording = RecordingD1(database)
    clock = ManualClock(T0)
    yield World(recording, clock, TenantStore(recording, clock=clock))  # type: ignore[arg-type]
    database.close()


async def test_last_used_at_is_written_on_first_use_then_at_most_once_a_minute(world: World) -> None:
    tenant = await world.store.create_tenant("acme")
    issued = await world.store.issue_key(tenant.id, "ci", "read")
    assert (await world.store.get_key(tenant.id, issued.record.id)).last_used_at is None

    async def use() -> str | None:
        assert await world.store.authenticate(issued.plaintext) is not None
        return (await world.store.get_key(tenant.id, issued.record.id)).last_used_at

    assert await use() == "2026-05-28T20:26:40.000Z"
    writes = len(world.db.writes())
    world.clock.advance(30)
    for _ in range(20):
        assert await use() == "2026-05-28T20:26:40.000Z"
    assert len(world.db.writes()) == writes  # fresh: not one UPDATE reached D1
    world.clock.advance(30.5)
    assert await use() == "2026-05-28T20:27:40.500Z"
    assert len(world.db.writes()) == writes + 1


async def test_failed_authentication_writes_nothing(world: World) -> None:
    tenant = await world.store.create_tenant("acme")
    issued = await world.store.issue_key(tenant.id, "ci", "read")
    await world.store.revoke_key(tenant.id, issued.record.id)
    writes = len(world.db.writes())
    assert await world.store.authenticate(issued.plaintext) is None
    assert await world.store.authenticate(issued.plaintext[:-1] + "x") is None
    assert len(world.db.writes()) == writes
    assert (await world.store.get_key(tenant.id, issued.record.id)).last_used_at is None


async def test_a_tenant_cannot_revoke_its_last_admin_key(world: World) -> None:
    tenant = await world.store.create_tenant("acme")
    admin = await world.store.issue_key(tenant.id, "root", "admin")
    reader = await world.store.issue_key(tenant.id, "reader", "read write")
    with pytest.raises(Conflict, match="last active admin key"):
        await world.store.revoke_key(tenant.id, admin.record.id)
    assert (await world.store.get_key(tenant.id, admin.record.id)).revoked_at is None
    # Non-admin keys can always go; with a second admin key, either admin key can go (but not both).
    assert (await world.store.revoke_key(tenant.id, reader.record.id)).revoked_at is not None
    second = await world.store.issue_key(tenant.id, "root2", "admin")
    assert (await world.store.revoke_key(tenant.id, admin.record.id)).revoked_at is not None
    with pytest.raises(Conflict):
        await world.store.revoke_key(tenant.id, second.record.id)
    # Revoking an already revoked key stays idempotent, never a 409.
    assert (await world.store.revoke_key(tenant.id, admin.record.id)).revoked_at is not None


async def test_the_operator_may_revoke_the_last_admin_key(world: World) -> None:
    tenant = await world.store.create_tenant("acme")
    admin = await world.store.issue_key(tenant.id, "root", "admin")
    record = await world.store.revoke_key(tenant.id, admin.record.id, allow_lockout=True)
    assert record.revoked_at == "2026-05-28T20:26:40.000Z"
    assert await world.store.authenticate(admin.plaintext) is None


async def test_another_tenants_key_is_not_found_not_conflict(world: World) -> None:
    acme = await world.store.create_tenant("acme")
    globex = await world.store.create_tenant("globex")
    admin = await world.store.issue_key(acme.id, "root", "admin")
    with pytest.raises(NotFound):
        await world.store.revoke_key(globex.id, admin.record.id)


async def test_tenants_are_found_by_id_or_name(world: World) -> None:
    tenant = await world.store.create_tenant("acme")
    assert await world.store.find_tenant("acme") == tenant
    assert await world.store.find_tenant(tenant.id) == tenant
    with pytest.raises(NotFound):
        await world.store.find_tenant("globex")


@pytest.mark.parametrize("name", ["", "Acme", "tnt_01abc", "a b", "-lead", "x" * 65])
async def test_tenant_names_that_could_be_ambiguous_or_invalid_are_refused(world: World, name: str) -> None:
    with pytest.raises(ValidationFailed):
        await world.store.create_tenant(name)
