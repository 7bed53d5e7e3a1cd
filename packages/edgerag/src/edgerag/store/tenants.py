"""Tenants and their API keys in D1.

API keys are stored as a public lookup ``prefix`` plus a hash of the whole key: the plaintext is
returned once, at creation, and never stored. Authentication looks a key up by prefix and compares
hashes in constant time (see :mod:`edgerag.keys`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from edgerag import keys
from edgerag.ids import new_id
from edgerag.ports import D1Database
from edgerag.problems import Conflict, NotFound
from edgerag.store.d1 import fetch_all, fetch_one, now_iso, run

__all__ = ["ApiKeyRecord", "IssuedApiKey", "Principal", "TenantRecord", "TenantStore"]


@dataclass(frozen=True)
class TenantRecord:
    id: str
    name: str
    plan: str
    status: str
    created_at: str

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass(frozen=True)
class ApiKeyRecord:
    id: str
    tenant_id: str
    name: str
    prefix: str
    scopes: tuple[str, ...]
    created_at: str
    last_used_at: str | None
    revoked_at: str | None

    def to_dict(self) -> dict[str, Any]:
        return {**self.__dict__, "scopes": list(self.scopes)}


@dataclass(frozen=True)
class IssuedApiKey:
    record: ApiKeyRecord
    plaintext: str  # shown once, never stored


@dataclass(frozen=True)
class Principal:
    """Who is calling: the tenant and the scopes of the key used."""

    tenant_id: str
    key_id: str
    scopes: frozenset[keys.Scope]

    def allows(self, scope: keys.Scope) -> bool:
        return scope in self.scopes


def _tenant(row: dict[str, Any]) -> TenantRecord:
    return TenantRecord(row["id"], row["name"], row["plan"], row["status"], row["created_at"])


def _key(row: dict[str, Any]) -> ApiKeyRecord:
    return ApiKeyRecord(
        id=row["id"],
        tenant_id=row["tenant_id"],
        name=row["name"],
        prefix=row["prefix"],
        scopes=tuple(row["scopes"].split()),
        created_at=row["created_at"],
        last_used_at=row["last_used_at"],
        revoked_at=row["revoked_at"],
    )


class TenantStore:
    def __init__(self, db: D1Database) -> None:
        self._db = db

    async def create_tenant(self, name: str, plan: str = "free") -> TenantRecord:
        if await fetch_one(self._db, "SELECT id FROM tenants WHERE name = ?1", name) is not None:
            raise Conflict(f"a tenant named {name!r} already exists")
        tenant_id = new_id("tnt")
        await run(
            self._db,
            "INSERT INTO tenants (id, name, plan, status, created_at) VALUES (?1, ?2, ?3, 'active', ?4)",
            tenant_id,
            name,
            plan,
            now_iso(),
        )
        return await self.get_tenant(tenant_id)

    async def get_tenant(self, tenant_id: str) -> TenantRecord:
        row = await fetch_one(self._db, "SELECT * FROM tenants WHERE id = ?1", tenant_id)
        if row is None:
            raise NotFound(f"no tenant {tenant_id}")
        return _tenant(row)

    async def list_tenants(self) -> list[TenantRecord]:
        return [
            _tenant(r) for r in await fetch_all(self._db, "SELECT * FROM tenants ORDER BY created_at, id")
        ]

    async def issue_key(self, tenant_id: str, name: str, scopes: str) -> IssuedApiKey:
        await self.get_tenant(tenant_id)
        parsed = keys.parse_scopes(scopes)
        issued = keys.generate_api_key()
        now = now_iso()
        scope_text = " ".join(sorted(s.value for s in parsed))
        await run(
            self._db,
            "INSERT INTO api_keys (id, tenant_id, name, prefix, key_hash, scopes, created_at)"
            " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            issued.key_id,
            tenant_id,
            name,
            issued.prefix,
            keys.hash_secret(issued.plaintext),
            scope_text,
            now,
        )
        record = ApiKeyRecord(
            issued.key_id, tenant_id, name, issued.prefix, tuple(scope_text.split()), now, None, None
        )
        return IssuedApiKey(record, issued.plaintext)

    async def list_keys(self, tenant_id: str) -> list[ApiKeyRecord]:
        rows = await fetch_all(
            self._db, "SELECT * FROM api_keys WHERE tenant_id = ?1 ORDER BY created_at, id", tenant_id
        )
        return [_key(r) for r in rows]

    async def revoke_key(self, tenant_id: str, key_id: str) -> ApiKeyRecord:
        changed = await run(
            self._db,
            "UPDATE api_keys SET revoked_at = ?3 WHERE id = ?1 AND tenant_id = ?2 AND revoked_at IS NULL",
            key_id,
            tenant_id,
            now_iso(),
        )
        row = await fetch_one(
            self._db, "SELECT * FROM api_keys WHERE id = ?1 AND tenant_id = ?2", key_id, tenant_id
        )
        if row is None:
            raise NotFound(f"no API key {key_id}")
        del changed  # revoking twice is not an error: the key stays revoked
        return _key(row)

    async def authenticate(self, presented: str) -> Principal | None:
        """The principal for a presented key, or None if it is malformed, unknown, revoked or suspended."""
        try:
            prefix, plaintext = keys.parse_api_key(presented)
        except ValueError:
            return None
        row = await fetch_one(
            self._db,
            "SELECT k.id, k.tenant_id, k.key_hash, k.scopes, k.revoked_at, t.status FROM api_keys k"
            " JOIN tenants t ON t.id = k.tenant_id WHERE k.prefix = ?1",
            prefix,
        )
        if row is None or not keys.verify(plaintext, row["key_hash"]):
            return None
        if row["revoked_at"] is not None or row["status"] != "active":
            return None
        return Principal(row["tenant_id"], row["id"], frozenset(keys.parse_scopes(row["scopes"])))
