"""Where the local R2 bucket keeps its objects: a metadata table in SQLite plus one file per blob.

Layout of a bucket folder: ``objects.sqlite`` (table ``r2_objects``, one row per key; keys are TEXT
with SQLite's binary collation, i.e. ordered by UTF-8 bytes as R2 lists them) and ``blobs/<id>``,
one file per stored version. A write puts the blob file in place first, then swaps the row in one
transaction, then removes the previous blob, so a reader never finds a row without its bytes; a crash
between the steps can at worst leave an unreferenced blob file behind.

A connection is opened per call (several bucket instances may share a folder, as two workers bound
to one bucket do) and commits skip fsync: state survives the process, not a crash of the machine.

This module knows nothing of R2's rules; :mod:`edgerag_local.r2` validates and shapes results. To
add a stored field: add a column (and a migration for existing files) and a field to
:class:`StoredObject`.
"""

from __future__ import annotations

import json
import os
import sqlite3
import uuid
from collections.abc import Callable, Sequence
from contextlib import closing
from dataclasses import astuple, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from edgerag_local.r2.object import R2Checksums

__all__ = ["ListSlot", "R2Store", "StoredObject", "datetime_to_millis"]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_SCAN_BATCH = 256
_COLUMNS = (
    "key, blob, version, size, etag, uploaded, http_metadata, custom_metadata, checksums, storage_class"
)
_SCHEMA = """
CREATE TABLE IF NOT EXISTS r2_objects (
    key TEXT PRIMARY KEY NOT NULL,
    blob TEXT NOT NULL,
    version TEXT NOT NULL,
    size INTEGER NOT NULL,
    etag TEXT NOT NULL,
    uploaded INTEGER NOT NULL,
    http_metadata TEXT NOT NULL,
    custom_metadata TEXT NOT NULL,
    checksums TEXT NOT NULL,
    storage_class TEXT NOT NULL
) WITHOUT ROWID
"""


def datetime_to_millis(moment: datetime) -> int:
    return (moment - _EPOCH) // timedelta(milliseconds=1)


def _millis_to_datetime(ms: int) -> datetime:
    return _EPOCH + timedelta(milliseconds=ms)


@dataclass(frozen=True)
class StoredObject:
    """One row of ``r2_objects``: times in epoch milliseconds, metadata and checksums as JSON."""

    key: str
    blob: str
    version: str
    size: int
    etag: str
    uploaded: int
    http_metadata: str
    custom_metadata: str
    checksums: str
    storage_class: str

    @classmethod
    def new(
        cls,
        *,
        key: str,
        size: int,
        uploaded: int,
        http_metadata: dict[str, Any],
        custom_metadata: dict[str, str],
        digests: dict[str, bytes],
        storage_class: str,
    ) -> StoredObject:
        stored_http = dict(http_metadata)
        if "cacheExpiry" in stored_http:
            stored_http["cacheExpiry"] = datetime_to_millis(stored_http["cacheExpiry"])
        return cls(
            key=key,
            blob=uuid.uuid4().hex,
            version=uuid.uuid4().hex,
            size=size,
            etag=digests["md5"].hex(),
            uploaded=uploaded,
            http_metadata=json.dumps(stored_http),
            custom_metadata=json.dumps(custom_metadata),
            checksums=json.dumps({name: digest.hex() for name, digest in digests.items()}),
            storage_class=storage_class,
        )

    def fields(self, *, http: bool = True, custom: bool = True) -> dict[str, Any]:
        """Constructor arguments of an ``R2Object`` for this row; metadata left out is None."""
        http_metadata: dict[str, Any] = json.loads(self.http_metadata)
        if "cacheExpiry" in http_metadata:
            http_metadata["cacheExpiry"] = _millis_to_datetime(http_metadata["cacheExpiry"])
        return {
            "key": self.key,
            "version": self.version,
            "size": self.size,
            "etag": self.etag,
            "uploaded": _millis_to_datetime(self.uploaded),
            "http_metadata": http_metadata if http else None,
            "custom_metadata": json.loads(self.custom_metadata) if custom else None,
            "checksums": R2Checksums({k: bytes.fromhex(v) for k, v in json.loads(self.checksums).items()}),
            "storage_class": self.storage_class,
        }


@dataclass
class ListSlot:
    """One slot of a list page: an object, or a delimited prefix standing for every key under it."""

    prefix: str | None
    row: StoredObject | None
    last_key: str


class R2Store:
    """The rows and blob files of one bucket folder."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.blobs = root / "blobs"
        self.blobs.mkdir(parents=True, exist_ok=True)
        with closing(self._connect()) as db:
            db.execute(_SCHEMA)

    def get(self, key: str) -> StoredObject | None:
        with closing(self._connect()) as db:
            return self._row(db, key)

    def read(self, row: StoredObject, offset: int, length: int) -> bytes | None:
        """``length`` bytes from ``offset``, or None if the blob is gone (deleted meanwhile)."""
        try:
            with (self.blobs / row.blob).open("rb") as blob:
                blob.seek(offset)
                return blob.read(length)
        except FileNotFoundError:
            return None

    def write(self, row: StoredObject, data: bytes, allowed: Callable[[StoredObject | None], bool]) -> bool:
        """Store ``row`` and its bytes unless ``allowed(current row)`` says no; whether it was stored."""
        blob_path = self.blobs / row.blob
        partial = blob_path.with_suffix(".partial")
        partial.write_bytes(data)
        os.replace(partial, blob_path)
        with closing(self._connect()) as db, db:
            db.execute("BEGIN IMMEDIATE")
            previous = self._row(db, row.key)
            if not allowed(previous):
                db.rollback()
                blob_path.unlink()
                return False
            db.execute(
                f"INSERT OR REPLACE INTO r2_objects ({_COLUMNS}) VALUES ({', '.join('?' * 10)})", astuple(row)
            )
        if previous is not None:
            (self.blobs / previous.blob).unlink(missing_ok=True)
        return True

    def delete(self, keys: Sequence[str]) -> None:
        blobs = []
        with closing(self._connect()) as db, db:
            db.execute("BEGIN IMMEDIATE")
            for key in keys:
                deleted = db.execute("DELETE FROM r2_objects WHERE key = ? RETURNING blob", (key,)).fetchone()
                if deleted is not None:
                    blobs.append(deleted[0])
        for blob in blobs:
            (self.blobs / blob).unlink(missing_ok=True)

    def scan(self, prefix: str, after: str, delimiter: str | None, want: int) -> list[ListSlot]:
        """Up to ``want`` page slots for keys after ``after``: objects, and keys grouped by delimiter."""
        slots: list[ListSlot] = []
        position = after
        with closing(self._connect()) as db:
            while True:
                rows = db.execute(
                    f"SELECT {_COLUMNS} FROM r2_objects WHERE key > ? AND key >= ? ORDER BY key LIMIT ?",
                    (position, prefix, _SCAN_BATCH),
                ).fetchall()
                if not rows:
                    return slots
                for values in rows:
                    row = StoredObject(*values)
                    position = row.key
                    if not row.key.startswith(prefix):
                        return slots  # keys are sorted, so no later key has the prefix either
                    cut = -1 if delimiter is None else row.key.find(delimiter, len(prefix))
                    if delimiter is not None and cut >= 0:
                        group = row.key[: cut + len(delimiter)]
                        if slots and slots[-1].prefix == group:
                            slots[-1].last_key = row.key  # the next page starts after the whole group
                            continue
                        slots.append(ListSlot(prefix=group, row=None, last_key=row.key))
                    else:
                        slots.append(ListSlot(prefix=None, row=row, last_key=row.key))
                    if len(slots) == want:
                        return slots  # the slot before this one can no longer grow

    @staticmethod
    def _row(db: sqlite3.Connection, key: str) -> StoredObject | None:
        values = db.execute(f"SELECT {_COLUMNS} FROM r2_objects WHERE key = ?", (key,)).fetchone()
        return None if values is None else StoredObject(*values)

    def _connect(self) -> sqlite3.Connection:
        # Autocommit unless a method opens a transaction itself. synchronous=OFF skips the fsync per
        # commit (about 10 ms each), see the module docstring.
        db = sqlite3.connect(self.root / "objects.sqlite", isolation_level=None)
        db.execute("PRAGMA synchronous=OFF")
        return db
