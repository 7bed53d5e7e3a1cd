"""The SQLite side of the local D1 emulator: one connection, run the way D1 runs its database.

What D1 does and this engine reproduces:

* Every call runs in its own transaction: a query, a whole ``batch`` or a whole ``exec`` commits
  completely or not at all. ``BEGIN``/``COMMIT``/``SAVEPOINT`` in user SQL are refused ("not
  authorized", as D1's authorizer refuses them); foreign keys are always enforced and PRAGMAs only
  last for the call.
* The authorizer follows workerd's SQLite authorizer (``src/workerd/util/sqlite.c++``): only
  allow-listed PRAGMAs, no ATTACH, no temporary objects, no virtual tables but FTS5, no tables
  named ``_cf_*``, no ``sqlite_version()``-style introspection functions.
* SQLite's run-time limits are set to D1's documented limits (:class:`D1Limits`), so SQLite raises
  the limit errors itself; a progress handler stops a call that runs longer than
  ``max_query_seconds`` on the injected clock.
* Error messages carry SQLite's text and result-code name as D1 formats them:
  ``"no such table: x: SQLITE_ERROR"``, ``"UNIQUE constraint failed: t.a: SQLITE_CONSTRAINT
  (extended: SQLITE_CONSTRAINT_UNIQUE)"``. D1 also inserts ``" at offset N"`` after syntax errors;
  Python's ``sqlite3`` does not expose the offset, so local messages lack it.

Several engines (one per ``LocalD1Database``) may open the same file, as two workers bound to one
database would: the file is in WAL mode, every call takes the write lock up front (``BEGIN
IMMEDIATE``) and waits at most ``busy_timeout`` seconds for it, and a lock serialises calls on one
engine across threads.
"""

from __future__ import annotations

import sqlite3
import threading
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgerag_local.d1.limits import D1Limits
from edgerag_local.d1.sql import split_statements
from edgerag_local.d1.values import SqlParam, SqlValue, from_sql_value

__all__ = ["SERVED_BY", "D1Engine", "QueryError", "QueryOutcome"]

SERVED_BY = "edgerag-local.db"
"""``meta.served_by`` of every local result (D1 names its backend version here)."""

TIMEOUT_MESSAGE = "D1 DB storage operation exceeded timeout which caused object to be reset."
MULTI_PARAMS_MESSAGE = (
    "When executing multiple SQL statements in a single call, only the last statement can have parameters."
)
WRONG_BINDINGS_MESSAGE = "Wrong number of parameter bindings for SQL query."
NO_STATEMENT_MESSAGE = "No SQL statements detected."

_PROGRESS_STEPS = 1000
"""SQLite VM instructions between two looks at the clock."""

_PRIMARY_CODES = {
    1: "SQLITE_ERROR", 2: "SQLITE_INTERNAL", 3: "SQLITE_PERM", 4: "SQLITE_ABORT", 5: "SQLITE_BUSY",
    6: "SQLITE_LOCKED", 7: "SQLITE_NOMEM", 8: "SQLITE_READONLY", 9: "SQLITE_INTERRUPT",
    10: "SQLITE_IOERR", 11: "SQLITE_CORRUPT", 12: "SQLITE_NOTFOUND", 13: "SQLITE_FULL",
    14: "SQLITE_CANTOPEN", 15: "SQLITE_PROTOCOL", 16: "SQLITE_EMPTY", 17: "SQLITE_SCHEMA",
    18: "SQLITE_TOOBIG", 19: "SQLITE_CONSTRAINT", 20: "SQLITE_MISMATCH", 21: "SQLITE_MISUSE",
    22: "SQLITE_NOLFS", 23: "SQLITE_AUTH", 24: "SQLITE_FORMAT", 25: "SQLITE_RANGE",
    26: "SQLITE_NOTADB", 27: "SQLITE_NOTICE", 28: "SQLITE_WARNING",
}  # fmt: skip

# PRAGMAs D1 accepts, by the kind of argument they take (workerd's allow-list plus the ones D1's
# "SQL statements" page documents). Connection-level ones are reset after each call, because in
# D1 "PRAGMA statements only apply to the current transaction".
_BOOLEAN_PRAGMAS = {
    "case_sensitive_like", "defer_foreign_keys", "foreign_keys", "ignore_check_constraints",
    "legacy_alter_table", "recursive_triggers", "reverse_unordered_selects",
}  # fmt: skip
_NAME_PRAGMAS = {"table_info", "table_xinfo", "index_info", "index_list", "index_xinfo", "foreign_key_list"}
_OPTIONAL_NAME_PRAGMAS = {"table_list", "foreign_key_check"}
_NO_ARG_PRAGMAS = {"data_version", "quick_check", "optimize"}
_RESET_PRAGMAS = _BOOLEAN_PRAGMAS - {"defer_foreign_keys", "foreign_keys"}
_BOOLEAN_WORDS = {"1", "0", "true", "false", "yes", "no", "on", "off"}
_DENIED_FUNCTIONS = {
    "sqlite_compileoption_get", "sqlite_compileoption_used", "sqlite_offset", "sqlite_source_id",
    "sqlite_version", "load_extension",
}  # fmt: skip
_VTABLE_MODULES = {"fts5", "fts5vocab"}
_NEVER = {
    sqlite3.SQLITE_ATTACH, sqlite3.SQLITE_DETACH, sqlite3.SQLITE_TRANSACTION, sqlite3.SQLITE_SAVEPOINT,
    sqlite3.SQLITE_CREATE_TEMP_TABLE, sqlite3.SQLITE_CREATE_TEMP_INDEX, sqlite3.SQLITE_CREATE_TEMP_VIEW,
    sqlite3.SQLITE_CREATE_TEMP_TRIGGER, sqlite3.SQLITE_DROP_TEMP_TABLE, sqlite3.SQLITE_DROP_TEMP_INDEX,
    sqlite3.SQLITE_DROP_TEMP_VIEW, sqlite3.SQLITE_DROP_TEMP_TRIGGER,
}  # fmt: skip


@dataclass(frozen=True)
class QueryOutcome:
    """What one query (one prepared statement's SQL) produced."""

    columns: list[str]
    rows: list[list[SqlValue]]
    meta: dict[str, Any]


class QueryError(Exception):
    """Query ``index`` of a call failed; ``message`` is D1's error text without its prefix."""

    def __init__(self, index: int, message: str) -> None:
        super().__init__(message)
        self.index = index
        self.message = message


class _RefusedError(Exception):
    """A query refused before or instead of SQLite's own error; the message is D1's text."""


class D1Engine:
    """One SQLite connection that runs queries with D1's transaction, limit and error rules."""

    def __init__(
        self,
        path: Path | str,
        *,
        limits: D1Limits,
        clock: Callable[[], float],
        busy_timeout: float = 5.0,
    ) -> None:
        self._limits = limits
        self._clock = clock
        self._lock = threading.RLock()
        self._trusted = False
        self._touched_pragmas: set[str] = set()
        self._deadline: float | None = None
        self._timed_out = False
        if str(path) != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        # Autocommit mode (isolation_level=None): transactions are opened explicitly. No statement
        # cache: the authorizer runs when a statement is prepared, so reusing a statement prepared
        # for an internal (trusted) call would let user SQL skip it.
        self._conn = sqlite3.connect(
            path, isolation_level=None, check_same_thread=False, cached_statements=0, timeout=busy_timeout
        )
        try:
            self._conn.execute("PRAGMA journal_mode = WAL")
            self._conn.execute("PRAGMA synchronous = NORMAL")
            self._conn.execute("PRAGMA foreign_keys = ON")
            self._page_size = int(self._conn.execute("PRAGMA page_size").fetchone()[0])
            max_pages = max(1, limits.max_database_bytes // self._page_size)
            self._conn.execute(f"PRAGMA max_page_count = {max_pages}")
        except sqlite3.Error:
            self._conn.close()
            raise
        for limit, value in limits.sqlite_limits().items():
            self._conn.setlimit(limit, value)
        self._conn.set_authorizer(self._authorize)
        self._conn.set_progress_handler(self._progress, _PROGRESS_STEPS)

    # ------------------------------------------------------------------------------------ running

    def run(self, queries: Sequence[tuple[str, Sequence[SqlParam]]]) -> list[QueryOutcome]:
        """Run ``queries`` in one transaction and return one outcome each, or raise QueryError.

        On failure nothing the call did is kept.
        """
        with self._lock:
            if not queries:
                raise QueryError(0, NO_STATEMENT_MESSAGE)
            self._timed_out = False
            self._deadline = self._clock() + self._limits.max_query_seconds
            try:
                self._begin()
                outcomes = [
                    self._run_query(index, sql, params) for index, (sql, params) in enumerate(queries)
                ]
                self._commit(len(queries) - 1)
                return outcomes
            except QueryError:
                self._rollback()
                raise
            finally:
                self._deadline = None
                self._reset_pragmas()

    def run_if_free(self, queries: Sequence[tuple[str, Sequence[SqlParam]]]) -> list[QueryOutcome] | None:
        """:meth:`run` if no other thread is inside this engine now; ``None`` (nothing run) if one is."""
        if not self._lock.acquire(blocking=False):
            return None
        try:
            return self.run(queries)
        finally:
            self._lock.release()

    def _begin(self) -> None:
        try:
            self._internal("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:  # the write lock stayed busy past busy_timeout
            raise QueryError(0, self._describe(exc)) from exc

    def _commit(self, last_index: int) -> None:
        try:
            self._internal("COMMIT")
        except sqlite3.Error as exc:  # deferred foreign keys are checked here
            raise QueryError(last_index, self._describe(exc)) from exc

    def _run_query(self, index: int, sql: str, params: Sequence[SqlParam]) -> QueryOutcome:
        try:
            return self._run_statements(sql, params)
        except _RefusedError as exc:
            raise QueryError(index, str(exc)) from exc
        except sqlite3.Error as exc:
            raise QueryError(index, self._describe(exc)) from exc

    def _run_statements(self, sql: str, params: Sequence[SqlParam]) -> QueryOutcome:
        if len(sql.encode("utf-8")) > self._limits.max_sql_bytes:
            raise _RefusedError("statement too long: SQLITE_TOOBIG")
        statements = split_statements(sql)
        if not statements:
            raise _RefusedError(NO_STATEMENT_MESSAGE)
        started = self._clock()
        total_before = self._conn.total_changes
        size_before = self._size()
        cursor = self._conn.cursor()
        changes = 0
        rows_read = 0
        for statement in statements[:-1]:
            self._execute(cursor, statement, (), leading=True)
            rows_read += len(cursor.fetchall())
            changes += max(cursor.rowcount, 0)
        self._execute(cursor, statements[-1], params, leading=False)
        raw_rows = cursor.fetchall()
        changes += max(cursor.rowcount, 0)
        columns = [d[0] for d in cursor.description] if cursor.description else []
        rows = [[from_sql_value(v) for v in row] for row in raw_rows]
        last_row_id = int(cursor.lastrowid or 0)
        cursor.close()
        size_after = self._size()
        written = self._conn.total_changes - total_before
        meta = {
            "served_by": SERVED_BY,
            "duration": (self._clock() - started) * 1000.0,
            "changes": changes,
            "last_row_id": last_row_id,
            "changed_db": written > 0 or size_after != size_before,
            "size_after": size_after,
            # Best effort: SQLite does not report rows scanned through Python, so this counts rows
            # returned plus rows changed, a lower bound of D1's figure.
            "rows_read": rows_read + len(rows) + changes,
            # Includes rows written by triggers and foreign-key actions; D1 also counts index writes.
            "rows_written": written,
        }
        return QueryOutcome(columns=columns, rows=rows, meta=meta)

    def _execute(
        self, cursor: sqlite3.Cursor, statement: str, params: Sequence[SqlParam], *, leading: bool
    ) -> None:
        try:
            if params and any(mark in statement for mark in ":@$"):
                with warnings.catch_warnings():
                    # D1 binds by position even to :named parameters; Python >= 3.12 warns about that
                    # (the filter is process-wide, hence only when a named parameter may be present).
                    warnings.simplefilter("ignore", DeprecationWarning)
                    cursor.execute(statement, params)
            else:
                cursor.execute(statement, params)
        except sqlite3.ProgrammingError as exc:
            if "Incorrect number of bindings" in str(exc):
                message = MULTI_PARAMS_MESSAGE if leading else WRONG_BINDINGS_MESSAGE
                raise _RefusedError(message) from exc
            raise

    # ----------------------------------------------------------------------------------- helpers

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def _size(self) -> int:
        page_count = self._internal("PRAGMA page_count").fetchone()[0]
        return int(page_count) * self._page_size

    def _internal(self, sql: str) -> sqlite3.Cursor:
        """Run a statement of the emulator's own, past the authorizer."""
        self._trusted = True
        try:
            return self._conn.execute(sql)
        finally:
            self._trusted = False

    def _rollback(self) -> None:
        if self._conn.in_transaction:
            self._internal("ROLLBACK")

    def _reset_pragmas(self) -> None:
        touched, self._touched_pragmas = self._touched_pragmas, set()
        for pragma in sorted(touched & _RESET_PRAGMAS):
            self._internal(f"PRAGMA {pragma} = OFF")

    def _describe(self, exc: sqlite3.Error) -> str:
        if self._timed_out:
            return TIMEOUT_MESSAGE
        if isinstance(exc, sqlite3.DataError) and str(exc) == "query string is too large":
            return "statement too long: SQLITE_TOOBIG"
        code = getattr(exc, "sqlite_errorcode", None)
        if code is None:
            return str(exc)
        primary = _PRIMARY_CODES.get(code & 0xFF, f"SQLITE_UNKNOWN_{code & 0xFF}")
        extended = getattr(exc, "sqlite_errorname", None) or primary
        suffix = f" (extended: {extended})" if extended != primary else ""
        return f"{exc}: {primary}{suffix}"

    def _progress(self) -> int:
        if self._deadline is not None and self._clock() > self._deadline:
            self._timed_out = True
            return 1  # non-zero interrupts the running statement
        return 0

    # -------------------------------------------------------------------------------- authorizer

    def _authorize(
        self, action: int, arg1: str | None, arg2: str | None, db_name: str | None, _source: str | None
    ) -> int:
        if self._trusted:
            return sqlite3.SQLITE_OK
        return sqlite3.SQLITE_OK if self._allowed(action, arg1, arg2, db_name) else sqlite3.SQLITE_DENY

    def _allowed(self, action: int, arg1: str | None, arg2: str | None, db_name: str | None) -> bool:
        if db_name == "temp":
            return action in (sqlite3.SQLITE_READ, sqlite3.SQLITE_UPDATE)
        if db_name not in (None, "main"):
            return False
        if action in _NEVER:
            return False
        if action == sqlite3.SQLITE_PRAGMA:
            return self._pragma_allowed((arg1 or "").lower(), arg2)
        if action == sqlite3.SQLITE_FUNCTION:
            return (arg2 or "").lower() not in _DENIED_FUNCTIONS
        if action in (sqlite3.SQLITE_CREATE_VTABLE, sqlite3.SQLITE_DROP_VTABLE):
            return (arg2 or "").lower() in _VTABLE_MODULES and _name_allowed(arg1)
        if action == sqlite3.SQLITE_ALTER_TABLE:
            return _name_allowed(arg2)
        names_both = (
            sqlite3.SQLITE_CREATE_INDEX, sqlite3.SQLITE_DROP_INDEX,
            sqlite3.SQLITE_CREATE_TRIGGER, sqlite3.SQLITE_DROP_TRIGGER,
        )  # fmt: skip
        if action in names_both:
            return _name_allowed(arg1) and _name_allowed(arg2)
        return _name_allowed(arg1)

    def _pragma_allowed(self, pragma: str, argument: str | None) -> bool:
        if pragma in _BOOLEAN_PRAGMAS:
            if argument is None:
                return True
            if argument.strip("'\"").lower() not in _BOOLEAN_WORDS:
                return False
            self._touched_pragmas.add(pragma)
            return True
        if pragma in _NAME_PRAGMAS:
            return argument is not None and _name_allowed(argument)
        if pragma in _OPTIONAL_NAME_PRAGMAS:
            return _name_allowed(argument)
        if pragma in _NO_ARG_PRAGMAS:
            return argument is None
        return False


def _name_allowed(name: str | None) -> bool:
    """D1 reserves ``_cf_*`` names for its own tables."""
    return name is None or not name.lower().startswith("_cf_")
