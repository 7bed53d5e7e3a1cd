"""Cutting SQL text into the statements D1 runs, the way D1 cuts it.

Three callers, three rules:

* A prepared statement's SQL may hold several statements (``"CREATE TABLE a(x); INSERT ..."``): D1's
  SQLite walks them with its prepare loop, running each in turn; only the last may have parameters
  and only the last one's rows are returned. :func:`split_statements` reproduces that walk with
  ``sqlite3.complete_statement``, so semicolons inside strings, comments and trigger bodies
  (``BEGIN ... END``) never split a statement.
* ``db.exec(query)`` sends every *line* of the query as its own query (workerd's binding splits on
  ``\\n``): a statement spread over several lines fails there, and :func:`exec_lines` keeps that.
* Text that holds nothing but whitespace and comments is no statement at all (:func:`is_blank`).

Extend by adding a function with the rule it reproduces and where that rule comes from.
"""

from __future__ import annotations

import sqlite3

__all__ = ["exec_lines", "is_blank", "split_statements"]


def split_statements(sql: str) -> list[str]:
    """The statements in ``sql``, in order, each with its terminating ``;`` (the last may lack it).

    Pieces that hold only whitespace or comments are dropped.
    """
    statements: list[str] = []
    start = 0
    search_from = 0
    while True:
        semicolon = sql.find(";", search_from)
        if semicolon == -1:
            break
        candidate = sql[start : semicolon + 1]
        search_from = semicolon + 1
        if sqlite3.complete_statement(candidate):
            if not is_blank(candidate[:-1]):
                statements.append(candidate)
            start = search_from
    tail = sql[start:]
    if not is_blank(tail):
        statements.append(tail)
    return statements


def exec_lines(query: str) -> list[tuple[int, str]]:
    """``(line_number, line)`` for every line of ``query`` that ``db.exec`` would run.

    Line numbers count from 1 after trimming the query, as the binding's error messages do; blank
    and comment-only lines are skipped.
    """
    lines = query.strip().split("\n")
    return [(number, line) for number, line in enumerate(lines, start=1) if not is_blank(line)]


def is_blank(sql: str) -> bool:
    """True when ``sql`` holds only whitespace, ``;`` and comments (``-- ...`` and ``/* ... */``)."""
    i = 0
    n = len(sql)
    while i < n:
        char = sql[i]
        if char.isspace() or char == ";":
            i += 1
        elif sql.startswith("--", i):
            newline = sql.find("\n", i)
            i = n if newline == -1 else newline + 1
        elif sql.startswith("/*", i):
            close = sql.find("*/", i + 2)
            i = n if close == -1 else close + 2
        else:
            return False
    return True
