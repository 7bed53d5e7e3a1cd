"""Tenants and their API keys in D1.

API keys are stored as a public lookup ``prefix`` plus a hash of the whole key: the plaintext is
returned once, at creation, and never stored. Authentication looks a key up by prefix and compares
hashes in constant time (see :mod:`edgerag.keys`).

Rules this store keeps (so every caller, HTTP or CLI, gets them):

* A tenant is addressed by id (``tnt_...``) or by name (:meth:`TenantStore.find_tenant`): names are
  lower-case letters, digits and ``-`` (:data:`TENANT_NAME`), ids contain ``_``, so a reference can
  never mean two tenants.
* ``last_used_at`` is written at most once per :data:`LAST_USED_RESOLUTION_S` per key, not on every
  request: authentication already reads the stored value, skips the write while it is fresh, and the
  write itself is one conditional ``UPDATE`` (the staleness test is in its ``WHERE``), so concurrent
  isolates racing on a stale value still write once.
* A tenant cannot revoke its last active ``admin`` key (409): with none left it could no longer manage
  its keys. The operator can (``allow_lockout=True``): the admin API and the CLI are how a tenant is
  rescued, and revoking everything is the operator's answer to a leaked key.

Time comes from the injectable ``clock`` (seconds since the epoch, like ``time.time``), so tests move
it instead of sleeping.
"""

from __future__ import annotations

import datetime as dt
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

from edgerag import keys
from edgerag.ids import new_id
from edgerag.ports import D1Database
from edgerag.problems import Conflict, NotFound, ValidationFailed
from edgerag.store.d1 import fetch_all, fetch_one, run

__all__ = [
    "LAST_USED_RESOLUTION_S",
    "TENANT_NAME",
    "ApiKeyRecord",
    "IssuedApiKey",
    "Principal",
    "TenantRecord",
    "TenantStore",
]

# How stale a key's last_used_at may get before a request refreshes it.
LAST_USED_RESOLUTION_S: Final = 60
TENANT_NAME: Final = r"^[a-z0-9][a-z0-9-]{0,63}$"
_TENANT_NAME = re.compile(TENANT_NAME)
# Scopes are stored space-separated and expanded, so an admin key's row always holds the word "admin".
_IS_ADMIN = "(' ' || {col} || ' ') LIKE '% admin %'"


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


def _iso(seconds: float) -> str:
    """``seconds`` since the epoch as the ISO-8601 text the schema stores (ms precision, ``Z``)."""
    moment = dt.datetime.fromtimestamp(seconds, dt.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


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
    def __init__(self, db: D1Database, *, clock: Callable[[], float] = time.time) -> None:
        self._db = db
        self._clock = clock

    def _now(self) -> str:
        return _iso(self._clock())

    async def create_tenant(self, name: str, plan: str = "free") -> TenantRecord:
        if not _TENANT_NAME.match(name):
            raise ValidationFailed(
                f"invalid tenant name {name!r}: use 1-64 lower-case letters, digits and '-', "
                "starting with a letter or digit",
                errors=[{"loc": ["body", "name"], "msg": "invalid tenant name", "type": "string_pattern"}],
            )
        if await fetch_one(self._db, "SELECT id FROM tenants WHERE name = ?1", name) is not None:
            raise Conflict(f"a tenant named {name!r} already exists")
        tenant_id = new_id("tnt")
        await run(
            self._db,
            "INSERT INTO tenants (id, name, plan, status, created_at) VALUES (?1, ?2, ?3, 'active', ?4)",
            tenant_id,
            name,
            plan,
            self._now(),
        )
        return await self.get_tenant(tenant_id)

    async def get_tenant(self, tenant_id: str) -> TenantRecord:
        row = await fetch_one(self._db, "SELECT * FROM tenants WHERE id = ?1", tenant_id)
        if row is None:
            raise NotFound(f"no tenant {tenant_id}")
        return _tenant(row)

    async def find_tenant(self, ref: str) -> TenantRecord:
        """The tenant whose id or name is ``ref`` (names cannot look like ids, so at most one matches)."""
        row = await fetch_one(self._db, "SELECT * FROM tenants WHERE id = ?1 OR name = ?1", ref)
        if row is None:
            raise NotFound(f"no tenant named or with id {ref!r}")
        return _tenant(row)

    async def list_tenants(self) -> list[TenantRecord]:
        return [
            _tenant(r) for r in await fetch_all(self._db, "SELECT * FROM tenants ORDER BY created_at, id")
        ]

    async def issue_key(self, tenant_id: str, name: str, scopes: str) -> IssuedApiKey:
        await self.get_tenant(tenant_id)
        parsed = keys.parse_scopes(scopes)
        issued = keys.generate_api_key()
        now = self._now()
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

    async def get_key(self, tenant_id: str, key_id: str) -> ApiKeyRecord:
        row = await fetch_one(
            self._db, "SELECT * FROM api_keys WHERE id = ?1 AND tenant_id = ?2", key_id, tenant_id
        )
        if row is None:
            raise NotFound(f"no API key {key_id}")
        return _key(row)

    async def revoke_key(self, tenant_id: str, key_id: str, *, allow_lockout: bool = False) -> ApiKeyRecord:
        """Revoke a key (revoking twice is not an error: the key stays revoked).

        Unless ``allow_lockout`` (the operator's path), refuses with :class:`Conflict` to revoke the
        tenant's last active admin key. The rule is in the UPDATE's ``WHERE``, so two concurrent
        revocations of a tenant's last two admin keys cannot both succeed.
        """
        guard = (
            ""
            if allow_lockout
            else (
                f" AND (NOT {_IS_ADMIN.format(col='scopes')} OR EXISTS (SELECT 1 FROM api_keys o"
                f" WHERE o.tenant_id = ?2 AND o.id <> ?1 AND o.revoked_at IS NULL"
                f" AND {_IS_ADMIN.format(col='o.scopes')}))"
            )
        )
        changed = await run(
            self._db,
            "UPDATE api_keys SET revoked_at = ?3 WHERE id = ?1 AND tenant_id = ?2 AND revoked_at IS NULL"
            + guard,
            key_id,
            tenant_id,
            self._now(),
        )
        record = await self.get_key(tenant_id, key_id)
        if not changed and record.revoked_at is None:
            raise Conflict(
                f"{key_id} is this tenant's last active admin key: revoking it would leave no key that "
                "can manage keys. Create another admin key first (or ask the operator)."
            )
        return record

    async def authenticate(self, presented: str) -> Principal | None:
        """The principal for a presented key, or None if it is malformed, unknown, revoked or suspended.

        Refreshes the key's ``last_used_at`` when it is older than :data:`LAST_USED_RESOLUTION_S`.
        """
        try:
            prefix, plaintext = keys.parse_api_key(presented)
        except ValueError:
            return None
        row = await fetch_one(
            self._db,
            "SELECT k.id, k.tenant_id, k.key_hash, k.scopes, k.revoked_at, k.last_used_at, t.status"
            " FROM api_keys k JOIN tenants t ON t.id = k.tenant_id WHERE k.prefix = ?1",
            prefix,
        )
        if row is None or not keys.verify(plaintext, row["key_hash"]):
            return None
        if row["revoked_at"] is not None or row["status"] != "active":
            return None
        await self._touch(row["id"], row["last_used_at"])
        return Principal(row["tenant_id"], row["id"], frozenset(keys.parse_scopes(row["scopes"])))

    async def _touch(self, key_id: str, last_used_at: str | None) -> None:
        now = self._clock()
        stale_before = _iso(now - LAST_USED_RESOLUTION_S)
        # ISO-8601 UTC text with fixed width sorts as time, so staleness is a string comparison.
        if last_used_at is not None and last_used_at > stale_before:
            return  # fresh: no statement at all on most requests
        await run(
            self._db,
            "UPDATE api_keys SET last_used_at = ?2"
            " WHERE id = ?1 AND (last_used_at IS NULL OR last_used_at <= ?3)",
            key_id,
            _iso(now),
            stale_before,
        )
