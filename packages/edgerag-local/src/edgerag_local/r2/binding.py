"""Local emulator of an R2 bucket binding (``env.UPLOADS``).

:class:`LocalR2Bucket` implements :class:`edgerag.ports.R2Bucket`: ``put`` / ``get`` / ``head`` /
``delete`` / ``list`` with R2's options, result objects (:mod:`edgerag_local.r2.object`), limits and
error wording (:mod:`edgerag_local.r2.validate`). R2 is strongly consistent, and so is this.

Options are passed as keywords or as a trailing dict (``get(k, range={...})`` is
``get(k, {"range": {...}})``); unknown names raise ``TypeError`` where the edge would ignore them.
Supported: ``put`` - ``httpMetadata``, ``customMetadata``, one of ``md5``/``sha1``/``sha256``/
``sha384``/``sha512`` (hex string or bytes; a mismatch fails the upload), ``onlyIf`` (R2Conditional
as a dict; a failed precondition stores nothing and returns ``None``), ``storageClass``; ``get`` -
``range`` (``{offset, length}``, ``{offset}``, ``{length}``, ``{suffix}``); ``list`` - ``prefix``,
``limit``, ``cursor``, ``delimiter``, ``startAfter``, ``include``. Not emulated: ``onlyIf`` on ``get``,
Headers objects in place of dicts, SSE-C keys, multipart uploads.

Values: ``str`` (UTF-8), any bytes-like object, ``None`` (an empty object), or another object's
``body`` (a stream of known length). Any other async iterable stands for a ReadableStream of unknown
length, which workerd refuses ("Provided readable stream must have a known length ..."), and so does
the emulator; other values are the TypeError workerd raises for them. Both were found by running this
suite against Miniflare (``tests/contract``, backend ``miniflare``).

Storage: a folder per bucket (see :mod:`edgerag_local.r2.store`): ``objects.sqlite`` for metadata
and one file per blob; a reader never sees a half-written object. A ``get`` reads the requested
bytes at once, so a body stays readable after the object is overwritten or deleted, as a stream
opened at the edge does.

To extend: validate new options in :mod:`edgerag_local.r2.validate`, store new fields through
:mod:`edgerag_local.r2.store`, and pin the behaviour in ``tests/contract/test_r2.py``.
"""

from __future__ import annotations

import hashlib
import math
import time
from collections.abc import AsyncIterable, Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, overload

from edgerag.jsdict import AttrDict

from edgerag_local.core.bodies import put_body_bytes
from edgerag_local.core.cursors import cursor_key, make_cursor
from edgerag_local.core.options import merge_options
from edgerag_local.r2.object import R2Body, R2Checksums, R2Object, R2ObjectBody
from edgerag_local.r2.store import R2Store, StoredObject
from edgerag_local.r2.validate import (
    ENTITY_TOO_LARGE,
    HASH_ALGORITHMS,
    INVALID_ARGUMENT,
    INVALID_MAX_KEYS,
    R2Limits,
    bad_digest,
    check_conditional,
    check_custom_metadata,
    check_hashes,
    check_http_metadata,
    check_key,
    condition_holds,
    parse_range,
    r2_error,
    resolve_range,
)

__all__ = ["LocalR2Bucket", "R2Checksums", "R2Limits", "R2Object", "R2ObjectBody"]

_PUT_OPTIONS = ("httpMetadata", "customMetadata", "onlyIf", "storageClass", *HASH_ALGORITHMS)
_STORAGE_CLASSES = ("Standard", "InfrequentAccess")
_INCLUDE = ("httpMetadata", "customMetadata")
_VALUE_TYPE_ERROR = (
    "Failed to execute 'put' on 'R2Bucket': parameter 2 is not of type "
    "'ReadableStream or ArrayBuffer or ArrayBufferView or string or Blob'."
)
_UNKNOWN_LENGTH = (
    "Provided readable stream must have a known length (request/response body or readable half of "
    "FixedLengthStream)"
)


class LocalR2Bucket:
    """An R2 bucket persisted under one folder; see the module docstring for the contract."""

    def __init__(
        self,
        root: Path | str,
        *,
        limits: R2Limits = R2Limits(),  # noqa: B008 - frozen, so one shared default is safe
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.root = Path(root)
        self.limits = limits
        self._clock = clock
        self._store = R2Store(self.root)

    def __repr__(self) -> str:
        return f"LocalR2Bucket({str(self.root)!r})"

    # -------------------------------------------------------------------------------------- put

    @overload
    async def put(
        self,
        key: str,
        value: str | bytes | bytearray | memoryview | AsyncIterable[bytes] | None,
        options: None = None,
        *,
        httpMetadata: Mapping[str, Any] | None = None,
        customMetadata: Mapping[str, str] | None = None,
        md5: str | bytes | None = None,
        sha1: str | bytes | None = None,
        sha256: str | bytes | None = None,
        sha384: str | bytes | None = None,
        sha512: str | bytes | None = None,
        onlyIf: None = None,
        storageClass: str | None = None,
    ) -> R2Object: ...

    @overload
    async def put(
        self,
        key: str,
        value: str | bytes | bytearray | memoryview | AsyncIterable[bytes] | None,
        options: Mapping[str, Any] | None = None,
        *,
        httpMetadata: Mapping[str, Any] | None = None,
        customMetadata: Mapping[str, str] | None = None,
        md5: str | bytes | None = None,
        sha1: str | bytes | None = None,
        sha256: str | bytes | None = None,
        sha384: str | bytes | None = None,
        sha512: str | bytes | None = None,
        onlyIf: Mapping[str, Any] | None = None,
        storageClass: str | None = None,
    ) -> R2Object | None: ...

    async def put(
        self,
        key: str,
        value: str | bytes | bytearray | memoryview | AsyncIterable[bytes] | None,
        options: Mapping[str, Any] | None = None,
        *,
        httpMetadata: Mapping[str, Any] | None = None,
        customMetadata: Mapping[str, str] | None = None,
        md5: str | bytes | None = None,
        sha1: str | bytes | None = None,
        sha256: str | bytes | None = None,
        sha384: str | bytes | None = None,
        sha512: str | bytes | None = None,
        onlyIf: Mapping[str, Any] | None = None,
        storageClass: str | None = None,
    ) -> R2Object | None:
        """Store ``value`` under ``key``; the new object's metadata, or None if ``onlyIf`` failed."""
        given = dict(
            httpMetadata=httpMetadata,
            customMetadata=customMetadata,
            md5=md5,
            sha1=sha1,
            sha256=sha256,
            sha384=sha384,
            sha512=sha512,
            onlyIf=onlyIf,
            storageClass=storageClass,
        )
        opts = merge_options(options, given, allowed=_PUT_OPTIONS, where="R2Bucket.put")
        # What the runtime checks before sending, then what the service checks, in their order.
        if not isinstance(key, str):
            raise TypeError(f"R2 put(): key must be a string, got {type(key).__name__}")
        data = await _value_bytes(value)
        expected = check_hashes(opts)
        condition = check_conditional(opts["onlyIf"]) if "onlyIf" in opts else None
        http = check_http_metadata(opts.get("httpMetadata", {}))
        storage_class = opts.get("storageClass", "Standard")
        check_key("put", key, self.limits)
        if len(data) > self.limits.max_value_bytes:
            raise r2_error(
                "put", "Your proposed upload exceeds the maximum allowed object size.", ENTITY_TOO_LARGE
            )
        custom = check_custom_metadata(opts.get("customMetadata", {}), self.limits)
        if storage_class not in _STORAGE_CLASSES:
            raise r2_error("put", f"Unsupported storage class: {storage_class}", INVALID_ARGUMENT)
        digests = {"md5": hashlib.md5(data, usedforsecurity=False).digest()}
        if expected is not None:
            name, digest = expected
            digests[name] = hashlib.new(name, data).digest()
            if digests[name] != digest:
                raise bad_digest(name, digest, digests[name])
        row = StoredObject.new(
            key=key,
            size=len(data),
            uploaded=math.floor(self._clock() * 1000),
            http_metadata=http,
            custom_metadata=custom,
            digests=digests,
            storage_class=storage_class,
        )

        def allowed(current: StoredObject | None) -> bool:
            if condition is None:
                return True
            return condition_holds(condition, None if current is None else (current.etag, current.uploaded))

        return R2Object(**row.fields()) if self._store.write(row, data, allowed) else None

    # -------------------------------------------------------------------------------- get, head

    async def get(
        self, key: str, options: Mapping[str, Any] | None = None, *, range: Mapping[str, int] | None = None
    ) -> R2ObjectBody | None:
        """The object with its body (or only the ``range`` asked for), or None when absent."""
        opts = merge_options(options, dict(range=range), allowed=("range",), where="R2Bucket.get")
        parsed = parse_range(opts["range"]) if "range" in opts else None
        check_key("get", key, self.limits)
        row = self._store.get(key)
        if row is None:
            return None
        offset, length = (0, row.size) if parsed is None else resolve_range(parsed, row.size)
        data = self._store.read(row, offset, length)
        if data is None:
            return None  # deleted by another instance between reading the row and its blob
        return R2ObjectBody(body=data, range={"offset": offset, "length": length}, **row.fields())

    async def head(self, key: str) -> R2Object | None:
        """The object's metadata without its body, or None when absent."""
        check_key("head", key, self.limits)
        row = self._store.get(key)
        if row is None:
            return None
        return R2Object(range={"offset": 0, "length": row.size}, **row.fields())

    # ----------------------------------------------------------------------------------- delete

    async def delete(self, keys: str | Sequence[str]) -> None:
        """Delete one key or up to ``max_delete_keys`` keys; missing keys are not an error."""
        if isinstance(keys, str):
            batch = [keys]
        elif isinstance(keys, Sequence) and all(isinstance(k, str) for k in keys):
            batch = list(keys)
        else:
            raise TypeError("R2 delete(): keys must be a string or an array of strings")
        if len(batch) > self.limits.max_delete_keys:
            raise r2_error(
                "delete",
                f"Up to {self.limits.max_delete_keys} keys may be deleted per call, not {len(batch)}.",
                INVALID_ARGUMENT,
            )
        for key in batch:
            check_key("delete", key, self.limits)
        self._store.delete(batch)

    # ------------------------------------------------------------------------------------- list

    async def list(
        self,
        options: Mapping[str, Any] | None = None,
        *,
        prefix: str | None = None,
        limit: int | None = None,
        cursor: str | None = None,
        delimiter: str | None = None,
        startAfter: str | None = None,
        include: Sequence[str] | None = None,
    ) -> AttrDict:
        """``{objects, truncated, cursor?, delimitedPrefixes}`` in UTF-8 byte order of keys.

        ``httpMetadata``/``customMetadata`` are only filled in when named in ``include``, and then a
        page holds at most ``limits.max_list_with_metadata`` objects: page on ``truncated``, never on
        the number of objects returned. A delimited prefix takes one slot of the page.
        """
        given = dict(
            prefix=prefix,
            limit=limit,
            cursor=cursor,
            delimiter=delimiter,
            startAfter=startAfter,
            include=include,
        )
        opts = merge_options(
            options,
            given,
            allowed=("prefix", "limit", "cursor", "delimiter", "startAfter", "include"),
            where="R2Bucket.list",
        )
        for name in ("prefix", "cursor", "delimiter", "startAfter"):
            if name in opts and not isinstance(opts[name], str):
                raise TypeError(f"R2 list(): {name} must be a string")
        wanted = self._include(opts.get("include"))
        page = self._list_limit(opts.get("limit"))
        if wanted:
            page = min(page, self.limits.max_list_with_metadata)
        after = opts.get("startAfter", "")
        if opts.get("cursor"):
            after = max(after, self._decode_cursor(opts["cursor"]))
        # One slot more than the page holds tells whether the listing is truncated.
        slots = self._store.scan(opts.get("prefix", ""), after, opts.get("delimiter") or None, page + 1)
        shown = slots[:page]
        objects = [
            R2Object(**slot.row.fields(http="httpMetadata" in wanted, custom="customMetadata" in wanted))
            for slot in shown
            if slot.row is not None
        ]
        result = AttrDict(
            objects=objects,
            truncated=len(slots) > page,
            delimitedPrefixes=[slot.prefix for slot in shown if slot.prefix is not None],
        )
        if result.truncated:
            result.cursor = make_cursor(shown[-1].last_key)
        return result

    def _include(self, raw: Any) -> set[str]:
        if raw is None:
            return set()
        if isinstance(raw, str) or not isinstance(raw, Sequence):
            raise TypeError("R2 list(): include must be an array of strings")
        for name in raw:
            if name not in _INCLUDE:
                raise ValueError(f"Unsupported include value {name}")
        return set(raw)

    def _list_limit(self, raw: Any) -> int:
        if raw is None:
            return self.limits.max_list_limit
        if isinstance(raw, bool) or not isinstance(raw, int):
            raise TypeError("R2 list(): limit must be an integer")
        if not 1 <= raw <= self.limits.max_list_limit:
            raise r2_error(
                "list",
                f"MaxKeys params must be positive integer <= {self.limits.max_list_limit}.",
                INVALID_MAX_KEYS,
            )
        return raw

    @staticmethod
    def _decode_cursor(cursor: str) -> str:
        try:
            return cursor_key(cursor)
        except ValueError as exc:
            raise r2_error("list", "The continuation token provided is incorrect", INVALID_ARGUMENT) from exc


async def _value_bytes(value: Any) -> bytes:
    if value is None:
        return b""  # R2 (unlike KV) accepts null: an empty object
    if isinstance(value, R2Body):
        return value.take()  # another object's body: a stream whose length is known
    if isinstance(value, AsyncIterable):
        raise TypeError(_UNKNOWN_LENGTH)
    return await put_body_bytes(value, _VALUE_TYPE_ERROR)


if TYPE_CHECKING:  # mypy proves the emulator satisfies the port worker code is typed against
    from edgerag.ports import R2Bucket

    def _implements_port(bucket: LocalR2Bucket) -> R2Bucket:
        return bucket
