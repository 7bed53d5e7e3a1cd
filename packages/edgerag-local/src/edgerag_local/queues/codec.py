"""How the local Queues emulator serialises message bodies, measures them and brings them back.

A producer call at the edge crosses two conversions: the Python Workers SDK turns the Python value
into a JS value (``None`` -> ``null``, ``bytes`` -> ``Uint8Array``, ``datetime`` -> ``Date``; tuples
and ``bytearray`` are refused as not RPC-serialisable), then workerd serialises it by content type:

- ``"json"`` (the default since compatibility date 2024-03-18): ``JSON.stringify``;
- ``"text"``: the string's UTF-8 bytes (anything but a string is a ``TypeError``);
- ``"bytes"``: the raw bytes of an ``ArrayBufferView`` (anything else is a ``TypeError``);
- ``"v8"``: the structured-clone wire format (dates, binary, nested values).

The size the limits apply to is the serialised body (workerd reports it per message to the queue
service; 1 KB = 1000 bytes). ``"json"``/``"text"``/``"bytes"`` sizes here are exact; ``"v8"`` is
approximated by the length of this module's tagged JSON form, since V8's format is not reproducible
in CPython (miniflare approximates it too).

Where JS would silently change a value (``JSON.stringify`` turns ``NaN`` into ``null``, a ``datetime``
into a string, ``bytes`` into ``{"0": ..}``; big ints become ``BigInt``, which it refuses), the
emulator raises ``TypeError`` instead, so the lossy call is caught here rather than at the edge.

Consumers get what the SDK hands Python: dicts as :class:`~edgerag.jsdict.AttrDict`, binary as
``memoryview``, ``Date`` as a naive ``datetime`` in UTC (the edge's local time), integral numbers as
``int`` (JS has one number type). To support a new value type for ``"v8"``: add a tag in
:func:`_tag` and its inverse in :func:`_untag`.
"""

from __future__ import annotations

import base64
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from edgerag.jsdict import to_attrdict

from edgerag_local.core.errors import RpcSerializationError

__all__ = ["CONTENT_TYPES", "EncodedBody", "decode_body", "encode_body", "normalise_content_type"]

CONTENT_TYPES: Final = ("text", "bytes", "json", "v8")
DEFAULT_CONTENT_TYPE: Final = "json"

# JS numbers are doubles: integers beyond this are converted to BigInt by Pyodide.
_MAX_SAFE_INT: Final = 2**53 - 1
_TAG: Final = "$t"


@dataclass(frozen=True)
class EncodedBody:
    """A body as stored: its content type, its text form, and its serialised size in bytes."""

    content_type: str
    data: str
    size: int


def normalise_content_type(content_type: Any) -> str:
    """workerd lower-cases the content type and refuses unknown ones with a ``TypeError``."""
    if not isinstance(content_type, str) or content_type.lower() not in CONTENT_TYPES:
        raise TypeError(f"Unsupported queue message content type: {content_type}")
    return content_type.lower()


def encode_body(body: Any, content_type: str | None) -> EncodedBody:
    """Serialise ``body`` as ``content_type`` (default ``"json"``), or raise ``TypeError``."""
    kind = DEFAULT_CONTENT_TYPE if content_type is None else normalise_content_type(content_type)
    _check_rpc_serialisable(body)
    if kind == "text":
        if not isinstance(body, str):
            raise TypeError(
                f'Content Type "text" requires a value of type string, but received: {_js_typeof(body)}'
            )
        return EncodedBody(kind, body, _utf8_size(body))
    if kind == "bytes":
        if not isinstance(body, bytes | memoryview):
            raise TypeError(
                'Content Type "bytes" requires a value of type ArrayBufferView, but received: '
                f"{_js_typeof(body)}"
            )
        raw = bytes(body)
        return EncodedBody(kind, base64.b64encode(raw).decode("ascii"), len(raw))
    if kind == "json":
        text = json.dumps(_jsonable(body, "body"), ensure_ascii=False, separators=(",", ":"))
        return EncodedBody(kind, text, _utf8_size(text))
    text = json.dumps(_tag(body, "body"), ensure_ascii=False, separators=(",", ":"))
    return EncodedBody(kind, text, _utf8_size(text))


def decode_body(content_type: str, data: str) -> Any:
    """The value a consumer sees for a stored body (SDK conversions applied)."""
    if content_type == "text":
        return data
    if content_type == "bytes":
        return memoryview(base64.b64decode(data))
    if content_type == "json":
        return to_attrdict(json.loads(data))
    return to_attrdict(_untag(json.loads(data)))


def _utf8_size(text: str) -> int:
    try:
        return len(text.encode("utf-8"))
    except UnicodeEncodeError as exc:
        # Only reachable from Python: a lone surrogate has no UTF-8 form, so no queue could carry it.
        raise TypeError(
            f"body contains a lone surrogate at index {exc.start}, which is not valid UTF-8"
        ) from exc


def _check_rpc_serialisable(value: Any) -> None:
    # The SDK refuses these before the binding sees them (workers.rpc._raise_on_disabled_type).
    if isinstance(value, tuple | bytearray):
        raise RpcSerializationError(f"{type(value)} cannot be sent over RPC.")
    if isinstance(value, Mapping):
        for item in value.values():
            _check_rpc_serialisable(item)
    elif isinstance(value, list):
        for item in value:
            _check_rpc_serialisable(item)


def _js_typeof(value: Any) -> str:
    if value is None or isinstance(value, Mapping | list | bytes | memoryview | datetime):
        return "object"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "number" if abs(value) <= _MAX_SAFE_INT else "bigint"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    return "object"


def _number(value: int | float, where: str, *, json_only: bool) -> int | float:
    if isinstance(value, int):
        if json_only and abs(value) > _MAX_SAFE_INT:
            raise TypeError(f"Do not know how to serialize a BigInt (at {where}); send it as a string")
        return value
    if not math.isfinite(value):
        if json_only:
            raise TypeError(
                f"{where} is {value!r}, which JSON.stringify would turn into null; "
                'send it as a string or use contentType="v8"'
            )
        return value
    # JS prints 1.0 as "1" and Pyodide hands integral numbers back as int.
    if value.is_integer() and abs(value) <= _MAX_SAFE_INT:
        return int(value)
    return value


def _key(key: Any, where: str) -> str:
    if not isinstance(key, str):
        raise TypeError(f"{where} has a {type(key).__name__} key {key!r}; JS object keys are strings")
    return key


def _jsonable(value: Any, where: str) -> Any:
    """``value`` with JS number semantics applied, or ``TypeError`` if JSON cannot carry it intact."""
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, int | float):
        return _number(value, where, json_only=True)
    if isinstance(value, list):
        return [_jsonable(item, f"{where}[{i}]") for i, item in enumerate(value)]
    if isinstance(value, Mapping):
        return {_key(k, where): _jsonable(v, f"{where}[{k!r}]") for k, v in value.items()}
    if isinstance(value, bytes | memoryview):
        raise TypeError(
            f'{where} is binary, which JSON cannot carry; use contentType="bytes" '
            '(or "v8" for binary inside a structure)'
        )
    if isinstance(value, datetime):
        raise TypeError(
            f'{where} is a datetime, which JSON.stringify would turn into a string; use contentType="v8"'
        )
    raise TypeError(f"{where} of type {type(value).__name__} is not JSON-serialisable")


def _tag(value: Any, where: str) -> Any:
    """The structured-clone subset the emulator supports, as JSON with ``{"$t": kind}`` tags."""
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, int | float):
        number = _number(value, where, json_only=False)
        if isinstance(number, float) and not math.isfinite(number):
            return {_TAG: "float", "v": repr(number)}
        return number
    if isinstance(value, list):
        return [_tag(item, f"{where}[{i}]") for i, item in enumerate(value)]
    if isinstance(value, Mapping):
        tagged = {_key(k, where): _tag(v, f"{where}[{k!r}]") for k, v in value.items()}
        # A user dict that happens to carry the tag key must not be mistaken for a tagged value.
        return {_TAG: "object", "v": tagged} if _TAG in tagged else tagged
    if isinstance(value, bytes | memoryview):
        return {_TAG: "bytes", "v": base64.b64encode(bytes(value)).decode("ascii")}
    if isinstance(value, datetime):
        # The SDK sends ``timestamp() * 1000`` to a JS Date: naive means the edge's local time, UTC.
        aware = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
        return {_TAG: "date", "v": math.floor(aware.timestamp() * 1000)}
    raise TypeError(
        f"{where} of type {type(value).__name__} is not structured-cloneable by the local emulator "
        "(supported: None, bool, int, float, str, bytes, memoryview, list, dict, datetime)"
    )


def _untag(value: Any) -> Any:
    if isinstance(value, list):
        return [_untag(item) for item in value]
    if not isinstance(value, dict):
        return value
    kind = value.get(_TAG)
    if kind is None:
        return {k: _untag(v) for k, v in value.items()}
    if kind == "object":
        return {k: _untag(v) for k, v in value["v"].items()}
    if kind == "float":
        return float(value["v"])
    if kind == "bytes":
        return memoryview(base64.b64decode(value["v"]))
    if kind == "date":
        return datetime.fromtimestamp(value["v"] / 1000, tz=UTC).replace(tzinfo=None)
    raise ValueError(f"corrupt queue message: unknown tag {kind!r}")
