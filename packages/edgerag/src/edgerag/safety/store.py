"""The safety tables in D1: each tenant's policy and the record of flagged content.

Every statement filters by the tenant (migrations/0008_safety.sql). A policy is stored as the canonical
JSON of a validated :class:`~edgerag.safety.policy.SafetyPolicy`; a tenant without one gets
:data:`~edgerag.safety.policy.DEFAULT_POLICY`. A :class:`Flag` keeps a hash of the flagged text and a
short redacted excerpt, never the text itself: flagged content may be a user's secret or an attacker's
payload, and neither belongs in a log table.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Literal

from edgerag.ids import new_id
from edgerag.ports import D1Database
from edgerag.safety.output import filter_output
from edgerag.safety.policy import DEFAULT_POLICY, SafetyPolicy
from edgerag.store.d1 import fetch_all, fetch_one, now_iso, statement

__all__ = ["MAX_EXCERPT_CHARS", "Flag", "FlagRecord", "SafetyStore", "content_hash", "excerpt_of"]

MAX_EXCERPT_CHARS: Final = 200
Location = Literal["user_message", "source", "output"]
Kind = Literal["injection", "denylist", "length", "redaction"]
Action = Literal["allowed", "blocked", "dropped", "redacted"]


def content_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def excerpt_of(text: str) -> str:
    """At most :data:`MAX_EXCERPT_CHARS` characters, secrets redacted, on one line."""
    redacted, _ = filter_output(" ".join(text.split()))
    return redacted if len(redacted) <= MAX_EXCERPT_CHARS else redacted[: MAX_EXCERPT_CHARS - 1] + "…"


@dataclass(frozen=True)
class Flag:
    """What a check flagged, to be recorded (see migrations/0008_safety.sql for the columns)."""

    location: Location
    kind: Kind
    score: float
    reasons: Sequence[str]
    action: Action
    content: str = field(repr=False)
    excerpt: str = ""
    chunk_id: str | None = None


@dataclass(frozen=True)
class FlagRecord:
    id: str
    end_user: str
    key_id: str | None
    request_id: str
    location: Location
    chunk_id: str | None
    kind: Kind
    score: float
    reasons: list[str]
    action: Action
    content_sha256: str
    excerpt: str
    created_at: str


def _flag_record(row: dict[str, Any]) -> FlagRecord:
    fields = {k: v for k, v in row.items() if k != "tenant_id"}
    return FlagRecord(**{**fields, "reasons": json.loads(row["reasons"]), "score": float(row["score"])})


class SafetyStore:
    def __init__(self, db: D1Database) -> None:
        self._db = db

    async def get_policy(self, tenant_id: str) -> tuple[SafetyPolicy, str | None]:
        """The tenant's policy and when it was last written (None: never, the default applies)."""
        row = await fetch_one(
            self._db, "SELECT policy, updated_at FROM safety_policies WHERE tenant_id = ?1", tenant_id
        )
        if row is None:
            return DEFAULT_POLICY, None
        return SafetyPolicy.model_validate_json(row["policy"]), str(row["updated_at"])

    async def put_policy(self, tenant_id: str, policy: SafetyPolicy) -> str:
        """Replace the tenant's policy (one upsert); returns its ``updated_at``."""
        updated_at = now_iso()
        await statement(
            self._db,
            "INSERT INTO safety_policies (tenant_id, policy, updated_at) VALUES (?1, ?2, ?3)"
            " ON CONFLICT (tenant_id) DO UPDATE SET policy = excluded.policy,"
            " updated_at = excluded.updated_at",
            tenant_id,
            policy.model_dump_json(),
            updated_at,
        ).run()
        return updated_at

    async def record(
        self,
        tenant_id: str,
        flags: Sequence[Flag],
        *,
        request_id: str,
        end_user: str = "",
        key_id: str | None = None,
    ) -> list[str]:
        """Insert the flags in one batch; returns their ids."""
        if not flags:
            return []
        ids = [new_id("flg") for _ in flags]
        created_at = now_iso()
        await self._db.batch(
            [
                statement(
                    self._db,
                    "INSERT INTO safety_flags (id, tenant_id, end_user, key_id, request_id, location,"
                    " chunk_id, kind, score, reasons, action, content_sha256, excerpt, created_at)"
                    " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
                    flag_id,
                    tenant_id,
                    end_user,
                    key_id,
                    request_id,
                    flag.location,
                    flag.chunk_id,
                    flag.kind,
                    min(1.0, max(0.0, float(flag.score))),
                    json.dumps(list(flag.reasons)),
                    flag.action,
                    content_hash(flag.content),
                    excerpt_of(flag.excerpt or flag.content),
                    created_at,
                )
                for flag_id, flag in zip(ids, flags, strict=True)
            ]
        )
        return ids

    async def list_flags(
        self, tenant_id: str, *, limit: int = 50, before: str | None = None, request_id: str | None = None
    ) -> list[FlagRecord]:
        """Newest first (ids sort by creation time); ``before`` is the last id of the previous page."""
        clauses, params = ["tenant_id = ?1"], [tenant_id]
        if before is not None:
            params.append(before)
            clauses.append(f"id < ?{len(params)}")
        if request_id is not None:
            params.append(request_id)
            clauses.append(f"request_id = ?{len(params)}")
        rows = await fetch_all(
            self._db,
            f"SELECT * FROM safety_flags WHERE {' AND '.join(clauses)} ORDER BY id DESC LIMIT {int(limit)}",
            *params,
        )
        return [_flag_record(row) for row in rows]
