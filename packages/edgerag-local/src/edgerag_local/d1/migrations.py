"""Apply ``migrations/NNNN_name.sql`` to a local D1 database, with wrangler's bookkeeping.

``wrangler d1 migrations apply`` and this runner agree on everything a database records, so a
database migrated by either looks the same to the other:

* the bookkeeping table is ``d1_migrations`` (or the ``migrations_table`` of the wrangler config),
  created with wrangler's exact DDL, and its ``name`` column holds the file name
  (``"0001_initial.sql"``);
* migrations run in the order of their number (the part before the first ``_``);
* each migration runs in one transaction together with the insert of its bookkeeping row, as D1
  runs the migration text plus that insert in one call: a failing migration leaves neither schema
  nor bookkeeping behind, raises :class:`MigrationError` naming the file and D1's message, and
  stops the run (earlier migrations stay applied);
* everything goes through :class:`~edgerag_local.d1.LocalD1Database`, so a migration meets D1's
  rules here too (no ``BEGIN TRANSACTION``, only D1's PRAGMAs, D1's limits).

Stricter than wrangler, on purpose: wrangler applies every ``*.sql`` file and orders files whose
name does not start with a number unpredictably, so here a ``.sql`` file must be named
``<digits>_<name>.sql`` and numbers must be unique, or :class:`MigrationError` is raised before
anything runs. Files not ending in ``.sql`` are ignored, as wrangler ignores them.

The functions are synchronous (local tooling and test fixtures call them outside any event loop;
the database work is local and fast).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from edgerag_local.d1 import LocalD1Database
from edgerag_local.d1.errors import D1Error
from edgerag_local.d1.sql import split_statements

__all__ = [
    "DEFAULT_MIGRATIONS_TABLE",
    "MigrationError",
    "apply_migrations",
    "list_applied",
    "migration_files",
    "pending_migrations",
]

DEFAULT_MIGRATIONS_TABLE = "d1_migrations"

_FILE_NAME = re.compile(r"^(\d+)_[^/\\]+\.sql$")
_TABLE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class MigrationError(Exception):
    """A migration could not be applied, or the migrations folder is not usable."""

    def __init__(self, name: str, message: str) -> None:
        super().__init__(f"{name}: {message}")
        self.name = name
        self.message = message

    def __repr__(self) -> str:
        return f"MigrationError({self.name!r}, {self.message!r})"


def migration_files(migrations_dir: Path) -> list[str]:
    """The migration file names in ``migrations_dir``, in the order they apply."""
    folder = Path(migrations_dir)
    if not folder.is_dir():
        raise MigrationError(str(folder), "no migrations folder here")
    numbered: dict[int, str] = {}
    for entry in sorted(folder.iterdir()):
        if not entry.is_file() or not entry.name.endswith(".sql"):
            continue
        match = _FILE_NAME.match(entry.name)
        if match is None:
            raise MigrationError(entry.name, "a migration must be named <number>_<name>.sql")
        number = int(match.group(1))
        if number in numbered:
            raise MigrationError(entry.name, f"has the same number as {numbered[number]}")
        numbered[number] = entry.name
    return [numbered[number] for number in sorted(numbered)]


def list_applied(db: LocalD1Database | Path | str, table: str = DEFAULT_MIGRATIONS_TABLE) -> list[str]:
    """Names of the migrations recorded in ``table``, oldest first ([] when there is no table)."""
    _check_table_name(table)
    with _opened(db) as database:
        return _applied(database, table)


def pending_migrations(
    db: LocalD1Database | Path | str, migrations_dir: Path, table: str = DEFAULT_MIGRATIONS_TABLE
) -> list[str]:
    """Migration files in ``migrations_dir`` not yet recorded in ``table``, in apply order."""
    _check_table_name(table)
    files = migration_files(migrations_dir)
    with _opened(db) as database:
        applied = set(_applied(database, table))
    return [name for name in files if name not in applied]


def apply_migrations(
    db: LocalD1Database | Path | str, migrations_dir: Path, table: str = DEFAULT_MIGRATIONS_TABLE
) -> list[str]:
    """Apply every pending migration in order; return the names applied (``[]`` when up to date)."""
    _check_table_name(table)
    folder = Path(migrations_dir)
    files = migration_files(folder)
    with _opened(db) as database:
        _create_table(database, table)
        applied = set(_applied(database, table))
        done: list[str] = []
        for name in files:
            if name in applied:
                continue
            _apply_one(database, table, name, (folder / name).read_text(encoding="utf-8"))
            done.append(name)
        return done


def _apply_one(db: LocalD1Database, table: str, name: str, sql: str) -> None:
    statements = [db.prepare(statement) for statement in split_statements(sql)]
    record = db.prepare(f"INSERT INTO {table} (name) VALUES (?)").bind(name)
    try:
        db.batch_sync([*statements, record])
    except D1Error as exc:
        raise MigrationError(name, exc.message) from exc


def _create_table(db: LocalD1Database, table: str) -> None:
    # wrangler's DDL, verbatim in meaning: a database migrated by either tool reads the same.
    ddl = (
        f"CREATE TABLE IF NOT EXISTS {table}(\n"
        "    id         INTEGER PRIMARY KEY AUTOINCREMENT,\n"
        "    name       TEXT UNIQUE,\n"
        "    applied_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP NOT NULL\n"
        ");"
    )
    try:
        db.batch_sync([db.prepare(ddl)])
    except D1Error as exc:
        raise MigrationError(table, exc.message) from exc


def _applied(db: LocalD1Database, table: str) -> list[str]:
    exists = db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name = ?").bind(table)
    try:
        if not db.batch_sync([exists])[0].results:
            return []
        rows = db.batch_sync([db.prepare(f"SELECT name FROM {table} ORDER BY id")])[0].results
    except D1Error as exc:
        raise MigrationError(table, exc.message) from exc
    return [str(row["name"]) for row in rows]


def _check_table_name(table: str) -> None:
    if not _TABLE_NAME.match(table):
        raise MigrationError(table, "the migrations table name must be a plain SQL identifier")


@contextmanager
def _opened(db: LocalD1Database | Path | str) -> Iterator[LocalD1Database]:
    """Use ``db`` as it is, or open (and afterwards close) the database file it names."""
    if isinstance(db, LocalD1Database):
        yield db
        return
    database = LocalD1Database(db)
    try:
        yield database
    finally:
        database.close()
