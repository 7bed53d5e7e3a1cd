"""Durable storage of one local Vectorize index (SQLite) and the in-memory slabs queries run on.

Layout of the SQLite file (one file per index):

* ``index_info(key, value)``: ``dimensions``, ``metric``, ``write_seq`` (a counter bumped by every write
  batch), and the last mutation's id and time (what ``describe()`` reports as ``processedUpTo*``).
* ``vectors(id PRIMARY KEY, namespace, vals, metadata, seq)``: values as little-endian float32 bytes,
  metadata as compact JSON, ``seq`` the batch that last wrote the vector. Ids are unique per *index*,
  not per namespace, as at the edge: writing an id under another namespace moves it.
* ``metadata_indexes(property, type, created_seq)``: the metadata indexes and when they appeared.
  A vector is in a metadata index only if it was written after the index was created
  (``seq > created_seq``), which is the edge's rule ("vectors upserted before a metadata index was
  created won't have their metadata contained in that index"). Adding an index to the config of an
  existing index therefore covers only later writes; removing one drops it.

On open every row is loaded into one :class:`~edgerag_local.vectorize.slab.NamespaceSlab` per namespace;
each write is committed to SQLite first and then applied to the slabs, so a failed commit leaves memory
untouched. One process should own a file at a time (the local runtime opens each index once). A store
is not safe for concurrent use by itself: its owner (``LocalVectorizeIndex``) holds a lock around every
call, which is why the connection may be used from any thread.

To change the schema: bump ``_SCHEMA_VERSION`` and migrate in :meth:`VectorStore._init_schema`.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edgerag_local.vectorize.columns import IndexedValue, StringDictionary, indexed_from_sql, indexed_value
from edgerag_local.vectorize.config import VectorizeIndexConfig, VectorizeLimits
from edgerag_local.vectorize.errors import VectorizeError
from edgerag_local.vectorize.input import PreparedVector, vectorize_error
from edgerag_local.vectorize.slab import NamespaceSlab

__all__ = ["StoredVector", "VectorStore"]

_SCHEMA_VERSION = "1"
_SCHEMA = """
CREATE TABLE IF NOT EXISTS index_info (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS vectors (
    id TEXT PRIMARY KEY,
    namespace TEXT,
    vals BLOB NOT NULL,
    metadata TEXT,
    seq INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS metadata_indexes (
    property TEXT PRIMARY KEY,
    type TEXT NOT NULL,
    created_seq INTEGER NOT NULL
);
"""


@dataclass(frozen=True, slots=True)
class StoredVector:
    id: str
    namespace: str | None
    values: list[float]
    metadata: dict[str, Any] | None


class VectorStore:
    """SQLite-backed vectors of one index plus per-namespace slabs kept in step with it."""

    def __init__(self, path: Path, config: VectorizeIndexConfig, limits: VectorizeLimits) -> None:
        self.config = config
        self.limits = limits
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        try:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.executescript(_SCHEMA)
            self._init_schema(path)
            self._created_seq = self._sync_metadata_indexes()
            self.slabs: dict[str | None, NamespaceSlab] = {}
            self._namespace_of: dict[str, str | None] = {}
            self._strings = {
                prop: StringDictionary() for prop, kind in config.metadata_indexes.items() if kind == "string"
            }
            self._load()
        except BaseException:
            self._db.close()
            raise

    # ------------------------------------------------------------------------------------ opening

    def _info(self, key: str) -> str | None:
        row = self._db.execute("SELECT value FROM index_info WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def _set_info(self, items: Mapping[str, str]) -> None:
        self._db.executemany(
            "INSERT INTO index_info (key, value) VALUES (?, ?) "
            "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            list(items.items()),
        )

    def _init_schema(self, path: Path) -> None:
        stored_dims, stored_metric = self._info("dimensions"), self._info("metric")
        if stored_dims is None:
            self._set_info(
                {
                    "schema_version": _SCHEMA_VERSION,
                    "dimensions": str(self.config.dimensions),
                    "metric": self.config.metric,
                    "write_seq": "0",
                }
            )
            return
        if (int(stored_dims), stored_metric) != (self.config.dimensions, self.config.metric):
            raise VectorizeError(
                f"Vectorize index {self.config.name!r} at {path} was created with dimensions={stored_dims}, "
                f"metric={stored_metric}, but its config says dimensions={self.config.dimensions}, "
                f"metric={self.config.metric}. An index's dimensions and metric cannot change after "
                "creation: use a new index name, or delete the local state file to start over."
            )

    def _sync_metadata_indexes(self) -> dict[str, int]:
        """Make the persisted metadata indexes match the config; return property -> created_seq."""
        seq = int(self._info("write_seq") or 0)
        stored = {
            prop: (kind, created)
            for prop, kind, created in self._db.execute(
                "SELECT property, type, created_seq FROM metadata_indexes"
            )
        }
        wanted = dict(self.config.metadata_indexes)
        self._db.execute("BEGIN")
        for prop, (kind, _) in stored.items():
            if wanted.get(prop) != kind:  # removed, or re-created with another type
                self._db.execute("DELETE FROM metadata_indexes WHERE property = ?", (prop,))
        for prop, kind in wanted.items():
            if stored.get(prop, (None, 0))[0] != kind:
                self._db.execute(
                    "INSERT INTO metadata_indexes (property, type, created_seq) VALUES (?, ?, ?)",
                    (prop, kind, seq),
                )
        self._db.execute("COMMIT")
        return {
            prop: int(created)
            for prop, created in self._db.execute("SELECT property, created_seq FROM metadata_indexes")
        }

    def _indexed(self, metadata: Mapping[str, Any] | None, seq: int) -> dict[str, IndexedValue | None]:
        out: dict[str, IndexedValue | None] = {}
        for prop, kind in self.config.metadata_indexes.items():
            if seq > self._created_seq[prop]:
                out[prop] = indexed_value(metadata, prop, kind, self.limits.indexed_string_bytes)
            else:
                out[prop] = None
        return out

    def _load(self) -> None:
        """Stream every row into slabs sized up front, so loading holds no second copy of the data."""
        dims = self.config.dimensions
        types = self.config.metadata_indexes
        counts = self._db.execute("SELECT namespace, COUNT(*) FROM vectors GROUP BY namespace").fetchall()
        for namespace, count in counts:
            self.slabs[namespace] = NamespaceSlab(
                namespace, dims, types, self._strings, capacity=count + count // 4
            )
        # Indexed properties are read with SQLite's JSON functions instead of parsing every document.
        paths = ['$."' + '"."'.join(prop.split(".")) + '"' for prop in types]
        columns = "".join(", json_type(metadata, ?), json_extract(metadata, ?)" for _ in paths)
        params = [p for path in paths for p in (path, path)]
        query = f"SELECT id, namespace, vals, seq{columns} FROM vectors"
        created = [self._created_seq[prop] for prop in types]
        kinds = list(types.values())
        string_bytes = self.limits.indexed_string_bytes
        for vector_id, namespace, blob, seq, *extracted in self._db.execute(query, params):
            indexed = [
                indexed_from_sql(extracted[2 * i], extracted[2 * i + 1], kind, string_bytes)
                if seq > created[i]
                else None
                for i, kind in enumerate(kinds)
            ]
            self.slabs[namespace].load(vector_id, np.frombuffer(blob, dtype="<f4"), indexed)
            self._namespace_of[vector_id] = namespace
        for slab in self.slabs.values():
            slab.loaded()

    # ------------------------------------------------------------------------------------- reading

    def __len__(self) -> int:
        return len(self._namespace_of)

    def __contains__(self, vector_id: object) -> bool:
        return vector_id in self._namespace_of

    def slabs_for(self, namespace: str | None) -> Iterator[NamespaceSlab]:
        """The slabs a query searches: one namespace, or every one when ``namespace`` is None."""
        if namespace is None:
            yield from (slab for slab in self.slabs.values() if slab.size)
        elif namespace in self.slabs:
            yield self.slabs[namespace]

    def locate(self, vector_id: str) -> tuple[NamespaceSlab, int] | None:
        if vector_id not in self._namespace_of:
            return None
        slab = self.slabs[self._namespace_of[vector_id]]
        return slab, slab.rows[vector_id]

    def metadata_of(self, ids: Iterable[str]) -> dict[str, dict[str, Any] | None]:
        """Full metadata of ``ids`` (kept on disk only: it is read for at most a page of results)."""
        wanted = list(dict.fromkeys(ids))
        found: dict[str, dict[str, Any] | None] = {}
        for start in range(0, len(wanted), 500):
            chunk = wanted[start : start + 500]
            marks = ",".join("?" * len(chunk))
            for vector_id, metadata_json in self._db.execute(
                f"SELECT id, metadata FROM vectors WHERE id IN ({marks})", chunk
            ):
                found[vector_id] = json.loads(metadata_json) if metadata_json is not None else None
        return found

    def get(self, ids: Iterable[str]) -> list[StoredVector]:
        wanted = [i for i in dict.fromkeys(ids) if i in self._namespace_of]
        metadata = self.metadata_of(wanted)
        out = []
        for vector_id in wanted:
            located = self.locate(vector_id)
            assert located is not None
            slab, row = located
            out.append(StoredVector(vector_id, slab.namespace, slab.values_of(row), metadata[vector_id]))
        return out

    @property
    def nbytes(self) -> int:
        return sum(slab.nbytes for slab in self.slabs.values())

    def last_mutation(self) -> tuple[str | None, str | None]:
        return self._info("last_mutation_id"), self._info("last_mutation_at")

    # ------------------------------------------------------------------------------------- writing

    def _check_capacity(self, op: str, batch: list[PreparedVector]) -> None:
        new_ids = {v.id for v in batch if v.id not in self._namespace_of}
        if len(self) + len(new_ids) > self.limits.max_vectors:
            raise vectorize_error(op, f"index is full; max is {self.limits.max_vectors} vectors")
        live = {ns for ns, slab in self.slabs.items() if ns is not None and slab.size}
        added = {v.namespace for v in batch if v.namespace is not None} - live
        if len(live) + len(added) > self.limits.max_namespaces:
            raise vectorize_error(op, f"too many namespaces; max is {self.limits.max_namespaces} per index")

    def write(self, op: str, batch: list[PreparedVector], mutation: tuple[str, str]) -> None:
        """Insert (existing ids skipped, first duplicate wins) or upsert (last duplicate wins)."""
        if op == "INSERT":
            chosen: dict[str, PreparedVector] = {}
            for vector in batch:
                if vector.id not in self._namespace_of and vector.id not in chosen:
                    chosen[vector.id] = vector
        else:
            chosen = {vector.id: vector for vector in batch}
        vectors = list(chosen.values())
        self._check_capacity(op, vectors)
        seq = int(self._info("write_seq") or 0) + 1
        rows = [(v.id, v.namespace, v.values.astype("<f4").tobytes(), v.metadata_json, seq) for v in vectors]
        self._db.execute("BEGIN")
        try:
            self._db.executemany(
                "INSERT INTO vectors (id, namespace, vals, metadata, seq) VALUES (?, ?, ?, ?, ?) "
                "ON CONFLICT(id) DO UPDATE SET namespace = excluded.namespace, vals = excluded.vals, "
                "metadata = excluded.metadata, seq = excluded.seq",
                rows,
            )
            self._set_info(
                {"write_seq": str(seq), "last_mutation_id": mutation[0], "last_mutation_at": mutation[1]}
            )
            self._db.execute("COMMIT")
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        for vector in vectors:
            self._place(vector, seq)

    def _place(self, vector: PreparedVector, seq: int) -> None:
        previous = self._namespace_of.get(vector.id, vector.namespace)
        if vector.id in self._namespace_of and previous != vector.namespace:
            self._drop_from_slab(vector.id, previous)
        slab = self.slabs.get(vector.namespace)
        if slab is None:
            slab = NamespaceSlab(
                vector.namespace, self.config.dimensions, self.config.metadata_indexes, self._strings
            )
            self.slabs[vector.namespace] = slab
        slab.put(vector.id, vector.values, self._indexed(vector.metadata, seq))
        self._namespace_of[vector.id] = vector.namespace

    def _drop_from_slab(self, vector_id: str, namespace: str | None) -> None:
        slab = self.slabs[namespace]
        slab.remove(vector_id)
        if not slab.size:
            del self.slabs[namespace]

    def delete(self, ids: list[str], mutation: tuple[str, str]) -> None:
        present = [i for i in dict.fromkeys(ids) if i in self._namespace_of]
        self._db.execute("BEGIN")
        try:
            self._db.executemany("DELETE FROM vectors WHERE id = ?", [(i,) for i in present])
            self._set_info({"last_mutation_id": mutation[0], "last_mutation_at": mutation[1]})
            self._db.execute("COMMIT")
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        for vector_id in present:
            self._drop_from_slab(vector_id, self._namespace_of.pop(vector_id))

    def close(self) -> None:
        self._db.close()
        # Free the matrices now rather than when the last reference goes away.
        self.slabs.clear()
        self._namespace_of.clear()
