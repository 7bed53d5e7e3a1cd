"""The local migration runner: order, idempotency, atomic failure, file naming, wrangler bookkeeping."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from edgerag_local.d1 import LocalD1Database
from edgerag_local.d1.migrations import (
    MigrationError,
    apply_migrations,
    list_applied,
    migration_files,
    pending_migrations,
)


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    path = tmp_path / "migrations"
    path.mkdir()
    return path


@pytest.fixture
def db(tmp_path: Path) -> Iterator[LocalD1Database]:
    database = LocalD1Database(tmp_path / "db.sqlite")
    yield database
    database.close()


def write(folder: Path, name: str, sql: str) -> None:
    (folder / name).write_text(sql, encoding="utf-8")


def tables(db: LocalD1Database) -> set[str]:
    rows = db.batch_sync([db.prepare("SELECT name FROM sqlite_master WHERE type = 'table'")])[0].results
    return {row["name"] for row in rows}


def test_migrations_apply_in_numeric_order(db: LocalD1Database, folder: Path) -> None:
    # Each migration needs the table of the one before it, so a wrong order fails.
    write(folder, "10_third.sql", "CREATE TABLE c (b_id INTEGER REFERENCES b (id));")
    write(folder, "2_second.sql", "CREATE TABLE b (id INTEGER PRIMARY KEY, a_id REFERENCES a (id));\n"
          "INSERT INTO b SELECT id, id FROM a;")  # fmt: skip
    write(folder, "0001_first.sql", "CREATE TABLE a (id INTEGER PRIMARY KEY);\nINSERT INTO a VALUES (1);")
    assert apply_migrations(db, folder) == ["0001_first.sql", "2_second.sql", "10_third.sql"]
    assert list_applied(db) == ["0001_first.sql", "2_second.sql", "10_third.sql"]
    assert {"a", "b", "c"} <= tables(db)


def test_applying_again_is_a_no_op(db: LocalD1Database, folder: Path) -> None:
    write(folder, "0001_first.sql", "CREATE TABLE a (id INTEGER PRIMARY KEY);")
    assert apply_migrations(db, folder) == ["0001_first.sql"]
    assert apply_migrations(db, folder) == []
    assert pending_migrations(db, folder) == []
    rows = db.batch_sync([db.prepare("SELECT id, name FROM d1_migrations")])[0].results
    assert rows == [{"id": 1, "name": "0001_first.sql"}]


def test_new_files_are_pending_until_applied(db: LocalD1Database, folder: Path) -> None:
    write(folder, "0001_first.sql", "CREATE TABLE a (id INTEGER PRIMARY KEY);")
    assert pending_migrations(db, folder) == ["0001_first.sql"]
    apply_migrations(db, folder)
    write(folder, "0002_second.sql", "ALTER TABLE a ADD COLUMN name TEXT;")
    assert pending_migrations(db, folder) == ["0002_second.sql"]
    assert apply_migrations(db, folder) == ["0002_second.sql"]


def test_the_bookkeeping_table_is_wranglers(db: LocalD1Database, folder: Path) -> None:
    write(folder, "0001_first.sql", "CREATE TABLE a (id INTEGER PRIMARY KEY);")
    apply_migrations(db, folder)
    columns = db.batch_sync([db.prepare("PRAGMA table_info(d1_migrations)")])[0].results
    assert [(c["name"], c["type"], c["notnull"], c["pk"]) for c in columns] == [
        ("id", "INTEGER", 0, 1),
        ("name", "TEXT", 0, 0),
        ("applied_at", "TIMESTAMP", 1, 0),
    ]
    ddl = db.batch_sync([db.prepare("SELECT sql FROM sqlite_master WHERE name = 'd1_migrations'")])[0]
    assert "AUTOINCREMENT" in ddl.results[0]["sql"]
    assert "UNIQUE" in ddl.results[0]["sql"]
    applied_at = db.batch_sync([db.prepare("SELECT applied_at FROM d1_migrations")])[0].results[0]
    assert len(applied_at["applied_at"]) == len("2026-01-01 00:00:00")


def test_a_failing_migration_leaves_nothing_behind(db: LocalD1Database, folder: Path) -> None:
    write(folder, "0001_first.sql", "CREATE TABLE a (id INTEGER PRIMARY KEY);")
    write(folder, "0002_broken.sql", "CREATE TABLE b (id INTEGER);\nINSERT INTO missing VALUES (1);")
    write(folder, "0003_later.sql", "CREATE TABLE c (id INTEGER);")
    with pytest.raises(MigrationError) as caught:
        apply_migrations(db, folder)
    assert caught.value.name == "0002_broken.sql"
    assert caught.value.message == "D1_ERROR: no such table: missing: SQLITE_ERROR"
    assert "0002_broken.sql" in str(caught.value)
    assert list_applied(db) == ["0001_first.sql"]
    assert "b" not in tables(db)
    assert "c" not in tables(db)
    write(folder, "0002_broken.sql", "CREATE TABLE b (id INTEGER);")
    assert apply_migrations(db, folder) == ["0002_broken.sql", "0003_later.sql"]


def test_migrations_meet_d1s_rules(db: LocalD1Database, folder: Path) -> None:
    write(folder, "0001_tx.sql", "BEGIN TRANSACTION;\nCREATE TABLE a (id INTEGER);\nCOMMIT;")
    with pytest.raises(MigrationError) as caught:
        apply_migrations(db, folder)
    assert caught.value.message == "D1_ERROR: not authorized: SQLITE_AUTH"
    assert list_applied(db) == []


def test_semicolons_inside_triggers_strings_and_comments_do_not_split(
    db: LocalD1Database, folder: Path
) -> None:
    write(
        folder,
        "0001_trigger.sql",
        "-- a comment; with a semicolon\n"
        "CREATE TABLE a (v TEXT);\n"
        "CREATE TABLE log (v TEXT);\n"
        "CREATE TRIGGER a_log AFTER INSERT ON a\n"
        "BEGIN\n"
        "    INSERT INTO log VALUES ('x;y');\n"
        "    INSERT INTO log VALUES (new.v);\n"
        "END;\n"
        "/* trailing; comment */\n",
    )
    apply_migrations(db, folder)
    db.batch_sync([db.prepare("INSERT INTO a VALUES ('z')")])
    rows = db.batch_sync([db.prepare("SELECT v FROM log ORDER BY rowid")])[0].results
    assert [r["v"] for r in rows] == ["x;y", "z"]


def test_a_migration_may_defer_foreign_keys(db: LocalD1Database, folder: Path) -> None:
    write(
        folder,
        "0001_fk.sql",
        "CREATE TABLE parent (id TEXT PRIMARY KEY);\n"
        "CREATE TABLE child (parent_id TEXT NOT NULL REFERENCES parent (id));\n"
        "PRAGMA defer_foreign_keys = on;\n"
        "INSERT INTO child VALUES ('p');\n"
        "INSERT INTO parent VALUES ('p');\n",
    )
    assert apply_migrations(db, folder) == ["0001_fk.sql"]


def test_an_empty_migration_is_recorded(db: LocalD1Database, folder: Path) -> None:
    write(folder, "0001_nothing.sql", "-- intentionally empty\n")
    assert apply_migrations(db, folder) == ["0001_nothing.sql"]
    assert list_applied(db) == ["0001_nothing.sql"]


@pytest.mark.parametrize("name", ["initial.sql", "v1_initial.sql", "0001-initial.sql", "0001_.sql"])
def test_badly_named_sql_files_are_rejected_before_anything_runs(
    db: LocalD1Database, folder: Path, name: str
) -> None:
    write(folder, "0001_first.sql", "CREATE TABLE a (id INTEGER);")
    write(folder, name, "CREATE TABLE b (id INTEGER);")
    with pytest.raises(MigrationError) as caught:
        apply_migrations(db, folder)
    assert caught.value.name == name
    assert list_applied(db) == []


def test_duplicate_numbers_are_rejected(folder: Path) -> None:
    write(folder, "0001_a.sql", "CREATE TABLE a (id INTEGER);")
    write(folder, "1_b.sql", "CREATE TABLE b (id INTEGER);")
    with pytest.raises(MigrationError, match="same number"):
        migration_files(folder)


def test_other_files_are_ignored(folder: Path) -> None:
    write(folder, "0001_first.sql", "CREATE TABLE a (id INTEGER);")
    write(folder, "README.md", "notes")
    write(folder, "0002_draft.sql.bak", "garbage")
    (folder / "0003_dir.sql").mkdir()
    assert migration_files(folder) == ["0001_first.sql"]


def test_a_missing_folder_is_an_error(db: LocalD1Database, tmp_path: Path) -> None:
    with pytest.raises(MigrationError, match="no migrations folder"):
        apply_migrations(db, tmp_path / "nope")


def test_the_bookkeeping_table_name_can_be_chosen(db: LocalD1Database, folder: Path) -> None:
    write(folder, "0001_first.sql", "CREATE TABLE a (id INTEGER);")
    assert apply_migrations(db, folder, table="schema_log") == ["0001_first.sql"]
    assert list_applied(db, table="schema_log") == ["0001_first.sql"]
    assert list_applied(db) == []
    with pytest.raises(MigrationError, match="identifier"):
        apply_migrations(db, folder, table="x; DROP TABLE a")


def test_a_path_opens_the_database_and_closes_it(tmp_path: Path, folder: Path) -> None:
    write(folder, "0001_first.sql", "CREATE TABLE a (id INTEGER);")
    path = tmp_path / "by-path" / "db.sqlite"
    assert list_applied(path) == []
    assert apply_migrations(path, folder) == ["0001_first.sql"]
    assert pending_migrations(str(path), folder) == []
    with LocalD1Database(path) as reopened:
        assert list_applied(reopened) == ["0001_first.sql"]
