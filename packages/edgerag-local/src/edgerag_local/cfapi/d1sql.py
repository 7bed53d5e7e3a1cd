"""D1's HTTP SQL endpoints (``POST /d1/database/{id}/query`` and ``.../raw``) over the local D1 engine.

D1 is SQLite, and the emulator runs the SQL for real through the same engine the local D1 binding
uses (:class:`edgerag_local.d1.engine.D1Engine`): D1's authorizer (no ``BEGIN``/``COMMIT``, allow-listed
PRAGMAs), its limits, foreign keys on, and D1's error texts. That is what makes
``wrangler d1 migrations apply --remote`` and the ``d1_migrations`` bookkeeping genuine here.

One request may carry several statements: they run in one engine call, so in one transaction, and a
failing statement rolls all of them back (a failed remote migration leaves nothing half-applied). The
HTTP API answers one result object ``{results, success, meta}`` per statement.
"""

from __future__ import annotations

from typing import Any

from edgerag_local.d1.engine import D1Engine, QueryError
from edgerag_local.d1.sql import split_statements

from .http import ApiError

__all__ = ["describe", "execute"]

# D1's API reports SQL failures as code 7500 with the engine's text ("no such table: x: SQLITE_ERROR").
_SQL_ERROR = 7500


def execute(engine: D1Engine, sql: str, params: list[Any] | None, *, raw: bool) -> list[dict[str, Any]]:
    statements = split_statements(sql)
    if not statements:
        raise ApiError(400, _SQL_ERROR, "No SQL statements detected.")
    if params and len(statements) > 1:
        raise ApiError(400, _SQL_ERROR, "parameters can only be bound to a single statement")
    try:
        outcomes = engine.run([(statement, list(params or [])) for statement in statements])
    except QueryError as exc:
        raise ApiError(400, _SQL_ERROR, exc.message) from exc
    results = []
    for outcome in outcomes:
        if raw:
            payload: Any = {"columns": outcome.columns, "rows": outcome.rows}
        else:
            payload = [dict(zip(outcome.columns, row, strict=True)) for row in outcome.rows]
        results.append({"results": payload, "success": True, "meta": dict(outcome.meta)})
    return results


def describe(engine: D1Engine) -> tuple[int, int]:
    """``(num_tables, file_size)`` as the database list reports them."""
    outcome = engine.run(
        [
            (
                "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' "
                "AND name NOT LIKE '_cf_%'",
                [],
            )
        ]
    )[0]
    count = outcome.rows[0][0]
    return (count if isinstance(count, int) else 0), int(outcome.meta["size_after"])
