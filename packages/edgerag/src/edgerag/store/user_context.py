"""Per-tenant, per-end-user context in D1: what an end user wants (goals, constraints, preferences).

Prompts and the ``get_user_context`` tool read it; the gateway's endpoints write it. A record is keyed
by ``(tenant_id, end_user)`` (migrations/0005_tools_user_context.sql), and every statement here filters
by the tenant, so one tenant's end user "alice" is never another tenant's "alice".

The record is validated JSON (:class:`UserContext`, ``extra="forbid"``) capped at
:data:`MAX_CONTEXT_BYTES` of canonical JSON: it goes into prompts, so its size is bounded before it is
stored, not when a prompt is built. To add a field: add it to :class:`UserContext` with its own bounds
(old rows stay valid as long as the field has a default).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Annotated, Any, Final

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from edgerag.ports import D1Database
from edgerag.problems import ValidationFailed
from edgerag.store.d1 import fetch_one, now_iso, run

__all__ = ["MAX_CONTEXT_BYTES", "UserContext", "UserContextRecord", "UserContextStore"]

MAX_CONTEXT_BYTES: Final = 8192
MAX_END_USER_CHARS: Final = 128  # CallContext.end_user's bound

_Item = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500)]
_Key = Annotated[str, StringConstraints(pattern=r"^[A-Za-z][A-Za-z0-9_.-]{0,63}$")]
_Value = Annotated[str, StringConstraints(max_length=500)] | int | float | bool | None


class UserContext(BaseModel):
    """An end user's goals, constraints and preferences (``{"tone": "formal", "units": "metric"}``)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    goals: list[_Item] = Field(default_factory=list, max_length=20)
    constraints: list[_Item] = Field(default_factory=list, max_length=20)
    preferences: dict[_Key, _Value] = Field(default_factory=dict, max_length=50)

    @model_validator(mode="after")
    def _bounded(self) -> UserContext:
        size = len(self.canonical_json().encode("utf-8"))
        if size > MAX_CONTEXT_BYTES:
            raise ValueError(f"the user context is {size} bytes of JSON; at most {MAX_CONTEXT_BYTES}")
        return self

    def canonical_json(self) -> str:
        return json.dumps(self.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))


@dataclass(frozen=True)
class UserContextRecord:
    tenant_id: str
    end_user: str
    context: UserContext
    created_at: str
    updated_at: str

    def to_public(self) -> dict[str, Any]:
        return {
            "end_user": self.end_user,
            **self.context.model_dump(mode="json"),
            "created_at": self.created_at,
            "updated_at": self.updated_at,
        }


def _record(row: dict[str, Any]) -> UserContextRecord:
    return UserContextRecord(
        tenant_id=row["tenant_id"],
        end_user=row["end_user"],
        context=UserContext.model_validate_json(row["context"]),
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


class UserContextStore:
    def __init__(self, db: D1Database) -> None:
        self._db = db

    async def get(self, tenant_id: str, end_user: str) -> UserContextRecord | None:
        row = await fetch_one(
            self._db,
            "SELECT * FROM user_contexts WHERE tenant_id = ?1 AND end_user = ?2",
            tenant_id,
            end_user,
        )
        return None if row is None else _record(row)

    async def put(self, tenant_id: str, end_user: str, context: UserContext) -> UserContextRecord:
        """Create or replace the record (one upsert, so two writers never leave two rows)."""
        if not 1 <= len(end_user) <= MAX_END_USER_CHARS:
            raise ValidationFailed(f"an end user id has 1 to {MAX_END_USER_CHARS} characters")
        row = await fetch_one(
            self._db,
            "INSERT INTO user_contexts (tenant_id, end_user, context, created_at, updated_at)"
            " VALUES (?1, ?2, ?3, ?4, ?4)"
            " ON CONFLICT (tenant_id, end_user) DO UPDATE SET context = excluded.context,"
            " updated_at = excluded.updated_at RETURNING *",
            tenant_id,
            end_user,
            context.canonical_json(),
            now_iso(),
        )
        if row is None:  # RETURNING always yields the row it wrote
            raise RuntimeError("the user context upsert returned no row")
        return _record(row)

    async def delete(self, tenant_id: str, end_user: str) -> bool:
        changed = await run(
            self._db,
            "DELETE FROM user_contexts WHERE tenant_id = ?1 AND end_user = ?2",
            tenant_id,
            end_user,
        )
        return changed > 0
