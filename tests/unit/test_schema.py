"""The schema in migrations/: it applies, keeps FTS5 in step, isolates tenants, and rejects bad rows.

Runs the real migration files through the local D1 emulator, so every statement here is one D1
would accept. Keyword search uses the query documented in 0001_initial.sql.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from edgerag_local.d1 import LocalD1Database
from edgerag_local.d1.errors import D1Error
from edgerag_local.d1.migrations import apply_migrations, list_applied, migration_files
from edgerag_local.d1.sql import is_blank, split_statements

MIGRATIONS = Path(__file__).resolve().parents[2] / "migrations"

SEARCH = (
    "SELECT c.id, bm25(chunks_fts) AS score FROM chunks_fts JOIN chunks c ON c.rid = chunks_fts.rowid "
    "WHERE chunks_fts MATCH ?1 AND c.tenant_id = ?2 ORDER BY score LIMIT ?3"
)
ISO_UTC = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[LocalD1Database]:
    database = LocalD1Database(tmp_path / "db.sqlite")
    apply_migrations(database, MIGRATIONS)
    await database.batch(
        [
            database.prepare("INSERT INTO tenants (id, name) VALUES (?, ?)").bind("t1", "Acme"),
            database.prepare("INSERT INTO tenants (id, name) VALUES (?, ?)").bind("t2", "Globex"),
        ]
    )
    yield database
    database.close()


async def add_document(db: LocalD1Database, tenant: str, doc_id: str, **columns: Any) -> None:
    values = {
        "id": doc_id,
        "tenant_id": tenant,
        "title": "A title",
        "content_type": "text/plain",
        "size_bytes": 10,
        "r2_key": f"{tenant}/{doc_id}",
        "content_sha256": "0" * 64,
        **columns,
    }
    names = ", ".join(values)
    marks = ", ".join("?" for _ in values)
    await db.prepare(f"INSERT INTO documents ({names}) VALUES ({marks})").bind(*values.values()).run()


async def add_chunk(
    db: LocalD1Database, tenant: str, doc_id: str, chunk_id: str, seq: int, text: str
) -> None:
    await (
        db.prepare("INSERT INTO chunks (id, tenant_id, document_id, seq, text) VALUES (?, ?, ?, ?, ?)")
        .bind(chunk_id, tenant, doc_id, seq, text)
        .run()
    )


async def search(db: LocalD1Database, tenant: str, query: str, limit: int = 10) -> list[str]:
    rows = await db.prepare(SEARCH).bind(query, tenant, limit).all()
    return [row["id"] for row in rows.results]


async def fts_rows(db: LocalD1Database) -> int:
    # The FTS index's own row count (docsize shadow table), independent of the content table.
    return int(await db.prepare("SELECT count(*) AS n FROM chunks_fts_docsize").first("n"))


async def check_fts(db: LocalD1Database) -> None:
    """FTS5's integrity check compares the index with the content table; it raises on any drift."""
    await db.prepare("INSERT INTO chunks_fts (chunks_fts) VALUES ('integrity-check')").run()


async def d1_error(awaitable: Any) -> str:
    with pytest.raises(D1Error) as caught:
        await awaitable
    return caught.value.message


# ---------------------------------------------------------------------------------------- applies


async def test_the_migrations_apply_to_a_fresh_database(db: LocalD1Database) -> None:
    assert list_applied(db) == migration_files(MIGRATIONS)
    assert list_applied(db)[0] == "0001_initial.sql"
    rows = await db.prepare(
        "SELECT name FROM sqlite_master WHERE type IN ('table', 'index', 'trigger')"
    ).all()
    names = {row["name"] for row in rows.results}
    assert {"tenants", "api_keys", "documents", "chunks", "chunks_fts", "usage_events"} <= names
    assert {"api_keys_tenant_idx", "documents_tenant_created_idx", "chunks_tenant_document_idx"} <= names
    assert {"usage_events_tenant_created_idx"} <= names
    assert apply_migrations(db, MIGRATIONS) == []


async def test_defaults_fill_timestamps_and_states(db: LocalD1Database) -> None:
    await add_document(db, "t1", "d1")
    tenant = await db.prepare("SELECT plan, status, created_at FROM tenants WHERE id = 't1'").first()
    assert tenant["plan"] == "free"
    assert tenant["status"] == "active"
    assert ISO_UTC.match(tenant["created_at"])
    doc = await db.prepare("SELECT * FROM documents WHERE id = 'd1'").first()
    assert doc["status"] == "queued"
    assert doc["chunk_count"] == 0
    assert doc["attempts"] == 0
    assert doc["metadata"] == "{}"
    assert ISO_UTC.match(doc["created_at"])
    assert ISO_UTC.match(doc["updated_at"])


def wrangler_split(sql: str) -> list[str]:
    """The statements ``wrangler d1 execute --local`` (and ``migrations apply --local``) would send.

    A re-statement of the rule in workers-sdk ``packages/wrangler/src/d1/splitter.ts``: quotes and
    comments are skipped whole; a ``;`` ends a statement unless a compound statement is open, which
    starts where the text so far ends in whitespace + ``BEGIN`` + whitespace (upper case only) and
    closes at whitespace + ``END`` + ``;`` or whitespace. Pieces are trimmed, empty ones dropped.
    """
    trimmed = sql.rstrip()
    first = trimmed.find(";")
    if first in (-1, len(trimmed) - 1):
        return [sql]
    statements: list[str] = []
    current = ""
    open_compounds = 0
    i = 0
    while i < len(sql):
        char = sql[i]
        if open_compounds and re.search(r"\sEND[;\s]\Z", (current + char)[-5:]):
            open_compounds -= 1
        if char in "'\"`":
            close = sql.find(char, i + 1)
            end = len(sql) if close == -1 else close + 1
            current += sql[i:end]
            i = end
        elif char == "$":
            j = i + 1
            while (
                j < len(sql)
                and sql[j] != "$"
                and (sql[j] in "0123456789_" or sql[j].lower() != sql[j].upper())
            ):
                j += 1
            tag = sql[i : j + 1]  # the character that ended the tag is consumed with it
            current += tag
            i = j + 1
            if tag.endswith("$"):
                close = sql.find(tag, i)
                end = len(sql) if close == -1 else close + len(tag)
                current += sql[i:end]
                i = end
        elif char in "-/" and sql[i + 1 : i + 2] == ("-" if char == "-" else "*"):
            marker = "\n" if char == "-" else "*/"
            close = sql.find(marker, i + 2)
            end = len(sql) if close == -1 else close + len(marker)
            current += sql[i:end]
            i = end
        elif char in "-/":
            current += char
            i += 1
            continue  # wrangler skips the compound check after a lone - or /
        elif char == ";" and not open_compounds:
            statements.append(current)
            current = ""
            i += 1
        else:
            current += char
            i += 1
        if re.search(r"\sBEGIN\s\Z", current[-7:]):
            open_compounds += 1
    statements.append(current)
    return [s.strip() for s in statements if s.strip()]


def test_wranglers_splitter_cuts_every_migration_where_sqlite_does() -> None:
    # Locally wrangler splits a migration with its own splitter before running it; a file it cuts
    # differently (a lower-case trigger body, say) would apply here and remotely but not there.
    for name in migration_files(MIGRATIONS):
        sql = (MIGRATIONS / name).read_text(encoding="utf-8")
        by_sqlite = [s.strip().rstrip(";").strip() for s in split_statements(sql)]
        by_wrangler = [s for s in wrangler_split(sql) if not is_blank(s)]
        assert by_wrangler == by_sqlite, name


def test_the_wrangler_split_rule_catches_a_lower_case_trigger_body() -> None:
    upper = "CREATE TABLE a (v);\nCREATE TRIGGER t AFTER INSERT ON a\nBEGIN\n  SELECT 1;\n  SELECT 2;\nEND;\n"
    assert len(wrangler_split(upper)) == 2
    assert len(wrangler_split(upper.replace("BEGIN", "begin").replace("END", "end"))) == 4


# -------------------------------------------------------------------------------------------- FTS


async def test_fts_follows_inserts_updates_and_deletes(db: LocalD1Database) -> None:
    await add_document(db, "t1", "d1")
    await add_chunk(db, "t1", "d1", "c1", 0, "Kubernetes operators reconcile desired state")
    assert await search(db, "t1", "reconcile") == ["c1"]
    assert await search(db, "t1", "operator") == ["c1"]  # porter stemming

    await db.prepare("UPDATE chunks SET text = 'Terraform plans infrastructure' WHERE id = 'c1'").run()
    assert await search(db, "t1", "reconcile") == []
    assert await search(db, "t1", "terraform") == ["c1"]

    await db.prepare("UPDATE chunks SET title = 'Infra notes' WHERE id = 'c1'").run()
    assert await search(db, "t1", "title:notes") == ["c1"]

    await db.prepare("UPDATE chunks SET token_count = 7 WHERE id = 'c1'").run()
    assert await search(db, "t1", "terraform") == ["c1"]
    await check_fts(db)

    await db.prepare("DELETE FROM chunks WHERE id = 'c1'").run()
    assert await search(db, "t1", "terraform") == []
    assert await fts_rows(db) == 0
    await check_fts(db)


async def test_upsert_on_conflict_keeps_fts_in_step(db: LocalD1Database) -> None:
    await add_document(db, "t1", "d1")
    await add_chunk(db, "t1", "d1", "c1", 0, "first version")
    upsert = (
        "INSERT INTO chunks (id, tenant_id, document_id, seq, text) VALUES (?, ?, ?, ?, ?) "
        "ON CONFLICT (id) DO UPDATE SET text = excluded.text"
    )
    await db.prepare(upsert).bind("c1", "t1", "d1", 0, "second version").run()
    assert await search(db, "t1", "first") == []
    assert await search(db, "t1", "second") == ["c1"]
    await check_fts(db)


async def test_deleting_a_document_cascades_to_chunks_and_their_fts_rows(db: LocalD1Database) -> None:
    await add_document(db, "t1", "d1")
    await add_document(db, "t1", "d2")
    await add_chunk(db, "t1", "d1", "c1", 0, "alpha bravo")
    await add_chunk(db, "t1", "d1", "c2", 1, "alpha charlie")
    await add_chunk(db, "t1", "d2", "c3", 0, "alpha delta")
    assert await fts_rows(db) == 3

    await db.prepare("DELETE FROM documents WHERE tenant_id = ? AND id = ?").bind("t1", "d1").run()

    assert await db.prepare("SELECT id FROM chunks").raw() == [["c3"]]
    assert await fts_rows(db) == 1
    assert await search(db, "t1", "alpha") == ["c3"]
    await check_fts(db)


async def test_deleting_a_tenant_removes_everything_it_owns(db: LocalD1Database) -> None:
    await add_document(db, "t1", "d1")
    await add_chunk(db, "t1", "d1", "c1", 0, "alpha")
    await db.batch(
        [
            db.prepare(
                "INSERT INTO api_keys (id, tenant_id, name, prefix, key_hash, scopes) "
                "VALUES ('k1', 't1', 'ci', 'ek_a', 'h', 'search')"
            ),
            db.prepare("INSERT INTO usage_events (tenant_id, kind, units) VALUES ('t1', 'tokens', 5)"),
        ]
    )
    await db.prepare("DELETE FROM tenants WHERE id = 't1'").run()
    for table in ("api_keys", "documents", "chunks", "usage_events"):
        assert await db.prepare(f"SELECT count(*) AS n FROM {table}").first("n") == 0, table
    assert await fts_rows(db) == 0


# ---------------------------------------------------------------------------------------- tenancy


async def test_keyword_search_filtered_by_tenant_returns_only_that_tenants_chunks(
    db: LocalD1Database,
) -> None:
    await add_document(db, "t1", "d1")
    await add_document(db, "t2", "d9")
    await add_chunk(db, "t1", "d1", "a1", 0, "invoice payment terms net thirty")
    await add_chunk(db, "t1", "d1", "a2", 1, "invoice numbering scheme")
    await add_chunk(db, "t2", "d9", "b1", 0, "invoice payment terms net thirty invoice invoice")
    assert sorted(await search(db, "t1", "invoice")) == ["a1", "a2"]
    assert await search(db, "t2", "invoice") == ["b1"]
    assert await search(db, "t1", "payment AND terms") == ["a1"]
    assert await search(db, "t3", "invoice") == []
    ranked = await db.prepare(SEARCH).bind("invoice", "t1", 10).all()
    scores = [row["score"] for row in ranked.results]
    assert scores == sorted(scores)  # bm25: lower is better, so ascending order ranks best first


async def test_a_chunk_cannot_point_at_another_tenants_document(db: LocalD1Database) -> None:
    await add_document(db, "t1", "d1")
    message = await d1_error(add_chunk(db, "t2", "d1", "x", 0, "sneaky"))
    assert "FOREIGN KEY constraint failed" in message


# ------------------------------------------------------------------------------------ constraints


@pytest.mark.parametrize("status", ["done", "QUEUED", ""])
async def test_document_status_must_be_known(db: LocalD1Database, status: str) -> None:
    message = await d1_error(add_document(db, "t1", "d1", status=status))
    assert message.startswith("D1_ERROR: CHECK constraint failed")
    for known in ("queued", "processing", "ready", "failed"):
        await add_document(db, "t1", f"doc-{known}", status=known)


async def test_tenant_status_must_be_known(db: LocalD1Database) -> None:
    message = await d1_error(db.prepare("UPDATE tenants SET status = 'deleted' WHERE id = 't1'").run())
    assert message.startswith("D1_ERROR: CHECK constraint failed")
    await db.prepare("UPDATE tenants SET status = 'suspended' WHERE id = 't1'").run()


async def test_api_key_prefixes_are_unique_across_tenants(db: LocalD1Database) -> None:
    insert = db.prepare(
        "INSERT INTO api_keys (id, tenant_id, name, prefix, key_hash, scopes) VALUES (?, ?, ?, ?, ?, ?)"
    )
    await insert.bind("k1", "t1", "ci", "ek_live_abc", "hash1", "search chat").run()
    message = await d1_error(insert.bind("k2", "t2", "ci", "ek_live_abc", "hash2", "search").run())
    assert message == (
        "D1_ERROR: UNIQUE constraint failed: api_keys.prefix: "
        "SQLITE_CONSTRAINT (extended: SQLITE_CONSTRAINT_UNIQUE)"
    )


async def test_tenant_names_are_unique(db: LocalD1Database) -> None:
    message = await d1_error(db.prepare("INSERT INTO tenants (id, name) VALUES ('t3', 'Acme')").run())
    assert "UNIQUE constraint failed: tenants.name" in message


@pytest.mark.parametrize("metadata", ["not json", "[1, 2]", "3"])
async def test_document_metadata_must_be_a_json_object(db: LocalD1Database, metadata: str) -> None:
    message = await d1_error(add_document(db, "t1", "d1", metadata=metadata))
    assert message.startswith("D1_ERROR: CHECK constraint failed")
    await add_document(db, "t1", "d2", metadata='{"lang": "en"}')


async def test_chunk_sequence_numbers_are_unique_per_document(db: LocalD1Database) -> None:
    await add_document(db, "t1", "d1")
    await add_chunk(db, "t1", "d1", "c1", 0, "one")
    message = await d1_error(add_chunk(db, "t1", "d1", "c2", 0, "two"))
    assert "UNIQUE constraint failed: chunks.document_id, chunks.seq" in message


async def test_rows_need_an_existing_tenant(db: LocalD1Database) -> None:
    message = await d1_error(add_document(db, "nobody", "d1"))
    assert "FOREIGN KEY constraint failed" in message
    message = await d1_error(
        db.prepare("INSERT INTO usage_events (tenant_id, kind, units) VALUES ('nobody', 'tokens', 1)").run()
    )
    assert "FOREIGN KEY constraint failed" in message


# ------------------------------------------------------------------- duplicates (0002_document_dedup)


async def test_one_live_copy_of_the_same_content_per_tenant(db: LocalD1Database) -> None:
    sha = "a" * 64
    await add_document(db, "t1", "d1", content_sha256=sha, dedup_sha256=sha)
    message = await d1_error(add_document(db, "t1", "d2", content_sha256=sha, dedup_sha256=sha))
    assert "UNIQUE" in message
    # Forced copies and failed documents hold no claim (NULLs are distinct), other tenants their own.
    await add_document(db, "t1", "d3", content_sha256=sha, dedup_sha256=None)
    await add_document(db, "t1", "d4", content_sha256=sha, dedup_sha256=None)
    await add_document(db, "t2", "d5", content_sha256=sha, dedup_sha256=sha)


async def test_0002_gives_the_claim_to_the_oldest_live_copy_of_existing_duplicates(tmp_path: Path) -> None:
    folder = tmp_path / "migrations"
    folder.mkdir()
    (folder / "0001_initial.sql").write_text((MIGRATIONS / "0001_initial.sql").read_text())
    database = LocalD1Database(tmp_path / "old.sqlite")
    try:
        apply_migrations(database, folder)
        await database.batch(
            [
                database.prepare("INSERT INTO tenants (id, name) VALUES (?, ?)").bind("t1", "Acme"),
                database.prepare("INSERT INTO tenants (id, name) VALUES (?, ?)").bind("t2", "Globex"),
            ]
        )
        a, b = "a" * 64, "b" * 64
        rows = [
            ("t1", "d1", a, "failed", "2026-01-01T00:00:00.000Z"),  # oldest, but failed
            ("t1", "d2", a, "ready", "2026-01-02T00:00:00.000Z"),  # the live copy
            ("t1", "d3", a, "queued", "2026-01-03T00:00:00.000Z"),  # an older duplicate, uncounted
            ("t1", "d4", b, "ready", "2026-01-01T00:00:00.000Z"),
            ("t2", "d5", a, "ready", "2026-01-05T00:00:00.000Z"),
        ]
        for tenant, doc, sha, status, created in rows:
            await add_document(database, tenant, doc, content_sha256=sha, status=status, created_at=created)
        (folder / "0002_document_dedup.sql").write_text((MIGRATIONS / "0002_document_dedup.sql").read_text())
        assert apply_migrations(database, folder) == ["0002_document_dedup.sql"]
        claims = await database.prepare("SELECT id, dedup_sha256 FROM documents ORDER BY id").all()
        assert {r["id"]: r["dedup_sha256"] for r in claims.results} == {
            "d1": None,
            "d2": a,
            "d3": None,
            "d4": b,
            "d5": a,
        }
    finally:
        database.close()
