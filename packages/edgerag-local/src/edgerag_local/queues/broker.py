"""The durable store behind the local Queues emulator: one SQLite file holds every queue's messages.

:class:`LocalQueueBroker` owns the file; producers (:func:`edgerag_local.queues.producer`) append to it and
dispatchers (:mod:`edgerag_local.queues.dispatcher`) lease batches from it and settle them. Every
state change is one SQLite transaction, so what a producer was told was sent survives a restart and
a batch is either settled completely or not at all.

Delivery is leased, not removed: a claimed row records a lease token, an expiry and the claiming
process id, and only a settle carrying that token may ack, retry or dead-letter it. That gives
at-least-once delivery across every way a consumer can disappear:

- the handler raises or returns: the dispatcher settles the lease;
- the process dies mid-batch: on the next open, leases held by processes that are no longer running
  are released at once (so a restarted ``edgerag dev`` redelivers immediately);
- a dispatcher in this process is abandoned: its lease expires after ``QueueLimits.lease_seconds``
  and another dispatcher takes the batch; the stale dispatcher's later settle is ignored.

Several brokers (or one broker's several producers and dispatchers) may share the file in one
process: each broker has its own connection, writes take SQLite's write lock (``BEGIN IMMEDIATE``),
and WAL mode keeps readers from blocking writers. One broker may be used from several threads (the
local host's gateway produces on the serving thread while a consumer thread claims): a lock makes
each call one uninterrupted use of the connection. To store something new about a message, add a
column with a default and bump ``_SCHEMA_VERSION`` with an ``ALTER TABLE`` step in :meth:`_migrate`.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Literal

from edgerag.jsdict import AttrDict

from edgerag_local.queues.codec import EncodedBody
from edgerag_local.queues.limits import QueueLimits

__all__ = ["LocalQueueBroker", "Settlement", "StoredMessage"]

_SCHEMA_VERSION = 1
_SCHEMA = """
CREATE TABLE IF NOT EXISTS messages (
    seq          INTEGER PRIMARY KEY AUTOINCREMENT,
    queue        TEXT    NOT NULL,
    id           TEXT    NOT NULL,
    sent_at      REAL    NOT NULL,
    content_type TEXT    NOT NULL,
    body         TEXT    NOT NULL,
    size         INTEGER NOT NULL,
    visible_at   REAL    NOT NULL,
    attempts     INTEGER NOT NULL DEFAULT 0,
    lease_token  TEXT,
    lease_until  REAL,
    lease_pid    INTEGER
);
CREATE INDEX IF NOT EXISTS messages_by_queue ON messages (queue, visible_at, seq);
CREATE INDEX IF NOT EXISTS messages_by_lease ON messages (lease_token);
"""
_RELEASE = "lease_token = NULL, lease_until = NULL, lease_pid = NULL"


@dataclass(frozen=True)
class StoredMessage:
    """One leased message as the dispatcher sees it; ``attempts`` already counts this delivery."""

    seq: int
    id: str
    sent_at: float
    content_type: str
    data: str
    size: int
    attempts: int


@dataclass(frozen=True)
class Settlement:
    """What to do with one leased message: ``delay`` for a retry, ``target`` queue for a dead letter."""

    seq: int
    action: Literal["ack", "retry", "dead_letter", "drop"]
    delay: int = 0
    target: str | None = None


class LocalQueueBroker:
    """Every queue of one local state directory, persisted in one SQLite file.

    ``path`` is the database file (or a directory, which then holds ``queues.sqlite``).
    """

    def __init__(
        self,
        path: Path | str,
        *,
        limits: QueueLimits = QueueLimits(),  # noqa: B008 - frozen, so sharing the default is safe
        clock: Callable[[], float] = time.time,
    ) -> None:
        target = Path(path)
        if target.is_dir():
            target = target / "queues.sqlite"
        target.parent.mkdir(parents=True, exist_ok=True)
        self.path = target
        self.limits = limits
        self.clock = clock
        self._tokens: set[str] = set()
        # Held for every use of the connection and of _tokens: transactions from two threads on one
        # connection would interleave. Reentrant because public methods share _write().
        self._lock = threading.RLock()
        # Autocommit mode: every transaction below is explicit, so none is left open by accident.
        self._db = sqlite3.connect(target, isolation_level=None, timeout=30.0, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode = WAL")
        self._db.execute("PRAGMA synchronous = NORMAL")
        self._migrate()
        self._release_dead_processes()

    # ------------------------------------------------------------------------------ lifecycle

    def _migrate(self) -> None:
        with self._write():
            (version,) = self._db.execute("PRAGMA user_version").fetchone()
            if version > _SCHEMA_VERSION:
                raise RuntimeError(
                    f"{self.path} was written by a newer edgerag (queue schema {version}); "
                    f"this one knows {_SCHEMA_VERSION}"
                )
            # Statement by statement: executescript() would commit the surrounding transaction.
            for statement in filter(str.strip, _SCHEMA.split(";")):
                self._db.execute(statement)
            self._db.execute(f"PRAGMA user_version = {_SCHEMA_VERSION}")

    def _release_dead_processes(self) -> None:
        """Put back the batches of processes that died while delivering them."""
        with self._write():
            rows = self._db.execute(
                "SELECT DISTINCT lease_pid FROM messages WHERE lease_token IS NOT NULL AND lease_pid != ?",
                (os.getpid(),),
            ).fetchall()
            dead = [pid for (pid,) in rows if not _pid_alive(pid)]
            now = self.clock()
            for pid in dead:
                self._db.execute(
                    f"UPDATE messages SET {_RELEASE}, visible_at = ? WHERE lease_pid = ?", (now, pid)
                )

    def close(self) -> None:
        """Release this broker's outstanding leases (their dispatchers can no longer settle) and close."""
        with self._lock:
            if self._tokens:
                with self._write():
                    for token in self._tokens:
                        self._release(token)
                self._tokens.clear()
            self._db.close()

    def __enter__(self) -> LocalQueueBroker:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    @contextmanager
    def _write(self) -> Iterator[None]:
        # IMMEDIATE takes the write lock up front, so two brokers cannot claim the same rows.
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    @contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            yield self._db

    # ------------------------------------------------------------------------------- producing

    def enqueue(self, queue_name: str, items: Sequence[tuple[EncodedBody, int]]) -> list[str]:
        """Append validated bodies with their delays in one transaction; returns the new message ids."""
        now = self.clock()
        ids = [uuid.uuid4().hex for _ in items]
        with self._write():
            self._db.executemany(
                "INSERT INTO messages (queue, id, sent_at, content_type, body, size, visible_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                [
                    (queue_name, mid, now, body.content_type, body.data, body.size, now + delay)
                    for mid, (body, delay) in zip(ids, items, strict=True)
                ],
            )
        return ids

    # ------------------------------------------------------------------------------ consuming

    def claim(
        self, queue_name: str, max_messages: int, *, batch_timeout: float, force: bool = False
    ) -> tuple[str, list[StoredMessage]] | None:
        """Lease the next batch if one is due, as ``(lease token, messages)``; ``None`` otherwise.

        A batch is due when ``max_messages`` messages are deliverable, or when the oldest deliverable
        message has waited ``batch_timeout`` seconds since it became visible (``force`` skips the wait).
        """
        now = self.clock()
        with self._write():
            self._expire_leases(queue_name, now)
            count, oldest = self._db.execute(
                "SELECT COUNT(*), MIN(visible_at) FROM messages"
                " WHERE queue = ? AND lease_token IS NULL AND visible_at <= ?",
                (queue_name, now),
            ).fetchone()
            if count == 0 or not (force or count >= max_messages or now - oldest >= batch_timeout):
                return None
            token = uuid.uuid4().hex
            seqs = [
                seq
                for (seq,) in self._db.execute(
                    "SELECT seq FROM messages WHERE queue = ? AND lease_token IS NULL AND visible_at <= ?"
                    " ORDER BY visible_at, seq LIMIT ?",
                    (queue_name, now, max_messages),
                )
            ]
            self._db.executemany(
                "UPDATE messages SET lease_token = ?, lease_until = ?, lease_pid = ?, attempts = attempts + 1"
                " WHERE seq = ?",
                [(token, now + self.limits.lease_seconds, os.getpid(), seq) for seq in seqs],
            )
            rows = self._db.execute(
                "SELECT seq, id, sent_at, content_type, body, size, attempts FROM messages"
                " WHERE lease_token = ? ORDER BY visible_at, seq",
                (token,),
            ).fetchall()
            self._tokens.add(token)
        return token, [StoredMessage(*row) for row in rows]

    def next_due(self, queue_name: str, max_messages: int, *, batch_timeout: float) -> float | None:
        """The clock time at which :meth:`claim` could next return a batch (``None``: nothing queued)."""
        now = self.clock()
        with self._read() as db:
            count, oldest = db.execute(
                "SELECT COUNT(*), MIN(visible_at) FROM messages"
                " WHERE queue = ? AND lease_token IS NULL AND visible_at <= ?",
                (queue_name, now),
            ).fetchone()
            (later,) = db.execute(
                "SELECT MIN(visible_at) FROM messages"
                " WHERE queue = ? AND lease_token IS NULL AND visible_at > ?",
                (queue_name, now),
            ).fetchone()
            (lease_end,) = db.execute(
                "SELECT MIN(lease_until) FROM messages WHERE queue = ? AND lease_token IS NOT NULL",
                (queue_name,),
            ).fetchone()
        candidates: list[float] = []
        if count:
            candidates.append(now if count >= max_messages else oldest + batch_timeout)
        if later is not None:
            candidates.append(later)
        if lease_end is not None:
            candidates.append(lease_end)
        return min(candidates) if candidates else None

    def settle(self, token: str, settlements: Sequence[Settlement]) -> set[int]:
        """Apply the outcomes of a leased batch atomically; returns the ``seq`` of rows it changed.

        Rows whose lease has moved on (expired and re-claimed elsewhere) are left alone.
        """
        now = self.clock()
        applied: set[int] = set()
        with self._write():
            for s in settlements:
                if s.action in ("ack", "drop"):
                    cursor = self._db.execute(
                        "DELETE FROM messages WHERE seq = ? AND lease_token = ?", (s.seq, token)
                    )
                elif s.action == "retry":
                    cursor = self._db.execute(
                        f"UPDATE messages SET {_RELEASE}, visible_at = ? WHERE seq = ? AND lease_token = ?",
                        (now + s.delay, s.seq, token),
                    )
                else:
                    # A new message on the dead-letter queue: same id, timestamp and body, fresh attempts.
                    cursor = self._db.execute(
                        f"UPDATE messages SET {_RELEASE}, queue = ?, attempts = 0, visible_at = ?"
                        " WHERE seq = ? AND lease_token = ?",
                        (s.target, now, s.seq, token),
                    )
                if cursor.rowcount:
                    applied.add(s.seq)
            self._release(token)
            self._tokens.discard(token)
        return applied

    def release(self, token: str) -> None:
        """Give a lease back untouched (its delivery was interrupted); the messages are due again now."""
        with self._write():
            self._release(token)
            self._tokens.discard(token)

    def _release(self, token: str) -> None:
        self._db.execute(
            f"UPDATE messages SET {_RELEASE}, visible_at = ? WHERE lease_token = ?", (self.clock(), token)
        )

    def _expire_leases(self, queue_name: str, now: float) -> None:
        # An expired lease's messages wait for the batch timeout from the moment the lease ran out.
        self._db.execute(
            f"UPDATE messages SET visible_at = lease_until, {_RELEASE}"
            " WHERE queue = ? AND lease_token IS NOT NULL AND lease_until <= ?",
            (queue_name, now),
        )

    # ----------------------------------------------------------------------------- inspection

    def metrics(self, queue_name: str) -> AttrDict:
        """``{backlogCount, backlogBytes, oldestMessageTimestamp}`` like workerd's ``queue.metrics()``.

        Counts every stored message of the queue, delayed and in-flight ones included;
        ``oldestMessageTimestamp`` is a naive UTC ``datetime`` or ``None`` for an empty queue.
        """
        with self._read() as db:
            count, size, oldest = db.execute(
                "SELECT COUNT(*), COALESCE(SUM(size), 0), MIN(sent_at) FROM messages WHERE queue = ?",
                (queue_name,),
            ).fetchone()
        stamp = None if oldest is None else datetime.fromtimestamp(oldest, tz=UTC).replace(tzinfo=None)
        return AttrDict(backlogCount=count, backlogBytes=size, oldestMessageTimestamp=stamp)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # it exists, it is just not ours
    return True
