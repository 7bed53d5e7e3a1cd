"""Contract suite for the Vectorize V2 binding (edgerag.ports.VectorizeIndex).

Runs against every backend in ``LOCAL_BACKENDS`` (Miniflare has no local Vectorize). Locally that is
:class:`edgerag_local.vectorize.LocalVectorizeIndex` on ``tmp_path`` with an injected clock and
counter-based mutation ids. Inside workerd the same assertions would run in a test worker whose
Vectorize bindings are real indexes created beforehand, one per config used here (``contract``,
``contract-euclidean``, ...), each with the metadata indexes the config lists, driven over RPC; the
harness would then (a) wait for ``describe().processedUpToMutation`` to reach each write's mutationId
before reading (writes are asynchronous at the edge, immediate here), (b) make ``reopen`` a no-op, and
(c) read ``limits`` from the service. Tests that only make sense for the emulator (lowered limits,
reopening with another config, the error for filters on unindexed properties) start with
``test_emulator_`` and say why in their docstring.
"""

from __future__ import annotations

import array
import itertools
import json
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from edgerag.jsdict import AttrDict
from edgerag.ports import VectorizeIndex
from edgerag_local.core.errors import RpcSerializationError
from edgerag_local.vectorize import (
    LocalVectorizeIndex,
    MetadataIndexType,
    VectorizeIndexConfig,
    VectorizeLimits,
)
from edgerag_local.vectorize.errors import VectorizeError

from tests.contract.conftest import LOCAL_BACKENDS

NOW = 1_700_000_000.0
DIMS = 4
INDEXES: dict[str, MetadataIndexType] = {
    "kind": "string",
    "n": "number",
    "flag": "boolean",
    "doc.lang": "string",
}
CONFIG = VectorizeIndexConfig("contract", DIMS, "cosine", INDEXES)


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> float:
        return self.now


@dataclass
class Harness:
    backend: str
    root: Path
    clock: Clock = field(default_factory=Clock)
    limits: VectorizeLimits = field(default_factory=VectorizeLimits)
    opened: list[LocalVectorizeIndex] = field(default_factory=list)
    counter: Iterator[int] = field(default_factory=itertools.count)

    def mutation_id(self) -> str:
        return f"mutation-{next(self.counter)}"

    def open(self, config: VectorizeIndexConfig = CONFIG, limits: VectorizeLimits | None = None) -> Any:
        index = LocalVectorizeIndex(
            self.root / f"{config.name}.sqlite",
            config,
            limits=limits,
            clock=self.clock,
            mutation_ids=self.mutation_id,
        )
        self.opened.append(index)
        return index

    def reopen(self, index: Any, config: VectorizeIndexConfig | None = None) -> Any:
        index.close()
        return self.open(config or index.config)


@pytest.fixture(params=LOCAL_BACKENDS)
def h(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Harness]:
    assert request.param == "local", "only the local backend can run on this machine"
    harness = Harness(request.param, tmp_path)
    yield harness
    for index in harness.opened:
        index.close()


@pytest.fixture
def index(h: Harness) -> Any:
    return h.open()


def v(vid: Any, values: Any, **extra: Any) -> dict[str, Any]:
    return {"id": vid, "values": values, **extra}


def f32(values: list[float]) -> list[float]:
    """What the edge gives back for ``values``: stored as float32, widened to float64."""
    return [float(x) for x in np.asarray(values, dtype=np.float32)]


def ids(result: Any) -> list[str]:
    return [m["id"] for m in result["matches"]]


async def error(awaitable: Any, kind: type[Exception] = VectorizeError) -> str:
    with pytest.raises(kind) as info:
        await awaitable
    return str(info.value)


AXES = [v("x", [1, 0, 0, 0]), v("y", [0, 1, 0, 0]), v("z", [0, 0, 1, 0]), v("w", [0, 0, 0, 1])]


def test_emulator_satisfies_the_port(index: Any) -> None:
    assert isinstance(index, VectorizeIndex)


# ------------------------------------------------------------------------------------------ shapes


async def test_writes_return_only_a_mutation_id(index: Any) -> None:
    first = await index.insert(AXES[:2])
    second = await index.upsert(AXES[2:])
    deleted = await index.deleteByIds(["x"])
    for result in (first, second, deleted):
        assert isinstance(result, AttrDict) and list(result) == ["mutationId"]
        assert isinstance(result.mutationId, str) and result.mutationId
    assert len({first.mutationId, second.mutationId, deleted.mutationId}) == 3


async def test_query_default_shape_is_five_id_score_matches(index: Any) -> None:
    await index.upsert([v(f"v{i}", [1, i, 0, 0]) for i in range(7)])
    result = await index.query([1, 0, 0, 0])
    assert isinstance(result, AttrDict) and set(result) == {"count", "matches"}
    assert result.count == 5 == len(result.matches)
    assert all(set(m) == {"id", "score"} and isinstance(m.score, float) for m in result.matches)
    assert ids(result) == ["v0", "v1", "v2", "v3", "v4"]


async def test_return_values_are_float32_widened(index: Any) -> None:
    await index.upsert([v("a", [0.1, 0.2, 0.3, 0.4])])
    match = (await index.query([0.1, 0.2, 0.3, 0.4], returnValues=True)).matches[0]
    assert match["values"] == f32([0.1, 0.2, 0.3, 0.4]) and match["values"][0] != 0.1
    assert (await index.getByIds(["a"]))[0]["values"] == f32([0.1, 0.2, 0.3, 0.4])


async def test_get_by_ids_shape_order_and_missing_ids(index: Any) -> None:
    await index.upsert(
        [
            v("a", [1, 0, 0, 0], namespace="t1", metadata={"kind": "doc", "nested": {"k": [1, "x"]}}),
            v("b", [0, 1, 0, 0]),
        ]
    )
    got = await index.getByIds(["b", "missing", "a", "b"])
    assert [g.id for g in got] == ["b", "a"]
    assert got[0] == {"id": "b", "values": [0.0, 1.0, 0.0, 0.0]}
    assert got[1].namespace == "t1" and got[1].metadata.nested.k == [1, "x"]
    assert await index.getByIds([]) == []


async def test_describe_counts_vectors_and_reports_the_last_mutation(h: Harness, index: Any) -> None:
    empty = await index.describe()
    assert empty == {
        "vectorCount": 0,
        "dimensions": DIMS,
        "processedUpToDatetime": None,
        "processedUpToMutation": None,
    }
    await index.insert(AXES)
    await index.insert([AXES[0]])  # skipped: the id exists
    h.clock.now = NOW + 60.5
    last = await index.deleteByIds(["x", "nope"])
    info = await index.describe()
    assert info.vectorCount == 3 and info.dimensions == DIMS
    assert info.processedUpToMutation == last.mutationId
    stamp = datetime.fromisoformat(info.processedUpToDatetime.replace("Z", "+00:00"))
    assert stamp == datetime.fromtimestamp(NOW + 60.5, tz=UTC)


# ----------------------------------------------------------------------------------------- metrics


def _reference(metric: str, stored: np.ndarray, query: np.ndarray) -> Any:
    a = stored.astype(np.float32).astype(np.float64)
    q = query.astype(np.float32).astype(np.float64)
    if metric == "cosine":
        return (a @ q) / (np.linalg.norm(a, axis=1) * np.linalg.norm(q))
    if metric == "euclidean":
        return np.linalg.norm(a - q, axis=1)
    return -(a @ q)


@pytest.mark.parametrize(
    ("metric", "ascending"), [("cosine", False), ("euclidean", True), ("dot-product", True)]
)
async def test_scores_are_exact_and_ordered_per_metric(h: Harness, metric: str, ascending: bool) -> None:
    rng = np.random.default_rng(7)
    stored = rng.standard_normal((300, 8))
    query = rng.standard_normal(8)
    index = h.open(VectorizeIndexConfig(f"contract-{metric}", 8, metric))  # type: ignore[arg-type]
    await index.upsert([v(f"r{i}", row.tolist()) for i, row in enumerate(stored)])
    result = await index.query(query.tolist(), topK=100)
    expected = _reference(metric, stored, query)
    order = np.argsort(expected if ascending else -expected, kind="stable")[:100]
    assert ids(result) == [f"r{i}" for i in order]
    for match in result.matches:
        assert match.score == pytest.approx(expected[int(match.id[1:])], rel=1e-12, abs=1e-12)


async def test_metric_score_conventions(h: Harness) -> None:
    same, opposite = [3, 4, 0, 0], [-3, -4, 0, 0]
    cosine = h.open(VectorizeIndexConfig("contract-cos", DIMS, "cosine"))
    euclid = h.open(VectorizeIndexConfig("contract-l2", DIMS, "euclidean"))
    dot = h.open(VectorizeIndexConfig("contract-dot", DIMS, "dot-product"))
    for idx in (cosine, euclid, dot):
        await idx.upsert([v("same", same), v("opposite", opposite), v("zero", [0, 0, 0, 0])])
    assert [(m.id, m.score) for m in (await cosine.query(same)).matches] == [
        ("same", 1.0),
        ("zero", 0.0),  # a zero-length vector has no direction: 0 rather than NaN
        ("opposite", -1.0),
    ]
    assert [(m.id, m.score) for m in (await euclid.query(same)).matches] == [
        ("same", 0.0),
        ("zero", 5.0),
        ("opposite", 10.0),
    ]
    # Negative dot product: lower is closer.
    assert [(m.id, m.score) for m in (await dot.query(same)).matches] == [
        ("same", -25.0),
        ("zero", 0.0),
        ("opposite", 25.0),
    ]


# ------------------------------------------------------------------------------- insert vs upsert


async def test_insert_skips_existing_ids_and_upsert_replaces_in_full(index: Any) -> None:
    await index.insert([v("a", [1, 0, 0, 0], metadata={"kind": "first"})])
    await index.insert([v("a", [0, 1, 0, 0], metadata={"kind": "second"}), v("b", [0, 0, 1, 0])])
    (a,) = await index.getByIds(["a"])
    assert a["values"] == [1.0, 0.0, 0.0, 0.0] and a.metadata == {"kind": "first"}
    assert (await index.describe()).vectorCount == 2
    await index.upsert([v("a", [0, 1, 0, 0])])  # no metadata: the old metadata is not kept
    (a,) = await index.getByIds(["a"])
    assert a == {"id": "a", "values": [0.0, 1.0, 0.0, 0.0]}
    assert ids(await index.query([1, 0, 0, 0], filter={"kind": "first"})) == []


async def test_duplicate_ids_in_one_batch(index: Any) -> None:
    await index.insert([v("d", [1, 0, 0, 0]), v("d", [0, 1, 0, 0])])
    await index.upsert([v("u", [1, 0, 0, 0]), v("u", [0, 0, 1, 0])])
    got = {g.id: g["values"] for g in await index.getByIds(["d", "u"])}
    assert got == {"d": [1.0, 0.0, 0.0, 0.0], "u": [0.0, 0.0, 1.0, 0.0]}


async def test_ids_are_unique_per_index_not_per_namespace(index: Any) -> None:
    await index.insert([v("a", [1, 0, 0, 0], namespace="t1")])
    await index.insert([v("a", [1, 0, 0, 0], namespace="t2")])  # skipped: same id, other namespace
    assert ids(await index.query([1, 0, 0, 0], namespace="t2")) == []
    await index.upsert([v("a", [1, 0, 0, 0], namespace="t2")])  # moves it
    assert ids(await index.query([1, 0, 0, 0], namespace="t1")) == []
    assert ids(await index.query([1, 0, 0, 0], namespace="t2")) == ["a"]
    assert (await index.describe()).vectorCount == 1


async def test_delete_then_query_and_reinsert(index: Any) -> None:
    await index.insert(AXES)
    await index.deleteByIds(["x", "y", "never-existed"])
    assert sorted(ids(await index.query([1, 1, 1, 1], topK=10))) == ["w", "z"]
    assert await index.getByIds(["x"]) == []
    assert (await index.queryById("x")) == {"count": 0, "matches": []}
    await index.insert([v("x", [0, 0, 0, 2])])  # the id is free again
    assert (await index.getByIds(["x"]))[0]["values"] == [0.0, 0.0, 0.0, 2.0]


async def test_swap_delete_keeps_rows_values_and_metadata_aligned(index: Any) -> None:
    rng = random.Random(3)
    vectors = [
        v(f"v{i}", [1.0, float(i), float(i % 7), 2.0], namespace="t", metadata={"n": i, "kind": f"k{i}"})
        for i in range(60)
    ]
    await index.upsert(vectors)
    doomed = rng.sample(range(60), 25)
    await index.deleteByIds([f"v{i}" for i in doomed])
    for i in sorted(set(range(60)) - set(doomed)):
        (got,) = await index.getByIds([f"v{i}"])
        assert got["values"] == [1.0, float(i), float(i % 7), 2.0]
        by_number = await index.query([1, 0, 0, 0], namespace="t", filter={"n": i}, returnMetadata="all")
        by_string = await index.query([1, 0, 0, 0], namespace="t", filter={"kind": f"k{i}"})
        assert ids(by_number) == ids(by_string) == [f"v{i}"]
        assert by_number.matches[0].metadata == {"n": i, "kind": f"k{i}"}
        assert (await index.queryById(f"v{i}", namespace="t", topK=1)).matches[0].score == pytest.approx(1)
    assert (await index.describe()).vectorCount == 35


# ---------------------------------------------------------------------------- validation, limits


async def test_dimension_mismatch_errors(index: Any) -> None:
    message = await error(index.upsert([v("a", [1, 2, 3])]))
    assert message == (
        'VECTOR_UPSERT_ERROR (code = 40012): invalid vector for id="a", '
        "expected 4 dimensions, and got 3 dimensions"
    )
    assert "VECTOR_INSERT_ERROR (code = 40012)" in await error(index.insert([v("a", [1] * 5)]))
    assert await error(index.query([])) == (
        "VECTOR_QUERY_ERROR (code = 40006): invalid query vector, expected 4 dimensions, and got 0 dimensions"
    )


@pytest.mark.parametrize(
    "values",
    [
        [1, float("nan"), 0, 0],
        [float("inf"), 0, 0, 0],
        [1e39, 0, 0, 0],  # finite as float64, Infinity as float32
        ["1", 0, 0, 0],
        [True] * 4,
        [None] * 4,
    ],
)
async def test_values_must_be_finite_float32_numbers(index: Any, values: list[Any]) -> None:
    assert "VECTOR_UPSERT_ERROR" in await error(index.upsert([v("a", values)]))
    assert (await index.describe()).vectorCount == 0


async def test_values_accept_lists_and_float_buffers(index: Any) -> None:
    await index.upsert(
        [
            v("list", [1, 2.5, 0, 0]),
            v("f32", memoryview(array.array("f", [1, 2.5, 0, 0]))),
            v("f64", array.array("d", [1, 2.5, 0, 0])),
            v("numpy", np.array([1, 2.5, 0, 0], dtype=np.float32)),
        ]
    )
    got = await index.getByIds(["list", "f32", "f64", "numpy"])
    assert [g["values"] for g in got] == [[1.0, 2.5, 0.0, 0.0]] * 4
    await error(index.upsert([v("ints", memoryview(array.array("i", [1, 2, 0, 0])))]), TypeError)
    await error(index.upsert([v("bytes", b"\x00\x01\x02\x03")]), TypeError)
    await error(index.upsert([v("tuple", (1.0, 2.0, 0.0, 0.0))]), RpcSerializationError)
    await error(index.query((1.0, 0.0, 0.0, 0.0)), RpcSerializationError)


async def test_id_rules(index: Any) -> None:
    await index.upsert([v("i" * 64, [1, 0, 0, 0]), v("é" * 32, [1, 0, 0, 0])])  # 64 bytes each
    assert await error(index.upsert([v("é" * 32 + "x", [1, 0, 0, 0])])) == (
        "VECTOR_UPSERT_ERROR (code = 40008): id too long; max is 64 bytes, got 65 bytes"
    )
    for bad in ("", 7, None):
        assert "vector id must be a non-empty string" in await error(index.upsert([v(bad, [1, 0, 0, 0])]))
    assert "code = 40008" in await error(index.getByIds(["x" * 65]))


async def test_namespace_rules(index: Any) -> None:
    await index.upsert([v("a", [1, 0, 0, 0], namespace="n" * 64)])
    assert "namespace too long; max is 64 bytes, got 65 bytes" in await error(
        index.upsert([v("b", [1, 0, 0, 0], namespace="n" * 65)])
    )
    assert "namespace must be a non-empty string" in await error(
        index.upsert([v("b", [1, 0, 0, 0], namespace="")])
    )
    assert "namespace must be a non-empty string" in await error(index.query([1, 0, 0, 0], namespace=""))


async def test_metadata_rules(index: Any) -> None:
    def sized(total: int) -> dict[str, str]:
        return {"p": "x" * (total - len('{"p":""}'))}

    await index.upsert([v("a", [1, 0, 0, 0], metadata=sized(10240))])
    assert "max is 10240 bytes, got 10241 bytes" in await error(
        index.upsert([v("b", [1, 0, 0, 0], metadata=sized(10241))])
    )
    for key in ("a.b", "$x", 'q"t', ""):
        assert "invalid metadata key" in await error(index.upsert([v("c", [1, 0, 0, 0], metadata={key: 1})]))
    assert "invalid metadata key" in await error(
        index.upsert([v("c", [1, 0, 0, 0], metadata={"ok": {"bad.key": 1}})])
    )
    assert "finite" in await error(index.upsert([v("c", [1, 0, 0, 0], metadata={"n": float("nan")})]))
    unsupported = index.upsert([v("c", [1, 0, 0, 0], metadata={"s": {1}})])
    assert "unsupported metadata value" in await error(unsupported)
    await error(index.upsert([v("c", [1, 0, 0, 0], metadata={"t": (1, 2)})]), RpcSerializationError)
    # JS has one number type: 2.0 comes back as 2.
    await index.upsert([v("d", [1, 0, 0, 0], metadata={"n": 2.0, "x": 2.5, "l": ["a", "b"], "o": None})])
    assert (await index.getByIds(["d"]))[0].metadata == {"n": 2, "x": 2.5, "l": ["a", "b"], "o": None}


async def test_batch_size_and_shape(index: Any) -> None:
    await index.upsert([v(f"b{i}", [1, 0, 0, 0]) for i in range(1000)])
    assert "max is 1000 per call, got 1001" in await error(
        index.upsert([v(f"c{i}", [1, 0, 0, 0]) for i in range(1001)])
    )
    assert "no vectors" in await error(index.insert([]))
    typo = index.upsert([{"id": "x", "values": [1, 0, 0, 0], "metdata": {}}])
    assert "unknown vector field(s) ['metdata']" in await error(typo)
    assert "has no values" in await error(index.upsert([{"id": "x"}]))
    await error(index.upsert(v("x", [1, 0, 0, 0])), TypeError)  # a single dict, not a list


async def test_a_rejected_batch_writes_nothing(index: Any) -> None:
    await error(index.upsert([v("ok1", [1, 0, 0, 0]), v("ok2", [0, 1, 0, 0]), v("bad", [1, 0])]))
    assert (await index.describe()).vectorCount == 0 and await index.getByIds(["ok1"]) == []


async def test_top_k_limits(h: Harness, index: Any) -> None:
    cap = h.limits.max_top_k_with_values_or_metadata
    await index.upsert([v(f"v{i}", [1, i, 0, 0], metadata={"kind": "k"}) for i in range(120)])
    assert (await index.query([1, 0, 0, 0], topK=100)).count == 100
    assert (await index.query([1, 0, 0, 0], topK=100, returnMetadata="indexed")).count == 100
    assert (await index.query([1, 0, 0, 0], topK=cap, returnValues=True, returnMetadata="all")).count == cap
    assert await error(index.query([1, 0, 0, 0], topK=101)) == (
        "VECTOR_QUERY_ERROR: max top K is 100, but got 101"
    )
    expected = (
        "VECTOR_QUERY_ERROR (code = 40025): with returnValues=true or returnMetadata=all, "
        f"max top K is {cap}, but got {cap + 1}; for a top K up to 100, retry with "
        "returnValues=false and returnMetadata=indexed"
    )
    assert await error(index.query([1, 0, 0, 0], topK=cap + 1, returnValues=True)) == expected
    assert await error(index.query([1, 0, 0, 0], topK=cap + 1, returnMetadata="all")) == expected
    assert await error(index.query([1, 0, 0, 0], topK=cap + 1, returnMetadata=True)) == expected
    for bad in (0, -1, 2.5, True, "5"):
        assert "topK must be a positive integer" in await error(index.query([1, 0, 0, 0], topK=bad))


async def test_get_and_delete_id_limits(index: Any) -> None:
    assert await error(index.getByIds([f"i{n}" for n in range(21)])) == (
        "VECTOR_GET_ERROR (code = 40007): too many ids in payload; max id count is 20"
    )
    too_many = index.deleteByIds([f"i{n}" for n in range(1001)])
    assert "VECTOR_DELETE_ERROR (code = 40007)" in await error(too_many)
    await error(index.getByIds("abc"), TypeError)


async def test_options_as_trailing_dict_or_keywords(index: Any) -> None:
    await index.upsert(AXES)
    as_kwargs = await index.query([1, 0.5, 0, 0], topK=2, returnValues=True)
    as_dict = await index.query([1, 0.5, 0, 0], {"topK": 2, "returnValues": True})
    assert as_kwargs == as_dict and as_kwargs.count == 2
    assert await index.queryById("x", {"topK": 1}) == await index.queryById("x", topK=1)
    with pytest.raises(TypeError, match="unknown option"):
        await index.query([1, 0, 0, 0], topk=3)
    assert "Invalid returnMetadata option" in await error(index.query([1, 0, 0, 0], returnMetadata="some"))
    assert "returnValues must be a boolean" in await error(index.query([1, 0, 0, 0], returnValues="yes"))


# -------------------------------------------------------------------------------- returnMetadata


async def test_return_metadata_modes(index: Any) -> None:
    long = "é" * 40  # 80 bytes: the string index holds the first 64 (32 characters)
    meta = {"kind": long, "n": 3, "flag": True, "doc": {"lang": "en", "title": "T"}, "extra": [1, 2]}
    await index.upsert([v("a", [1, 0, 0, 0], metadata=meta), v("plain", [0, 1, 0, 0])])
    none = await index.query([1, 0, 0, 0], topK=2)
    assert all("metadata" not in m for m in none.matches)
    indexed = await index.query([1, 0, 0, 0], topK=2, returnMetadata="indexed")
    assert indexed.matches[0].metadata == {"kind": "é" * 32, "n": 3, "flag": True, "doc": {"lang": "en"}}
    assert "metadata" not in indexed.matches[1]  # nothing to report: absent, not null
    full = await index.query([1, 0, 0, 0], topK=2, returnMetadata="all")
    assert full.matches[0].metadata == meta and "metadata" not in full.matches[1]
    assert await index.query([1, 0, 0, 0], topK=2, returnMetadata=True) == full
    assert await index.query([1, 0, 0, 0], topK=2, returnMetadata=False) == none


# -------------------------------------------------------------------------------------- namespaces


async def test_namespaces_isolate_queries(index: Any) -> None:
    await index.upsert(
        [
            v("a1", [1, 0, 0, 0], namespace="tenant-a", metadata={"kind": "doc"}),
            v("a2", [0, 1, 0, 0], namespace="tenant-a", metadata={"kind": "faq"}),
            v("b1", [1, 0, 0, 0], namespace="tenant-b", metadata={"kind": "doc"}),
            v("none", [1, 0.1, 0, 0], metadata={"kind": "doc"}),
        ]
    )
    in_a = await index.query([1, 0, 0, 0], namespace="tenant-a", topK=10)
    assert set(ids(in_a)) == {"a1", "a2"} and all(m.namespace == "tenant-a" for m in in_a.matches)
    assert ids(await index.query([1, 0, 0, 0], namespace="tenant-b", filter={"kind": "faq"})) == []
    assert ids(await index.query([1, 0, 0, 0], namespace="tenant-a", filter={"kind": "doc"})) == ["a1"]
    assert ids(await index.query([1, 0, 0, 0], namespace="tenant-c")) == []
    everything = await index.query([1, 0, 0, 0], topK=10)
    assert set(ids(everything)) == {"a1", "a2", "b1", "none"}
    assert "namespace" not in next(m for m in everything.matches if m.id == "none")


async def test_query_by_id(index: Any) -> None:
    await index.upsert(
        [
            v("q", [1, 1, 0, 0], namespace="t"),
            v("near", [1, 0.9, 0, 0], namespace="t", metadata={"n": 1}),
            v("far", [0, 0, 1, 0], namespace="t"),
            v("other", [1, 1, 0, 0], namespace="u"),
        ]
    )
    result = await index.queryById("q", namespace="t", topK=3)
    assert ids(result) == ["q", "near", "far"] and result.matches[0].score == pytest.approx(1.0)
    assert ids(await index.queryById("q", topK=2, filter={"n": 1})) == ["near"]
    assert set(ids(await index.queryById("q", topK=10))) == {"q", "near", "far", "other"}
    assert await index.queryById("unknown") == {"count": 0, "matches": []}
    await error(index.queryById(""))


# ----------------------------------------------------------------------------------------- filters

FILTER_DATA = [
    v("a", [1, 0, 0, 0], metadata={"kind": "netflix", "n": 1, "flag": True, "doc": {"lang": "en"}}),
    v("b", [0.9, 0.1, 0, 0], metadata={"kind": "hbo", "n": 2.5, "flag": False, "doc": {"lang": "de"}}),
    v("c", [0.8, 0.2, 0, 0], metadata={"kind": "netgear", "n": 10, "doc": {"lang": "en"}}),
    v("d", [0.7, 0.3, 0, 0], metadata={"kind": "neu", "n": -4, "flag": True}),
    v("e", [0.6, 0.4, 0, 0], metadata={"kind": 5, "n": "7", "flag": 1}),  # wrong types: not indexed
    v("f", [0.5, 0.5, 0, 0]),
]


@pytest.mark.parametrize(
    ("flt", "expected"),
    [
        ({"kind": "netflix"}, "a"),
        ({"kind": {"$eq": "hbo"}}, "b"),
        ({"n": 2.5}, "b"),
        ({"n": 10.0}, "c"),
        ({"flag": True}, "ad"),
        ({"flag": {"$eq": False}}, "b"),
        ({"kind": {"$ne": "hbo"}}, "acdef"),  # vectors without the value satisfy $ne
        ({"kind": {"$in": ["hbo", "neu", "absent"]}}, "bd"),
        ({"kind": {"$nin": ["hbo", "neu"]}}, "acef"),
        ({"n": {"$in": [1, 10]}}, "ac"),
        ({"flag": {"$in": [False]}}, "b"),
        ({"n": {"$lt": 2.5}}, "ad"),
        ({"n": {"$lte": 2.5}}, "abd"),
        ({"n": {"$gt": 1}}, "bc"),
        ({"n": {"$gte": 1, "$lt": 10}}, "ab"),
        ({"kind": {"$gte": "net", "$lt": "neu"}}, "ac"),  # prefix search, lexicographic
        ({"kind": {"$gt": "neu"}}, ""),
        ({"kind": {"$lte": "hbo"}}, "b"),
        ({"doc.lang": "en"}, "ac"),
        ({"doc.lang": "en", "n": {"$gt": 5}}, "c"),  # implicit AND
        ({"kind": None}, "ef"),  # $eq null: no indexed value
        ({"kind": {"$ne": None}}, "abcd"),
        ({"kind": {"$in": [None, "hbo"]}}, "bef"),
        ({"n": "1"}, ""),  # a string never equals a number index value
        ({"n": {"$gt": "a"}}, ""),
        ({"flag": {"$eq": 1}}, ""),
    ],
)
async def test_filter_operators(index: Any, flt: dict[str, Any], expected: str) -> None:
    await index.upsert(FILTER_DATA)
    result = await index.query([1, 0, 0, 0], topK=10, filter=flt)
    assert sorted(ids(result)) == list(expected)


async def test_filter_applies_before_top_k(index: Any) -> None:
    await index.upsert([v(f"near{i}", [1, i / 100, 0, 0], metadata={"kind": "near"}) for i in range(20)])
    await index.upsert([v(f"far{i}", [0.3 - i / 10, 0, 1, 0], metadata={"kind": "far"}) for i in range(3)])
    result = await index.query([1, 0, 0, 0], topK=2, filter={"kind": "far"})
    assert ids(result) == ["far0", "far1"]


async def test_string_index_compares_the_first_64_bytes(index: Any) -> None:
    prefix = "p" * 64
    await index.upsert(
        [
            v("one", [1, 0, 0, 0], metadata={"kind": prefix + "one"}),
            v("two", [0, 1, 0, 0], metadata={"kind": prefix + "two"}),
        ]
    )
    both = await index.query([1, 0, 0, 0], filter={"kind": prefix + "anything"})
    assert sorted(ids(both)) == ["one", "two"]
    assert ids(await index.query([1, 0, 0, 0], filter={"kind": prefix[:63]})) == []


@pytest.mark.parametrize(
    ("flt", "reason"),
    [
        ({}, "non-empty object"),
        ({"kind": {}}, "empty operator object"),
        ({"kind": {"$regex": "x"}}, "unsupported operator"),
        ({"kind": {"$eq": "a", "$ne": "b"}}, "must be used alone"),
        ({"n": {"$in": [1], "$gt": 0}}, "must be used alone"),
        ({"n": {"$lt": 5, "$lte": 6}}, "at most one upper and one lower"),
        ({"n": {"$gt": 5, "$gte": 6}}, "at most one upper and one lower"),
        ({"$n": 1}, "may not contain"),
        ({'k"ind': 1}, "may not contain"),
        ({"doc..lang": 1}, "may not contain"),
        ({"": 1}, "non-empty strings"),
        ({"n": [1, 2]}, "takes a string, number, boolean or null"),
        ({"n": {"$in": 1}}, "takes a list"),
        ({"n": {"$in": [[1]]}}, "takes a list"),
        ({"n": {"$gt": True}}, "takes a string or a number"),
        ({"n": {"$lt": None}}, "takes a string or a number"),
        ({"n": float("nan")}, "not JSON"),
        ({"kind": {"$in": ["x" * 2100]}}, "less than 2048 bytes"),
        ({"k" * 513: 1}, "longer than 512 characters"),
    ],
)
async def test_invalid_filters(index: Any, flt: dict[str, Any], reason: str) -> None:
    message = await error(index.query([1, 0, 0, 0], filter=flt))
    assert message.startswith("VECTOR_QUERY_ERROR: invalid filter:") and reason in message


async def test_filter_size_limit_boundary(index: Any) -> None:
    def sized(total: int) -> dict[str, Any]:
        return {"kind": "x" * (total - len('{"kind":""}'))}

    await index.query([1, 0, 0, 0], filter=sized(2047))
    assert "got 2048 bytes" in await error(index.query([1, 0, 0, 0], filter=sized(2048)))


async def test_emulator_rejects_filters_on_unindexed_properties(index: Any) -> None:
    """Emulator strictness: the edge cannot match such a filter and silently returns nothing."""
    await index.upsert([v("a", [1, 0, 0, 0], metadata={"color": "red"})])
    message = await error(index.query([1, 0, 0, 0], filter={"color": "red"}))
    assert "has no metadata index" in message and "create-metadata-index" in message


async def test_random_filters_agree_with_a_reference_evaluator(index: Any) -> None:
    rng = random.Random(11)
    kinds = ["alpha", "beta", "gamma", "delta", "epsilon"]
    data = []
    for i in range(80):
        meta: dict[str, Any] = {}
        if rng.random() < 0.85:
            meta["kind"] = rng.choice(kinds)
        if rng.random() < 0.85:
            meta["n"] = rng.choice([rng.randint(-5, 5), rng.uniform(-5, 5)])
        if rng.random() < 0.85:
            meta["flag"] = rng.random() < 0.5
        data.append(v(f"r{i}", [1, rng.random(), rng.random(), 0], metadata=meta))
    await index.upsert(data)

    def holds(meta: dict[str, Any], field: str, op: str, operand: Any) -> bool:
        value = meta.get(field)
        if op == "$eq":
            return value == operand and (value is None or type(value) is type(operand) or field == "n")
        if op == "$ne":
            return not holds(meta, field, "$eq", operand)
        if op == "$in":
            return any(holds(meta, field, "$eq", o) for o in operand)
        if op == "$nin":
            return not holds(meta, field, "$in", operand)
        if value is None:
            return False
        compare = {"$lt": value < operand, "$lte": value <= operand}
        compare.update({"$gt": value > operand, "$gte": value >= operand})
        return bool(compare[op])

    def random_condition() -> tuple[str, dict[str, Any]]:
        field = rng.choice(["kind", "n", "flag"])
        pools: dict[str, list[Any]] = {"kind": kinds, "n": [-3, 0, 1.5, 4], "flag": [True, False]}
        pool = pools[field]
        op = rng.choice(["$eq", "$ne", "$in", "$nin"] + (["range"] if field != "flag" else []))
        if op in ("$in", "$nin"):
            return field, {op: rng.sample(pool, rng.randint(1, 2))}
        if op == "range":
            low, high = sorted(rng.sample(pool, 2))
            return field, {rng.choice(["$gt", "$gte"]): low, rng.choice(["$lt", "$lte"]): high}
        return field, {op: rng.choice(pool)}

    for _ in range(150):
        flt = dict(random_condition() for _ in range(rng.randint(1, 2)))
        expected = sorted(
            str(d["id"])
            for d in data
            if all(holds(d["metadata"], f, op, x) for f, ops in flt.items() for op, x in ops.items())
        )
        got = sorted(ids(await index.query([1, 0, 0, 0], topK=100, filter=flt)))
        assert got == expected, json.dumps(flt)


# ----------------------------------------------------------------------- persistence and config


async def test_persists_across_reopen(h: Harness, index: Any) -> None:
    await index.upsert(FILTER_DATA)
    await index.upsert([v("ns", [0, 0, 1, 0], namespace="t", metadata={"kind": "hbo"})])
    last = await index.deleteByIds(["f"])
    before = await index.query([1, 0.2, 0, 0], topK=10, returnMetadata="indexed")
    reopened = h.reopen(index)
    assert await reopened.query([1, 0.2, 0, 0], topK=10, returnMetadata="indexed") == before
    assert ids(await reopened.query([0, 0, 1, 0], namespace="t", filter={"kind": "hbo"})) == ["ns"]
    info = await reopened.describe()
    assert info.vectorCount == 6 and info.processedUpToMutation == last.mutationId
    assert (await reopened.getByIds(["ns"]))[0] == {
        "id": "ns",
        "values": [0.0, 0.0, 1.0, 0.0],
        "metadata": {"kind": "hbo"},
        "namespace": "t",
    }


async def test_emulator_refuses_to_reopen_with_another_shape(h: Harness, index: Any) -> None:
    """The edge fixes dimensions and metric at creation; reopening a local index is where that shows."""
    await index.upsert(AXES)
    index.close()
    for other in (
        VectorizeIndexConfig("contract", 8, "cosine", INDEXES),
        VectorizeIndexConfig("contract", DIMS, "euclidean", INDEXES),
    ):
        with pytest.raises(VectorizeError, match="cannot change after creation") as info:
            h.open(other)
        assert "dimensions=4, metric=cosine" in str(info.value)


async def test_emulator_new_metadata_index_covers_only_later_writes(h: Harness) -> None:
    """Reopening with an added metadata index stands in for `wrangler vectorize create-metadata-index`."""
    plain = VectorizeIndexConfig("contract-late", DIMS, "cosine")
    index = h.open(plain)
    await index.upsert([v("old", [1, 0, 0, 0], metadata={"kind": "doc"})])
    index = h.reopen(index, VectorizeIndexConfig("contract-late", DIMS, "cosine", {"kind": "string"}))
    await index.upsert([v("new", [0, 1, 0, 0], metadata={"kind": "doc"})])
    assert ids(await index.query([1, 0, 0, 0], filter={"kind": "doc"})) == ["new"]
    await index.upsert([v("old", [1, 0, 0, 0], metadata={"kind": "doc"})])  # re-upserting indexes it
    assert ids(await index.query([1, 0, 0, 0], filter={"kind": "doc"})) == ["old", "new"]
    index = h.reopen(index)
    assert ids(await index.query([1, 0, 0, 0], filter={"kind": "doc"})) == ["old", "new"]
    index = h.reopen(index, plain)
    assert "has no metadata index" in await error(index.query([1, 0, 0, 0], filter={"kind": "doc"}))


async def test_emulator_index_is_unusable_after_close(h: Harness, index: Any) -> None:
    """Closing is a local concern (the runtime closes its resources on shutdown)."""
    await index.upsert(AXES)
    index.close()
    index.close()
    assert "is closed" in await error(index.query([1, 0, 0, 0]))
    assert "is closed" in await error(index.describe())


def test_config_validation() -> None:
    limits = VectorizeLimits()
    with pytest.raises(ValueError, match="metric"):
        VectorizeIndexConfig("x", 4, "manhattan")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="dimensions"):
        VectorizeIndexConfig("x", 0, "cosine")
    with pytest.raises(ValueError, match="type"):
        VectorizeIndexConfig("x", 4, "cosine", {"p": "date"})  # type: ignore[dict-item]
    config = VectorizeIndexConfig("x", limits.max_dimensions + 1, "cosine")
    with pytest.raises(ValueError, match="dimensions must be <= 1536"):
        LocalVectorizeIndex("/nonexistent/never-created.sqlite", config)
    eleven = VectorizeIndexConfig("x", 4, "cosine", {f"p{i}": "string" for i in range(11)})
    with pytest.raises(ValueError, match="at most 10 metadata indexes"):
        LocalVectorizeIndex("/nonexistent/never-created.sqlite", eleven)
    source = {"p": "string"}
    frozen = VectorizeIndexConfig("x", 4, "cosine", source)  # type: ignore[arg-type]
    source["q"] = "number"
    assert dict(frozen.metadata_indexes) == {"p": "string"}


async def test_emulator_index_and_namespace_capacity_limits(h: Harness) -> None:
    """Lowered limits: the edge's are 5,000,000 vectors and 50,000 namespaces per index."""
    small = VectorizeLimits(max_vectors=3, max_namespaces=2)
    index = h.open(VectorizeIndexConfig("contract-small", DIMS, "cosine"), limits=small)
    await index.upsert([v("a", [1, 0, 0, 0], namespace="n1"), v("b", [1, 0, 0, 0], namespace="n2")])
    assert "too many namespaces" in await error(index.upsert([v("c", [1, 0, 0, 0], namespace="n3")]))
    await index.upsert([v("c", [1, 0, 0, 0])])
    assert "index is full" in await error(index.upsert([v("d", [1, 0, 0, 0])]))
    await index.upsert([v("c", [0, 1, 0, 0])])  # replacing is not growing
    await index.deleteByIds(["a"])
    await index.upsert([v("d", [1, 0, 0, 0], namespace="n3")])  # n1 is empty now, so n3 fits
