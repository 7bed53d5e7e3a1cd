"""Stored retrieval evaluations in D1 (migrations/0014_evaluations.sql) and the resolution of
judgement references to the tenant's documents.

Every statement filters by the tenant: another tenant's evaluation answers
:class:`~edgerag.problems.NotFound` exactly like one that does not exist, and a judgement naming
another tenant's document (by id or by title) resolves to nothing, exactly like an unknown one, so an
evaluation can never reveal that a document exists elsewhere.

A run is one ``evaluations`` row plus one ``evaluation_queries`` row per query, written in one D1 batch
(atomic: a failure leaves no partial run). The query rows go in as a JSON array expanded by
``json_each`` in the INSERT, a few statements per run however many queries it has (D1 counts queries
per Worker invocation, and bound parameters per statement are limited to 100). Lookups of judged
documents are one statement each for ids and titles, for the same reasons.

Time comes from the injectable ``clock`` (seconds since the epoch), so tests move it.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from edgerag.ids import new_id
from edgerag.ports import D1Database
from edgerag.problems import NotFound
from edgerag.store.d1 import fetch_all, fetch_one, run, statement

__all__ = ["DocumentRef", "EvaluationQueryRecord", "EvaluationRecord", "EvaluationStore"]

_QUERIES_PER_STATEMENT = 50  # keeps each bound JSON value far below D1's 2 MB per value


def _iso(seconds: float) -> str:
    moment = dt.datetime.fromtimestamp(seconds, dt.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


@dataclass(frozen=True)
class DocumentRef:
    """One of the tenant's documents, as a judgement can name it."""

    id: str
    title: str
    status: str


@dataclass(frozen=True)
class EvaluationQueryRecord:
    seq: int
    query_id: str | None
    query: str
    judgements: dict[str, int]  # document id -> grade
    results: dict[str, Any]  # mode -> {metrics, ranking, first_relevant_rank}; {} if not evaluated

    def to_dict(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "query_id": self.query_id,
            "query": self.query,
            "judgements": self.judgements,
            "results": self.results,
        }


@dataclass(frozen=True)
class EvaluationRecord:
    id: str
    tenant_id: str
    name: str | None
    config: dict[str, Any]
    summary: dict[str, dict[str, float]]
    query_count: int
    evaluated_count: int
    unresolved: list[dict[str, Any]]
    not_ready: list[str]
    duration_ms: float
    created_at: str
    queries: list[EvaluationQueryRecord] = field(default_factory=list)  # filled by get(with_queries)


def _record(row: dict[str, Any]) -> EvaluationRecord:
    return EvaluationRecord(
        id=row["id"],
        tenant_id=row["tenant_id"],
        name=row["name"],
        config=json.loads(row["config"]),
        summary=json.loads(row["summary"]),
        query_count=row["query_count"],
        evaluated_count=row["evaluated_count"],
        unresolved=json.loads(row["unresolved"]),
        not_ready=json.loads(row["not_ready"]),
        duration_ms=row["duration_ms"],
        created_at=row["created_at"],
    )


def _query(row: dict[str, Any]) -> EvaluationQueryRecord:
    return EvaluationQueryRecord(
        seq=row["seq"],
        query_id=row["query_id"],
        query=row["query"],
        judgements=json.loads(row["judgements"]),
        results=json.loads(row["results"]),
    )


class EvaluationStore:
    def __init__(self, db: D1Database, *, clock: Callable[[], float] = time.time) -> None:
        self._db = db
        self._clock = clock

    # ------------------------------------------------------------------ judged documents

    async def documents_by_id(self, tenant_id: str, ids: Sequence[str]) -> dict[str, DocumentRef]:
        """The tenant's documents among ``ids`` (others' and unknown ids are absent)."""
        if not ids:
            return {}
        rows = await fetch_all(
            self._db,
            "SELECT id, title, status FROM documents"
            " WHERE tenant_id = ?1 AND id IN (SELECT value FROM json_each(?2))",
            tenant_id,
            _dumps(sorted(set(ids))),
        )
        return {r["id"]: DocumentRef(r["id"], r["title"], r["status"]) for r in rows}

    async def documents_by_title(self, tenant_id: str, titles: Sequence[str]) -> dict[str, list[DocumentRef]]:
        """Title -> the tenant's documents with exactly that title (oldest first)."""
        if not titles:
            return {}
        rows = await fetch_all(
            self._db,
            "SELECT id, title, status FROM documents"
            " WHERE tenant_id = ?1 AND title IN (SELECT value FROM json_each(?2)) ORDER BY created_at, id",
            tenant_id,
            _dumps(sorted(set(titles))),
        )
        found: dict[str, list[DocumentRef]] = {}
        for r in rows:
            found.setdefault(r["title"], []).append(DocumentRef(r["id"], r["title"], r["status"]))
        return found

    # ------------------------------------------------------------------ runs

    async def create(
        self,
        tenant_id: str,
        *,
        name: str | None,
        config: dict[str, Any],
        summary: dict[str, dict[str, float]],
        unresolved: list[dict[str, Any]],
        not_ready: list[str],
        duration_ms: float,
        queries: Sequence[EvaluationQueryRecord],
    ) -> EvaluationRecord:
        """Store a run and its queries atomically; the stored record (with its queries)."""
        evaluation_id = new_id("eval", clock=self._clock)
        created_at = _iso(self._clock())
        evaluated = sum(1 for q in queries if q.results)
        statements = [
            statement(
                self._db,
                "INSERT INTO evaluations (id, tenant_id, name, config, summary, query_count,"
                " evaluated_count, unresolved, not_ready, duration_ms, created_at)"
                " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
                evaluation_id,
                tenant_id,
                name,
                _dumps(config),
                _dumps(summary),
                len(queries),
                evaluated,
                _dumps(unresolved),
                _dumps(not_ready),
                duration_ms,
                created_at,
            )
        ]
        for start in range(0, len(queries), _QUERIES_PER_STATEMENT):
            part = [q.to_dict() for q in queries[start : start + _QUERIES_PER_STATEMENT]]
            statements.append(
                statement(
                    self._db,
                    "INSERT INTO evaluation_queries"
                    " (tenant_id, evaluation_id, seq, query_id, query, judgements, results)"
                    " SELECT ?1, ?2, json_extract(j.value, '$.seq'), json_extract(j.value, '$.query_id'),"
                    " json_extract(j.value, '$.query'), json_extract(j.value, '$.judgements'),"
                    " json_extract(j.value, '$.results') FROM json_each(?3) j",
                    tenant_id,
                    evaluation_id,
                    _dumps(part),
                )
            )
        await self._db.batch(statements)
        return EvaluationRecord(
            id=evaluation_id,
            tenant_id=tenant_id,
            name=name,
            config=config,
            summary=summary,
            query_count=len(queries),
            evaluated_count=evaluated,
            unresolved=unresolved,
            not_ready=not_ready,
            duration_ms=duration_ms,
            created_at=created_at,
            queries=list(queries),
        )

    async def get(self, tenant_id: str, evaluation_id: str, *, with_queries: bool = True) -> EvaluationRecord:
        row = await fetch_one(
            self._db, "SELECT * FROM evaluations WHERE id = ?1 AND tenant_id = ?2", evaluation_id, tenant_id
        )
        if row is None:
            raise NotFound(f"no evaluation {evaluation_id}")
        record = _record(row)
        if not with_queries:
            return record
        rows = await fetch_all(
            self._db,
            "SELECT * FROM evaluation_queries WHERE tenant_id = ?1 AND evaluation_id = ?2 ORDER BY seq",
            tenant_id,
            evaluation_id,
        )
        return EvaluationRecord(**{**record.__dict__, "queries": [_query(r) for r in rows]})

    async def list_page(
        self, tenant_id: str, *, limit: int, before: tuple[str, str] | None = None
    ) -> list[EvaluationRecord]:
        """Up to ``limit`` runs, newest first, strictly after the cursor ``before`` (created_at, id)."""
        if before is None:
            rows = await fetch_all(
                self._db,
                "SELECT * FROM evaluations WHERE tenant_id = ?1 ORDER BY created_at DESC, id DESC LIMIT ?2",
                tenant_id,
                limit,
            )
        else:
            rows = await fetch_all(
                self._db,
                "SELECT * FROM evaluations WHERE tenant_id = ?1"
                " AND (created_at < ?2 OR (created_at = ?2 AND id < ?3))"
                " ORDER BY created_at DESC, id DESC LIMIT ?4",
                tenant_id,
                before[0],
                before[1],
                limit,
            )
        return [_record(r) for r in rows]

    async def delete(self, tenant_id: str, evaluation_id: str) -> None:
        """Delete a run and its queries (cascade); :class:`NotFound` if the tenant has no such run."""
        changed = await run(
            self._db, "DELETE FROM evaluations WHERE id = ?1 AND tenant_id = ?2", evaluation_id, tenant_id
        )
        if not changed:
            raise NotFound(f"no evaluation {evaluation_id}")
