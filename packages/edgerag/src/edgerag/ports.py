"""Typed ports for every Cloudflare binding the workers use.

Each Protocol is named after the Cloudflare API it stands for and mirrors the call and result shapes of
the wrapped Python Workers SDK (>= 1.3): Python values go in, results come back as dicts that also allow
attribute access (:class:`edgerag.jsdict.AttrDict` locally, ``JsDict`` at the edge), lists, or
``memoryview`` for bytes.

Options follow the SDK convention: JS option objects can be passed either as a trailing dict or as
keyword arguments (Pyodide turns keyword arguments into a trailing options object), so
``kv.put(k, v, expirationTtl=60)`` and ``kv.put(k, v, {"expirationTtl": 60})`` are the same call.
The Protocols spell the keyword form, which is the one worker code uses.

Two implementations exist: the real bindings at the edge (handed over untouched by each
``entry.py``) and the local emulators in ``edgerag_local``. The contract suites in ``tests/contract``
pin the behaviour both must share. To add a binding: add its Protocol here, an emulator module in
``edgerag_local``, a contract suite, and its wrangler-config section in ``edgerag_local.runtime.config``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Iterable, Mapping, Sequence
from typing import Any, Literal, Protocol, runtime_checkable

__all__ = [
    "Ai",
    "AnalyticsEngineDataset",
    "D1Database",
    "D1PreparedStatement",
    "ExecutionContext",
    "Fetcher",
    "HttpClient",
    "HttpResponse",
    "KVNamespace",
    "Message",
    "MessageBatch",
    "Queue",
    "R2Bucket",
    "R2Object",
    "R2ObjectBody",
    "RateLimit",
    "VectorizeIndex",
]

# ---------------------------------------------------------------------------------------------- D1


@runtime_checkable
class D1PreparedStatement(Protocol):
    """``db.prepare(sql)``; ``bind`` returns a new statement with the values bound."""

    def bind(self, *values: Any) -> D1PreparedStatement: ...

    async def all(self) -> Any:
        """``{"success": True, "results": [row dicts], "meta": {...}}``."""

    async def run(self) -> Any:
        """Same shape as :meth:`all`."""

    async def first(self, column: str | None = None) -> Any:
        """The first row as a dict (or None); with ``column``, that column's value."""

    async def raw(self, *, columnNames: bool = False) -> list[list[Any]]:
        """Rows as lists; with ``columnNames=True`` the first list holds the column names."""


@runtime_checkable
class D1Database(Protocol):
    def prepare(self, query: str) -> D1PreparedStatement: ...

    async def batch(self, statements: Sequence[D1PreparedStatement]) -> list[Any]:
        """Run statements in one implicit transaction: all succeed or none is applied."""

    async def exec(self, query: str) -> Any:
        """Run one or more ``;``-separated statements without bindings: ``{"count", "duration"}``."""


# ---------------------------------------------------------------------------------------------- KV

KVType = Literal["text", "json", "arrayBuffer", "stream"]


@runtime_checkable
class KVNamespace(Protocol):
    async def get(self, key: str | Sequence[str], type: KVType = "text", **options: Any) -> Any:
        """A value (str / parsed JSON / memoryview) or None; with a list of keys, a dict key -> value."""

    async def getWithMetadata(self, key: str | Sequence[str], type: KVType = "text", **options: Any) -> Any:
        """``{"value", "metadata"}`` (both None when the key is absent)."""

    async def put(
        self,
        key: str,
        value: str | bytes | memoryview,
        *,
        expiration: int | None = None,
        expirationTtl: int | None = None,
        metadata: Any = None,
    ) -> None: ...

    async def delete(self, key: str) -> None: ...

    async def list(self, *, prefix: str | None = None, limit: int = 1000, cursor: str | None = None) -> Any:
        """``{"keys": [{"name", "expiration"?, "metadata"?}], "list_complete", "cursor"?}``."""


# ---------------------------------------------------------------------------------------------- R2


@runtime_checkable
class R2Object(Protocol):
    key: str
    size: int
    etag: str
    httpEtag: str
    version: str
    uploaded: Any
    httpMetadata: Mapping[str, Any]
    customMetadata: Mapping[str, str]


@runtime_checkable
class R2ObjectBody(R2Object, Protocol):
    async def text(self) -> str: ...

    async def json(self) -> Any: ...

    async def arrayBuffer(self) -> memoryview: ...

    async def bytes(self) -> bytes: ...


@runtime_checkable
class R2Bucket(Protocol):
    async def put(
        self,
        key: str,
        value: str | bytes | memoryview | None,
        *,
        httpMetadata: Mapping[str, Any] | None = None,
        customMetadata: Mapping[str, str] | None = None,
    ) -> R2Object: ...

    async def get(self, key: str, *, range: Mapping[str, int] | None = None) -> R2ObjectBody | None: ...

    async def head(self, key: str) -> R2Object | None: ...

    async def delete(self, keys: str | Sequence[str]) -> None: ...

    async def list(
        self,
        *,
        prefix: str | None = None,
        limit: int = 1000,
        cursor: str | None = None,
        delimiter: str | None = None,
    ) -> Any:
        """``{"objects": [R2Object], "truncated", "cursor"?, "delimitedPrefixes": [str]}``."""


# ---------------------------------------------------------------------------------------- Vectorize


@runtime_checkable
class VectorizeIndex(Protocol):
    async def insert(self, vectors: Sequence[Mapping[str, Any]]) -> Any:
        """``{"mutationId"}``; ids that already exist are skipped (use ``upsert`` to replace)."""

    async def upsert(self, vectors: Sequence[Mapping[str, Any]]) -> Any: ...

    async def query(self, vector: Sequence[float], **options: Any) -> Any:
        """``{"count", "matches": [{"id", "score", "values"?, "metadata"?, "namespace"?}]}``.

        Options: ``topK``, ``namespace``, ``returnValues``, ``returnMetadata`` ("none" | "indexed" |
        "all"), ``filter``.
        """

    async def queryById(self, vector_id: str, **options: Any) -> Any: ...

    async def getByIds(self, ids: Sequence[str]) -> list[Any]: ...

    async def deleteByIds(self, ids: Sequence[str]) -> Any: ...

    async def describe(self) -> Any: ...


# --------------------------------------------------------------------------------------- Workers AI


@runtime_checkable
class Ai(Protocol):
    async def run(self, model: str, inputs: Mapping[str, Any], **options: Any) -> Any: ...


# ------------------------------------------------------------------------------------------- Queues


@runtime_checkable
class Queue(Protocol):
    """A queue producer binding."""

    async def send(
        self,
        body: Any,
        *,
        contentType: str | None = None,
        delaySeconds: int | None = None,
    ) -> None: ...

    async def sendBatch(
        self,
        messages: Iterable[Mapping[str, Any]],
        *,
        delaySeconds: int | None = None,
    ) -> None: ...


@runtime_checkable
class Message(Protocol):
    id: str
    timestamp: Any
    body: Any
    attempts: int

    def ack(self) -> None: ...

    def retry(self, *, delaySeconds: int | None = None) -> None: ...


@runtime_checkable
class MessageBatch(Protocol):
    queue: str
    messages: Sequence[Message]

    def ackAll(self) -> None: ...

    def retryAll(self, *, delaySeconds: int | None = None) -> None: ...


# ---------------------------------------------------------------------------- Service bindings, misc


@runtime_checkable
class Fetcher(Protocol):
    """A service binding. Besides ``fetch``, every public method of the target entrypoint is callable
    over RPC as an attribute (``await env.DEDALUS.health()``)."""

    async def fetch(self, url: str, **init: Any) -> Any: ...

    def __getattr__(self, name: str) -> Any: ...


@runtime_checkable
class RateLimit(Protocol):
    async def limit(self, options: Mapping[str, str]) -> Any:
        """``{"success": bool}`` for ``{"key": ...}``."""


@runtime_checkable
class AnalyticsEngineDataset(Protocol):
    """A Workers Analytics Engine dataset (``[[analytics_engine_datasets]]``).

    ``writeDataPoint({"blobs": [str|bytes|None, ...], "doubles": [float, ...], "indexes": [str]})``
    returns nothing and is not awaited: the write is queued by the runtime. At most 20 blobs, 20
    doubles and one index (<= 96 bytes); blobs are limited in total size; an invocation may write at
    most 250 points. Over a limit it raises ``TypeError`` naming the limit.
    """

    def writeDataPoint(self, point: Mapping[str, Any] | None = None) -> None: ...


@runtime_checkable
class ExecutionContext(Protocol):
    def waitUntil(self, awaitable: Awaitable[Any]) -> None: ...

    def passThroughOnException(self) -> None: ...


# ------------------------------------------------------------------------------- outbound HTTP
# Not a binding: the port through which dedalus reaches model providers. Each entry supplies it (the
# runtime's fetch at the edge, where httpx has no transport; httpx in the local runtime), so the core
# never imports `js`. Timeouts are the caller's (asyncio.wait_for), so every implementation behaves
# the same under them.


@runtime_checkable
class HttpResponse(Protocol):
    """A response whose body has not been read yet."""

    @property
    def status(self) -> int: ...

    @property
    def headers(self) -> Mapping[str, str]:
        """Header names in lower case."""

    def aiter_bytes(self) -> AsyncIterator[bytes]:
        """The body, chunk by chunk as it arrives (for streams)."""

    async def read(self) -> bytes:
        """The whole body."""

    async def aclose(self) -> None:
        """Stop reading and release the connection (cancels an unfinished body)."""


@runtime_checkable
class HttpClient(Protocol):
    async def request(
        self, method: str, url: str, *, headers: Mapping[str, str], body: bytes | None = None
    ) -> HttpResponse:
        """Send a request; returns once the response headers have arrived.

        Raises ``OSError`` (or a subclass) when no response arrives at all (DNS, connect, reset).
        """
