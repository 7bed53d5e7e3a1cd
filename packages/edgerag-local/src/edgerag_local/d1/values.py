"""How values cross the D1 binding: Python -> bound SQL parameter, and SQL result -> Python.

At the edge a value makes three hops: Pyodide turns the Python value into a JS value, the D1
binding (workerd's ``d1-api``) validates it and sends it to the database as JSON, and the results
come back as JSON that Pyodide turns into Python again. Each hop leaves a mark the emulator keeps,
so code that works here works there:

Parameters (:func:`to_sql_param`)
  * ``None`` -> NULL; ``bool`` -> 1 / 0 (the binding casts booleans to INTEGER);
  * ``int`` -> INTEGER, but only within JS's safe-integer range: Pyodide turns larger ints into
    BigInt, which the binding rejects with ``D1_TYPE_ERROR: Type 'bigint' ...``;
  * ``float`` -> REAL; a float with an integral value arrives as INTEGER (JSON has one number type,
    ``2.0`` is sent as ``2``); NaN and +-Infinity become NULL (``JSON.stringify`` writes ``null``);
  * ``str`` -> TEXT; ``bytes``/``bytearray``/``memoryview`` and lists of ints 0..255 -> BLOB;
  * anything else (dict, other lists, datetime, Decimal, ...) -> ``D1_TYPE_ERROR: Type 'object'
    not supported for value '...'``, raised by ``bind`` as the binding does.

Results (:func:`from_sql_value`)
  * INTEGER -> ``int``; beyond +-(2**53 - 1) it comes back as an imprecise ``float`` (JSON number);
  * REAL -> ``float``, except that an integral REAL comes back as ``int`` (Pyodide converts a JS
    number that is a safe integer to ``int``) and +-Infinity comes back as ``None``;
  * TEXT -> ``str``; NULL -> ``None``;
  * BLOB -> ``list[int]`` of byte values: D1 sends BLOBs as JSON arrays of numbers and Pyodide turns
    a JS array into a list. Use ``bytes(value)`` to get bytes back.

To change a conversion, change it here and pin it in ``tests/contract/test_d1.py``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from edgerag_local.d1.errors import D1Error

__all__ = ["MAX_SAFE_INTEGER", "SqlParam", "SqlValue", "from_sql_value", "to_sql_param"]

MAX_SAFE_INTEGER = 2**53 - 1
"""JavaScript's ``Number.MAX_SAFE_INTEGER``."""

_INT64_MIN = -(2**63)
_INT64_MAX = 2**63 - 1

SqlParam = None | int | float | str | bytes
SqlValue = None | int | float | str | list[int]


def to_sql_param(value: Any) -> SqlParam:
    """Convert one ``bind`` argument as the Python SDK plus the D1 binding would, or raise."""
    if value is None:
        return None
    if isinstance(value, bool):
        return 1 if value else 0
    if isinstance(value, int):
        if abs(value) > MAX_SAFE_INTEGER:
            raise _type_error("bigint", str(value))
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            return None
        if value.is_integer() and _INT64_MIN <= value <= _INT64_MAX:
            return int(value)
        return value
    if isinstance(value, str):
        return value
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value)
    if isinstance(value, list | tuple):
        if all(type(b) is int and 0 <= b < 256 for b in value):
            return bytes(value)
        # JS String([1, "a"]) joins the elements with commas.
        raise _type_error("object", ",".join(_js_string(v) for v in value))
    if isinstance(value, Mapping):
        raise _type_error("object", "[object Object]")
    if callable(value):
        raise _type_error("function", repr(value))
    raise _type_error("object", str(value))


def from_sql_value(value: Any) -> SqlValue:
    """Convert one SQLite result value into what Python code at the edge receives."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, int):
        return value if abs(value) <= MAX_SAFE_INTEGER else float(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            return None
        if value.is_integer() and abs(value) <= MAX_SAFE_INTEGER:
            return int(value)
        return value
    if isinstance(value, bytes):
        return list(value)
    raise TypeError(f"unexpected SQLite value of type {type(value).__name__}")


def _type_error(js_type: str, shown: str) -> D1Error:
    return D1Error(f"D1_TYPE_ERROR: Type '{js_type}' not supported for value '{shown}'")


def _js_string(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Mapping):
        return "[object Object]"
    return str(value)
