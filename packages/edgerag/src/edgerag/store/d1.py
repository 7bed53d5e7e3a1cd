"""Small helpers over the D1 port: rows out of results, timestamps, JSON columns."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from edgerag.ports import D1Database, D1PreparedStatement

__all__ = ["fetch_all", "fetch_one", "now_iso", "placeholders", "run", "statement"]


def now_iso() -> str:
    """UTC now as the ISO-8601 text the schema stores (millisecond precision, ``Z`` suffix)."""
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def statement(db: D1Database, sql: str, *params: Any) -> D1PreparedStatement:
    prepared = db.prepare(sql)
    return prepared.bind(*params) if params else prepared


async def fetch_all(db: D1Database, sql: str, *params: Any) -> list[dict[str, Any]]:
    result = await statement(db, sql, *params).all()
    return [dict(row) for row in result["results"]]


async def fetch_one(db: D1Database, sql: str, *params: Any) -> dict[str, Any] | None:
    row = await statement(db, sql, *params).first()
    return None if row is None else dict(row)


async def run(db: D1Database, sql: str, *params: Any) -> int:
    """Run a write; returns the number of rows changed."""
    result = await statement(db, sql, *params).run()
    return int(result["meta"]["changes"])


def placeholders(values: Sequence[Any], start: int = 1) -> str:
    """``?1, ?2, ...`` for an ``IN (...)`` list (D1 allows at most 100 bound parameters in all)."""
    return ", ".join(f"?{i}" for i in range(start, start + len(values)))
