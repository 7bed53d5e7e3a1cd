"""Contract suite for the KV namespace binding (edgerag.ports.KVNamespace).

Runs against every backend in ``BACKENDS``. Locally that is :class:`edgerag_local.kv.LocalKVNamespace`
on ``tmp_path`` with an injected clock. Inside workerd the same assertions would run in a test worker
whose KV binding is real, driven over RPC (``await env.KV_PROBE.call("put", ...)``), with two
differences this suite encodes in :class:`Harness`: time cannot be moved (``advance`` waits or skips)
and reopening is a no-op (the namespace persists by itself). Tests that only make sense for the
emulator (lowered limits, two instances on one file) say so in their name and docstring.

At the edge KV is eventually consistent; a workerd run reads back through the same location, where
a write is visible at once, so the read-after-write assertions hold there too.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from edgerag.jsdict import AttrDict
from edgerag.ports import KVNamespace
from edgerag_local.core.clock import ManualClock
from edgerag_local.kv import KVLimits, LocalKVNamespace
from edgerag_local.kv.errors import KVError

from tests.contract.conftest import BACKENDS, Miniflare, only
from tests.contract.miniflare.proxies import KVNamespace as MiniflareKV

NOW = 1_700_000_000.0


TIME_TRAVEL = "moves an injected clock; Miniflare's KV expires keys on the wall clock"
LOCAL_KNOB = "an emulator knob (lowered limits, two instances on one SQLite file)"


@dataclass
class Harness:
    kv: Any
    clock: ManualClock | None
    reopen: Callable[[], Any]
    backend: str = "local"

    def advance(self, seconds: float) -> None:
        assert self.clock is not None, "time travel is the emulator's"
        self.clock.advance(seconds)

    def now(self) -> int:
        """Whole seconds on the backend's clock (the injected one, or the wall clock workerd reads)."""
        return int(self.clock() if self.clock is not None else time.time())


def _local(tmp_path: Path, limits: KVLimits | None = None) -> Harness:
    clock = ManualClock(NOW)
    path = tmp_path / "kv" / "ns.sqlite"
    extra = {} if limits is None else {"limits": limits}

    def make() -> LocalKVNamespace:
        return LocalKVNamespace(path, clock=clock, **extra)

    return Harness(kv=make(), clock=clock, reopen=make)


@pytest.fixture(params=BACKENDS)
def h(request: pytest.FixtureRequest, tmp_path: Path) -> Harness:
    if request.param == "miniflare":
        mf: Miniflare = request.getfixturevalue("miniflare")
        kv = MiniflareKV(mf.bridge, mf.take("KV"))
        return Harness(kv=kv, clock=None, reopen=lambda: kv, backend="miniflare")
    return _local(tmp_path)


async def seed(kv: Any, names: list[str]) -> None:
    """Set-up: put "v" under each name (in one request on Miniflare, where a round trip per key is slow)."""
    if hasattr(kv, "put_many"):
        await kv.put_many(((name, "v"), {}) for name in names)
        return
    for name in names:
        await kv.put(name, "v")


async def collect(stream: AsyncIterator[bytes]) -> bytes:
    chunks = [chunk async for chunk in stream]
    assert all(isinstance(chunk, bytes) for chunk in chunks)
    return b"".join(chunks)


async def list_all(kv: Any, **options: Any) -> list[str]:
    names: list[str] = []
    cursor = None
    while True:
        page = await kv.list(cursor=cursor, **options)
        names += [entry["name"] for entry in page["keys"]]
        if page.list_complete:
            assert "cursor" not in page
            return names
        cursor = page.cursor


def test_emulator_satisfies_the_port(h: Harness) -> None:
    assert isinstance(h.kv, KVNamespace)


# ---------------------------------------------------------------------------------------- get / put


async def test_text_round_trip_and_missing_key(h: Harness) -> None:
    assert await h.kv.get("missing") is None
    await h.kv.put("greeting", "héllo")
    assert await h.kv.get("greeting") == "héllo"
    await h.kv.put("greeting", "again")
    assert await h.kv.get("greeting") == "again"
    await h.kv.put("empty", "")
    assert await h.kv.get("empty") == ""


async def test_json_values_come_back_as_attribute_dicts(h: Harness) -> None:
    await h.kv.put("doc", json.dumps({"tenant": "acme", "tags": [{"k": 1}], "n": None}))
    doc = await h.kv.get("doc", "json")
    assert isinstance(doc, AttrDict)
    assert doc.tenant == "acme" and doc.tags[0].k == 1 and doc.n is None
    await h.kv.put("list", "[1, 2]")
    assert await h.kv.get("list", type="json") == [1, 2]


async def test_invalid_json_value_fails_to_parse(h: Harness) -> None:
    await h.kv.put("bad", "{not json")
    # The wording is the JSON parser's (V8's SyntaxError in workerd), so only the kind is shared.
    with pytest.raises(ValueError, match="not valid JSON" if h.backend == "local" else None):
        await h.kv.get("bad", "json")
    await h.kv.put("nan", "NaN")  # JSON.parse rejects NaN even though Python's json accepts it
    with pytest.raises(ValueError):
        await h.kv.get("nan", "json")


async def test_binary_round_trip_returns_memoryview(h: Harness) -> None:
    data = bytes(range(256)) * 3
    await h.kv.put("bin", data)
    got = await h.kv.get("bin", "arrayBuffer")
    assert isinstance(got, memoryview) and got.tobytes() == data
    await h.kv.put("from-bytearray", bytearray(b"\x00\xff"))
    await h.kv.put("from-view", memoryview(b"abcdef")[1:3])
    assert (await h.kv.get("from-bytearray", "arrayBuffer")).tobytes() == b"\x00\xff"
    assert await h.kv.get("from-view") == "bc"


async def test_invalid_utf8_reads_as_replacement_characters(h: Harness) -> None:
    await h.kv.put("latin1", b"caf\xe9")
    assert await h.kv.get("latin1") == "caf\ufffd"


async def test_stream_type_yields_byte_chunks(h: Harness) -> None:
    data = bytes(range(256)) * 1000  # several chunks
    await h.kv.put("big", data)
    stream = await h.kv.get("big", "stream")
    assert await collect(stream) == data


async def test_put_accepts_an_async_iterable_as_a_stream(h: Harness) -> None:
    async def parts() -> AsyncIterator[bytes]:
        yield b"ab"
        yield b"cd"

    await h.kv.put("streamed", parts())
    assert await h.kv.get("streamed") == "abcd"
    await h.kv.put("copied", await h.kv.get("streamed", "stream"))
    assert await h.kv.get("copied") == "abcd"


COERCED = "workerd coerces a number, boolean or null to its string ('123', 'null'); the emulator refuses it"


@pytest.mark.parametrize(
    "value",
    [
        pytest.param(123, marks=only("local", COERCED)),
        pytest.param(1.5, marks=only("local", COERCED)),
        pytest.param(True, marks=only("local", COERCED)),
        pytest.param(None, marks=only("local", COERCED)),
        {"a": 1},
        ["x"],
    ],
)
async def test_put_rejects_values_kv_cannot_store(h: Harness, value: Any) -> None:
    with pytest.raises(TypeError, match=r"KV put\(\) accepts only strings, ArrayBuffers"):
        await h.kv.put("k", value)


async def test_get_option_spellings_are_equivalent(h: Harness) -> None:
    await h.kv.put("doc", '{"a": 1}')
    expected = {"a": 1}
    assert await h.kv.get("doc", "json") == expected
    assert await h.kv.get("doc", type="json") == expected
    assert await h.kv.get("doc", {"type": "json", "cacheTtl": 60}) == expected
    assert await h.kv.get("doc", type="json", cacheTtl=60) == expected
    assert await h.kv.get("doc", cacheTtl=30) == '{"a": 1}'


async def test_cache_ttl_below_minimum_is_rejected(h: Harness) -> None:
    with pytest.raises(KVError) as info:
        await h.kv.get("doc", cacheTtl=29)
    assert info.value.message == "KV GET failed: 400 Invalid cache_ttl of 29. Cache TTL must be at least 30."


async def test_an_unknown_type_is_a_type_error(h: Harness) -> None:
    await h.kv.put("k", "v")
    with pytest.raises(TypeError, match=r'Unknown response type\. Possible types are "text"'):
        await h.kv.get("k", "blob")


@only("local", "workerd ignores option names it does not know, and a type when the key is missing")
async def test_unknown_type_and_unknown_options_are_type_errors(h: Harness) -> None:
    with pytest.raises(TypeError, match=r'Unknown response type\. Possible types are "text"'):
        await h.kv.get("k", "blob")
    with pytest.raises(TypeError, match="unknown option"):
        await h.kv.get("k", {"type": "json", "cachettl": 60})
    with pytest.raises(TypeError, match="unknown option"):
        await h.kv.put("k", "v", {"expirationTTL": 60})
    with pytest.raises(TypeError, match="unknown option"):
        await h.kv.list({"perfix": "a"})


# ------------------------------------------------------------------------------------------- keys


@pytest.mark.parametrize(
    ("key", "message"),
    [("", "Key name cannot be empty."), (".", '"." is not allowed as a key name.'), ("..", '".." is not')],
)
async def test_illegal_key_names_are_type_errors(h: Harness, key: str, message: str) -> None:
    for call in (h.kv.get(key), h.kv.put(key, "v"), h.kv.delete(key), h.kv.getWithMetadata(key)):
        with pytest.raises(TypeError) as info:
            await call
        assert str(info.value).startswith(message)


async def test_key_length_is_measured_in_utf8_bytes(h: Harness) -> None:
    longest = "é" * 256  # 512 bytes in UTF-8
    await h.kv.put(longest, "fits")
    assert await h.kv.get(longest) == "fits"
    too_long = longest + "a"
    cases = [
        (h.kv.put(too_long, "v"), "PUT"),
        (h.kv.get(too_long), "GET"),
        (h.kv.delete(too_long), "DELETE"),
    ]
    for call, op in cases:
        with pytest.raises(KVError) as info:
            await call
        assert info.value.message == (
            f"KV {op} failed: 414 UTF-8 encoded length of 513 exceeds key length limit of 512."
        )


# ------------------------------------------------------------------------------------ value limits


async def test_value_size_limit_is_25_mib(h: Harness) -> None:
    limit = 25 * 1024 * 1024
    await h.kv.put("max", b"\x00" * limit)
    assert len(await h.kv.get("max", "arrayBuffer")) == limit
    with pytest.raises(KVError) as info:
        await h.kv.put("over", b"\x00" * (limit + 1))
    assert info.value.message == f"KV PUT failed: 413 Value length of {limit + 1} exceeds limit of {limit}."
    assert await h.kv.get("over") is None


@only("local", LOCAL_KNOB)
async def test_lowered_limits_are_enforced_by_the_emulator(tmp_path: Path) -> None:
    """Emulator-only: limits are a frozen dataclass tests can lower."""
    kv = _local(tmp_path, KVLimits(max_value_bytes=4, max_key_bytes=3, max_list_limit=2)).kv
    await kv.put("abc", "1234")
    with pytest.raises(KVError, match="Value length of 5 exceeds limit of 4"):
        await kv.put("abc", "12345")
    with pytest.raises(KVError, match="exceeds key length limit of 3"):
        await kv.put("abcd", "1")
    with pytest.raises(KVError, match="Please specify an integer less than 2"):
        await kv.list(limit=3)


# --------------------------------------------------------------------------------------- metadata


async def test_get_with_metadata_shapes(h: Harness) -> None:
    missing = await h.kv.getWithMetadata("missing")
    assert missing == {"value": None, "metadata": None, "cacheStatus": None}
    await h.kv.put("plain", "v")
    assert await h.kv.getWithMetadata("plain") == {"value": "v", "metadata": None, "cacheStatus": None}
    await h.kv.put("tagged", '{"x": 2}', metadata={"owner": {"tenant": "acme"}, "n": 1})
    got = await h.kv.getWithMetadata("tagged", "json")
    assert isinstance(got, AttrDict)
    assert got.value.x == 2 and got.metadata.owner.tenant == "acme" and got.cacheStatus is None
    got = await h.kv.getWithMetadata("tagged", {"type": "arrayBuffer"})
    assert isinstance(got.value, memoryview) and got.metadata.n == 1


async def test_metadata_size_limit_is_1024_bytes_of_json(h: Harness) -> None:
    fits = {"p": "x" * 1016}  # {"p":"..."} serialises to exactly 1024 bytes
    await h.kv.put("fits", "v", metadata=fits)
    assert (await h.kv.getWithMetadata("fits")).metadata == fits
    with pytest.raises(KVError) as info:
        await h.kv.put("over", "v", {"metadata": {"p": "x" * 1017}})
    assert info.value.message == "KV PUT failed: 413 Metadata length of 1025 exceeds limit of 1024."


@only(
    "local",
    "JSON.stringify turns NaN into null and an opaque object into {} without an error; the emulator "
    "refuses both rather than store what the caller did not mean",
)
async def test_metadata_must_be_json_serialisable(h: Harness) -> None:
    with pytest.raises(TypeError, match="JSON"):
        await h.kv.put("k", "v", metadata={"when": object()})
    with pytest.raises(TypeError, match="JSON"):
        await h.kv.put("k", "v", metadata={"x": float("nan")})


# ----------------------------------------------------------------------------------------- expiry


@only("local", TIME_TRAVEL)
async def test_expiration_ttl_hides_the_key_once_elapsed(h: Harness) -> None:
    await h.kv.put("session", "s", expirationTtl=60, metadata={"m": 1})
    h.advance(59.9)
    assert await h.kv.get("session") == "s"
    assert (await h.kv.list())["keys"] == [
        {"name": "session", "expiration": int(NOW) + 60, "metadata": {"m": 1}}
    ]
    h.advance(0.1)
    assert await h.kv.get("session") is None
    assert await h.kv.getWithMetadata("session") == {"value": None, "metadata": None, "cacheStatus": None}
    assert (await h.kv.list())["keys"] == []
    assert await h.kv.get(["session"]) == {"session": None}


@only("local", TIME_TRAVEL)
async def test_absolute_expiration(h: Harness) -> None:
    at = int(NOW) + 120
    await h.kv.put("k", "v", {"expiration": at})
    assert (await h.kv.list())["keys"] == [{"name": "k", "expiration": at}]
    h.advance(119)
    assert await h.kv.get("k") == "v"
    h.advance(1)
    assert await h.kv.get("k") is None


@only("local", TIME_TRAVEL)
async def test_overwriting_without_expiry_clears_it(h: Harness) -> None:
    await h.kv.put("k", "v1", expirationTtl=60)
    await h.kv.put("k", "v2")
    h.advance(3600)
    assert await h.kv.get("k") == "v2"


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("expirationTtl", 30, "Invalid expiration_ttl of 30. Expiration TTL must be at least 60."),
        ("expirationTtl", 0, "Invalid expiration_ttl of 0. Please specify integer greater than 0."),
        (
            "expiration",
            "now",
            "Invalid expiration of {at}. Please specify integer greater than the current "
            "number of seconds since the UNIX epoch.",
        ),
        (
            "expiration",
            "now + 59",
            "Invalid expiration of {at}. Expiration times must be at least 60 seconds in the future.",
        ),
    ],
)
async def test_bad_expiry_is_rejected_with_cloudflare_wording(
    h: Harness, option: str, value: int | str, message: str
) -> None:
    at = value if isinstance(value, int) else h.now() + (59 if value == "now + 59" else 0)
    with pytest.raises(KVError) as info:
        await h.kv.put("k", "v", **{option: at})
    assert info.value.message == f"KV PUT failed: 400 {message.format(at=at)}"
    assert await h.kv.get("k") is None


@only("local", "workerd converts a numeric string such as '60' to a number; the emulator refuses it")
async def test_expiry_options_must_be_numbers(h: Harness) -> None:
    with pytest.raises(TypeError):
        await h.kv.put("k", "v", expirationTtl="60")


# ----------------------------------------------------------------------------------------- delete


async def test_delete(h: Harness) -> None:
    await h.kv.put("k", "v")
    await h.kv.delete("k")
    assert await h.kv.get("k") is None
    await h.kv.delete("k")  # deleting a missing key is fine
    assert (await h.kv.list())["keys"] == []


# ------------------------------------------------------------------------------------------- list


async def test_list_orders_by_utf8_bytes_and_filters_by_prefix(h: Harness) -> None:
    names = ["b", "a", "B", "ab", "é", "z", "\U0001f600", "a/2", "a/1"]
    for name in names:
        await h.kv.put(name, "v")
    listed = await h.kv.list()
    assert [k["name"] for k in listed["keys"]] == sorted(names, key=lambda n: n.encode("utf-8"))
    assert listed.list_complete is True and "cursor" not in listed and listed.cacheStatus is None
    assert [k["name"] for k in (await h.kv.list(prefix="a/"))["keys"]] == ["a/1", "a/2"]
    assert (await h.kv.list({"prefix": "nothing"}))["keys"] == []


async def test_list_entries_carry_expiration_and_metadata_only_when_set(h: Harness) -> None:
    await h.kv.put("a", "v")
    await h.kv.put("b", "v", metadata={"tag": "x"})
    entries = (await h.kv.list())["keys"]
    assert entries == [{"name": "a"}, {"name": "b", "metadata": {"tag": "x"}}]
    assert entries[1].metadata.tag == "x"


@pytest.mark.parametrize(
    ("limit", "message"),
    [
        pytest.param(
            0,
            "Invalid key_count_limit of 0. Please specify an integer greater than 0.",
            marks=only("local", "Miniflare lists with limit=0 as if no limit was given"),
        ),
        (1001, "Invalid key_count_limit of 1001. Please specify an integer less than 1000."),
    ],
)
async def test_list_limit_bounds(h: Harness, limit: int, message: str) -> None:
    with pytest.raises(KVError) as info:
        await h.kv.list(limit=limit)
    assert info.value.message == f"KV GET failed: 400 {message}"


async def test_list_prefix_longer_than_a_key_is_rejected(h: Harness) -> None:
    with pytest.raises(KVError, match="KV GET failed: 414 UTF-8 encoded length of 513"):
        await h.kv.list(prefix="x" * 513)


async def test_paging_visits_every_key_once(h: Harness) -> None:
    names = [f"doc:{i:04d}" for i in range(250)]
    await seed(h.kv, names)
    first = await h.kv.list(limit=100)
    assert len(first["keys"]) == 100 and first.list_complete is False and isinstance(first.cursor, str)
    assert await list_all(h.kv, limit=100) == names
    assert await list_all(h.kv, prefix="doc:01", limit=7) == names[100:200]


async def test_default_page_is_1000_keys(h: Harness) -> None:
    await seed(h.kv, [f"k{i:05d}" for i in range(1001)])
    first = await h.kv.list()
    assert len(first["keys"]) == 1000 and first.list_complete is False
    second = await h.kv.list(cursor=first.cursor)
    assert [k["name"] for k in second["keys"]] == ["k01000"] and second.list_complete is True


async def test_cursor_survives_writes_between_pages(h: Harness) -> None:
    for i in range(0, 40, 2):
        await h.kv.put(f"k{i:02d}", "v")
    page = await h.kv.list(limit=5)
    seen = [k["name"] for k in page["keys"]]
    assert seen == ["k00", "k02", "k04", "k06", "k08"]
    await h.kv.put("k01", "v")  # before the cursor: not revisited
    await h.kv.put("k09", "v")  # after the cursor: picked up
    await h.kv.delete("k10")  # not yet seen, gone: skipped without losing its neighbours
    cursor = page.cursor
    while cursor is not None:
        page = await h.kv.list(limit=5, cursor=cursor)
        seen += [k["name"] for k in page["keys"]]
        cursor = None if page.list_complete else page.cursor
    expected = sorted({f"k{i:02d}" for i in range(0, 40, 2)} - {"k10"} | {"k09"})
    assert seen == expected


# --------------------------------------------------------------------------------------- bulk get


async def test_bulk_get_returns_a_dict_with_none_for_missing_keys(h: Harness) -> None:
    await h.kv.put("a", '{"n": 1}')
    await h.kv.put("b", "2")
    assert await h.kv.get(["a", "b", "c"]) == {"a": '{"n": 1}', "b": "2", "c": None}
    as_json = await h.kv.get(["a", "b"], "json")
    assert as_json == {"a": {"n": 1}, "b": 2} and as_json["a"].n == 1
    assert await h.kv.get(["a"], {"type": "json", "cacheTtl": 60}) == {"a": {"n": 1}}


async def test_bulk_get_with_metadata(h: Harness) -> None:
    await h.kv.put("a", "1", metadata={"m": True})
    await h.kv.put("b", "2")
    got = await h.kv.getWithMetadata(["a", "b", "c"])
    assert got == {
        "a": {"value": "1", "metadata": {"m": True}},
        "b": {"value": "2", "metadata": None},
        "c": None,
    }
    assert got["a"].metadata.m is True


@pytest.mark.parametrize(
    ("keys", "options", "message"),
    [
        ([f"k{i}" for i in range(101)], {}, "400 You can request a maximum of 100 keys"),
        ([], {}, "400 You must request a minimum of 1 key"),
        (["a"], {"type": "arrayBuffer"}, '400 "arrayBuffer" is not a valid type. Use "json" or "text"'),
        (["a"], {"type": "stream"}, '400 "stream" is not a valid type. Use "json" or "text"'),
        (["a", ""], {}, "400 Key names must not be empty"),
        (["."], {}, '400 Illegal key name ".". Please use a different name.'),
        (["x" * 513], {}, "414 UTF-8 encoded length of 513 exceeds key length limit of 512."),
        (["a"], {"cacheTtl": 10}, "400 Invalid cache_ttl of 10. Cache TTL must be at least 30."),
    ],
)
async def test_bulk_get_errors(h: Harness, keys: list[str], options: dict[str, Any], message: str) -> None:
    with pytest.raises(KVError) as info:
        await h.kv.get(keys, **options)
    assert info.value.message == f"KV GET_BULK failed: {message}"


async def test_bulk_get_of_100_keys_is_allowed(h: Harness) -> None:
    keys = [f"k{i}" for i in range(100)]
    assert await h.kv.get(keys) == dict.fromkeys(keys)


async def test_bulk_json_get_of_a_non_json_value_fails(h: Harness) -> None:
    await h.kv.put("text", "plain words")
    with pytest.raises(KVError) as info:
        await h.kv.get(["text"], "json")
    assert info.value.message == (
        "KV GET_BULK failed: 400 At least one of the requested keys corresponds to a non-json value"
    )


@only("local", LOCAL_KNOB)
async def test_bulk_get_total_size_limit(tmp_path: Path) -> None:
    """Emulator-only (lowered limit): the service caps a bulk read's total size."""
    kv = _local(tmp_path, KVLimits(max_bulk_bytes=1024 * 1024)).kv
    await kv.put("a", b"x" * (512 * 1024))
    await kv.put("b", b"x" * (512 * 1024))
    assert len(await kv.get(["a", "b"])) == 2
    await kv.put("c", b"x")
    with pytest.raises(KVError, match="413 Total size of request exceeds the limit of 1MB"):
        await kv.get(["a", "b", "c"])


# ------------------------------------------------------------------------------------ persistence


async def test_state_survives_reopening(h: Harness) -> None:
    now = h.now()
    await h.kv.put("k", bytes([0, 1, 2]), expirationTtl=600, metadata={"v": 1})
    reopened = h.reopen()
    got = await reopened.getWithMetadata("k", "arrayBuffer")
    assert got.value.tobytes() == b"\x00\x01\x02" and got.metadata == {"v": 1}
    (entry,) = (await reopened.list())["keys"]
    assert entry["name"] == "k" and entry["metadata"] == {"v": 1}
    assert now + 600 <= entry["expiration"] <= h.now() + 600


@only("local", TIME_TRAVEL)
async def test_a_reopened_namespace_still_expires_keys(h: Harness) -> None:
    await h.kv.put("k", "v", expirationTtl=600)
    reopened = h.reopen()
    h.advance(600)
    assert await reopened.get("k") is None


@only("local", LOCAL_KNOB)
async def test_two_instances_on_one_file_see_each_other_at_once(tmp_path: Path) -> None:
    """Emulator-only: two workers bound to one namespace share its file and its writes."""
    first = _local(tmp_path)
    second = first.reopen()
    await first.kv.put("k", "v")
    assert await second.get("k") == "v"
    await second.delete("k")
    assert await first.kv.get("k") is None


@only("local", "Miniflare lists from whatever cursor it is given; the emulator refuses one it did not issue")
async def test_a_cursor_that_was_not_issued_is_rejected(h: Harness) -> None:
    with pytest.raises(KVError, match=r"^KV GET failed: 400 "):
        await h.kv.list(cursor="%%%")
