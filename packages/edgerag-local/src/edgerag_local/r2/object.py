"""The objects the local R2 bucket hands back: ``R2Object``, ``R2ObjectBody`` and ``R2Checksums``.

At the edge these are JavaScript class instances reached through a proxy: fields are read as
attributes (``obj.httpEtag``, ``obj.httpMetadata.contentType``), they are not dicts. So here they are
plain classes with the same attribute names (camelCase, as the SDK exposes them):

- ``key``, ``version`` (random hex per upload), ``size``, ``etag`` (hex MD5 of the content),
  ``httpEtag`` (the etag in double quotes), ``uploaded`` (timezone-aware UTC ``datetime``, millisecond
  precision), ``storageClass``, ``ssecKeyMd5`` (always None: SSE-C is not emulated), ``checksums``;
- ``httpMetadata`` / ``customMetadata``: ``AttrDict``; on objects from ``list()`` they are ``None``
  unless requested with ``include`` (R2 leaves them undefined, which reaches Python as ``None``);
- ``range``: ``AttrDict(offset=, length=)`` on ``get``/``head`` results, ``None`` after ``put`` and in
  lists.

``R2ObjectBody`` adds the body, readable once, as at the edge: ``body`` (an async iterator of
``bytes`` chunks standing in for the ReadableStream), ``bodyUsed``, ``await text()``, ``await json()``,
``await arrayBuffer()`` (``memoryview``, as the SDK returns bytes). ``await bytes()`` is a local
convenience declared by ``edgerag.ports.R2ObjectBody``; workerd's R2ObjectBody has no ``bytes()``
(only ``arrayBuffer``/``text``/``json``/``blob``), so worker code should prefer ``arrayBuffer()``.

To extend: add the attribute to :class:`R2Object` and fill it in ``edgerag_local.r2`` where rows
become objects.
"""

from __future__ import annotations

import email.utils
import json
from collections.abc import AsyncIterator, Mapping, MutableMapping
from datetime import datetime
from typing import Any

from edgerag.jsdict import AttrDict, to_attrdict

__all__ = ["R2Body", "R2Checksums", "R2Object", "R2ObjectBody"]

_CHUNK = 64 * 1024
_BODY_USED = (
    "Body has already been used. It can only be used once. Use tee() first if you need to read it twice."
)

_HEADER_NAMES = {
    "contentType": "content-type",
    "contentLanguage": "content-language",
    "contentDisposition": "content-disposition",
    "contentEncoding": "content-encoding",
    "cacheControl": "cache-control",
}


class R2Checksums:
    """Stored checksums: each algorithm's digest as a ``memoryview`` (or None); ``toJSON()`` gives hex."""

    __slots__ = ("md5", "sha1", "sha256", "sha384", "sha512")

    def __init__(self, digests: Mapping[str, bytes]) -> None:
        for name in self.__slots__:
            digest = digests.get(name)
            setattr(self, name, None if digest is None else memoryview(digest))

    def toJSON(self) -> AttrDict:
        return AttrDict(
            {name: getattr(self, name).hex() for name in self.__slots__ if getattr(self, name) is not None}
        )

    def __repr__(self) -> str:
        return f"R2Checksums({dict(self.toJSON())!r})"


class R2Object:
    """Metadata of one stored object, as ``put``, ``head`` and ``list`` return it."""

    # Declared exactly as (or as Any against) edgerag.ports.R2Object so mypy accepts this as the port.
    key: str
    version: str
    size: int
    etag: str
    httpEtag: str
    uploaded: Any
    httpMetadata: Any
    customMetadata: Any
    range: AttrDict | None
    checksums: R2Checksums
    storageClass: str
    ssecKeyMd5: str | None

    def __init__(
        self,
        *,
        key: str,
        version: str,
        size: int,
        etag: str,
        uploaded: datetime,
        http_metadata: Mapping[str, Any] | None,
        custom_metadata: Mapping[str, str] | None,
        checksums: R2Checksums,
        storage_class: str,
        range: Mapping[str, int] | None = None,
    ) -> None:
        self.key = key
        self.version = version
        self.size = size
        self.etag = etag
        self.httpEtag = f'"{etag}"'
        self.uploaded = uploaded
        self.httpMetadata = None if http_metadata is None else AttrDict(http_metadata)
        self.customMetadata = None if custom_metadata is None else AttrDict(custom_metadata)
        self.checksums = checksums
        self.storageClass = storage_class
        self.ssecKeyMd5 = None
        self.range = None if range is None else AttrDict(range)

    def writeHttpMetadata(self, headers: Any) -> None:
        """Copy ``httpMetadata`` onto ``headers`` (anything with ``set(name, value)``, or a mapping)."""
        if self.httpMetadata is None:
            raise TypeError(
                f"HTTP metadata unknown for key `{self.key}`. Did you forget to add 'httpMetadata' to "
                "`include` when listing?"
            )
        values = {
            header: self.httpMetadata[field]
            for field, header in _HEADER_NAMES.items()
            if field in self.httpMetadata
        }
        expiry = self.httpMetadata.get("cacheExpiry")
        if expiry is not None:
            values["expires"] = email.utils.format_datetime(expiry, usegmt=True)
        setter = getattr(headers, "set", None)
        for name, value in values.items():
            if callable(setter):
                setter(name, value)
            elif isinstance(headers, MutableMapping):
                headers[name] = value
            else:
                raise TypeError("writeHttpMetadata() needs a Headers object or a mutable mapping")

    def __repr__(self) -> str:
        return f"{type(self).__name__}(key={self.key!r}, size={self.size}, etag={self.etag!r})"


class R2Body:
    """The object's bytes as an async iterator of chunks; can be consumed once, like a ReadableStream."""

    def __init__(self, data: bytes) -> None:
        self._data = data
        self.used = False

    def take(self) -> bytes:
        if self.used:
            raise TypeError(_BODY_USED)
        self.used = True
        return self._data

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self._chunks(self.take())

    @staticmethod
    async def _chunks(data: bytes) -> AsyncIterator[bytes]:
        for start in range(0, len(data), _CHUNK):
            yield data[start : start + _CHUNK]


class R2ObjectBody(R2Object):
    """An object with its body, as ``get`` returns it."""

    def __init__(self, *, body: bytes, **fields: Any) -> None:
        super().__init__(**fields)
        self._body = R2Body(body)

    @property
    def body(self) -> R2Body:
        return self._body

    @property
    def bodyUsed(self) -> bool:
        return self._body.used

    async def arrayBuffer(self) -> memoryview:
        return memoryview(self._body.take())

    async def bytes(self) -> bytes:
        """Local convenience (see the module docstring): the body as ``bytes``."""
        return self._body.take()

    async def text(self) -> str:
        # TextDecoder semantics: invalid UTF-8 becomes U+FFFD rather than an error.
        return self._body.take().decode("utf-8", errors="replace")

    async def json(self) -> Any:
        def reject(name: str) -> Any:
            raise ValueError(f"Unexpected token {name} in JSON")  # JSON.parse rejects NaN/Infinity

        return to_attrdict(json.loads(await self.text(), parse_constant=reject))
