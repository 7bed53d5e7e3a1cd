"""Read a streamed body chunk by chunk, whatever runtime produced it.

At the edge a streamed body (a service binding's ``response.body``, the stream ``env.AI.run(...,
stream=True)`` returns) is a JavaScript ``ReadableStream`` proxied into Python: async-iterable, with
``Uint8Array`` proxies as chunks (``chunk.to_bytes()``). Locally it is an async iterator of ``bytes``.
:func:`iter_bytes` accepts both — and plain ``bytes``/``str`` bodies — without importing ``js``, so
code that consumes streams stays in the shared core.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import Any

__all__ = ["chunk_bytes", "iter_bytes"]


def chunk_bytes(chunk: Any) -> bytes:
    """One chunk as bytes: a ``Uint8Array`` proxy, bytes-like, or text (UTF-8)."""
    to_bytes = getattr(chunk, "to_bytes", None)
    if callable(to_bytes):
        return bytes(to_bytes())
    if isinstance(chunk, str):
        return chunk.encode("utf-8")
    return bytes(chunk)


async def iter_bytes(body: Any) -> AsyncGenerator[bytes, None]:
    """Yield the body's bytes as they arrive (a whole ``bytes``/``str`` body as one chunk).

    Closing this iterator before the end cancels the body (``aclose()`` of a Python async iterator,
    ``return()`` of a JS stream's async iterator, which releases its reader and cancels the stream), so
    the producer learns at once that nobody is reading — that is how a caller that goes away stops
    generation upstream. A JS stream cannot be cancelled with its own ``cancel()`` while the iterator
    holds its reader (it rejects: the stream is locked), so that is only the last resort.
    """
    if body is None:
        return
    if isinstance(body, bytes | bytearray | memoryview | str):
        data = chunk_bytes(body)
        if data:
            yield data
        return
    iterator = body.__aiter__()
    finished = False
    try:
        async for chunk in iterator:
            data = chunk_bytes(chunk)
            if data:
                yield data
        finished = True
    finally:
        if not finished:
            await _cancel(iterator, body)


async def _cancel(iterator: Any, body: Any) -> None:
    for target, name in ((iterator, "aclose"), (iterator, "return"), (body, "cancel")):
        stop = getattr(target, name, None)
        if callable(stop):
            result = stop()
            if hasattr(result, "__await__"):
                await result
            return
