"""The local D1 binding: ``LocalD1Database`` implements :class:`edgerag.ports.D1Database` on SQLite.

Call shapes and result shapes are those of the Python Workers SDK over workerd's ``d1-api``:

* ``db.prepare(sql)`` -> a statement; ``stmt.bind(*values)`` -> a NEW statement (statements are
  immutable and reusable; binding again replaces the values). Values are checked at ``bind`` time
  (see :mod:`edgerag_local.d1.values` for every conversion).
* ``await stmt.all()`` / ``await stmt.run()`` -> ``{"success": True, "results": [row dicts],
  "meta": {served_by, duration, changes, last_row_id, changed_db, size_after, rows_read,
  rows_written}}`` as an :class:`~edgerag.jsdict.AttrDict`.
* ``await stmt.first()`` -> the first row or ``None``; ``first("col")`` -> that column's value, and
  ``D1_COLUMN_NOTFOUND: Column not found (col)`` when a row exists without that column.
* ``await stmt.raw()`` -> rows as lists; ``raw(columnNames=True)`` (or ``raw({"columnNames": True})``)
  puts the column names first.
* ``await db.batch([stmts])`` -> one result per statement, in one transaction: if any statement
  fails, nothing is applied and ``D1_ERROR: ...`` is raised.
* ``await db.exec(sql)`` -> ``{"count", "duration"}``; every *line* is one query (a statement
  written over several lines fails, as it does at the edge); the whole call is one transaction;
  errors read ``D1_EXEC_ERROR: Error in line N: <line>: <message>``.

Errors are :class:`edgerag_local.d1.errors.D1Error` with D1's text (``D1_ERROR: no such table: x:
SQLITE_ERROR``). SQLite work, limits and the authorizer live in :mod:`edgerag_local.d1.engine`.
To add a D1 method: add it here (or on the statement), delegate to the engine, and pin it in
``tests/contract/test_d1.py``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

from edgerag.jsdict import AttrDict

from edgerag_local.core.options import merge_options
from edgerag_local.d1.engine import D1Engine, QueryError, QueryOutcome
from edgerag_local.d1.errors import D1Error
from edgerag_local.d1.limits import D1Limits
from edgerag_local.d1.sql import exec_lines
from edgerag_local.d1.values import SqlParam, to_sql_param

__all__ = ["D1Limits", "LocalD1Database", "LocalD1PreparedStatement"]


class LocalD1PreparedStatement:
    """``D1PreparedStatement``: SQL plus bound values; immutable."""

    __slots__ = ("_db", "_params", "_sql")

    def __init__(self, db: LocalD1Database, sql: str, params: tuple[SqlParam, ...] = ()) -> None:
        self._db = db
        self._sql = sql
        self._params = params

    @property
    def statement(self) -> str:
        return self._sql

    @property
    def params(self) -> tuple[SqlParam, ...]:
        """The bound values, already converted to what D1 stores."""
        return self._params

    def __repr__(self) -> str:
        return f"LocalD1PreparedStatement({self._sql!r}, params={list(self._params)!r})"

    def bind(self, *values: Any) -> LocalD1PreparedStatement:
        """A new statement with ``values`` bound to ``?``/``?NNN`` in order; this one is unchanged."""
        return LocalD1PreparedStatement(self._db, self._sql, tuple(to_sql_param(v) for v in values))

    async def all(self) -> AttrDict:
        return _result(await self._db._run_one(self))

    async def run(self) -> AttrDict:
        return _result(await self._db._run_one(self))

    async def first(self, column: str | None = None) -> Any:
        outcome = await self._db._run_one(self)
        if not outcome.rows:
            return None
        row = dict(zip(outcome.columns, outcome.rows[0], strict=True))
        if column is None:
            return AttrDict(row)
        if column not in row:
            raise D1Error(f"D1_COLUMN_NOTFOUND: Column not found ({column})")
        return row[column]

    async def raw(
        self,
        options: Mapping[str, Any] | None = None,
        *,
        columnNames: bool | None = None,
    ) -> list[list[Any]]:
        keywords = {} if columnNames is None else {"columnNames": columnNames}
        chosen = merge_options(options, keywords, allowed={"columnNames"}, where="D1PreparedStatement.raw")
        outcome = await self._db._run_one(self)
        rows = [list(row) for row in outcome.rows]
        if chosen.get("columnNames"):
            return [list(outcome.columns), *rows]
        return rows


class LocalD1Database:
    """``D1Database`` backed by a SQLite file (WAL mode, foreign keys on, FTS5 available).

    Several instances may open the same file, as two workers bound to one database do.
    ``clock`` (seconds, monotonic) measures ``meta.duration`` and the query time limit.
    """

    def __init__(
        self,
        path: Path | str,
        *,
        limits: D1Limits | None = None,
        clock: Callable[[], float] = time.perf_counter,
        busy_timeout: float = 5.0,
    ) -> None:
        self._path = path if str(path) == ":memory:" else Path(path)
        self._limits = limits if limits is not None else D1Limits()
        try:
            self._engine = D1Engine(path, limits=self._limits, clock=clock, busy_timeout=busy_timeout)
        except Exception as exc:
            raise D1Error(f"D1_ERROR: cannot open local database {path}: {exc}") from exc

    @property
    def path(self) -> Path | str:
        return self._path

    @property
    def limits(self) -> D1Limits:
        return self._limits

    def __repr__(self) -> str:
        return f"LocalD1Database({str(self._path)!r})"

    # -------------------------------------------------------------------------------- D1 methods

    def prepare(self, query: str) -> LocalD1PreparedStatement:
        if not isinstance(query, str):
            raise TypeError(f"D1Database.prepare: query must be a string, got {type(query).__name__}")
        return LocalD1PreparedStatement(self, query)

    async def batch(self, statements: Sequence[LocalD1PreparedStatement]) -> list[AttrDict]:
        queries = _batch_queries(statements)
        try:
            outcomes = await self._run(queries)
        except QueryError as exc:
            raise D1Error(f"D1_ERROR: {exc.message}") from exc
        return [_result(outcome) for outcome in outcomes]

    async def exec(self, query: str) -> AttrDict:
        if not isinstance(query, str):
            raise TypeError(f"D1Database.exec: query must be a string, got {type(query).__name__}")
        lines = exec_lines(query)
        if not lines:
            first_line = query.strip().split("\n")[0]
            raise D1Error(f"D1_EXEC_ERROR: Error in line 1: {first_line}: No SQL statements detected.")
        try:
            outcomes = await self._run([(line, ()) for _, line in lines])
        except QueryError as exc:
            number, line = lines[exc.index]
            raise D1Error(f"D1_EXEC_ERROR: Error in line {number}: {line}: {exc.message}") from exc
        duration = sum(outcome.meta["duration"] for outcome in outcomes)
        return AttrDict(count=len(outcomes), duration=duration)

    # ---------------------------------------------------------------------------- local extras

    def batch_sync(self, statements: Sequence[LocalD1PreparedStatement]) -> list[AttrDict]:
        """``batch`` without the event loop, for local tooling (the migration runner, scripts)."""
        try:
            outcomes = self._engine.run(_batch_queries(statements))
        except QueryError as exc:
            raise D1Error(f"D1_ERROR: {exc.message}") from exc
        return [_result(outcome) for outcome in outcomes]

    def close(self) -> None:
        """Close the connection; the data stays in the file."""
        self._engine.close()

    def __enter__(self) -> LocalD1Database:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    async def _run(self, queries: Sequence[tuple[str, Sequence[SqlParam]]]) -> list[QueryOutcome]:
        # Uncontended calls run inline, in call order. While another thread's call holds the engine
        # (the local host's consumer thread writing a large batch), wait for it on a worker thread
        # instead of blocking this event loop, so the gateway keeps answering meanwhile.
        outcomes = self._engine.run_if_free(queries)
        if outcomes is None:
            outcomes = await asyncio.to_thread(self._engine.run, queries)
        return outcomes

    async def _run_one(self, statement: LocalD1PreparedStatement) -> QueryOutcome:
        try:
            return (await self._run([(statement.statement, statement.params)]))[0]
        except QueryError as exc:
            raise D1Error(f"D1_ERROR: {exc.message}") from exc


def _batch_queries(statements: Sequence[LocalD1PreparedStatement]) -> list[tuple[str, tuple[SqlParam, ...]]]:
    if isinstance(statements, LocalD1PreparedStatement | str) or not isinstance(statements, Sequence):
        raise TypeError("D1Database.batch: expected a list of prepared statements")
    for statement in statements:
        if not isinstance(statement, LocalD1PreparedStatement):
            raise TypeError(f"D1Database.batch: expected D1PreparedStatement, got {type(statement).__name__}")
    return [(s.statement, s.params) for s in statements]


def _result(outcome: QueryOutcome) -> AttrDict:
    rows = [dict(zip(outcome.columns, row, strict=True)) for row in outcome.rows]
    return AttrDict(success=True, results=rows, meta=outcome.meta)
