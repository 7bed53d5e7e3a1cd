"""The scripted provider server: hand-written HTTP/1.1 on loopback, one scripted reply per request.

Why hand-written rather than an ASGI app: tests need exact control over the bytes and the timing —
write one chunk, flush it, wait, write the next; stop in the middle of an event; close the socket
without the terminating chunk; never answer at all — which a framework smooths away.

Protocol handled: request line, headers, a ``Content-Length`` or chunked request body, keep-alive
(several requests on one connection, as httpx pools them). Replies are :class:`Respond` (a whole body
with ``Content-Length``), :class:`Stream` (``Transfer-Encoding: chunked``, each piece written and
drained before the next; :class:`Pause` and ``asyncio.Event`` items between pieces), or
:class:`Stall` (read the request, never answer). A request that finds the script empty gets a 500
with an OpenAI-shaped error naming the problem, so a test that under-scripts fails loudly.

To add a failure mode: a new reply dataclass and a branch in :meth:`FakeProvider._serve`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from http import HTTPStatus
from types import TracebackType
from typing import Any, Literal

__all__ = ["FakeProvider", "Pause", "RecordedRequest", "Respond", "Stall", "Stream"]

_MAX_HEAD = 64 * 1024


@dataclass(frozen=True)
class RecordedRequest:
    """One request as the server received it; header names are lower case."""

    method: str
    path: str
    headers: Mapping[str, str]
    body: bytes

    @property
    def json(self) -> Any:
        return json.loads(self.body)


@dataclass(frozen=True)
class Respond:
    """A complete reply: ``body`` sent with a ``Content-Length``."""

    status: int = 200
    body: bytes = b""
    headers: Mapping[str, str] = field(default_factory=dict)
    content_type: str = "application/json"


@dataclass(frozen=True)
class Pause:
    """Wait this long before writing the next piece of a :class:`Stream`."""

    seconds: float


@dataclass(frozen=True)
class Stream:
    """A chunked reply written piece by piece (each ``bytes`` item is one chunk, flushed).

    ``end``: ``"complete"`` writes the terminating chunk (the body ends cleanly, whatever the pieces
    held); ``"drop"`` closes the connection without it (httpx reports the body as cut off);
    ``"stall"`` keeps the connection open and silent until the server shuts down.
    ``asyncio.Event`` items make the stream wait until the test sets them.
    """

    pieces: Sequence[bytes | Pause | asyncio.Event]
    status: int = 200
    headers: Mapping[str, str] = field(default_factory=dict)
    content_type: str = "text/event-stream"
    end: Literal["complete", "drop", "stall"] = "complete"


@dataclass(frozen=True)
class Stall:
    """Read the request and never answer (until the server shuts down)."""


Reply = Respond | Stream | Stall

_UNSCRIPTED = Respond(
    status=500,
    body=json.dumps({"error": {"message": "fake provider: no scripted reply left", "type": "fake"}}).encode(),
)


class FakeProvider:
    """``async with FakeProvider() as fake: fake.reply(...); ... fake.requests``."""

    def __init__(self) -> None:
        self.requests: list[RecordedRequest] = []
        self.chunks_sent = 0  # stream pieces written so far (incrementality tests read it)
        self.hangups = 0  # stalled replies whose client closed the connection (timeouts release it)
        self._script: deque[Reply] = deque()
        self._server: asyncio.Server | None = None
        self._closed = asyncio.Event()
        self._changed = asyncio.Event()
        self._tasks: set[asyncio.Task[Any]] = set()

    # -- scripting ------------------------------------------------------------------------------

    def reply(self, *replies: Reply) -> FakeProvider:
        """Queue replies; each request takes the next one, whatever its path."""
        self._script.extend(replies)
        return self

    async def wait_for_requests(self, count: int = 1) -> None:
        """Return once ``count`` requests have been received (wrap it in the test's own timeout)."""
        while len(self.requests) < count:
            self._changed.clear()
            await self._changed.wait()

    async def wait_for_hangups(self, count: int = 1) -> None:
        """Return once clients have hung up on ``count`` stalled replies (wrap it in a timeout)."""
        while self.hangups < count:
            self._changed.clear()
            await self._changed.wait()

    @property
    def pending(self) -> int:
        """Replies not taken yet."""
        return len(self._script)

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("the fake provider is not running (use it with `async with`)")
        port: int = self._server.sockets[0].getsockname()[1]
        return port

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:<port>``: Anthropic's base URL form (the adapter adds ``/v1/messages``)."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def openai_base_url(self) -> str:
        """``http://127.0.0.1:<port>/v1``: OpenAI's form (the adapter adds ``/chat/completions``)."""
        return self.base_url + "/v1"

    # -- lifecycle ------------------------------------------------------------------------------

    async def __aenter__(self) -> FakeProvider:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0, limit=_MAX_HEAD)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._closed.set()
        if self._server is not None:
            self._server.close()
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()

    # -- serving --------------------------------------------------------------------------------

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            while not self._closed.is_set():
                request = await _read_request(reader)
                if request is None:
                    break
                self.requests.append(request)
                self._changed.set()
                reply = self._script.popleft() if self._script else _UNSCRIPTED
                keep_alive = await self._serve(reply, reader, writer)
                if not keep_alive or request.headers.get("connection", "").lower() == "close":
                    break
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError):
            pass  # the client went away or sent something this test server does not speak
        except asyncio.CancelledError:
            # shutdown (__aexit__ cancels open connections): end normally, because CPython 3.11's
            # start_server callback calls task.exception() and logs an error for a cancelled task
            pass
        finally:
            self._tasks.discard(task)
            writer.close()
            with contextlib.suppress(ConnectionError, asyncio.CancelledError):
                await writer.wait_closed()

    async def _serve(self, reply: Reply, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        """Write ``reply``; True if the connection may carry another request."""
        if isinstance(reply, Stall):
            await self._stall(reader)
            return False
        if isinstance(reply, Respond):
            head = _head(
                reply.status, reply.content_type, reply.headers, {"content-length": str(len(reply.body))}
            )
            writer.write(head + reply.body)
            await writer.drain()
            return True
        writer.write(_head(reply.status, reply.content_type, reply.headers, {"transfer-encoding": "chunked"}))
        await writer.drain()
        for piece in reply.pieces:
            if isinstance(piece, Pause):
                await asyncio.sleep(piece.seconds)
            elif isinstance(piece, asyncio.Event):
                await piece.wait()
            elif piece:  # an empty chunk would end the body
                writer.write(b"%x\r\n%s\r\n" % (len(piece), piece))
                await writer.drain()
                self.chunks_sent += 1
        if reply.end == "stall":
            await self._stall(reader)
            return False
        if reply.end == "drop":
            return False
        writer.write(b"0\r\n\r\n")
        await writer.drain()
        return True

    async def _stall(self, reader: asyncio.StreamReader) -> None:
        """Stay silent until the server shuts down or the client hangs up (counted in ``hangups``)."""
        shutdown = asyncio.ensure_future(self._closed.wait())
        hangup = asyncio.ensure_future(reader.read(1))  # b"" at EOF; a client sends nothing else here
        try:
            await asyncio.wait({shutdown, hangup}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (shutdown, hangup):
                task.cancel()
        if hangup.done() and not hangup.cancelled():
            hangup.exception()  # EOF or a reset: either way the client went away
            self.hangups += 1
            self._changed.set()


def _head(status: int, content_type: str, extra: Mapping[str, str], framing: Mapping[str, str]) -> bytes:
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        phrase = "Overloaded" if status == 529 else "Unknown"
    lines = [f"HTTP/1.1 {status} {phrase}", f"content-type: {content_type}", "cache-control: no-cache"]
    lines += [f"{name}: {value}" for name, value in {**framing, **extra}.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


async def _read_request(reader: asyncio.StreamReader) -> RecordedRequest | None:
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError:
        return None  # the client closed an idle keep-alive connection
    request_line, *header_lines = head.decode("latin-1").split("\r\n")
    method, path, _version = request_line.split(" ", 2)
    headers: dict[str, str] = {}
    for line in header_lines:
        if line:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
    if "chunked" in headers.get("transfer-encoding", "").lower():
        body = await _read_chunked(reader)
    else:
        body = await reader.readexactly(int(headers.get("content-length", "0")))
    return RecordedRequest(method=method, path=path, headers=headers, body=body)


async def _read_chunked(reader: asyncio.StreamReader) -> bytes:
    parts: list[bytes] = []
    while True:
        size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
        if size == 0:
            while (await reader.readuntil(b"\r\n")) != b"\r\n":
                pass  # trailers
            return b"".join(parts)
        parts.append(await reader.readexactly(size))
        await reader.readexactly(2)
