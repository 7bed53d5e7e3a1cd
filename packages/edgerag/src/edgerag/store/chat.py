"""Chat sessions and messages in D1 (migrations/0006_chat.sql), owned by (tenant, end user).

Every session statement filters by the tenant AND the end user, so another tenant's or another end
user's session answers :class:`~edgerag.problems.NotFound` exactly like one that does not exist.
Message statements filter by the tenant and a session id that the caller has just resolved through
:meth:`ChatStore.get_session` (the routes always do; the foreign key on ``(tenant_id, session_id)``
makes a cross-tenant message impossible anyway). Deleting a session deletes its messages (cascade).

A turn is two rows written in one batch (:meth:`ChatStore.start_turn`): the user message
(``complete``) and the assistant message (``pending``). The assistant row is finished exactly once with
:meth:`ChatStore.finish_message` (``complete`` / ``failed`` / ``interrupted``), or, for a turn the model
service refused outright, both rows are removed with :meth:`ChatStore.discard_turn`. A worker that
stops mid-generation cannot finish its row (:meth:`ChatStore.checkpoint` saves the partial text
now and then while it streams), so readers call :meth:`ChatStore.recover_pending`, which
marks pending rows older than a bound as ``interrupted`` (see gateway.chat for the bound).

Timestamps come from the injected clock (the gateway's ``get_clock``), so tests can move time. Message
order is ``seq`` (1, 2, ... per session, assigned inside the INSERT), never a timestamp: two messages
written in the same millisecond still have one order. To add a column: a migration, the dataclass
field, ``_message``/``_session`` and, if clients see it, the route's model.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from edgerag.ids import new_id
from edgerag.ports import D1Database
from edgerag.problems import NotFound
from edgerag.store.d1 import fetch_all, fetch_one, run, statement

__all__ = [
    "ChatStore",
    "MessageRecord",
    "MessageStatus",
    "Role",
    "SessionRecord",
    "TurnRows",
]

Role = Literal["user", "assistant"]
MessageStatus = Literal["pending", "complete", "failed", "interrupted"]

_SESSION_COLUMNS = (
    "s.*, (SELECT COUNT(*) FROM chat_messages m WHERE m.tenant_id = s.tenant_id AND m.session_id = s.id)"
    " AS message_count"
)


def _iso(seconds: float) -> str:
    moment = dt.datetime.fromtimestamp(seconds, dt.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


@dataclass(frozen=True)
class SessionRecord:
    id: str
    tenant_id: str
    end_user: str
    title: str | None
    document_ids: tuple[str, ...] | None  # None: every document of the tenant
    message_count: int
    created_at: str
    updated_at: str


@dataclass(frozen=True)
class MessageRecord:
    id: str
    session_id: str
    seq: int
    role: Role
    content: str
    status: MessageStatus
    created_at: str
    updated_at: str
    sources: list[dict[str, Any]] = field(default_factory=list)
    citations: list[dict[str, Any]] = field(default_factory=list)
    confidence: float | None = None
    tool_calls: list[dict[str, Any]] = field(default_factory=list)
    usage: dict[str, Any] | None = None
    model: str | None = None
    error: dict[str, Any] | None = None
    request_id: str | None = None


@dataclass(frozen=True)
class TurnRows:
    user: MessageRecord
    assistant: MessageRecord


def _session(row: dict[str, Any]) -> SessionRecord:
    ids = row["document_ids"]
    return SessionRecord(
        id=row["id"],
        tenant_id=row["tenant_id"],
        end_user=row["end_user"],
        title=row["title"],
        document_ids=None if ids is None else tuple(json.loads(ids)),
        message_count=int(row.get("message_count") or 0),
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


def _message(row: dict[str, Any]) -> MessageRecord:
    def loads(name: str) -> Any:
        value = row[name]
        return None if value is None else json.loads(value)

    return MessageRecord(
        id=row["id"],
        session_id=row["session_id"],
        seq=int(row["seq"]),
        role=row["role"],
        content=row["content"],
        status=row["status"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        sources=loads("sources") or [],
        citations=loads("citations") or [],
        confidence=row["confidence"],
        tool_calls=loads("tool_calls") or [],
        usage=loads("usage"),
        model=row["model"],
        error=loads("error"),
        request_id=row["request_id"],
    )


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


class ChatStore:
    def __init__(self, db: D1Database, *, clock: Callable[[], float] = time.time) -> None:
        self._db = db
        self._clock = clock

    def _now(self) -> str:
        return _iso(self._clock())

    # -- sessions -------------------------------------------------------------------------------------

    async def create_session(
        self, tenant_id: str, end_user: str, *, title: str | None, document_ids: Sequence[str] | None
    ) -> SessionRecord:
        now = self._now()
        session_id = new_id("ses", clock=self._clock)
        await run(
            self._db,
            "INSERT INTO chat_sessions (id, tenant_id, end_user, title, document_ids, created_at, updated_at)"
            " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6)",
            session_id,
            tenant_id,
            end_user,
            title,
            None if document_ids is None else _dumps(list(document_ids)),
            now,
        )
        return SessionRecord(
            session_id,
            tenant_id,
            end_user,
            title,
            None if document_ids is None else tuple(document_ids),
            0,
            now,
            now,
        )

    async def get_session(self, tenant_id: str, end_user: str, session_id: str) -> SessionRecord:
        row = await fetch_one(
            self._db,
            f"SELECT {_SESSION_COLUMNS} FROM chat_sessions s"
            " WHERE s.id = ?1 AND s.tenant_id = ?2 AND s.end_user = ?3",
            session_id,
            tenant_id,
            end_user,
        )
        if row is None:
            raise NotFound(f"no chat session {session_id} for this end user")
        return _session(row)

    async def list_sessions(
        self, tenant_id: str, end_user: str, *, limit: int, after: tuple[str, str] | None = None
    ) -> list[SessionRecord]:
        """Newest first; ``after`` is the (created_at, id) of the last item of the previous page."""
        params: list[Any] = [tenant_id, end_user]
        where = "s.tenant_id = ?1 AND s.end_user = ?2"
        if after is not None:
            params += [after[0], after[1]]
            where += " AND (s.created_at < ?3 OR (s.created_at = ?3 AND s.id < ?4))"
        params.append(limit)
        sql = (
            f"SELECT {_SESSION_COLUMNS} FROM chat_sessions s WHERE {where}"
            f" ORDER BY s.created_at DESC, s.id DESC LIMIT ?{len(params)}"
        )
        return [_session(r) for r in await fetch_all(self._db, sql, *params)]

    async def delete_session(self, tenant_id: str, end_user: str, session_id: str) -> bool:
        """Delete the session; its messages follow through the cascade."""
        changed = await run(
            self._db,
            "DELETE FROM chat_sessions WHERE id = ?1 AND tenant_id = ?2 AND end_user = ?3",
            session_id,
            tenant_id,
            end_user,
        )
        return changed > 0

    # -- messages -------------------------------------------------------------------------------------

    async def list_messages(
        self, tenant_id: str, session_id: str, *, limit: int, after_seq: int = 0
    ) -> list[MessageRecord]:
        """Oldest first, from the message after ``after_seq``."""
        rows = await fetch_all(
            self._db,
            "SELECT * FROM chat_messages WHERE tenant_id = ?1 AND session_id = ?2 AND seq > ?3"
            " ORDER BY seq LIMIT ?4",
            tenant_id,
            session_id,
            after_seq,
            limit,
        )
        return [_message(r) for r in rows]

    async def recent_messages(self, tenant_id: str, session_id: str, limit: int) -> list[MessageRecord]:
        """The last ``limit`` messages, oldest first (a prompt's history)."""
        rows = await fetch_all(
            self._db,
            "SELECT * FROM chat_messages WHERE tenant_id = ?1 AND session_id = ?2 ORDER BY seq DESC LIMIT ?3",
            tenant_id,
            session_id,
            limit,
        )
        return [_message(r) for r in reversed(rows)]

    async def get_message(self, tenant_id: str, message_id: str) -> MessageRecord:
        row = await fetch_one(
            self._db, "SELECT * FROM chat_messages WHERE id = ?1 AND tenant_id = ?2", message_id, tenant_id
        )
        if row is None:
            raise NotFound(f"no chat message {message_id}")
        return _message(row)

    async def start_turn(self, tenant_id: str, session_id: str, content: str, *, request_id: str) -> TurnRows:
        """The user message (complete) and a pending assistant message, in one atomic batch."""
        now = self._now()
        user_id, assistant_id = new_id("msg", clock=self._clock), new_id("msg", clock=self._clock)
        insert = (
            "INSERT INTO chat_messages (id, tenant_id, session_id, seq, role, content, status, request_id,"
            " created_at, updated_at)"
            " SELECT ?1, ?2, ?3, COALESCE(MAX(seq), 0) + 1, ?4, ?5, ?6, ?7, ?8, ?8 FROM chat_messages"
            " WHERE tenant_id = ?2 AND session_id = ?3"
        )
        await self._db.batch(
            [
                statement(
                    self._db,
                    insert,
                    user_id,
                    tenant_id,
                    session_id,
                    "user",
                    content,
                    "complete",
                    request_id,
                    now,
                ),
                statement(
                    self._db,
                    insert,
                    assistant_id,
                    tenant_id,
                    session_id,
                    "assistant",
                    "",
                    "pending",
                    request_id,
                    now,
                ),
                statement(
                    self._db,
                    "UPDATE chat_sessions SET updated_at = ?3 WHERE id = ?1 AND tenant_id = ?2",
                    session_id,
                    tenant_id,
                    now,
                ),
            ]
        )
        return TurnRows(
            await self.get_message(tenant_id, user_id), await self.get_message(tenant_id, assistant_id)
        )

    async def finish_message(
        self,
        tenant_id: str,
        message_id: str,
        *,
        status: MessageStatus,
        content: str,
        sources: list[dict[str, Any]] | None = None,
        citations: list[dict[str, Any]] | None = None,
        confidence: float | None = None,
        tool_calls: list[dict[str, Any]] | None = None,
        usage: dict[str, Any] | None = None,
        model: str | None = None,
        error: dict[str, Any] | None = None,
    ) -> MessageRecord:
        """Finish a pending message (once: a message that is no longer pending is left as it is)."""
        await run(
            self._db,
            "UPDATE chat_messages SET status = ?3, content = ?4, sources = ?5, citations = ?6,"
            " confidence = ?7, tool_calls = ?8, usage = ?9, model = ?10, error = ?11, updated_at = ?12"
            " WHERE id = ?1 AND tenant_id = ?2 AND status = 'pending'",
            message_id,
            tenant_id,
            status,
            content,
            _dumps(sources or []),
            _dumps(citations or []),
            confidence,
            _dumps(tool_calls or []),
            None if usage is None else _dumps(usage),
            model,
            None if error is None else _dumps(error),
            self._now(),
        )
        return await self.get_message(tenant_id, message_id)

    async def checkpoint(self, tenant_id: str, message_id: str, content: str) -> None:
        """Save the partial text of a pending message (and show that its worker is alive)."""
        await run(
            self._db,
            "UPDATE chat_messages SET content = ?3, updated_at = ?4"
            " WHERE id = ?1 AND tenant_id = ?2 AND status = 'pending'",
            message_id,
            tenant_id,
            content,
            self._now(),
        )

    async def discard_turn(self, tenant_id: str, message_ids: Sequence[str]) -> None:
        """Remove a turn's rows (a request the model service refused before doing anything)."""
        await self._db.batch(
            [
                statement(
                    self._db,
                    "DELETE FROM chat_messages WHERE id = ?1 AND tenant_id = ?2",
                    message_id,
                    tenant_id,
                )
                for message_id in message_ids
            ]
        )

    async def recover_pending(self, tenant_id: str, session_id: str, *, older_than_s: float) -> int:
        """Mark the session's messages pending for more than ``older_than_s`` as ``interrupted``.

        A live generation finishes its own row; one still pending past the bound belongs to a worker
        that stopped (evicted, crashed, out of CPU time) and will never finish it.
        """
        cutoff = _iso(self._clock() - older_than_s)
        error = _dumps(
            {
                "code": "interrupted",
                "status": 502,
                "message": "the answer was not finished: the worker generating it stopped",
            }
        )
        return await run(
            self._db,
            "UPDATE chat_messages SET status = 'interrupted', error = ?4, updated_at = ?5"
            " WHERE tenant_id = ?1 AND session_id = ?2 AND status = 'pending' AND updated_at < ?3",
            tenant_id,
            session_id,
            cutoff,
            error,
            self._now(),
        )
