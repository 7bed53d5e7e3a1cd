"""edgerag.streams.iter_bytes: closing early cancels the producer, for Python iterators and JS streams.

The JS shape is what Pyodide hands Python for a ``ReadableStream`` (seen in the Pyodide run,
tests/pyodide): ``__aiter__()`` returns a proxy of the stream's async iterator, which has ``next`` and
``return`` but no ``aclose``; while it holds the stream's reader, ``stream.cancel()`` rejects with
"ReadableStream is locked". The fake below behaves the same way.
"""

from __future__ import annotations

from typing import Any

from edgerag.streams import iter_bytes


class _Chunk:
    def __init__(self, data: bytes) -> None:
        self._data = data

    def to_bytes(self) -> bytes:  # a Uint8Array proxy
        return self._data


class _JsStreamIterator:
    def __init__(self, stream: _JsStream) -> None:
        self._stream = stream

    def __aiter__(self) -> _JsStreamIterator:
        return self

    async def __anext__(self) -> _Chunk:
        if not self._stream.pending:
            self._stream.locked = False
            raise StopAsyncIteration
        return _Chunk(self._stream.pending.pop(0))


async def _release_and_cancel(iterator: _JsStreamIterator) -> None:
    iterator._stream.locked = False
    iterator._stream.cancelled = True


class _JsStream:
    """A ReadableStream proxy: iterating locks it; ``cancel()`` on a locked stream fails."""

    def __init__(self, chunks: list[bytes]) -> None:
        self.pending = list(chunks)
        self.locked = False
        self.cancelled = False

    def __aiter__(self) -> _JsStreamIterator:
        self.locked = True
        iterator = _JsStreamIterator(self)
        # The JS iterator's return(): releases the reader and cancels the stream (a keyword in Python,
        # so it is only reachable with getattr, as on the real proxy).
        setattr(iterator, "return", lambda: _release_and_cancel(iterator))
        return iterator

    async def cancel(self) -> None:
        if self.locked:
            raise TypeError("Invalid state: ReadableStream is locked")
        self.cancelled = True


class _PyStream:
    def __init__(self, chunks: list[bytes]) -> None:
        self.pending = list(chunks)
        self.closed = False

    def __aiter__(self) -> _PyStream:
        return self

    async def __anext__(self) -> bytes:
        if not self.pending:
            raise StopAsyncIteration
        return self.pending.pop(0)

    async def aclose(self) -> None:
        self.closed = True


async def _first_then_close(body: Any) -> bytes:
    chunks = iter_bytes(body)
    first = await chunks.__anext__()
    await chunks.aclose()
    return first


async def test_closing_early_cancels_a_js_stream_through_its_iterator() -> None:
    stream = _JsStream([b"data: a\n\n", b"data: b\n\n"])
    assert await _first_then_close(stream) == b"data: a\n\n"
    assert stream.cancelled and not stream.locked


async def test_closing_early_closes_a_python_async_iterator() -> None:
    stream = _PyStream([b"a", b"b"])
    assert await _first_then_close(stream) == b"a"
    assert stream.closed


async def test_reading_to_the_end_cancels_nothing() -> None:
    stream = _JsStream([b"a", b"b"])
    assert [chunk async for chunk in iter_bytes(stream)] == [b"a", b"b"]
    assert not stream.cancelled
