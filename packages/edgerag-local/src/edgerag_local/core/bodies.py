"""Turn a value handed to ``put()`` (KV, R2) into bytes, as the bindings accept it.

Strings are UTF-8; bytes-like objects (bytes, bytearray, memoryview, arrays) are copied; an async
iterable of such chunks stands for a ReadableStream. Anything else (numbers, booleans, None, dicts)
is a ``TypeError`` worded by the caller, as each binding words its own.
"""

from __future__ import annotations

from collections.abc import AsyncIterable
from typing import Any

__all__ = ["put_body_bytes"]


async def put_body_bytes(value: Any, type_error: str) -> bytes:
    if isinstance(value, str):
        return value.encode("utf-8")
    if isinstance(value, AsyncIterable):
        return b"".join([_buffer(chunk, type_error) async for chunk in value])
    return _buffer(value, type_error)


def _buffer(value: Any, type_error: str) -> bytes:
    if isinstance(value, str | bool | int | float) or value is None:
        raise TypeError(type_error)
    try:
        with memoryview(value) as view:
            return view.tobytes()
    except TypeError:
        raise TypeError(type_error) from None
