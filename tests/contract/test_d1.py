"""Contract suite for the D1 binding (edgerag.ports.D1Database).

Runs against every backend in ``BACKENDS``. Locally that is :class:`edgerag_local.d1.LocalD1Database`
on ``tmp_path`` with an injected clock. Inside workerd the same assertions would run in a test worker
whose ``DB`` binding is a real (empty, throw-away) D1 database, driven over RPC by a proxy with the
same methods (``prepare``/``bind``/``all``/``run``/``first``/``raw``/``batch``/``exec``); ``reopen``
would return the same binding, and the tests whose name starts with ``test_local_`` (lowered limits,
an injected clock, several connections on one file) would be skipped there.

Messages are compared with D1's wording. Two local differences are known and left out of the
assertions: D1 appends `` at offset N`` to SQLite parse errors, and its ``meta`` has more fields.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pytest
from edgerag.jsdict import AttrDict
from edgerag.ports import D1Database, D1PreparedStatement
from edgerag_local.d1 import D1Limits, LocalD1Database
from edgerag_local.d1.errors import D1Error

from tests.contract.conftest import BACKENDS, Miniflare, only
from tests.contract.miniflare.proxies import D1Database as MiniflareD1

META_KEYS = {"duration", "changes", "last_row_id", "changed_db", "size_after", "rows_read", "rows_written"}


class Clock:
    """A settable monotonic clock; ``step`` is added after every reading."""

    def __init__(self, now: float = 1000.0, step: float = 0.0) -> None:
        self.now = now
        self.step = step

    def __call__(self) -> float:
        value = self.now
        self.now += self.step
        return value


LOCAL_KNOB = "an emulator knob (lowered limits, an injected clock, its own SQLite file and connections)"


@dataclass
class Harness:
    path: Path
    clock: Clock = field(default_factory=Clock)
    opened: list[LocalD1Database] = field(default_factory=list)
    backend: str = "local"

    def open(self, limits: D1Limits | None = None, **options: Any) -> LocalD1Database:
        db = LocalD1Database(self.path, limits=limits, clock=options.pop("clock", self.clock), **options)
        self.opened.append(db)
        return db

    def close_all(self) -> None:
        for db in self.opened:
            db.close()


@dataclass
class MiniflareHarness:
    """A fresh D1 database of the Miniflare pool; reopening hands back the same binding."""

    db: MiniflareD1
    backend: str = "miniflare"

    def open(self, limits: D1Limits | None = None, **options: Any) -> Any:
        assert limits is None and not options, "limits and options are the emulator's knobs"
        return self.db


@pytest.fixture(params=BACKENDS)
def harness(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    if request.param == "miniflare":
        mf: Miniflare = request.getfixturevalue("miniflare")
        yield MiniflareHarness(MiniflareD1(mf.bridge, mf.take("DB")))
        return
    h = Harness(path=tmp_path / "d1" / "db.sqlite")
    yield h
    h.close_all()


@pytest.fixture
def db(harness: Any) -> Any:
    return harness.open()


async def make_table(db: LocalD1Database) -> None:
    await db.exec(
        "CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, qty INTEGER, data BLOB)"
    )
    await db.batch(
        [
            db.prepare("INSERT INTO items (name, qty) VALUES (?, ?)").bind("apple", 3),
            db.prepare("INSERT INTO items (name, qty) VALUES (?, ?)").bind("pear", None),
        ]
    )


async def d1_error(awaitable: Any) -> str:
    with pytest.raises(D1Error) as caught:
        await awaitable
    return caught.value.message


# ------------------------------------------------------------------------------------------ shapes


async def test_binding_satisfies_the_port(db: LocalD1Database) -> None:
    assert isinstance(db, D1Database)
    assert isinstance(db.prepare("SELECT 1"), D1PreparedStatement)


async def test_all_returns_success_rows_and_meta(db: LocalD1Database) -> None:
    await make_table(db)
    result = await db.prepare("SELECT name, qty FROM items ORDER BY id").all()
    assert isinstance(result, AttrDict)
    assert result.success is True
    assert result.results == [{"name": "apple", "qty": 3}, {"name": "pear", "qty": None}]
    assert result.results[0].name == "apple"
    assert META_KEYS <= set(result.meta)
    assert result.meta.changes == 0
    assert result.meta.changed_db is False
    assert result.meta.rows_read >= 2


async def test_run_reports_changes_and_last_row_id(db: LocalD1Database) -> None:
    await make_table(db)
    inserted = await db.prepare("INSERT INTO items (name) VALUES ('plum')").run()
    assert inserted.success is True
    assert inserted.results == []
    assert inserted.meta.changes == 1
    assert inserted.meta.last_row_id == 3
    assert inserted.meta.changed_db is True
    assert inserted.meta.rows_written >= 1
    assert inserted.meta.size_after > 0
    updated = await db.prepare("UPDATE items SET qty = 0").run()
    assert updated.meta.changes == 3


async def test_run_returns_rows_too(db: LocalD1Database) -> None:
    await make_table(db)
    result = await db.prepare("INSERT INTO items (name) VALUES ('fig') RETURNING id, name").run()
    assert result.results == [{"id": 3, "name": "fig"}]
    assert result.meta.changes == 1


async def test_first_returns_the_first_row_or_none(db: LocalD1Database) -> None:
    await make_table(db)
    row = await db.prepare("SELECT id, name FROM items ORDER BY id").first()
    assert row == {"id": 1, "name": "apple"}
    assert row.name == "apple"
    assert await db.prepare("SELECT * FROM items WHERE id = 99").first() is None


async def test_first_with_a_column_returns_its_value(db: LocalD1Database) -> None:
    await make_table(db)
    assert await db.prepare("SELECT name FROM items WHERE id = 1").first("name") == "apple"
    assert await db.prepare("SELECT qty FROM items WHERE id = 2").first("qty") is None
    assert await db.prepare("SELECT name FROM items WHERE id = 99").first("nope") is None


async def test_first_with_a_missing_column_raises(db: LocalD1Database) -> None:
    await make_table(db)
    message = await d1_error(db.prepare("SELECT name FROM items").first("nope"))
    assert message == "D1_COLUMN_NOTFOUND: Column not found (nope)"


async def test_raw_returns_lists_with_optional_column_names(db: LocalD1Database) -> None:
    await make_table(db)
    stmt = db.prepare("SELECT id, name FROM items ORDER BY id")
    assert await stmt.raw() == [[1, "apple"], [2, "pear"]]
    expected = [["id", "name"], [1, "apple"], [2, "pear"]]
    assert await stmt.raw(columnNames=True) == expected
    assert await stmt.raw({"columnNames": True}) == expected
    empty = db.prepare("SELECT id, name FROM items WHERE id = 99")
    assert await empty.raw(columnNames=True) == [["id", "name"]]


@only("local", "workerd ignores option names it does not know; the emulator refuses them to catch typos")
async def test_raw_refuses_unknown_options(db: Any) -> None:
    with pytest.raises(TypeError):
        await db.prepare("SELECT 1").raw(columnNamez=True)


async def test_duplicate_column_names_keep_the_last_in_objects_but_all_in_raw(db: LocalD1Database) -> None:
    stmt = db.prepare("SELECT 1 AS a, 2 AS a")
    assert (await stmt.all()).results == [{"a": 2}]
    assert await stmt.raw() == [[1, 2]]


async def test_bind_returns_a_new_statement(db: LocalD1Database) -> None:
    base = db.prepare("SELECT ? AS v")
    one = base.bind(1)
    two = base.bind(2)
    assert one is not base
    assert await one.first("v") == 1
    assert await two.first("v") == 2
    assert await one.bind(3).first("v") == 3
    assert await one.first("v") == 1
    assert await d1_error(base.all()) == "D1_ERROR: Wrong number of parameter bindings for SQL query."


async def test_ordered_parameters(db: LocalD1Database) -> None:
    row = await db.prepare("SELECT ?2 AS b, ?1 AS a, ?1 AS again").bind("x", "y").first()
    assert row == {"b": "y", "a": "x", "again": "x"}


async def test_wrong_number_of_bindings_is_an_error(db: LocalD1Database) -> None:
    wrong = "D1_ERROR: Wrong number of parameter bindings for SQL query."
    assert await d1_error(db.prepare("SELECT ?, ?").bind(1).all()) == wrong
    assert await d1_error(db.prepare("SELECT ?").bind(1, 2).all()) == wrong


async def test_prepare_runs_every_statement_and_returns_the_last(db: LocalD1Database) -> None:
    result = await db.prepare(
        "CREATE TABLE t (a); INSERT INTO t VALUES (1); INSERT INTO t VALUES (2); SELECT sum(a) AS s FROM t"
    ).all()
    assert result.results == [{"s": 3}]
    rows = await db.prepare("CREATE TABLE u (a); INSERT INTO u VALUES (?)").bind(5).run()
    assert rows.meta.changes == 1
    message = await d1_error(db.prepare("INSERT INTO t VALUES (?); SELECT 1").bind(2).all())
    assert message == (
        "D1_ERROR: When executing multiple SQL statements in a single call, "
        "only the last statement can have parameters."
    )


async def test_a_failing_statement_undoes_the_earlier_ones_of_its_query(db: LocalD1Database) -> None:
    await d1_error(db.prepare("CREATE TABLE t (a); INSERT INTO missing VALUES (1)").run())
    assert (await db.prepare("SELECT name FROM sqlite_master WHERE name = 't'").all()).results == []


async def test_blank_sql_is_refused(db: LocalD1Database) -> None:
    assert await d1_error(db.prepare("  -- nothing\n").all()) == "D1_ERROR: No SQL statements detected."


# ------------------------------------------------------------------------------------------ values


@pytest.mark.parametrize(
    ("value", "sql_type", "back"),
    [
        (None, "null", None),
        (True, "integer", 1),
        (False, "integer", 0),
        (42, "integer", 42),
        (-(2**53 - 1), "integer", -(2**53 - 1)),
        (2.5, "real", 2.5),
        (2.0, "integer", 2),
        (float("nan"), "null", None),
        (float("inf"), "null", None),
        ("héllo", "text", "héllo"),
        (b"\x00\xff", "blob", [0, 255]),
        (bytearray(b"ab"), "blob", [97, 98]),
        (memoryview(b"ab"), "blob", [97, 98]),
        ([1, 2, 255], "blob", [1, 2, 255]),
    ],
)
async def test_bound_values_are_stored_as_d1_stores_them(
    harness: Any, db: Any, value: Any, sql_type: str, back: Any
) -> None:
    row = await db.prepare("SELECT typeof(?1) AS t, ?1 AS v").bind(value).first()
    if harness.backend == "miniflare" and sql_type == "integer":
        # Miniflare artefact: its D1 runs on a Durable Object's SQL storage, which binds every JS
        # number (booleans arrive as 0/1) as REAL. D1's documented conversion (Worker API, "Type
        # conversion") stores integral numbers and booleans as INTEGER, as the emulator does.
        sql_type = "real"
    assert row == {"t": sql_type, "v": back}


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ({"a": 1}, "D1_TYPE_ERROR: Type 'object' not supported for value '[object Object]'"),
        ([1, "a"], "D1_TYPE_ERROR: Type 'object' not supported for value '1,a'"),
        (2**60, f"D1_TYPE_ERROR: Type 'bigint' not supported for value '{2**60}'"),
        (object(), "D1_TYPE_ERROR: Type 'object' not supported for value"),
    ],
)
def test_unsupported_values_are_refused_by_bind(db: LocalD1Database, value: Any, message: str) -> None:
    with pytest.raises(D1Error) as caught:
        db.prepare("SELECT ?").bind(value)
    assert caught.value.message.startswith(message)


async def test_results_cross_as_json_numbers_and_byte_lists(db: LocalD1Database) -> None:
    row = await db.prepare(
        "SELECT 1.0 AS whole, 2.5 AS half, 9007199254740993 AS big, x'0102' AS blob, 'é' AS text"
    ).first()
    assert row == {"whole": 1, "half": 2.5, "big": 9007199254740992.0, "blob": [1, 2], "text": "é"}
    assert isinstance(row.whole, int)
    assert isinstance(row.big, float)


# ------------------------------------------------------------------------------------------- batch


async def test_batch_returns_one_result_per_statement(db: LocalD1Database) -> None:
    await make_table(db)
    results = await db.batch(
        [
            db.prepare("INSERT INTO items (name) VALUES (?)").bind("kiwi"),
            db.prepare("SELECT count(*) AS n FROM items"),
        ]
    )
    assert [r.success for r in results] == [True, True]
    assert results[0].meta.changes == 1
    assert results[1].results == [{"n": 3}]


async def test_batch_is_atomic(db: LocalD1Database) -> None:
    await make_table(db)
    message = await d1_error(
        db.batch(
            [
                db.prepare("INSERT INTO items (name) VALUES (?)").bind("kiwi"),
                db.prepare("INSERT INTO items (name) VALUES (?)").bind("apple"),
            ]
        )
    )
    assert message == (
        "D1_ERROR: UNIQUE constraint failed: items.name: "
        "SQLITE_CONSTRAINT (extended: SQLITE_CONSTRAINT_UNIQUE)"
    )
    names = await db.prepare("SELECT name FROM items ORDER BY id").raw()
    assert names == [["apple"], ["pear"]]


async def test_an_empty_batch_is_refused(db: Any) -> None:
    assert await d1_error(db.batch([])) == "D1_ERROR: No SQL statements detected."


@only("local", "Miniflare passes a string on to its D1 object, which fails to parse it (a ZodError)")
async def test_batch_refuses_what_is_not_a_statement(db: Any) -> None:
    with pytest.raises(TypeError):
        await db.batch(["SELECT 1"])


async def test_defer_foreign_keys_lasts_for_the_batch(db: LocalD1Database) -> None:
    await db.exec(
        "CREATE TABLE parent (id TEXT PRIMARY KEY)\n"
        "CREATE TABLE child (id TEXT PRIMARY KEY, parent_id TEXT NOT NULL REFERENCES parent (id))"
    )
    await db.batch(
        [
            db.prepare("PRAGMA defer_foreign_keys = on"),
            db.prepare("INSERT INTO child VALUES ('c', 'p')"),
            db.prepare("INSERT INTO parent VALUES ('p')"),
        ]
    )
    message = await d1_error(db.prepare("INSERT INTO child VALUES ('d', 'missing')").run())
    assert message == (
        "D1_ERROR: FOREIGN KEY constraint failed: SQLITE_CONSTRAINT (extended: SQLITE_CONSTRAINT_FOREIGNKEY)"
    )


# -------------------------------------------------------------------------------------------- exec


async def test_exec_runs_every_line(db: Any) -> None:
    result = await db.exec(
        "CREATE TABLE t (a INTEGER)\n\nINSERT INTO t VALUES (1); INSERT INTO t VALUES (2)\n"
    )
    assert isinstance(result, AttrDict)
    assert result.count == 2
    assert result.duration >= 0
    assert await db.prepare("SELECT a FROM t ORDER BY a").raw() == [[1], [2]]


@only(
    "local",
    "Miniflare's exec() drops comment-only lines only when indented (its filter is /^\\s+--.*/gm), "
    "so a flush-left comment fails there with 'SQL code did not contain a statement'",
)
async def test_exec_skips_comment_lines(db: Any) -> None:
    assert (await db.exec("CREATE TABLE t (a INTEGER)\n-- done\n")).count == 1


async def test_exec_reports_the_failing_line_and_applies_nothing(harness: Any, db: Any) -> None:
    message = await d1_error(db.exec("CREATE TABLE t (a INTEGER)\nCREATE TABLE u (\n  a INTEGER)"))
    if harness.backend == "miniflare":
        # Miniflare artefact: its D1 object runs all lines in one transaction and reports no index,
        # so the binding names line 1 whichever line failed.
        assert message.startswith("D1_EXEC_ERROR: Error in line 1: ")
        assert message.endswith(": incomplete input: SQLITE_ERROR")
    else:
        assert message == "D1_EXEC_ERROR: Error in line 2: CREATE TABLE u (: incomplete input: SQLITE_ERROR"
    assert (await db.prepare("SELECT name FROM sqlite_master WHERE name IN ('t', 'u')").all()).results == []


async def test_exec_refuses_parameters(db: LocalD1Database) -> None:
    message = await d1_error(db.exec("SELECT ?"))
    assert (
        message
        == "D1_EXEC_ERROR: Error in line 1: SELECT ?: Wrong number of parameter bindings for SQL query."
    )


# ------------------------------------------------------------------------------------------ errors


async def test_sql_errors_carry_sqlite_text_and_code(db: LocalD1Database) -> None:
    assert (
        await d1_error(db.prepare("SELECT * FROM nope").all())
        == "D1_ERROR: no such table: nope: SQLITE_ERROR"
    )
    syntax = await d1_error(db.prepare("SELEC 1").all())
    assert syntax.startswith('D1_ERROR: near "SELEC": syntax error')
    assert syntax.endswith(": SQLITE_ERROR")


async def test_constraint_errors_name_the_extended_code(db: LocalD1Database) -> None:
    await db.exec("CREATE TABLE t (a INTEGER NOT NULL CHECK (a > 0))")
    check = await d1_error(db.prepare("INSERT INTO t VALUES (0)").run())
    assert check == (
        "D1_ERROR: CHECK constraint failed: a > 0: SQLITE_CONSTRAINT (extended: SQLITE_CONSTRAINT_CHECK)"
    )
    not_null = await d1_error(db.prepare("INSERT INTO t VALUES (NULL)").run())
    assert not_null == (
        "D1_ERROR: NOT NULL constraint failed: t.a: SQLITE_CONSTRAINT (extended: SQLITE_CONSTRAINT_NOTNULL)"
    )


async def test_foreign_keys_are_always_enforced(db: LocalD1Database) -> None:
    await db.exec(
        "CREATE TABLE parent (id TEXT PRIMARY KEY)\n"
        "CREATE TABLE child (id TEXT, parent_id TEXT REFERENCES parent (id) ON DELETE CASCADE)"
    )
    await db.prepare("PRAGMA foreign_keys = OFF").run()
    assert await db.prepare("PRAGMA foreign_keys").first("foreign_keys") == 1
    message = await d1_error(db.prepare("INSERT INTO child VALUES ('c', 'nobody')").run())
    assert "FOREIGN KEY constraint failed" in message
    await db.exec("INSERT INTO parent VALUES ('p')\nINSERT INTO child VALUES ('c', 'p')")
    await db.prepare("DELETE FROM parent").run()
    assert await db.prepare("SELECT count(*) AS n FROM child").first("n") == 0


@pytest.mark.parametrize(
    "sql",
    [
        "BEGIN TRANSACTION",
        "COMMIT",
        "SAVEPOINT s",
        "PRAGMA journal_mode",
        "PRAGMA journal_mode = DELETE",
        "PRAGMA user_version = 3",
        "ATTACH DATABASE 'other.db' AS other",
        "CREATE TEMP TABLE scratch (a)",
        "CREATE TABLE _cf_mine (a)",
    ],
)
async def test_statements_d1_does_not_authorize(harness: Any, db: Any, sql: str) -> None:
    message = await d1_error(db.prepare(sql).run())
    if harness.backend == "miniflare" and sql.split()[0] in ("BEGIN", "COMMIT", "SAVEPOINT"):
        # Miniflare artefact: a Durable Object's SQL storage refuses transaction statements with its
        # own advice (state.storage.transaction()); the refusal is the contract, the wording is not.
        assert message.startswith("D1_ERROR: To execute a transaction, please use the state.storage")
    else:
        assert message == "D1_ERROR: not authorized: SQLITE_AUTH"


async def test_introspection_functions_are_refused(db: LocalD1Database) -> None:
    message = await d1_error(db.prepare("SELECT sqlite_version()").all())
    assert message.startswith("D1_ERROR: not authorized")


async def test_documented_pragmas_work(db: LocalD1Database) -> None:
    await make_table(db)
    columns = await db.prepare("PRAGMA table_info(items)").all()
    assert [c["name"] for c in columns.results] == ["id", "name", "qty", "data"]
    assert await db.prepare("PRAGMA table_list").all() is not None
    assert await db.prepare("PRAGMA quick_check").first("quick_check") == "ok"
    assert (await db.prepare("PRAGMA foreign_key_check").all()).results == []


@only(
    "local",
    "Miniflare keeps a PRAGMA on its Durable Object's connection until the object restarts; D1 "
    "promises neither, and the emulator resets it after each call so code cannot come to rely on it",
)
async def test_pragmas_last_for_one_call(db: Any) -> None:
    like = db.prepare("SELECT 'a' LIKE 'A' AS same")
    both = await db.batch([db.prepare("PRAGMA case_sensitive_like = ON"), like])
    assert both[1].results == [{"same": 0}]
    assert await like.first("same") == 1


async def test_fts5_is_available(db: LocalD1Database) -> None:
    await db.exec(
        "CREATE VIRTUAL TABLE docs USING fts5(title, body, tokenize = 'porter unicode61 remove_diacritics 2')"
    )
    await db.batch(
        [
            db.prepare("INSERT INTO docs (title, body) VALUES (?, ?)").bind("Dogs", "Running dogs café"),
            db.prepare("INSERT INTO docs (title, body) VALUES (?, ?)").bind("Cats", "Sleeping cats"),
        ]
    )
    rows = (
        await db.prepare("SELECT title, bm25(docs) AS score FROM docs WHERE docs MATCH ? ORDER BY score")
        .bind("run AND cafe")
        .all()
    )
    assert [r.title for r in rows.results] == ["Dogs"]
    assert isinstance(rows.results[0].score, float)


# ------------------------------------------------------------------------------------------ limits


async def test_one_hundred_parameters_pass_and_one_more_fails(db: LocalD1Database) -> None:
    hundred = "SELECT " + ", ".join("?" for _ in range(100))
    assert len(await db.prepare(hundred).bind(*range(100)).raw()) == 1
    message = await d1_error(db.prepare(hundred + ", ?").bind(*range(101)).all())
    assert message.startswith("D1_ERROR: too many SQL variables")
    assert message.endswith(": SQLITE_ERROR")


async def test_sql_longer_than_100_kb_is_refused(db: LocalD1Database) -> None:
    prefix = "SELECT 1 AS one -- "
    at_limit = prefix + "x" * (100_000 - len(prefix))
    assert await db.prepare(at_limit).first() == {"one": 1}
    # The limit counts UTF-8 bytes: one "é" is two.
    over = prefix + "é" + "x" * (100_000 - len(prefix) - 1)
    assert await d1_error(db.prepare(over).all()) == "D1_ERROR: statement too long: SQLITE_TOOBIG"


async def test_a_table_may_have_100_columns_not_101(db: LocalD1Database) -> None:
    def ddl(name: str, n: int) -> str:
        return f"CREATE TABLE {name} (" + ", ".join(f"c{i}" for i in range(n)) + ")"

    await db.prepare(ddl("wide", 100)).run()
    assert (
        await d1_error(db.prepare(ddl("wider", 101)).run())
        == "D1_ERROR: too many columns on wider: SQLITE_ERROR"
    )


async def test_values_up_to_2_mb_fit(db: Any) -> None:
    await db.exec("CREATE TABLE blobs (b BLOB)")
    await db.prepare("INSERT INTO blobs VALUES (?)").bind(b"x" * 1_999_000).run()
    assert await db.prepare("SELECT length(b) AS n FROM blobs").first("n") == 1_999_000


@only(
    "local",
    "Miniflare does not enforce D1's documented 2,000,000-byte limit on a string, BLOB or row (D1 limits)",
)
async def test_values_over_2_mb_are_refused(db: Any) -> None:
    await db.exec("CREATE TABLE blobs (b BLOB)")
    message = await d1_error(db.prepare("INSERT INTO blobs VALUES (?)").bind(b"x" * 2_000_001).run())
    assert message == "D1_ERROR: string or blob too big: SQLITE_TOOBIG"


@only("local", LOCAL_KNOB)
async def test_local_limits_can_be_lowered(harness: Harness) -> None:
    db = harness.open(replace(D1Limits(), max_bound_parameters=3, max_sql_bytes=64, max_value_bytes=100))
    assert await db.prepare("SELECT ?, ?, ?").bind(1, 2, 3).raw() == [[1, 2, 3]]
    assert (await d1_error(db.prepare("SELECT ?, ?, ?, ?").bind(1, 2, 3, 4).all())).startswith(
        "D1_ERROR: too many SQL variables"
    )
    assert (
        await d1_error(db.prepare("SELECT 1 -- " + "x" * 64).all())
        == "D1_ERROR: statement too long: SQLITE_TOOBIG"
    )
    message = await d1_error(db.prepare("SELECT ?").bind("x" * 101).all())
    assert message == "D1_ERROR: string or blob too big: SQLITE_TOOBIG"


@only("local", LOCAL_KNOB)
async def test_local_query_time_limit_uses_the_injected_clock(harness: Harness) -> None:
    clock = Clock(step=1.0)  # every reading of the clock moves it a second
    db = harness.open(replace(D1Limits(), max_query_seconds=5), clock=clock)
    slow = (
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 1000000) "
        "SELECT count(*) FROM n"
    )
    message = await d1_error(db.prepare(slow).all())
    assert message == "D1_ERROR: D1 DB storage operation exceeded timeout which caused object to be reset."
    assert await db.prepare("SELECT 2 AS v").first("v") == 2


@only("local", LOCAL_KNOB)
async def test_local_duration_is_measured_with_the_injected_clock(harness: Harness) -> None:
    db = harness.open(clock=Clock(step=0.0))
    result = await db.prepare("SELECT 1").all()
    assert result.meta.duration == 0.0
    assert (await db.exec("SELECT 1\nSELECT 2")).duration == 0.0


@only("local", LOCAL_KNOB)
async def test_local_database_size_limit(harness: Harness) -> None:
    db = harness.open(replace(D1Limits(), max_database_bytes=64 * 1024))
    await db.exec("CREATE TABLE blobs (b BLOB)")
    message = await d1_error(db.prepare("INSERT INTO blobs VALUES (zeroblob(200000))").run())
    assert message == "D1_ERROR: database or disk is full: SQLITE_FULL"
    assert await db.prepare("SELECT count(*) AS n FROM blobs").first("n") == 0


# ------------------------------------------------------------------------ persistence, concurrency


async def test_data_persists_across_reopen(harness: Harness) -> None:
    db = harness.open()
    await make_table(db)
    db.close()
    again = harness.open()
    assert await again.prepare("SELECT name FROM items ORDER BY id").raw() == [["apple"], ["pear"]]


@only("local", LOCAL_KNOB)
async def test_local_two_bindings_on_one_file_share_the_data(harness: Harness) -> None:
    first, second = harness.open(), harness.open()
    await make_table(first)
    await second.prepare("INSERT INTO items (name) VALUES ('from second')").run()
    assert await first.prepare("SELECT count(*) AS n FROM items").first("n") == 3


@only("local", LOCAL_KNOB)
async def test_local_concurrent_writers_lose_no_update(harness: Harness) -> None:
    setup = harness.open()
    await setup.exec("CREATE TABLE counter (n INTEGER NOT NULL)\nINSERT INTO counter VALUES (0)")
    writers = [harness.open(), harness.open()]
    failures: list[BaseException] = []

    def work(db: LocalD1Database) -> None:
        try:
            for _ in range(50):
                asyncio.run(db.prepare("UPDATE counter SET n = n + 1").run())
        except BaseException as exc:  # reported below; a thread cannot fail the test itself
            failures.append(exc)

    threads = [threading.Thread(target=work, args=(w,)) for w in writers]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert failures == []
    assert await setup.prepare("SELECT n FROM counter").first("n") == 100


@only("local", LOCAL_KNOB)
async def test_local_a_held_write_lock_ends_in_sqlite_busy(harness: Harness) -> None:
    db = harness.open(busy_timeout=0.05)
    await db.exec("CREATE TABLE t (a)")
    other = sqlite3.connect(harness.path, isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")
        assert await d1_error(db.prepare("SELECT 1").all()) == "D1_ERROR: database is locked: SQLITE_BUSY"
        other.execute("ROLLBACK")
    finally:
        other.close()
    assert await db.prepare("SELECT 1 AS v").first("v") == 1
