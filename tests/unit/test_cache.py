"""edgerag.cache: tenant-prefixed keys, KV's minimum TTL, failures as misses, counted hits and misses,
and the caching embedder. KV is a fake implementing the port that records calls (and can fail)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from edgerag.cache import MIN_TTL_S, CachedEmbedder, TenantCache
from edgerag.counters import UsageCounters


class RecordingKV:
    """A KVNamespace fake: a dict, the calls it got, and optional failures per operation."""

    def __init__(self, *, fail_get: bool = False, fail_put: bool = False) -> None:
        self.data: dict[str, str] = {}
        self.puts: list[tuple[str, dict[str, Any]]] = []
        self.fail_get = fail_get
        self.fail_put = fail_put

    async def get(self, key: str, type: str = "text", **options: Any) -> Any:
        if self.fail_get:
            raise RuntimeError("KV GET failed: 500 Internal Server Error")
        return self.data.get(key)

    async def getWithMetadata(self, key: str, type: str = "text", **options: Any) -> Any:
        raise NotImplementedError

    async def put(self, key: str, value: Any, **options: Any) -> None:
        if self.fail_put:
            raise RuntimeError("KV PUT failed: 429 Too Many Requests")
        ttl = options.get("expirationTtl")
        if ttl is not None and ttl < 60:
            raise RuntimeError("KV PUT failed: 400 Invalid expiration_ttl")
        self.puts.append((key, options))
        self.data[key] = value

    async def delete(self, key: str) -> None:
        self.data.pop(key, None)

    async def list(self, **options: Any) -> Any:
        raise NotImplementedError


class CountingEmbedder:
    model = "@cf/baai/bge-base-en-v1.5"

    def __init__(self) -> None:
        self.calls: list[str] = []

    async def embed_one(self, text: str) -> list[float]:
        self.calls.append(text)
        return [float(len(text)), 0.5, -1.0]


PARTS = {"query": "rocket engines", "top_k": 5, "mode": "hybrid"}


async def test_keys_are_tenant_prefixed_and_ttls_respect_the_kv_minimum() -> None:
    kv = RecordingKV()
    cache = TenantCache(kv, "tnt_a", UsageCounters())
    await cache.put_json("search", 3, PARTS, [{"x": 1}], ttl=1)
    await cache.put_embedding("@cf/baai/bge-base-en-v1.5", "hello", [0.1, 0.2])
    assert [key.split("/")[:3] for key, _ in kv.puts] == [
        ["tenants", "tnt_a", "search"],
        ["tenants", "tnt_a", "embeddings"],
    ]
    assert kv.puts[0][0].split("/")[3] == "g3"
    assert all(options["expirationTtl"] >= MIN_TTL_S for _, options in kv.puts)


async def test_tenants_and_generations_do_not_share_entries() -> None:
    kv = RecordingKV()
    counters = UsageCounters()
    a, b = TenantCache(kv, "tnt_a", counters), TenantCache(kv, "tnt_b", counters)
    await a.put_json("search", 0, PARTS, [{"doc": "a's"}])
    assert await a.get_json("search", 0, PARTS) == [{"doc": "a's"}]
    assert await b.get_json("search", 0, PARTS) is None  # same request, other tenant
    assert await a.get_json("search", 1, PARTS) is None  # a's documents changed since
    assert await a.get_json("search", 0, {**PARTS, "top_k": 6}) is None
    assert counters.snapshot() == {
        ("tnt_a", "cache_hit:search"): 1,
        ("tnt_a", "cache_miss:search"): 2,
        ("tnt_b", "cache_miss:search"): 1,
    }


async def test_equal_requests_hash_equally_whatever_their_key_order() -> None:
    kv = RecordingKV()
    cache = TenantCache(kv, "tnt_a", UsageCounters())
    await cache.put_json("answer", 0, {"q": "x", "model": "m"}, {"answer": "y"})
    assert await cache.get_json("answer", 0, {"model": "m", "q": "x"}) == {"answer": "y"}


async def test_a_failing_kv_is_a_miss_and_a_failed_write_is_ignored() -> None:
    counters = UsageCounters()
    cache = TenantCache(RecordingKV(fail_get=True, fail_put=True), "tnt_a", counters)
    assert await cache.get_json("search", 0, PARTS) is None
    assert await cache.get_embedding("m", "hello") is None
    await cache.put_json("search", 0, PARTS, [])  # does not raise
    await cache.put_embedding("m", "hello", [1.0])
    assert counters.snapshot() == {("tnt_a", "cache_miss:search"): 1, ("tnt_a", "cache_miss:embedding"): 1}


@pytest.mark.parametrize(
    "stored",
    ["not json", json.dumps([1, 2]), json.dumps({"v": "text"}), json.dumps({"v": ["a", "b"]}), "{}"],
)
async def test_a_value_this_module_did_not_write_is_a_miss(stored: str) -> None:
    kv = RecordingKV()
    cache = TenantCache(kv, "tnt_a", UsageCounters())
    kv.data[cache.embedding_key("m", "hello")] = stored
    kv.data[cache.key_for("search", 0, PARTS)] = stored
    assert await cache.get_embedding("m", "hello") is None
    if stored != json.dumps({"v": ["a", "b"]}):  # a list of strings is a valid JSON search value
        assert await cache.get_json("search", 0, PARTS) is None


async def test_the_cached_embedder_calls_the_model_once_per_text_and_model() -> None:
    kv = RecordingKV()
    counters = UsageCounters()
    inner = CountingEmbedder()
    embedder = CachedEmbedder(inner, TenantCache(kv, "tnt_a", counters))
    first = await embedder.embed_one("rocket engines")
    assert await embedder.embed_one("rocket engines") == first
    await embedder.embed_one("orbital mechanics")
    assert inner.calls == ["rocket engines", "orbital mechanics"]
    assert counters.snapshot() == {("tnt_a", "cache_hit:embedding"): 1, ("tnt_a", "cache_miss:embedding"): 2}


async def test_the_cached_embedder_still_embeds_when_kv_fails() -> None:
    inner = CountingEmbedder()
    embedder = CachedEmbedder(
        inner, TenantCache(RecordingKV(fail_get=True, fail_put=True), "t", UsageCounters())
    )
    assert await embedder.embed_one("abc") == [3.0, 0.5, -1.0]
    assert inner.calls == ["abc"]


def test_a_cache_is_for_one_tenant() -> None:
    with pytest.raises(ValueError):
        TenantCache(RecordingKV(), "", UsageCounters())
    with pytest.raises(ValueError):
        TenantCache(RecordingKV(), "a/b", UsageCounters())


async def test_embeddings_are_stored_as_float32_and_a_miss_returns_what_a_hit_will() -> None:
    kv = RecordingKV()
    cache = TenantCache(kv, "tnt_a", UsageCounters())
    vector = [0.1, -0.2, 1e-3, 0.3333333333]
    returned = await cache.put_embedding("m", "hello", vector)
    [(key, _)] = kv.puts
    stored = json.loads(kv.data[key])["v"]
    assert set(stored) == {"f32"} and len(stored["f32"]) < 4 * 4 * 2  # base64 of 4 float32s
    hit = await cache.get_embedding("m", "hello")
    assert hit == returned and returned != vector
    assert all(abs(a - b) < 1e-7 for a, b in zip(returned, vector, strict=True))
    inner = CountingEmbedder()
    embedder = CachedEmbedder(inner, TenantCache(RecordingKV(), "tnt_a", UsageCounters()))
    assert await embedder.embed_one("a text") == await embedder.embed_one("a text")
    assert inner.calls == ["a text"]


async def test_old_list_entries_still_read_and_unencodable_vectors_are_not_cached() -> None:
    kv = RecordingKV()
    cache = TenantCache(kv, "tnt_a", UsageCounters())
    kv.data[cache.embedding_key("m", "old")] = json.dumps({"v": [0.5, 1, -2.25]})
    assert await cache.get_embedding("m", "old") == [0.5, 1.0, -2.25]
    for bad in ([float("nan"), 1.0], [1e300], []):
        assert await cache.put_embedding("m", "bad", bad) == bad
    assert kv.puts == []


@pytest.mark.parametrize(
    "f32",
    ["not base64!", "", "AAA", "AAAAAAA=", 7, None, "AADAfw=="],  # 5 bytes; "AADAfw==": a NaN
)
async def test_a_damaged_float32_entry_is_a_miss(f32: Any) -> None:
    kv = RecordingKV()
    cache = TenantCache(kv, "tnt_a", UsageCounters())
    kv.data[cache.embedding_key("m", "x")] = json.dumps({"v": {"f32": f32}})
    assert await cache.get_embedding("m", "x") is None
