"""The limits the local D1 emulator enforces, as documented for Cloudflare D1.

Source: the "Limits" page of the D1 docs (developers.cloudflare.com/d1/platform/limits, April 2026).
Most of them are SQLite's own run-time limits, which D1 sets on its connections; the emulator sets the
same ones through ``sqlite3.Connection.setlimit`` so that SQLite itself raises the error, with its own
wording, exactly where D1 would.

Tests lower a limit with ``dataclasses.replace(D1Limits(), max_bound_parameters=3)``. To add a limit:
add a field with the documented value and a comment naming its source, enforce it in
``d1_engine``, and pin it in ``tests/contract/test_d1.py``.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

__all__ = ["D1Limits"]


@dataclass(frozen=True)
class D1Limits:
    """Per-database limits. Every value is the documented D1 limit unless a comment says otherwise."""

    max_bound_parameters: int = 100
    """Bound parameters per query (SQLITE_LIMIT_VARIABLE_NUMBER): "too many SQL variables"."""

    max_sql_bytes: int = 100_000
    """UTF-8 length of one query's SQL (SQLITE_LIMIT_SQL_LENGTH): "statement too long"."""

    max_columns: int = 100
    """Columns per table, index, view or result set (SQLITE_LIMIT_COLUMN): "too many columns on t"."""

    max_value_bytes: int = 2_000_000
    """Largest string, BLOB or row (SQLITE_LIMIT_LENGTH): "string or blob too big"."""

    max_function_args: int = 32
    """Arguments per SQL function call (SQLITE_LIMIT_FUNCTION_ARG)."""

    max_like_pattern_bytes: int = 50
    """Length of a LIKE or GLOB pattern (SQLITE_LIMIT_LIKE_PATTERN_LENGTH)."""

    max_query_seconds: float = 30.0
    """Wall time of one query or batch; measured with the database's injected clock."""

    max_database_bytes: int = 10 * 1000**3
    """Database size on Workers Paid (10 GB; 500 MB on Free). The wording of D1's error when a write
    would exceed it is unconfirmed; locally SQLite reports "database or disk is full"."""

    def sqlite_limits(self) -> dict[int, int]:
        """The SQLite run-time limits (``sqlite3.SQLITE_LIMIT_*`` -> value) these limits map to."""
        return {
            sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER: self.max_bound_parameters,
            sqlite3.SQLITE_LIMIT_SQL_LENGTH: self.max_sql_bytes,
            sqlite3.SQLITE_LIMIT_COLUMN: self.max_columns,
            sqlite3.SQLITE_LIMIT_LENGTH: self.max_value_bytes,
            sqlite3.SQLITE_LIMIT_FUNCTION_ARG: self.max_function_args,
            sqlite3.SQLITE_LIMIT_LIKE_PATTERN_LENGTH: self.max_like_pattern_bytes,
            # D1 allows no attached databases (its authorizer denies ATTACH as well).
            sqlite3.SQLITE_LIMIT_ATTACHED: 0,
        }
