"""The outbound HTTP port (:class:`edgerag.ports.HttpClient`) over the Workers runtime's ``fetch``.

The entry module hands over the SDK's ``workers.fetch`` (at the edge: the runtime's fetch, which
raises ``OSError`` when no response arrives; locally: the SDK stand-in's, which does the same over
httpx), so the provider adapters never see the runtime. Response bodies are read as they arrive
through :func:`edgerag.streams.iter_bytes`, which accepts a JavaScript ``ReadableStream`` proxy as
well as an async iterator of bytes: streaming stays incremental on both.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any

from edgerag.streams import iter_bytes

__all__ = ["FetchHttpClient", "FetchHttpResponse"]

Fetch = Callable[..., Awaitable[Any]]


class FetchHttpResponse:
    def __init__(self, response: Any) -> None:
        self._response = response
        self._headers = {str(k).lower(): str(v) for k, v in response.headers.items()}

    @property
    def status(self) -> int:
        return int(self._response.status)

    @property
    def headers(self) -> Mapping[str, str]:
        return self._headers

    async def aiter_bytes(self) -> AsyncIterator[bytes]:
        async for chunk in iter_bytes(self._response.body):
            yield chunk

    async def read(self) -> bytes:
        return b"".join([chunk async for chunk in self.aiter_bytes()])

    async def aclose(self) -> None:
        body = self._response.body
        cancel = getattr(body, "cancel", None)  # a JS ReadableStream: stop the transfer
        if callable(cancel):
            result = cancel()
            if hasattr(result, "__await__"):
                await result
            return
        close = getattr(body, "aclose", None)  # an async generator (the local stand-in)
        if callable(close):
            await close()


class FetchHttpClient:
    """``follow_redirects=False`` asks fetch for ``redirect: "manual"``: 3xx responses come back to
    the caller, which checks each hop itself (:mod:`edgerag.url_fetch`)."""

    def __init__(self, fetch: Fetch, *, follow_redirects: bool = True) -> None:
        self._fetch = fetch
        self._redirect = "follow" if follow_redirects else "manual"

    async def request(
        self, method: str, url: str, *, headers: Mapping[str, str], body: bytes | None = None
    ) -> FetchHttpResponse:
        # Text bodies cross into JavaScript as strings without copying through a typed array.
        payload: str | bytes | None = body
        if body is not None:
            try:
                payload = body.decode("utf-8")
            except UnicodeDecodeError:
                payload = body
        kwargs: dict[str, Any] = {"method": method, "headers": dict(headers)}
        if self._redirect == "manual":  # only when asked: provider calls keep fetch's default
            kwargs["redirect"] = "manual"
        if payload is not None:
            kwargs["body"] = payload
        response = await self._fetch(url, **kwargs)
        return FetchHttpResponse(response)
