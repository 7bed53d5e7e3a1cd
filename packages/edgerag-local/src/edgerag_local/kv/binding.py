"""Local emulator of a Workers KV namespace binding (``env.CACHE`` and friends).

:class:`LocalKVNamespace` implements :class:`edgerag.ports.KVNamespace` with the call and result
shapes of the wrapped Python Workers SDK: ``get`` returns ``str`` / parsed JSON (``AttrDict`` for
objects) / ``memoryview`` / an async iterator of ``bytes`` chunks (``type="stream"``), or ``None``;
``getWithMetadata`` and ``list`` return ``AttrDict``; a list of keys to ``get`` returns a ``dict``.

Fidelity: validation follows workerd's KV binding and the KV service as miniflare models it, so the
errors carry Cloudflare's wording: ``KV <OP> failed: <status> <reason>`` (:class:`KVError`) for what
the service rejects, ``TypeError`` for what the runtime rejects before sending (empty key, ``"."``,
wrong value type). Stricter than the edge on purpose: option names are checked (see
:func:`edgerag_local.core.options.merge_options`) and ``list(limit=0)`` is an error, where workerd would
silently drop a non-positive limit and list 1000 keys.

Consistency: KV at the edge is eventually consistent (a write can take ~60 s to be seen from other
locations, and ``cacheTtl`` lets reads be served from a stale cache). Locally every read sees the
latest write immediately and ``cacheTtl`` is validated but has no effect, so code that passes here
can still race at the edge: never use KV for values that must be exact (counters, locks).

Storage: one SQLite file per namespace (table ``kv_entries``); values are BLOBs, ``expiration`` is
epoch seconds, ``metadata`` is JSON text. Keys are TEXT with SQLite's binary collation, which orders
them by UTF-8 bytes exactly as KV lists them. Expired entries are filtered on every read against the
injected ``clock`` and purged on write. A connection is opened per call, so instances need no closing
and several instances on one file (two workers bound to one namespace) see each other's writes.
Commits skip fsync: the state survives the process, not a crash of the machine.

To extend: add the option name to the ``allowed`` set of the method, validate it next to its
siblings, and pin the behaviour in ``tests/contract/test_kv.py``.
"""

from __future__ import annotations

import json
import math
import sqlite3
import time
from collections.abc import AsyncIterable, AsyncIterator, Callable, Mapping, Sequence
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edgerag.jsdict import AttrDict, to_attrdict

from edgerag_local.core.bodies import put_body_bytes
from edgerag_local.core.cursors import cursor_key, make_cursor
from edgerag_local.core.options import merge_options
from edgerag_local.kv.errors import KVError

__all__ = ["KVLimits", "LocalKVNamespace"]

_TYPES = ("text", "json", "arrayBuffer", "stream")
_BULK_TYPES = ("text", "json")
_STREAM_CHUNK = 64 * 1024
_VALUE_TYPE_ERROR = (
    "KV put() accepts only strings, ArrayBuffers, ArrayBufferViews, and ReadableStreams as values."
)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS kv_entries (
    key TEXT PRIMARY KEY NOT NULL,
    value BLOB NOT NULL,
    expiration INTEGER,
    metadata TEXT
) WITHOUT ROWID
"""


@dataclass(frozen=True)
class KVLimits:
    """Workers KV limits (developers.cloudflare.com/kv/platform/limits, miniflare's KV constants)."""

    max_key_bytes: int = 512
    max_value_bytes: int = 25 * 1024 * 1024
    max_metadata_bytes: int = 1024
    min_expiration_ttl: int = 60
    min_cache_ttl: int = 30
    max_list_limit: int = 1000
    max_bulk_keys: int = 100
    max_bulk_bytes: int = 25 * 1024 * 1024


def _js_number(value: float) -> str:
    """Format a number as JavaScript prints it, so messages match (``60``, not ``60.0``)."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _as_number(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or math.isnan(value):
        raise TypeError(f"KV option {name} must be a number, got {value!r}")
    return value


def _reject_constant(name: str) -> Any:
    # JSON.parse rejects NaN/Infinity; Python's json would accept them.
    raise ValueError(f"Unexpected token {name} in JSON")


def _parse_json(text: str) -> Any:
    return to_attrdict(json.loads(text, parse_constant=_reject_constant))


def _metadata(metadata_json: str | None) -> Any:
    return None if metadata_json is None else _parse_json(metadata_json)


async def _chunks(data: bytes) -> AsyncIterator[bytes]:
    """The local stand-in for the ReadableStream KV returns for ``type="stream"``."""
    for start in range(0, len(data), _STREAM_CHUNK):
        yield data[start : start + _STREAM_CHUNK]


class LocalKVNamespace:
    """A KV namespace persisted in one SQLite file; see the module docstring for the contract."""

    def __init__(
        self,
        path: Path | str,
        *,
        limits: KVLimits = KVLimits(),  # frozen, so one shared default is safe
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.path = Path(path)
        self.limits = limits
        self._clock = clock
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with closing(self._connect()) as db:
            db.execute(_SCHEMA)

    def __repr__(self) -> str:
        return f"LocalKVNamespace({str(self.path)!r})"

    # ------------------------------------------------------------------------------------ reads

    async def get(
        self, key: str | Sequence[str], type: str | Mapping[str, Any] | None = None, **options: Any
    ) -> Any:
        """One value (or None), or with a list of keys a ``dict`` of key -> value (or None)."""
        value_type, cache_ttl = self._get_options("get", type, options)
        if not isinstance(key, str):
            return self._bulk_get(key, value_type, cache_ttl, with_metadata=False)
        entry = self._read("GET", key, cache_ttl)
        return None if entry is None else self._decode(key, entry[0], value_type)

    async def getWithMetadata(
        self, key: str | Sequence[str], type: str | Mapping[str, Any] | None = None, **options: Any
    ) -> Any:
        """``{value, metadata, cacheStatus}``; with a list of keys, key -> ``{value, metadata}``."""
        value_type, cache_ttl = self._get_options("getWithMetadata", type, options)
        if not isinstance(key, str):
            return self._bulk_get(key, value_type, cache_ttl, with_metadata=True)
        entry = self._read("GET", key, cache_ttl)
        if entry is None:
            return AttrDict(value=None, metadata=None, cacheStatus=None)
        value = self._decode(key, entry[0], value_type)
        return AttrDict(value=value, metadata=_metadata(entry[1]), cacheStatus=None)

    def _get_options(
        self, method: str, type_or_options: str | Mapping[str, Any] | None, kwargs: Mapping[str, Any]
    ) -> tuple[str, float | None]:
        where = f"KVNamespace.{method}"
        allowed = ("type", "cacheTtl")
        if isinstance(type_or_options, Mapping):
            opts = merge_options(type_or_options, kwargs, allowed=allowed, where=where)
        else:
            if type_or_options is not None and not isinstance(type_or_options, str):
                raise TypeError(f"{where}: type must be a string or an options object")
            if type_or_options is not None and "type" in kwargs:
                raise TypeError(f"{where}: type given both positionally and as a keyword")
            opts = merge_options(None, kwargs, allowed=allowed, where=where)
            if type_or_options is not None:
                opts["type"] = type_or_options
        value_type = opts.get("type", "text")
        if value_type not in _TYPES:
            raise TypeError(
                'Unknown response type. Possible types are "text", "arrayBuffer", "json", and "stream".'
            )
        cache_ttl = opts.get("cacheTtl")
        return value_type, None if cache_ttl is None else _as_number("cacheTtl", cache_ttl)

    def _read(self, op: str, key: str, cache_ttl: float | None) -> tuple[bytes, str | None] | None:
        """The live entry's value and metadata JSON, or None; validates like the service does."""
        if op == "GET":
            self._check_key_name(op, key)
        else:
            self._check_key_service(op, key)
        # cacheTtl is checked after the key, in the service: the order the edge reports errors in.
        if cache_ttl is not None and cache_ttl < self.limits.min_cache_ttl:
            raise KVError(
                f"KV {op} failed: 400 Invalid cache_ttl of {_js_number(cache_ttl)}. "
                f"Cache TTL must be at least {self.limits.min_cache_ttl}."
            )
        with closing(self._connect()) as db:
            row = db.execute(
                "SELECT value, metadata FROM kv_entries WHERE key = ? "
                "AND (expiration IS NULL OR expiration > ?)",
                (key, self._clock()),
            ).fetchone()
        return None if row is None else (bytes(row[0]), row[1])

    @staticmethod
    def _decode(key: str, raw: bytes, value_type: str) -> Any:
        if value_type == "text":
            # TextDecoder semantics: invalid UTF-8 becomes U+FFFD rather than an error.
            return raw.decode("utf-8", errors="replace")
        if value_type == "json":
            try:
                return _parse_json(raw.decode("utf-8", errors="replace"))
            except ValueError as exc:
                raise ValueError(f"KV GET: the value of {key!r} is not valid JSON: {exc}") from exc
        if value_type == "arrayBuffer":
            return memoryview(raw)
        return _chunks(raw)

    def _bulk_get(
        self, keys: Sequence[str], value_type: str, cache_ttl: float | None, *, with_metadata: bool
    ) -> dict[str, Any]:
        if not isinstance(keys, Sequence) or not all(isinstance(k, str) for k in keys):
            raise TypeError("KV get(): key must be a string or an array of strings")
        op = "GET_BULK"
        if value_type not in _BULK_TYPES:
            raise KVError(f'KV {op} failed: 400 "{value_type}" is not a valid type. Use "json" or "text"')
        if len(keys) > self.limits.max_bulk_keys:
            raise KVError(
                f"KV {op} failed: 400 You can request a maximum of {self.limits.max_bulk_keys} keys"
            )
        if not keys:
            raise KVError(f"KV {op} failed: 400 You must request a minimum of 1 key")
        result: dict[str, Any] = {}
        total = 0
        for key in keys:
            entry = self._read(op, key, cache_ttl)
            if entry is None:
                result[key] = None
                continue
            total += len(entry[0])
            try:
                value = self._decode(key, entry[0], value_type)
            except ValueError as exc:
                raise KVError(
                    f"KV {op} failed: 400 At least one of the requested keys corresponds to a "
                    f"non-{value_type} value"
                ) from exc
            result[key] = AttrDict(value=value, metadata=_metadata(entry[1])) if with_metadata else value
        if total > self.limits.max_bulk_bytes:
            raise KVError(
                f"KV {op} failed: 413 Total size of request exceeds the limit of "
                f"{_js_number(self.limits.max_bulk_bytes / 1024 / 1024)}MB"
            )
        return result

    # ----------------------------------------------------------------------------------- writes

    async def put(
        self,
        key: str,
        value: str | bytes | bytearray | memoryview | AsyncIterable[bytes],
        options: Mapping[str, Any] | None = None,
        *,
        expiration: float | None = None,
        expirationTtl: float | None = None,
        metadata: Any = None,
    ) -> None:
        """Store ``value`` (str, any bytes-like object, or an async iterable of bytes standing in for
        a ReadableStream), optionally expiring and with JSON ``metadata``."""
        kwargs = dict(expiration=expiration, expirationTtl=expirationTtl, metadata=metadata)
        opts = merge_options(
            options, kwargs, allowed=("expiration", "expirationTtl", "metadata"), where="KVNamespace.put"
        )
        self._check_key_name("PUT", key)
        data = await self._value_bytes(value)
        metadata_json = None
        if "metadata" in opts:
            try:
                metadata_json = json.dumps(
                    opts["metadata"], separators=(",", ":"), ensure_ascii=False, allow_nan=False
                )
            except (TypeError, ValueError) as exc:
                raise TypeError(f"KV put(): metadata must be JSON-serialisable: {exc}") from exc
        now = math.floor(self._clock())
        expires_at = self._expiration(now, opts)
        if metadata_json is not None:
            size = len(metadata_json.encode("utf-8"))
            if size > self.limits.max_metadata_bytes:
                raise KVError(
                    f"KV PUT failed: 413 Metadata length of {size} exceeds limit of "
                    f"{self.limits.max_metadata_bytes}."
                )
        if len(data) > self.limits.max_value_bytes:
            raise KVError(
                f"KV PUT failed: 413 Value length of {len(data)} exceeds limit of "
                f"{self.limits.max_value_bytes}."
            )
        with closing(self._connect()) as db, db:
            db.execute("BEGIN IMMEDIATE")
            db.execute(
                "DELETE FROM kv_entries WHERE expiration IS NOT NULL AND expiration <= ?", (self._clock(),)
            )
            db.execute(
                "INSERT OR REPLACE INTO kv_entries (key, value, expiration, metadata) VALUES (?, ?, ?, ?)",
                (key, data, expires_at, metadata_json),
            )

    async def _value_bytes(self, value: Any) -> bytes:
        return await put_body_bytes(value, _VALUE_TYPE_ERROR)

    def _expiration(self, now: int, opts: Mapping[str, Any]) -> int | None:
        # expirationTtl wins when both are given, as the KV service does.
        if "expirationTtl" in opts:
            raw = _as_number("expirationTtl", opts["expirationTtl"])
            ttl = math.trunc(raw)
            if ttl <= 0:
                raise KVError(
                    f"KV PUT failed: 400 Invalid expiration_ttl of {_js_number(raw)}. "
                    "Please specify integer greater than 0."
                )
            if ttl < self.limits.min_expiration_ttl:
                raise KVError(
                    f"KV PUT failed: 400 Invalid expiration_ttl of {_js_number(raw)}. "
                    f"Expiration TTL must be at least {self.limits.min_expiration_ttl}."
                )
            return now + ttl
        if "expiration" in opts:
            raw = _as_number("expiration", opts["expiration"])
            at = math.trunc(raw)
            if at <= now:
                raise KVError(
                    f"KV PUT failed: 400 Invalid expiration of {_js_number(raw)}. Please specify integer "
                    "greater than the current number of seconds since the UNIX epoch."
                )
            if at < now + self.limits.min_expiration_ttl:
                raise KVError(
                    f"KV PUT failed: 400 Invalid expiration of {_js_number(raw)}. Expiration times must be "
                    f"at least {self.limits.min_expiration_ttl} seconds in the future."
                )
            return at
        return None

    async def delete(self, key: str) -> None:
        """Remove ``key``; deleting a missing key is not an error."""
        self._check_key_name("DELETE", key)
        with closing(self._connect()) as db:
            db.execute("DELETE FROM kv_entries WHERE key = ?", (key,))

    # ------------------------------------------------------------------------------------- list

    async def list(
        self,
        options: Mapping[str, Any] | None = None,
        *,
        prefix: str | None = None,
        limit: int | None = None,
        cursor: str | None = None,
    ) -> AttrDict:
        """``{keys: [{name, expiration?, metadata?}], list_complete, cursor?, cacheStatus}``.

        Keys come in UTF-8 byte order. The cursor names the last key returned, so paging neither
        repeats nor skips keys that existed throughout, even when others are added or removed
        between pages.
        """
        opts = merge_options(
            options,
            dict(prefix=prefix, limit=limit, cursor=cursor),
            allowed=("prefix", "limit", "cursor"),
            where="KVNamespace.list",
        )
        page = self._list_limit(opts.get("limit"))
        list_prefix = opts.get("prefix", "")
        if not isinstance(list_prefix, str):
            raise TypeError("KVNamespace.list: prefix must be a string")
        self._check_key_length("GET", list_prefix)
        after = self._decode_cursor(opts.get("cursor"))
        with closing(self._connect()) as db:
            rows = db.execute(
                "SELECT key, expiration, metadata FROM kv_entries "
                "WHERE (expiration IS NULL OR expiration > :now) AND (:after IS NULL OR key > :after) "
                "AND substr(key, 1, length(:prefix)) = :prefix ORDER BY key LIMIT :limit",
                {"now": self._clock(), "after": after, "prefix": list_prefix, "limit": page + 1},
            ).fetchall()
        keys: list[dict[str, Any]] = []
        for name, expires_at, metadata_json in rows[:page]:
            entry: dict[str, Any] = {"name": name}
            if expires_at is not None:
                entry["expiration"] = expires_at
            if metadata_json is not None:
                entry["metadata"] = json.loads(metadata_json)
            keys.append(entry)
        result = AttrDict(keys=keys, list_complete=len(rows) <= page, cacheStatus=None)
        if not result.list_complete:
            result.cursor = make_cursor(keys[-1]["name"])
        return result

    def _list_limit(self, raw: Any) -> int:
        if raw is None:
            return self.limits.max_list_limit
        number = _as_number("limit", raw)
        if number < 1:
            raise KVError(
                f"KV GET failed: 400 Invalid key_count_limit of {_js_number(number)}. "
                "Please specify an integer greater than 0."
            )
        if number > self.limits.max_list_limit:
            raise KVError(
                f"KV GET failed: 400 Invalid key_count_limit of {_js_number(number)}. "
                f"Please specify an integer less than {self.limits.max_list_limit}."
            )
        return math.trunc(number)

    @staticmethod
    def _decode_cursor(cursor: Any) -> str | None:
        if cursor is None or cursor == "":
            return None
        if not isinstance(cursor, str):
            raise TypeError("KVNamespace.list: cursor must be a string")
        try:
            return cursor_key(cursor)
        except ValueError as exc:
            raise KVError("KV GET failed: 400 Invalid cursor") from exc

    # ------------------------------------------------------------------------------- validation

    def _check_key_name(self, op: str, key: Any) -> None:
        """What workerd checks before sending: the key's type, emptiness, dots and length."""
        if not isinstance(key, str):
            raise TypeError(f"KV {op.lower()}(): key must be a string, got {type(key).__name__}")
        if key == "":
            raise TypeError("Key name cannot be empty.")
        if key in (".", ".."):
            raise TypeError(f'"{key}" is not allowed as a key name.')
        self._check_key_length(op, key)

    def _check_key_service(self, op: str, key: str) -> None:
        """What the KV service checks for keys that reach it unvalidated (bulk get)."""
        if key == "":
            raise KVError(f"KV {op} failed: 400 Key names must not be empty")
        if key in (".", ".."):
            raise KVError(f'KV {op} failed: 400 Illegal key name "{key}". Please use a different name.')
        self._check_key_length(op, key)

    def _check_key_length(self, op: str, key: str) -> None:
        try:
            size = len(key.encode("utf-8"))
        except UnicodeEncodeError as exc:
            raise TypeError(f"KV {op.lower()}(): key is not valid Unicode (lone surrogate)") from exc
        if size > self.limits.max_key_bytes:
            raise KVError(
                f"KV {op} failed: 414 UTF-8 encoded length of {size} exceeds key length limit of "
                f"{self.limits.max_key_bytes}."
            )

    def _connect(self) -> sqlite3.Connection:
        # Autocommit unless a method opens a transaction itself, so every write is visible to other
        # instances at once. synchronous=OFF skips the fsync per commit (10 ms each, which makes a
        # thousand small writes take seconds): data survives a process exit, not a machine crash,
        # which is enough for local development state.
        db = sqlite3.connect(self.path, isolation_level=None)
        db.execute("PRAGMA synchronous=OFF")
        return db


if TYPE_CHECKING:  # mypy proves the emulator satisfies the port worker code is typed against
    from edgerag.ports import KVNamespace

    def _implements_port(kv: LocalKVNamespace) -> KVNamespace:
        return kv
