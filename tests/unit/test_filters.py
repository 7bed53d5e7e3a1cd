"""The filter language: validation errors name the failing path; the SQL it compiles to selects
exactly the documents the documented semantics say (run on SQLite, which D1 is)."""

from __future__ import annotations

import json
import sqlite3
from typing import Any

import pytest
from edgerag.filters import MAX_FIELDS, MAX_VALUES, parse_filter
from edgerag.metadata import merge_metadata, validate_metadata
from edgerag.problems import ValidationFailed

DOCS: dict[str, tuple[dict[str, Any], str, str, str]] = {
    # id: (metadata, content_type, created_at, title)
    "a": (
        {"team": "search", "year": 2024, "draft": False, "score": 0.5},
        "text/plain",
        "2026-01-01T00:00:00.000Z",
        "Alpha",
    ),
    "b": (
        {"team": "ingest", "year": 2025, "draft": True},
        "application/pdf",
        "2026-02-01T00:00:00.000Z",
        "Beta",
    ),
    "c": (
        {"team": "search", "year": "2025"},
        "text/plain; charset=shift_jis",
        "2026-03-01T00:00:00.000Z",
        "Gamma",
    ),
    "d": ({}, "text/markdown", "2026-04-01T00:00:00.000Z", "Delta"),
}


@pytest.fixture(scope="module")
def db() -> sqlite3.Connection:
    conn = sqlite3.connect(":memory:")
    conn.execute(
        "CREATE TABLE documents (id TEXT, metadata TEXT, content_type TEXT, created_at TEXT, title TEXT)"
    )
    for doc_id, (meta, ctype, created, title) in DOCS.items():
        conn.execute(
            "INSERT INTO documents VALUES (?, ?, ?, ?, ?)", (doc_id, json.dumps(meta), ctype, created, title)
        )
    return conn


def select(db: sqlite3.Connection, metadata: Any = None, builtins: Any = None) -> list[str]:
    fragment, params = parse_filter(metadata, builtins).sql(start=2)
    # ?1 is taken, as the tenant is in real queries: the fragment must number from ``start``.
    sql = f"SELECT d.id FROM documents d WHERE ?1 = 1 AND {fragment} ORDER BY d.id"
    return [r[0] for r in db.execute(sql, [1, *params])]


@pytest.mark.parametrize(
    ("metadata", "builtins", "expected"),
    [
        ({"team": "search"}, None, ["a", "c"]),
        ({"team": {"$eq": "search"}}, None, ["a", "c"]),
        ({"team": {"$ne": "search"}}, None, ["b", "d"]),  # absent passes $ne
        ({"year": 2025}, None, ["b"]),  # type-strict: "2025" is not 2025
        ({"year": "2025"}, None, ["c"]),
        ({"year": {"$gte": 2024, "$lt": 2025}}, None, ["a"]),
        ({"year": {"$gt": 2000}}, None, ["a", "b"]),  # numbers only: the string "2025" is not compared
        ({"year": {"$lte": "3000"}}, None, ["c"]),
        ({"draft": True}, None, ["b"]),
        ({"draft": False}, None, ["a"]),  # false is not 0 and not absent
        ({"draft": {"$ne": True}}, None, ["a", "c", "d"]),
        ({"team": {"$in": ["ingest", "ops"]}}, None, ["b"]),
        ({"team": {"$nin": ["ingest"]}}, None, ["a", "c", "d"]),  # absent passes $nin
        ({"year": {"$in": [2024, "2025"]}}, None, ["a", "c"]),
        ({"score": {"$lt": 1}}, None, ["a"]),
        ({"team": "search", "year": 2024}, None, ["a"]),
        (None, {"content_type": "text/plain"}, ["a", "c"]),  # the charset is not part of the type
        (None, {"content_type": {"$in": ["application/pdf", "text/markdown"]}}, ["b", "d"]),
        (None, {"created_at": {"$gte": "2026-02", "$lt": "2026-04"}}, ["b", "c"]),
        (None, {"title": {"$ne": "Beta"}}, ["a", "c", "d"]),
        ({"team": "search"}, {"title": "Gamma"}, ["c"]),
        ({}, {"title": None}, ["a", "b", "c", "d"]),
        ({"missing": {"$nin": ["x"]}, "team": {"$ne": "nope"}}, None, ["a", "b", "c", "d"]),
    ],
)
def test_semantics(db: sqlite3.Connection, metadata: Any, builtins: Any, expected: list[str]) -> None:
    assert select(db, metadata, builtins) == expected


def test_values_are_bound_not_spliced(db: sqlite3.Connection) -> None:
    hostile = "x') OR 1=1 --"
    assert select(db, {"team": hostile}) == []
    assert select(db, {"it's": {"$ne": hostile}}) == ["a", "b", "c", "d"]
    fragment, params = parse_filter({"team": hostile}).sql()
    assert hostile not in fragment and hostile in params


def test_one_path_parameter_per_condition() -> None:
    # D1 allows 100 bound parameters: a full $in costs its values plus one path, not two per value.
    _, params = parse_filter({"k": {"$in": [str(i) for i in range(MAX_VALUES)]}}).sql()
    assert len(params) == MAX_VALUES + 1


def test_canonical_ignores_order() -> None:
    one = parse_filter({"a": 1, "b": {"$in": ["x"]}}, {"title": "t"})
    two = parse_filter({"b": {"$in": ["x"]}, "a": 1}, {"title": "t"})
    assert one.canonical() == two.canonical()
    assert not parse_filter({}, {"title": None})


def errors_of(metadata: Any = None, builtins: Any = None) -> list[tuple[list[Any], str]]:
    with pytest.raises(ValidationFailed) as caught:
        parse_filter(metadata, builtins)
    assert caught.value.status == 422
    return [(e["loc"], e["msg"]) for e in caught.value.errors]


@pytest.mark.parametrize(
    ("metadata", "builtins", "loc", "words"),
    [
        ({"a": {"$regex": "x"}}, None, ["body", "filters", "metadata", "a", "$regex"], "unknown operator"),
        ({"a": {"$in": []}}, None, ["body", "filters", "metadata", "a", "$in"], "non-empty list"),
        ({"a": {"$in": "x"}}, None, ["body", "filters", "metadata", "a", "$in"], "non-empty list"),
        (
            {"a": {"$in": ["x", [1]]}},
            None,
            ["body", "filters", "metadata", "a", "$in", "1"],
            "string, number",
        ),
        ({"a": {"$gt": True}}, None, ["body", "filters", "metadata", "a", "$gt"], "not a boolean"),
        ({"a": None}, None, ["body", "filters", "metadata", "a"], "string, number or boolean"),
        ({"a": {"b": 1}}, None, ["body", "filters", "metadata", "a", "b"], "unknown operator"),
        ({"a": {}}, None, ["body", "filters", "metadata", "a"], "at least one operator"),
        ({"a": [1, 2]}, None, ["body", "filters", "metadata", "a"], "string, number or boolean"),
        ({'a"b': 1}, None, ["body", "filters", "metadata", 'a"b'], "without quotes"),
        ({"k" * 65: 1}, None, ["body", "filters", "metadata", "k" * 65], "1-64"),
        ({"a": "x" * 257}, None, ["body", "filters", "metadata", "a"], "at most 256"),
        ({"a": float("nan")}, None, ["body", "filters", "metadata", "a"], "finite"),
        ({"a": 2**60}, None, ["body", "filters", "metadata", "a"], "2^53"),
        (None, {"size": 1}, ["body", "filters", "size"], "not a built-in"),
        (None, {"created_at": {"$gte": 2026}}, ["body", "filters", "created_at", "$gte"], "must be a string"),
        ("team", None, ["body", "filters", "metadata"], "must be an object"),
    ],
)
def test_bad_filters_name_the_path(metadata: Any, builtins: Any, loc: list[Any], words: str) -> None:
    errors = errors_of(metadata, builtins)
    assert any(e_loc == loc and words in msg for e_loc, msg in errors), errors


def test_size_limits() -> None:
    too_many_fields = {f"f{i}": 1 for i in range(MAX_FIELDS + 1)}
    assert any("fields" in msg for _, msg in errors_of(too_many_fields))
    too_many_values = {"a": {"$in": list(range(MAX_VALUES))}, "b": 1}
    assert any("values" in msg for _, msg in errors_of(too_many_values))


def test_metadata_validation_and_merge() -> None:
    assert validate_metadata({"a": "x", "n": 1.5, "b": True}) == {"a": "x", "n": 1.5, "b": True}
    assert merge_metadata({"a": 1, "b": 2}, {"b": None, "c": "new"}) == {"a": 1, "c": "new"}
    for bad, loc in (
        ({"a": {"nested": 1}}, ["body", "metadata", "a"]),
        ({"a": [1]}, ["body", "metadata", "a"]),
        ({"": 1}, ["body", "metadata", ""]),
        ({f"k{i}": 1 for i in range(33)}, ["body", "metadata"]),
        ({f"k{i}": "x" * 900 for i in range(10)}, ["body", "metadata"]),
    ):
        with pytest.raises(ValidationFailed) as caught:
            validate_metadata(bad)
        assert [e["loc"] for e in caught.value.errors] == [loc], bad
    with pytest.raises(ValidationFailed):
        merge_metadata({}, ["not", "an", "object"])
