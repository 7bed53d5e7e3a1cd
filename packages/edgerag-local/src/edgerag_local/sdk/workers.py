"""The local stand-in for the Python Workers SDK modules ``workers`` and ``asgi``.

The real SDK imports ``js`` and ``pyodide`` and cannot load under CPython, yet the local host must run
each worker through its real ``entry.py``. :func:`install` registers this module's classes as the
``workers`` and ``asgi`` modules in ``sys.modules`` of the host process only; nothing is installed into
site-packages, so ``import workers`` outside the host still fails (or finds the real SDK).

Covered surface (what the entry modules use): ``WorkerEntrypoint`` (``self.env``, ``self.ctx``),
``Request`` (``url``, ``method``, ``headers``, ``text()``, ``json()``, ``bytes()``), ``Response``
(``Response(body, status=, headers=)``, ``Response.json(...)``, streaming bodies) and
``asgi.fetch(app, request, env, ctx)``, which puts ``env`` into the ASGI scope like the Workers bridge,
and ``fetch(url, method=, headers=, body=)`` for outbound HTTP (over httpx, one client per event loop;
``OSError`` when no response arrives, like the SDK's pyfetch; the body streams as it arrives).

When the reader of a streamed ``asgi.fetch`` response stops reading (closes the body), the app's task
is cancelled, as the edge cancels a worker whose response stream was cancelled: a service binding
whose caller goes away stops generating.

Request methods follow the Fetch standard, as workerd's ``Request`` does: any RFC 9110 token is a
method (``QUERY``, ``PURGE``, ``FOO``), so the worker decides how to answer it; only the six standard
methods are upper-cased when given in another case (``get`` -> ``GET``, but ``patch`` stays ``patch``);
a name that is not a token raises ``TypeError``.
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import ipaddress
import json as _json
import os
import re
import sys
import types
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, MutableMapping
from email.message import Message
from http.client import HTTPMessage
from typing import Any
from urllib.parse import unquote, urlsplit

from edgerag_local.sdk.http_client import HttpxClient

__all__ = [
    "OUTBOUND_ENV",
    "ExecutionContext",
    "ReadableStream",
    "Request",
    "Response",
    "WorkerEntrypoint",
    "asgi_fetch",
    "check_outbound",
    "fetch",
    "install",
    "normalize_method",
]

HeadersInit = Mapping[str, str] | list[tuple[str, str]] | Message | None

# RFC 9110 section 5.6.2: token = 1*tchar.
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
# The Fetch standard's "normalize a method": only these are matched case-insensitively.
_NORMALIZED_METHODS = frozenset({"DELETE", "GET", "HEAD", "OPTIONS", "POST", "PUT"})


def normalize_method(method: str) -> str:
    """``method`` as a Fetch ``Request`` holds it, or ``TypeError`` if it is not an HTTP token."""
    if not isinstance(method, str) or _TOKEN.fullmatch(method) is None:
        raise TypeError(f"{method!r} is not a valid HTTP method.")
    upper = method.upper()
    return upper if upper in _NORMALIZED_METHODS else method


class ReadableStream:
    """Stands for a JS ``ReadableStream``: the only streaming body a ``Response`` accepts.

    At the edge a Python (async) generator is not a valid body; streams come from the ASGI bridge (a
    ``TransformStream``) or from bindings such as ``AI.run(..., stream=True)``. Local code producing a
    stream must do it the same way, so ``Response`` rejects bare generators.
    """

    def __init__(self, source: AsyncIterator[bytes]) -> None:
        self._source = source

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self._source


Body = str | bytes | memoryview | ReadableStream | None


def _headers(init: HeadersInit) -> HTTPMessage:
    """Headers as the SDK exposes them: an ``http.client.HTTPMessage`` (case-insensitive, multi-valued)."""
    message = HTTPMessage()
    items = init.items() if isinstance(init, Mapping | Message) else (init or [])
    for key, value in items:
        message[key] = value
    return message


class ExecutionContext:
    """``ctx``: ``waitUntil`` keeps work alive after the response; the host can await it.

    ``on_wait_until`` (a local-host hook, not SDK surface) is called with this context at every
    ``waitUntil``, so the host tracks exactly the contexts that have work to wait for.
    """

    def __init__(self, on_wait_until: Callable[[ExecutionContext], None] | None = None) -> None:
        self._pending: set[asyncio.Future[Any]] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self.on_wait_until = on_wait_until

    def waitUntil(self, awaitable: Awaitable[Any]) -> None:
        future = asyncio.ensure_future(awaitable)
        self._loop = future.get_loop()
        self._pending.add(future)
        future.add_done_callback(self._pending.discard)
        if self.on_wait_until is not None:
            self.on_wait_until(self)

    @property
    def loop(self) -> asyncio.AbstractEventLoop | None:
        """The event loop running this context's ``waitUntil`` work (None before the first call)."""
        return self._loop

    @property
    def idle(self) -> bool:
        """No ``waitUntil`` work is still running."""
        return not self._pending

    def passThroughOnException(self) -> None:
        """Accepted for compatibility; the local host has no origin to fall through to."""

    async def drain(self) -> None:
        """Wait for every ``waitUntil`` task (tests and the host call this after a response)."""
        while self._pending:
            await asyncio.gather(*list(self._pending), return_exceptions=True)


class WorkerEntrypoint:
    """Base class of a worker's handler class, as in ``workers.WorkerEntrypoint``."""

    def __init__(self, ctx: Any, env: Any) -> None:
        self.ctx = ctx
        self.env = env


async def _collect(body: Body) -> bytes:
    if body is None:
        return b""
    if isinstance(body, str):
        return body.encode()
    if isinstance(body, bytes | memoryview):
        return bytes(body)
    return b"".join([bytes(chunk) async for chunk in body])


class _BodyMixin:
    _body: Body
    _used: bool = False

    async def bytes(self) -> builtins.bytes:
        if self._used:
            raise OSError("Body already used")
        self._used = True
        return await _collect(self._body)

    async def text(self) -> str:
        return (await self.bytes()).decode("utf-8", errors="replace")

    async def json(self) -> Any:
        return _json.loads(await self.bytes())

    @property
    def bodyUsed(self) -> bool:
        return self._used

    @property
    def body(self) -> AsyncIterator[builtins.bytes]:
        async def stream() -> AsyncIterator[builtins.bytes]:
            if self._used:
                raise OSError("Body already used")
            self._used = True
            source = self._body
            if source is None:
                return
            if isinstance(source, str | bytes | memoryview):
                yield source.encode() if isinstance(source, str) else builtins.bytes(source)
                return
            iterator = source.__aiter__()
            try:
                async for chunk in iterator:
                    yield builtins.bytes(chunk)
            finally:
                close = getattr(iterator, "aclose", None)
                if close is not None:  # a reader that stops early cancels the producer
                    await close()

        return stream()


class Request(_BodyMixin):
    def __init__(
        self,
        url: str,
        *,
        method: str = "GET",
        headers: HeadersInit = None,
        body: Body = None,
    ) -> None:
        self.url = url
        self.method = normalize_method(method)
        self.headers = _headers(headers)
        _check_body(body)
        self._body = body
        self._used = False


def _check_body(body: object) -> None:
    if body is not None and not isinstance(body, str | bytes | memoryview | ReadableStream):
        raise TypeError(f"Unsupported type in Response: {type(body).__name__}")


class Response(_BodyMixin):
    def __init__(
        self,
        body: Body = None,
        status: int = 200,
        status_text: str = "",
        headers: HeadersInit = None,
    ) -> None:
        status = int(status)
        if not 200 <= status <= 599:
            raise ValueError(f"Response status {status} is outside 200-599")
        _check_body(body)
        self.status = status
        self.status_text = status_text
        self.headers = _headers(headers)
        if isinstance(body, str) and "content-type" not in self.headers:
            self.headers["content-type"] = "text/plain;charset=UTF-8"
        self._body = body
        self._used = False

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    @staticmethod
    def _from_json(data: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> Response:
        merged = {"content-type": "application/json", **dict(headers or {})}
        return Response(_json.dumps(data), status=status, headers=merged)


class _JsonAccessor:
    """``Response.json(data)`` builds a response; ``await response.json()`` reads one (as in the SDK)."""

    def __get__(self, instance: Response | None, owner: type[Response]) -> Callable[..., Any]:
        if instance is None:
            return Response._from_json
        reader: Callable[..., Any] = _BodyMixin.json.__get__(instance, owner)
        return reader


Response.json = _JsonAccessor()  # type: ignore[assignment,method-assign]


ASGIApp = Callable[
    [
        MutableMapping[str, Any],
        Callable[[], Awaitable[dict[str, Any]]],
        Callable[[dict[str, Any]], Awaitable[None]],
    ],
    Awaitable[None],
]


async def asgi_fetch(app: ASGIApp, request: Request, env: Any, ctx: Any = None) -> Response:
    """Run an ASGI app for one request, as the Workers ``asgi.fetch`` bridge does.

    The response body streams: it is returned as soon as the app sends ``http.response.start`` and its
    chunks are forwarded as the app produces them (Server-Sent Events work).
    """
    parts = urlsplit(request.url)
    body = await request.bytes()
    host = parts.hostname or "localhost"
    port = parts.port or (443 if parts.scheme == "https" else 80)
    scope: dict[str, Any] = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.4"},
        "http_version": "1.1",
        "method": request.method,
        "scheme": parts.scheme or "http",
        "path": unquote(parts.path) or "/",
        "raw_path": (parts.path or "/").encode(),
        "query_string": parts.query.encode(),
        "root_path": "",
        "headers": [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in request.headers.items()],
        "server": (host, port),
        "client": ("127.0.0.1", 0),
        "env": env,
        "ctx": ctx,
    }
    outbox: asyncio.Queue[dict[str, Any] | BaseException] = asyncio.Queue()
    finished = asyncio.Event()
    request_sent = False

    async def receive() -> dict[str, Any]:
        nonlocal request_sent
        if not request_sent:
            request_sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        await finished.wait()
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        await outbox.put(message)

    async def run() -> None:
        try:
            await app(scope, receive, send)
        except BaseException as exc:  # delivered to the reader below, then re-raised there
            await outbox.put(exc)
        finally:
            finished.set()
            await outbox.put({"type": "edgerag.app.done"})

    task = asyncio.ensure_future(run())
    start = await outbox.get()
    if isinstance(start, BaseException):
        await task
        raise start
    if start.get("type") != "http.response.start":
        await task
        raise RuntimeError(f"ASGI app sent {start.get('type')!r} before http.response.start")

    async def chunks() -> AsyncIterator[bytes]:
        try:
            while True:
                message = await outbox.get()
                if isinstance(message, BaseException):
                    raise message
                if message["type"] == "edgerag.app.done":
                    break
                if message["type"] == "http.response.body":
                    data = message.get("body", b"")
                    if data:
                        yield bytes(data)
                    if not message.get("more_body", False):
                        break
        finally:
            if not task.done():  # the reader went away mid-stream: stop the app
                finished.set()
                task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in start.get("headers", [])]
    return Response(ReadableStream(chunks()), status=int(start["status"]), headers=headers)


_clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Any] = weakref.WeakKeyDictionary()


OUTBOUND_ENV = "EDGERAG_LOCAL_OUTBOUND"


def check_outbound(url: str) -> None:
    """Refuse ``url`` when outbound HTTP is limited to loopback (``EDGERAG_LOCAL_OUTBOUND=loopback``,
    what the test suite sets so that no test can reach a network); the default ``any`` allows every
    host, as the edge does. A refusal is the ``OSError`` an unreachable host gives."""
    mode = os.environ.get(OUTBOUND_ENV, "any")
    if mode == "any":
        return
    if mode != "loopback":
        raise ValueError(f"{OUTBOUND_ENV} must be 'any' or 'loopback', not {mode!r}")
    host = (urlsplit(url).hostname or "").rstrip(".").lower()
    try:
        loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        limited = f"outbound HTTP is limited to loopback: {OUTBOUND_ENV}=loopback"
        raise OSError(f"no response from {host or url!r} ({limited})")


async def fetch(resource: str | Request, **options: Any) -> Response:
    """Outbound ``fetch`` (``workers.fetch``): returns when the headers arrive; the body streams.
    :func:`check_outbound` decides which hosts it may reach."""
    loop = asyncio.get_running_loop()
    client = _clients.get(loop)
    if client is None:
        client = _clients[loop] = HttpxClient()
    if isinstance(resource, Request):
        url, method, headers = resource.url, resource.method, list(resource.headers.items())
        body: builtins.bytes | None = await resource.bytes()
    else:
        url, method = resource, normalize_method(str(options.get("method", "GET")))
        headers = list(_headers(options.get("headers")).items())
        raw = options.get("body")
        body = raw.encode() if isinstance(raw, str) else (builtins.bytes(raw) if raw is not None else None)
    check_outbound(url)
    response = await client.request(method, url, headers=dict(headers), body=body)

    async def stream() -> AsyncIterator[builtins.bytes]:
        try:
            async for chunk in response.aiter_bytes():
                yield chunk
        finally:
            await response.aclose()

    return Response(ReadableStream(stream()), status=response.status, headers=list(response.headers.items()))


def install() -> None:
    """Register this module as ``workers`` and ``asgi`` in ``sys.modules`` (host process only)."""
    workers_mod = types.ModuleType("workers", "edgerag local stand-in for the Python Workers SDK")
    workers_mod.WorkerEntrypoint = WorkerEntrypoint  # type: ignore[attr-defined]
    workers_mod.Request = Request  # type: ignore[attr-defined]
    workers_mod.Response = Response  # type: ignore[attr-defined]
    workers_mod.ReadableStream = ReadableStream  # type: ignore[attr-defined]
    workers_mod.fetch = fetch  # type: ignore[attr-defined]
    workers_mod.__edgerag_stand_in__ = True  # type: ignore[attr-defined]
    asgi_mod = types.ModuleType("asgi", "edgerag local stand-in for the Workers ASGI bridge")
    asgi_mod.fetch = asgi_fetch  # type: ignore[attr-defined]
    asgi_mod.__edgerag_stand_in__ = True  # type: ignore[attr-defined]
    workers_mod.asgi = asgi_mod  # type: ignore[attr-defined]  # `from workers import asgi` (current form)
    for name, module in (("workers", workers_mod), ("asgi", asgi_mod)):
        existing = sys.modules.get(name)
        if existing is not None and not getattr(existing, "__edgerag_stand_in__", False):
            raise RuntimeError(f"a real {name!r} module is already imported; refusing to shadow it")
        sys.modules[name] = module
