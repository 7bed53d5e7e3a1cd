"""The local Vectorize (V2) binding: :class:`LocalVectorizeIndex` implements ``edgerag.ports.VectorizeIndex``.

Same calls and result shapes as ``env.INDEX`` in a Python Worker, persisted in SQLite, searched exactly
in memory (numpy). Behaviour pinned by ``tests/contract/test_vectorize.py``; the pieces live in siblings:
``vectorize_config`` (index config, limits), ``vectorize_input`` (validation, error wording),
``vectorize_filter`` (metadata filters), ``vectorize_store`` (SQLite + slabs), ``vectorize_search``.

Semantics mirrored from the edge (Vectorize V2):

* ``insert`` skips ids that already exist (the first write of an id wins, also within one batch);
  ``upsert`` replaces them in full (the last write wins). Both return ``{"mutationId"}`` only.
  Ids are unique per index, not per namespace: upserting an id under another namespace moves it.
* ``query(vector, topK=5, namespace=None, returnValues=False, returnMetadata="none", filter=None)``
  returns ``{"count", "matches": [{"id", "score", "values"?, "metadata"?, "namespace"?}]}``.
  Without ``namespace`` the whole index is searched; with it only that namespace, before the filter.
  ``returnMetadata`` is ``"none" | "indexed" | "all"`` (``True``/``False`` are accepted as the binding's
  legacy spelling of ``"all"``/``"none"``). ``"indexed"`` returns only indexed properties, strings cut
  to 64 bytes, as the edge does.
* ``queryById(id, ...)`` queries with a stored vector's values; an unknown id yields no matches.
* ``getByIds(ids)`` returns the vectors that exist (unknown ids omitted) as ``{"id", "values",
  "metadata"?, "namespace"?}``; ``deleteByIds(ids)`` ignores unknown ids and returns ``{"mutationId"}``.
* ``describe()`` returns ``{"vectorCount", "dimensions", "processedUpToDatetime",
  "processedUpToMutation"}`` (the last two are None until the first write).
* Keys with nothing to report (no namespace; no metadata, or no indexed values for ``"indexed"``) are
  absent from results rather than null, so worker code must read them with ``.get``. Read values as
  ``match["values"]``: ``match.values`` is ``dict.values`` on AttrDict, as on the edge's JsDict.

Writes at the edge are asynchronous: they become visible to queries "within a few seconds", and
``processedUpToMutation`` tells when. Locally every write is visible as soon as the call returns. Worker
code must rely on neither: it must not read its own writes back to decide anything.

One index may be used from several threads (the local host's consumer thread upserts while the serving
thread queries): every call holds the index's lock while it touches the store and the slabs.

Options may be passed as keyword arguments or as a trailing dict (``query(v, {"topK": 3})``), as with the
Pyodide binding; unknown option names raise ``TypeError`` here (the edge would ignore them).
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
from edgerag.jsdict import AttrDict

from edgerag_local.core.options import merge_options
from edgerag_local.vectorize.config import (
    MetadataIndexType,
    Metric,
    VectorizeIndexConfig,
    VectorizeLimits,
    check_config_against_limits,
)
from edgerag_local.vectorize.errors import VectorizeError
from edgerag_local.vectorize.filter import CompiledFilter, compile_filter
from edgerag_local.vectorize.input import (
    check_id_list,
    check_namespace,
    prepare_vectors,
    query_vector,
    vectorize_error,
)
from edgerag_local.vectorize.search import Hit, search
from edgerag_local.vectorize.store import VectorStore

__all__ = [
    "LocalVectorizeIndex",
    "MetadataIndexType",
    "Metric",
    "VectorizeIndexConfig",
    "VectorizeLimits",
]

ReturnMetadata = Literal["none", "indexed", "all"]
_QUERY_OPTIONS = ("topK", "namespace", "returnValues", "returnMetadata", "filter")


@dataclass(frozen=True, slots=True)
class _Query:
    top_k: int
    namespace: str | None
    return_values: bool
    return_metadata: ReturnMetadata
    flt: CompiledFilter | None


def _new_mutation_id() -> str:
    return str(uuid.uuid4())


class LocalVectorizeIndex:
    """A Vectorize V2 index stored at ``path`` (one SQLite file) with the given fixed config.

    ``clock`` returns epoch seconds (for ``processedUpToDatetime``); ``mutation_ids`` makes mutation ids
    (UUIDv4 by default). Both are injectable so tests are deterministic. Call :meth:`close` when done.
    """

    def __init__(
        self,
        path: Path | str,
        config: VectorizeIndexConfig,
        *,
        limits: VectorizeLimits | None = None,
        clock: Callable[[], float] = time.time,
        mutation_ids: Callable[[], str] = _new_mutation_id,
    ) -> None:
        self._limits = limits if limits is not None else VectorizeLimits()
        check_config_against_limits(config, self._limits)
        self._config = config
        self._clock = clock
        self._mutation_ids = mutation_ids
        self._lock = threading.RLock()
        self._opened: VectorStore | None = VectorStore(Path(path), config, self._limits)

    @property
    def _store(self) -> VectorStore:
        if self._opened is None:
            raise VectorizeError(f"local Vectorize index {self._config.name!r} is closed")
        return self._opened

    @property
    def config(self) -> VectorizeIndexConfig:
        return self._config

    @property
    def limits(self) -> VectorizeLimits:
        return self._limits

    @property
    def memory_bytes(self) -> int:
        """Bytes held by the in-memory matrices and metadata columns (for benchmarks)."""
        with self._lock:
            return self._store.nbytes

    def close(self) -> None:
        """Close the SQLite file and free the in-memory matrices; later calls raise. Idempotent."""
        with self._lock:
            if self._opened is not None:
                self._opened.close()
                self._opened = None

    def __enter__(self) -> LocalVectorizeIndex:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -------------------------------------------------------------------------------------- writes

    def _mutation(self) -> tuple[str, str]:
        at = datetime.fromtimestamp(self._clock(), tz=UTC)
        return self._mutation_ids(), at.isoformat(timespec="milliseconds").replace("+00:00", "Z")

    def _write(self, op: str, vectors: Any) -> AttrDict:
        batch = prepare_vectors(vectors, op, self._config.dimensions, self._limits)
        with self._lock:
            mutation = self._mutation()
            self._store.write(op, batch, mutation)
        return AttrDict(mutationId=mutation[0])

    async def insert(self, vectors: Any) -> AttrDict:
        """Add vectors whose ids are new; ids already in the index are skipped, not overwritten."""
        return self._write("INSERT", vectors)

    async def upsert(self, vectors: Any) -> AttrDict:
        """Add vectors, replacing (values, metadata and namespace) any with the same id."""
        return self._write("UPSERT", vectors)

    async def deleteByIds(self, ids: Any) -> AttrDict:
        checked = check_id_list(ids, "DELETE", self._limits.max_ids_per_delete, self._limits)
        with self._lock:
            mutation = self._mutation()
            self._store.delete(checked, mutation)
        return AttrDict(mutationId=mutation[0])

    # --------------------------------------------------------------------------------------- reads

    async def getByIds(self, ids: Any) -> list[AttrDict]:
        checked = check_id_list(ids, "GET", self._limits.max_ids_per_get, self._limits)
        out = []
        with self._lock:
            found = self._store.get(checked)
        for stored in found:
            item: dict[str, Any] = {"id": stored.id, "values": stored.values}
            if stored.metadata is not None:
                item["metadata"] = stored.metadata
            if stored.namespace is not None:
                item["namespace"] = stored.namespace
            out.append(AttrDict(item))
        return out

    async def describe(self) -> AttrDict:
        with self._lock:
            mutation_id, mutation_at = self._store.last_mutation()
            count = len(self._store)
        return AttrDict(
            vectorCount=count,
            dimensions=self._config.dimensions,
            processedUpToDatetime=mutation_at,
            processedUpToMutation=mutation_id,
        )

    def _options(self, options: Mapping[str, Any] | None, kwargs: Mapping[str, Any], where: str) -> _Query:
        merged = merge_options(options, kwargs, allowed=_QUERY_OPTIONS, where=where)
        top_k = merged.get("topK", 5)
        if isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1:
            raise vectorize_error("QUERY", f"topK must be a positive integer, got {top_k!r}")
        return_values = merged.get("returnValues", False)
        if not isinstance(return_values, bool):
            raise vectorize_error("QUERY", f"returnValues must be a boolean, got {return_values!r}")
        level = merged.get("returnMetadata", "none")
        if isinstance(level, bool):
            level = "all" if level else "none"
        if level not in ("none", "indexed", "all"):
            # The binding itself throws this before sending the query.
            raise vectorize_error(
                "QUERY",
                'Invalid returnMetadata option. Expected: true, false, "none", "indexed" or "all"; '
                f"got: {level}",
            )
        limits = self._limits
        if (return_values or level == "all") and top_k > limits.max_top_k_with_values_or_metadata:
            raise vectorize_error(
                "QUERY",
                "with returnValues=true or returnMetadata=all, max top K is "
                f"{limits.max_top_k_with_values_or_metadata}, but got {top_k}; for a top K up to "
                f"{limits.max_top_k}, retry with returnValues=false and returnMetadata=indexed",
                40025,
            )
        if top_k > limits.max_top_k:
            raise vectorize_error("QUERY", f"max top K is {limits.max_top_k}, but got {top_k}")
        namespace = check_namespace(merged.get("namespace"), "QUERY", limits)
        raw_filter = merged.get("filter")
        flt = None
        if raw_filter is not None:
            flt = compile_filter(raw_filter, self._config.metadata_indexes, limits)
        return _Query(top_k, namespace, return_values, level, flt)

    def _matches(self, hits: list[Hit], query: _Query) -> AttrDict:
        full = self._store.metadata_of(h.id for h in hits) if query.return_metadata == "all" else {}
        matches = []
        for hit in hits:
            match: dict[str, Any] = {"id": hit.id, "score": hit.score}
            if query.return_values:
                match["values"] = hit.slab.values_of(hit.row)
            if query.return_metadata == "all" and full.get(hit.id) is not None:
                match["metadata"] = full[hit.id]
            elif query.return_metadata == "indexed" and (indexed := hit.slab.indexed_metadata(hit.row)):
                match["metadata"] = indexed
            if hit.slab.namespace is not None:
                match["namespace"] = hit.slab.namespace
            matches.append(match)
        return AttrDict(count=len(matches), matches=matches)

    def _run(self, vector: npt.NDArray[np.float32], query: _Query) -> AttrDict:
        with self._lock:
            slabs = self._store.slabs_for(query.namespace)
            hits = search(slabs, vector, self._config.metric, query.top_k, query.flt)
            return self._matches(hits, query)

    async def query(self, vector: Any, options: Mapping[str, Any] | None = None, **kwargs: Any) -> AttrDict:
        """The ``topK`` nearest vectors to ``vector`` (see the module docstring for options and shape)."""
        parsed = self._options(options, kwargs, "Vectorize.query")
        return self._run(query_vector(vector, self._config.dimensions), parsed)

    async def queryById(
        self, vector_id: Any, options: Mapping[str, Any] | None = None, **kwargs: Any
    ) -> AttrDict:
        """Like :meth:`query`, with the stored values of ``vector_id``; no matches if it is unknown."""
        parsed = self._options(options, kwargs, "Vectorize.queryById")
        (checked,) = check_id_list([vector_id], "QUERY", 1, self._limits)
        with self._lock:
            located = self._store.locate(checked)
            if located is None:
                return AttrDict(count=0, matches=[])
            slab, row = located
            return self._run(slab.matrix[row].copy(), parsed)
