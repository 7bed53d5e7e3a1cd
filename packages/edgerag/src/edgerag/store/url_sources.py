"""URL sources in D1: which documents come from a web page, and their re-sync state.

One row per URL document (migrations/0012_url_sources.sql says what each column means). Every query
carries the tenant except :meth:`UrlSourceStore.due`, the cron's cross-tenant pick, whose rows each
name their tenant. To add sync state: a column in a new migration, a field on :class:`UrlSource`, and
the write in the method of the step that learns it.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from edgerag.ports import D1Database
from edgerag.store.d1 import fetch_all, fetch_one, run

__all__ = ["EMPTY_SHA256", "PENDING_CONTENT_TYPE", "UrlSource", "UrlSourceStore", "iso"]

# What a URL document says before its first fetch: "a list of URIs" is literally what is stored.
PENDING_CONTENT_TYPE = "text/uri-list"
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


@dataclass(frozen=True)
class UrlSource:
    document_id: str
    tenant_id: str
    url: str
    interval_hours: int | None
    etag: str | None
    last_modified: str | None
    last_fetched_at: str | None
    last_checked_at: str | None
    last_error: str | None
    next_check_at: str | None
    resync_requested_at: str | None

    def to_public(self) -> dict[str, Any]:
        return {
            "url": self.url,
            "resync": None if self.interval_hours is None else {"interval_hours": self.interval_hours},
            "etag": self.etag,
            "last_modified": self.last_modified,
            "last_fetched_at": self.last_fetched_at,
            "last_checked_at": self.last_checked_at,
            "last_error": self.last_error,
            "next_check_at": self.next_check_at,
        }


def _source(row: dict[str, Any]) -> UrlSource:
    return UrlSource(**{name: row[name] for name in UrlSource.__dataclass_fields__})


def _next_check(interval_hours: int | None, now: datetime) -> str | None:
    return None if interval_hours is None else iso(now + timedelta(hours=interval_hours))


class UrlSourceStore:
    def __init__(self, db: D1Database) -> None:
        self._db = db

    async def create(self, tenant_id: str, document_id: str, url: str, interval_hours: int | None) -> None:
        await run(
            self._db,
            "INSERT INTO url_sources (document_id, tenant_id, url, interval_hours) VALUES (?1, ?2, ?3, ?4)",
            document_id,
            tenant_id,
            url,
            interval_hours,
        )

    async def find(self, tenant_id: str, document_id: str) -> UrlSource | None:
        row = await fetch_one(
            self._db,
            "SELECT * FROM url_sources WHERE document_id = ?1 AND tenant_id = ?2",
            document_id,
            tenant_id,
        )
        return None if row is None else _source(row)

    async def record_fetch(
        self,
        source: UrlSource,
        *,
        etag: str | None,
        last_modified: str | None,
        changed: bool,
        now: datetime,
    ) -> None:
        """A successful check: validators of this response, last_checked (and last_fetched if the
        body changed) now, the error cleared, the next check one interval on."""
        stamp = iso(now)
        await run(
            self._db,
            "UPDATE url_sources SET etag = COALESCE(?3, etag), last_modified = COALESCE(?4, last_modified),"
            " last_checked_at = ?5, last_fetched_at = CASE WHEN ?6 THEN ?5 ELSE last_fetched_at END,"
            " last_error = NULL, next_check_at = ?7, resync_requested_at = NULL"
            " WHERE document_id = ?1 AND tenant_id = ?2",
            source.document_id,
            source.tenant_id,
            etag,
            last_modified,
            stamp,
            1 if changed else 0,
            _next_check(source.interval_hours, now),
        )

    async def record_error(self, source: UrlSource, error: str, now: datetime) -> None:
        """A failed re-sync: the document keeps its last good version; the next check is one interval on."""
        await run(
            self._db,
            "UPDATE url_sources SET last_checked_at = ?3, last_error = ?4, next_check_at = ?5,"
            " resync_requested_at = NULL WHERE document_id = ?1 AND tenant_id = ?2",
            source.document_id,
            source.tenant_id,
            iso(now),
            error[:1000],
            _next_check(source.interval_hours, now),
        )

    async def due(self, now: datetime, limit: int) -> list[UrlSource]:
        """Sources of ready documents whose next check has come (every tenant's: the cron's pick)."""
        rows = await fetch_all(
            self._db,
            "SELECT s.* FROM url_sources s JOIN documents d"
            " ON d.id = s.document_id AND d.tenant_id = s.tenant_id"
            " WHERE s.interval_hours IS NOT NULL AND s.next_check_at <= ?1 AND d.status = 'ready'"
            " ORDER BY s.next_check_at LIMIT ?2",
            iso(now),
            limit,
        )
        return [_source(r) for r in rows]

    async def claim(self, source: UrlSource, now: datetime) -> bool:
        """Mark a due source as queued for re-sync and move its next check on, so the next tick does
        not queue it again while this one runs; False if another tick claimed it first."""
        changed = await run(
            self._db,
            "UPDATE url_sources SET resync_requested_at = ?3, next_check_at = ?4"
            " WHERE document_id = ?1 AND tenant_id = ?2 AND next_check_at = ?5",
            source.document_id,
            source.tenant_id,
            iso(now),
            _next_check(source.interval_hours, now),
            source.next_check_at,
        )
        return changed > 0
