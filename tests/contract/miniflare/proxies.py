"""Python faces of Miniflare's bindings, with the interface the contract suites drive.

Each method forwards one JS call (or a short chain: ``prepare(sql).bind(...).all()``) to the probe
worker and converts the result as the Workers SDK would. Nothing is answered here that workerd did
not answer, with two exceptions that are the proxy's own and are named where they happen: an R2
body is read whole in workerd (its chunks kept) when ``get`` returns, so "read once" and
``bodyUsed`` are enforced by :class:`R2ObjectBody` here; and a queue batch's ``ack``/``retry``
calls are recorded here and replayed in order on the real batch inside the worker's ``queue()``.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from edgerag_local.d1.errors import D1Error
from edgerag_local.kv.errors import KVError
from edgerag_local.queues.errors import QueueError
from edgerag_local.r2.errors import R2Error

from tests.contract.miniflare.client import (
    Bridge,
    ByteStream,
    decode,
    decode_bytes,
    js_args,
    js_args_sync,
    js_error,
)

# ------------------------------------------------------------------------------------------- D1

_D1_ERRORS = js_error(D1Error)


class D1Statement:
    def __init__(self, db: D1Database, query: str, params: list[Any] | None = None) -> None:
        self._db = db
        self.query = query
        self.params = params

    def _chain(self) -> list[tuple[str, list[Any]]]:
        chain: list[tuple[str, list[Any]]] = [("prepare", [self.query])]
        if self.params is not None:
            chain.append(("bind", self.params))
        return chain

    def bind(self, *values: Any) -> D1Statement:
        statement = D1Statement(self._db, self.query, js_args_sync(values, {}))
        # bind() checks value types synchronously in workerd; do the same call there now.
        self._db.bridge.call(self._db.binding, statement._chain(), _D1_ERRORS, discard=True)
        return statement

    async def _run(self, method: str, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> Any:
        chain = [*self._chain(), (method, await js_args(args, kwargs))]
        return decode(self._db.bridge.call(self._db.binding, chain, _D1_ERRORS))

    async def all(self, *args: Any, **kwargs: Any) -> Any:
        return await self._run("all", args, kwargs)

    async def run(self, *args: Any, **kwargs: Any) -> Any:
        return await self._run("run", args, kwargs)

    async def first(self, *args: Any, **kwargs: Any) -> Any:
        return await self._run("first", args, kwargs)

    async def raw(self, *args: Any, **kwargs: Any) -> Any:
        return await self._run("raw", args, kwargs)


class D1Database:
    def __init__(self, bridge: Bridge, binding: str = "DB") -> None:
        self.bridge = bridge
        self.binding = binding

    def prepare(self, query: str) -> D1Statement:
        return D1Statement(self, query)

    async def batch(self, statements: Iterable[Any]) -> Any:
        tagged: list[Any] = []
        for s in statements:
            if isinstance(s, D1Statement):
                tagged.append({"$d1statement": {"query": s.query, "params": s.params}})
            else:
                tagged.append(await js_args((s,), {}))
        return decode(self.bridge.call(self.binding, [("batch", [tagged])], _D1_ERRORS))

    async def exec(self, query: str) -> Any:
        return decode(self.bridge.call(self.binding, [("exec", [query])], _D1_ERRORS))

    def close(self) -> None:
        """The binding outlives the test; nothing to close."""


# ------------------------------------------------------------------------------------------- KV

_KV_ERRORS = js_error(KVError)


class KVNamespace:
    def __init__(self, bridge: Bridge, binding: str = "KV", prefix: str = "") -> None:
        self.bridge = bridge
        self.binding = binding

    async def _call(self, method: str, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> Any:
        return decode(self.bridge.call(self.binding, [(method, await js_args(args, kwargs))], _KV_ERRORS))

    async def get(self, *args: Any, **kwargs: Any) -> Any:
        return await self._call("get", args, kwargs)

    async def getWithMetadata(self, *args: Any, **kwargs: Any) -> Any:
        return await self._call("getWithMetadata", args, kwargs)

    async def put(self, *args: Any, **kwargs: Any) -> None:
        await self._call("put", args, kwargs)

    async def delete(self, *args: Any, **kwargs: Any) -> None:
        await self._call("delete", args, kwargs)

    async def list(self, *args: Any, **kwargs: Any) -> Any:
        return await self._call("list", args, kwargs)

    async def put_many(self, puts: Iterable[tuple[tuple[Any, ...], Mapping[str, Any]]]) -> None:
        """Set-up: every ``put(*args, **kwargs)`` in one request (see ``many`` in the probe worker)."""
        calls = [("put", await js_args(args, kwargs)) for args, kwargs in puts]
        self.bridge.many(self.binding, calls, _KV_ERRORS)


# ------------------------------------------------------------------------------------------- R2

_R2_ERRORS = js_error(R2Error)


class R2Checksums:
    def __init__(self, raw: Mapping[str, Any]) -> None:
        self._hex: dict[str, str] = {}
        for name in ("md5", "sha1", "sha256", "sha384", "sha512"):
            value = raw.get(name)
            digest = None if value is None or "$undefined" in value else memoryview(decode_bytes(value))
            setattr(self, name, digest)
            if digest is not None:
                self._hex[name] = digest.hex()

    def toJSON(self) -> dict[str, str]:
        return dict(self._hex)


class R2Object:
    """An ``R2Object`` as workerd built it; ``writeHttpMetadata`` replays what it wrote there."""

    def __init__(self, raw: Mapping[str, Any]) -> None:
        def field_(name: str) -> Any:
            return decode(raw[name])

        self.key: str = field_("key")
        self.version: str = field_("version")
        self.size: int = field_("size")
        self.etag: str = field_("etag")
        self.httpEtag: str = field_("httpEtag")
        self.uploaded: datetime = field_("uploaded")
        self.httpMetadata: Any = field_("httpMetadata")
        self.customMetadata: Any = field_("customMetadata")
        self.range: Any = field_("range")
        self.storageClass: str = field_("storageClass")
        self.ssecKeyMd5: Any = field_("ssecKeyMd5")
        self.checksums = R2Checksums(raw["checksums"])
        self._written = raw["writtenHeaders"]

    def writeHttpMetadata(self, headers: Any) -> None:
        if isinstance(self._written, dict):
            error = self._written["error"]
            raise _R2_ERRORS(error["name"], error["message"])
        for name, value in self._written:
            if hasattr(headers, "set"):
                headers.set(name, value)
            else:
                headers[name] = value


class R2ObjectBody(R2Object):
    """An ``R2ObjectBody``: the body was read in workerd (chunk by chunk) and is handed out once."""

    def __init__(self, raw: Mapping[str, Any]) -> None:
        super().__init__(raw)
        self._chunks = [decode_bytes(c) for c in raw["chunks"]]
        self._used = bool(raw.get("bodyUsedBefore"))
        self.body = _OnceStream(self)

    @property
    def bodyUsed(self) -> bool:
        return self._used

    def _take(self) -> bytes:
        if self._used:
            raise TypeError(
                "Body has already been used. It can only be used once. "
                "Use tee() first if you need to read it twice."
            )
        self._used = True
        return b"".join(self._chunks)

    async def text(self) -> str:
        return self._take().decode("utf-8", errors="replace")

    async def json(self) -> Any:
        return decode(json.loads(self._take().decode("utf-8"), parse_constant=_no_constants))

    async def arrayBuffer(self) -> memoryview:
        return memoryview(self._take())

    async def bytes(self) -> bytes:
        return self._take()


def _no_constants(name: str) -> Any:
    raise ValueError(f"Unexpected token '{name[0]}', JSON.parse does not accept {name}")


class _OnceStream:
    """An R2 body stream: its length is known, so workerd accepts it as a put() value."""

    def __init__(self, owner: R2ObjectBody) -> None:
        self._owner = owner
        self.known_length = sum(len(c) for c in owner._chunks)

    def __aiter__(self) -> Any:
        if self._owner._used:
            raise TypeError("This ReadableStream is disturbed (has already been read from).")
        self._owner._used = True
        return ByteStream(self._owner._chunks).__aiter__()


def _r2_special(tag: str, value: Any) -> Any:
    if tag == "$r2object":
        return R2ObjectBody(value) if "chunks" in value else R2Object(value)
    raise ValueError(f"unknown tag {tag}")


class R2Bucket:
    def __init__(self, bridge: Bridge, binding: str = "FILES") -> None:
        self.bridge = bridge
        self.binding = binding

    async def _call(self, method: str, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> Any:
        chain = [(method, await js_args(args, kwargs))]
        return decode(self.bridge.call(self.binding, chain, _R2_ERRORS), _r2_special)

    async def put(self, *args: Any, **kwargs: Any) -> Any:
        return await self._call("put", args, kwargs)

    async def put_many(self, puts: Iterable[tuple[tuple[Any, ...], Mapping[str, Any]]]) -> None:
        """Set-up: every ``put(*args, **kwargs)`` in one request (see ``many`` in the probe worker)."""
        calls = [("put", await js_args(args, kwargs)) for args, kwargs in puts]
        self.bridge.many(self.binding, calls, _R2_ERRORS)

    async def get(self, *args: Any, **kwargs: Any) -> Any:
        return await self._call("get", args, kwargs)

    async def head(self, *args: Any, **kwargs: Any) -> Any:
        return await self._call("head", args, kwargs)

    async def delete(self, *args: Any, **kwargs: Any) -> None:
        await self._call("delete", args, kwargs)

    async def list(self, *args: Any, **kwargs: Any) -> Any:
        return await self._call("list", args, kwargs)


# ------------------------------------------------------------------------------------ rate limit


class RateLimit:
    def __init__(self, bridge: Bridge, binding: str) -> None:
        self.bridge = bridge
        self.binding = binding

    async def limit(self, *args: Any, **kwargs: Any) -> Any:
        chain = [("limit", await js_args(args, kwargs))]
        return decode(self.bridge.call(self.binding, chain, js_error(RuntimeError)))


# ---------------------------------------------------------------------------------------- queues

_QUEUE_ERRORS = js_error(QueueError)


class QueueProducer:
    def __init__(self, bridge: Bridge, queue: str) -> None:
        self.bridge = bridge
        self.binding = f"Q_{queue}"

    async def _call(self, method: str, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> Any:
        return decode(self.bridge.call(self.binding, [(method, await js_args(args, kwargs))], _QUEUE_ERRORS))

    async def send(self, *args: Any, **kwargs: Any) -> None:
        await self._call("send", args, kwargs)
        self.bridge.post("/queues/sent", {"queue": self.binding[2:], "count": 1})

    async def sendBatch(self, messages: Any, *args: Any, **kwargs: Any) -> None:
        listed = messages if isinstance(messages, (Mapping, str)) else list(messages)
        await self._call("sendBatch", (listed, *args), kwargs)
        self.bridge.post("/queues/sent", {"queue": self.binding[2:], "count": len(listed)})

    async def metrics(self) -> Any:
        return await self._call("metrics", (), {})


def _queue_special(tag: str, value: Any) -> Any:
    raise ValueError(f"unknown tag {tag}")


def _queue_value(value: Any) -> Any:
    """A message body as the SDK gives it: a JS Date becomes a naive UTC datetime."""
    decoded = decode(value)
    return _naive(decoded)


def _naive(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.astimezone(UTC).replace(tzinfo=None)
    if isinstance(value, dict):
        for k, v in value.items():
            dict.__setitem__(value, k, _naive(v))
        return value
    if isinstance(value, list):
        return [_naive(v) for v in value]
    return value


@dataclass
class _Calls:
    calls: list[dict[str, Any]] = field(default_factory=list)
    finished: bool = False

    def add(
        self, message_id: str | None, method: str, args: tuple[Any, ...], kwargs: Mapping[str, Any]
    ) -> None:
        if self.finished:
            raise RuntimeError(f"{method}() after the queue handler finished cannot be replayed in workerd")
        options: Any = None
        if args or kwargs:
            merged: dict[str, Any] = {}
            for a in args:
                merged.update(a)
            merged.update(kwargs)
            options = merged
        self.calls.append({"id": message_id, "method": method, "options": options})


class Message:
    def __init__(self, raw: Mapping[str, Any], calls: _Calls) -> None:
        self.id: str = raw["id"]
        self.timestamp = datetime.fromtimestamp(raw["timestamp"] / 1000, tz=UTC).replace(tzinfo=None)
        self.body = _queue_value(raw["body"])
        self.attempts: int = raw["attempts"]
        self._calls = calls

    def ack(self) -> None:
        self._calls.add(self.id, "ack", (), {})

    def retry(self, *args: Any, **kwargs: Any) -> None:
        self._calls.add(self.id, "retry", args, kwargs)


class MessageBatch:
    def __init__(self, queue: str, messages: list[Message], calls: _Calls) -> None:
        self.queue = queue
        self.messages = messages
        self._calls = calls

    def ackAll(self) -> None:
        self._calls.add(None, "ackAll", (), {})

    def retryAll(self, *args: Any, **kwargs: Any) -> None:
        self._calls.add(None, "retryAll", args, kwargs)


@dataclass
class DrainResult:
    """What a Miniflare drain can count: batches and messages delivered to the handler."""

    batches: int = 0
    delivered: int = 0


Handler = Callable[[Any], Awaitable[None]]


class QueueConsumer:
    """Runs ``handler`` on every batch Miniflare delivers to ``queue`` (named ``logical`` for the test)."""

    def __init__(self, bridge: Bridge, queue: str, logical: str, handler: Handler) -> None:
        self.bridge = bridge
        self.queue = queue
        self.logical = logical
        self.handler = handler

    async def drain(self, patience: float = 20.0) -> DrainResult:
        """Handle batches until every message sent to the queue is acked, dropped or dead-lettered."""
        result = DrainResult()
        while True:
            answer = self.bridge.post(
                "/queues/next", {"queue": self.queue, "timeout_ms": int(patience * 1000)}
            )
            if answer.get("idle"):
                return result
            if answer.get("timeout"):
                raise TimeoutError(
                    f"queue {self.queue}: {answer['outstanding']} message(s) neither delivered nor settled "
                    f"within {patience}s; Miniflare's log:\n" + "\n".join(answer["log"])
                )
            calls = _Calls()
            messages = [Message(m, calls) for m in answer["messages"]]
            batch = MessageBatch(self.logical, messages, calls)
            raised: str | None = None
            try:
                await self.handler(batch)
            except Exception as exc:  # the worker rethrows it, as the handler would have thrown
                raised = f"{type(exc).__name__}: {exc}"
            calls.finished = True
            self.bridge.post(
                "/queues/settle", {"batch": answer["batch"], "calls": calls.calls, "raise": raised}
            )
            result.batches += 1
            result.delivered += len(messages)
