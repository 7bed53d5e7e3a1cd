"""Tenant-scoped caches in Workers KV: query embeddings, search results, answers.

Every key starts with ``tenants/<tenant_id>/`` (the isolation invariant: KV keys are tenant-prefixed),
and a cache is always built for one tenant (:class:`TenantCache`), so no caller can read another
tenant's entry by choosing a key.

* **Query embeddings** (:meth:`TenantCache.get_embedding`): ``tenants/<t>/embeddings/<model>/<sha256>``
  of the exact text sent to the model. A model's embedding of a text never changes, so the TTL is long
  (:data:`EMBEDDING_TTL_S`) and nothing invalidates it. The vector is stored as little-endian float32
  in base64 (``{"f32": "..."}``): encoding and decoding it costs ~0.02 ms, against ~0.5 ms to write
  768 floats as JSON and ~0.3 ms to parse them, on every search. Vectorize compares float32 vectors,
  so the rounding changes no result; :class:`CachedEmbedder` returns the rounded vector on a miss
  too, so a hit and a miss search with the same vector. Entries written as a JSON list still read.
* **Search results** and **answers** (:meth:`TenantCache.get_json` with ``kind`` ``"search"`` or
  ``"answer"``): ``tenants/<t>/<kind>/g<generation>/<sha256 of the canonical request>``. The
  generation is a per-tenant number in D1 (``cache_generations``, migration 0007) that triggers bump
  in the same transaction as every change to the tenant's documents, so invalidating is "read a new
  number", never a scan or a delete; entries of old generations simply expire.

Staleness, honestly: the generation is read from D1 (one indexed read), which is strongly consistent,
so a cached search never outlives a document change that committed before the read. KV itself is
eventually consistent, but entries are immutable under a given key (a new generation is a new key), so
a stale KV read can only be a *miss*. Vectorize indexes upserts asynchronously (seconds), so a search
right after a document became ready may cache results without its vectors; :data:`RESULT_TTL_S` bounds
that. All TTLs respect KV's minimum of 60 s.

Failures degrade to a miss, never to an error: a KV error, a value that is not the JSON this module
wrote, or a failing generation read make :meth:`get_*` return None (and :meth:`put_*` do nothing),
logged at warning level. Hits and misses are counted in a :class:`~edgerag.counters.UsageCounters`
(``cache_hit:<kind>`` / ``cache_miss:<kind>``) that the caller writes once per request.

To add a cache: pick a ``kind`` (a short word), build the key with :meth:`TenantCache.key_for` from
everything the value depends on, and choose a TTL of at least :data:`MIN_TTL_S`.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import logging
import math
import struct
from collections.abc import Mapping, Sequence
from typing import Any

from edgerag.counters import UsageCounters
from edgerag.observability import count
from edgerag.ports import D1Database, KVNamespace
from edgerag.store.d1 import fetch_one

__all__ = [
    "ANSWER_TTL_S",
    "EMBEDDING_TTL_S",
    "MIN_TTL_S",
    "RESULT_TTL_S",
    "CachedEmbedder",
    "TenantCache",
    "read_generation",
]

log = logging.getLogger("edgerag.cache")

MIN_TTL_S = 60  # KV refuses expirationTtl below 60 s
EMBEDDING_TTL_S = 7 * 24 * 3600
RESULT_TTL_S = 600
ANSWER_TTL_S = 3600
_KINDS = frozenset({"search", "answer"})


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _pack_f32(vector: Sequence[float]) -> bytes | None:
    """``vector`` as little-endian float32, or None when it cannot be (empty, non-finite, too large)."""
    if not vector or not all(isinstance(x, (int, float)) and math.isfinite(x) for x in vector):
        return None
    try:
        return struct.pack(f"<{len(vector)}f", *vector)
    except (struct.error, OverflowError, TypeError):
        return None


def _unpack_f32(text: Any) -> list[float] | None:
    if not isinstance(text, str):
        return None
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return None
    if not raw or len(raw) % 4:
        return None
    values = list(struct.unpack(f"<{len(raw) // 4}f", raw))
    return values if all(math.isfinite(x) for x in values) else None


def canonical(parts: Mapping[str, Any]) -> str:
    """One spelling per request: sorted keys, no whitespace, so equal requests hash equally."""
    return json.dumps(parts, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


async def read_generation(db: D1Database, tenant_id: str) -> int | None:
    """The tenant's cache generation (0 before any document change), or None if it cannot be read."""
    try:
        row = await fetch_one(db, "SELECT generation FROM cache_generations WHERE tenant_id = ?1", tenant_id)
    except Exception:  # a failing read disables caching for this request, it does not fail it
        log.warning("cache generation read failed for %s", tenant_id, exc_info=True)
        return None
    return 0 if row is None else int(row["generation"])


class TenantCache:
    """The caches of one tenant over one KV namespace, counting hits and misses in ``counters``."""

    def __init__(self, kv: KVNamespace, tenant_id: str, counters: UsageCounters) -> None:
        if not tenant_id or "/" in tenant_id:
            raise ValueError(f"not a tenant id: {tenant_id!r}")
        self._kv = kv
        self.tenant_id = tenant_id
        self._counters = counters

    def key_for(self, kind: str, generation: int, parts: Mapping[str, Any]) -> str:
        if kind not in _KINDS:
            raise ValueError(f"unknown cache kind {kind!r}")
        return f"tenants/{self.tenant_id}/{kind}/g{generation}/{_sha256(canonical(parts))}"

    def embedding_key(self, model: str, text: str) -> str:
        return f"tenants/{self.tenant_id}/embeddings/{model}/{_sha256(text)}"

    def _count(self, kind: str, hit: bool) -> None:
        name = f"cache_{'hit' if hit else 'miss'}:{kind}"
        self._counters.add(self.tenant_id, name)
        count(name)  # the request's log line and metrics (edgerag.observability)

    async def _get(self, key: str) -> Any:
        try:
            raw = await self._kv.get(key)
            return None if raw is None else json.loads(str(raw))
        except Exception:  # KV errors and values this module did not write are misses
            log.warning("cache read failed for %s", key, exc_info=True)
            return None

    async def _put(self, key: str, value: Any, ttl: int) -> None:
        try:
            await self._kv.put(key, canonical({"v": value}), expirationTtl=max(MIN_TTL_S, ttl))
        except Exception:  # a failed write only costs a future miss
            log.warning("cache write failed for %s", key, exc_info=True)

    async def get_json(self, kind: str, generation: int, parts: Mapping[str, Any]) -> Any:
        """The cached value for ``parts`` (a JSON object or list), or None; counts a hit or a miss."""
        stored = await self._get(self.key_for(kind, generation, parts))
        value = stored.get("v") if isinstance(stored, dict) else None
        ok = isinstance(value, (dict, list))
        self._count(kind, ok)
        return value if ok else None

    async def put_json(
        self, kind: str, generation: int, parts: Mapping[str, Any], value: Any, ttl: int = RESULT_TTL_S
    ) -> None:
        await self._put(self.key_for(kind, generation, parts), value, ttl)

    async def get_embedding(self, model: str, text: str) -> list[float] | None:
        stored = await self._get(self.embedding_key(model, text))
        value = stored.get("v") if isinstance(stored, dict) else None
        vector: list[float] | None = None
        if isinstance(value, dict):
            vector = _unpack_f32(value.get("f32"))
        elif (
            isinstance(value, list)
            and len(value) > 0
            and all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in value)
        ):  # written as a JSON list (before the float32 encoding)
            vector = [float(x) for x in value]
        self._count("embedding", vector is not None)
        return vector

    async def put_embedding(self, model: str, text: str, vector: Sequence[float]) -> list[float]:
        """Cache ``vector``; returns it as a later hit will (rounded to float32), or unchanged when it
        cannot be encoded (then nothing is cached)."""
        packed = _pack_f32(vector)
        if packed is None:
            return list(vector)
        encoded = base64.b64encode(packed).decode("ascii")
        await self._put(self.embedding_key(model, text), {"f32": encoded}, EMBEDDING_TTL_S)
        return list(struct.unpack(f"<{len(vector)}f", packed))


class CachedEmbedder:
    """An embedder (anything with ``model`` and ``embed_one``) that asks the tenant's cache first.

    Keyed by the exact query text: the wrapped embedder's truncation is deterministic, so equal texts
    give equal vectors. Only :meth:`embed_one` (queries) is cached; ingestion embeds through the plain
    :class:`~edgerag.embedding.Embedder`.
    """

    def __init__(self, embedder: Any, cache: TenantCache) -> None:
        self._embedder = embedder
        self._cache = cache
        self.model: str = embedder.model

    async def embed_one(self, text: str) -> list[float]:
        cached = await self._cache.get_embedding(self.model, text)
        if cached is not None:
            return cached
        vector: list[float] = await self._embedder.embed_one(text)
        return await self._cache.put_embedding(self.model, text, vector)
