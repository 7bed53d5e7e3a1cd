"""Run D1 HTTP-API SQL against SQLite: ``POST /d1/database/{id}/query`` and ``.../raw``.

D1 is SQLite, so the emulator executes the SQL for real (this is what makes
``wrangler d1 migrations apply --remote`` and the ``d1_migrations`` bookkeeping genuine). One request
may carry several statements; they run in one transaction and a failing statement rolls all of them
back, which is how a failed remote migration leaves nothing half-applied. Each statement yields one
result object ``{results, success, meta}``.

D1 rejects explicit transaction control in SQL (``BEGIN``/``COMMIT``/``SAVEPOINT``); so does this.
"""

from __future__ import annotations

import re
import sqlite3
import time
from typing import Any

from .http import ApiError

__all__ = ["database_size", "execute", "split_statements", "table_count"]

_TRANSACTION = re.compile(r"^\s*(BEGIN|COMMIT|END|ROLLBACK|SAVEPOINT|RELEASE)\b", re.IGNORECASE)


def split_statements(sql: str) -> list[str]:
    """Split ``sql`` into complete statements (string literals, comments and triggers respected)."""
    statements: list[str] = []
    buffer = ""
    pieces = sql.split(";")
    for i, piece in enumerate(pieces):
        last = i == len(pieces) - 1
        buffer += piece if last else piece + ";"
        if not last and sqlite3.complete_statement(buffer):
            if _has_code(buffer):
                statements.append(buffer.strip())
            buffer = ""
    if _has_code(buffer):
        statements.append(buffer.strip())
    return statements


def _has_code(statement: str) -> bool:
    without = re.sub(r"--[^\n]*|/\*.*?\*/", "", statement, flags=re.DOTALL)
    return bool(without.strip().strip(";").strip())


def _d1_error(exc: sqlite3.Error) -> ApiError:
    # D1's API reports SQLite failures as code 7500 with the engine's message and error class.
    name = getattr(exc, "sqlite_errorname", "SQLITE_ERROR")
    return ApiError(400, 7500, f"{exc}: {name}")


def execute(
    conn: sqlite3.Connection, sql: str, params: list[Any] | None, *, raw: bool
) -> list[dict[str, Any]]:
    statements = split_statements(sql)
    if not statements:
        raise ApiError(400, 7500, "No SQL statements detected.")
    if params and len(statements) > 1:
        raise ApiError(400, 7500, "parameters can only be bound to a single statement")
    for statement in statements:
        if _TRANSACTION.match(statement):
            raise ApiError(
                400,
                7500,
                "To execute a transaction, please use the state.storage.transaction() "
                "or state.storage.transactionSync() APIs instead of the SQL BEGIN "
                "TRANSACTION or SAVEPOINT statements. The JavaScript API is safer "
                "because it will automatically roll back on exceptions, and because it "
                "interacts correctly with Durable Objects' automatic atomic write "
                "coalescing.: SQLITE_AUTH",
            )
    results: list[dict[str, Any]] = []
    conn.execute("BEGIN")
    try:
        for statement in statements:
            started = time.perf_counter()
            before = conn.total_changes
            cursor = conn.execute(statement, params or [])
            rows = cursor.fetchall()
            columns = [d[0] for d in cursor.description or []]
            changes = conn.total_changes - before
            meta = {
                "changed_db": changes > 0,
                "changes": changes,
                "duration": round((time.perf_counter() - started) * 1000, 3),
                "last_row_id": cursor.lastrowid or 0,
                "rows_read": len(rows),
                "rows_written": changes,
                "served_by_primary": True,
                "size_after": 0,
            }
            if raw:
                payload: Any = {"columns": columns, "rows": [list(r) for r in rows]}
            else:
                payload = [dict(zip(columns, r, strict=True)) for r in rows]
            results.append({"results": payload, "success": True, "meta": meta})
        conn.execute("COMMIT")
    except sqlite3.Error as exc:
        conn.execute("ROLLBACK")
        raise _d1_error(exc) from exc
    size = database_size(conn)
    for result in results:
        result["meta"]["size_after"] = size
    return results


def database_size(conn: sqlite3.Connection) -> int:
    pages = conn.execute("PRAGMA page_count").fetchone()[0]
    page_size = conn.execute("PRAGMA page_size").fetchone()[0]
    return int(pages) * int(page_size)


def table_count(conn: sqlite3.Connection) -> int:
    row = conn.execute(
        "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
    ).fetchone()
    return int(row[0])
