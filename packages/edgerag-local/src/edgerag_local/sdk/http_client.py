"""The local :class:`edgerag.ports.HttpClient`: httpx.AsyncClient with real streaming.

At the edge the entry module supplies an HttpClient over the runtime's ``fetch`` (httpx has no
transport in Pyodide); locally this one does the same job for the provider adapters:

- :meth:`HttpxClient.request` returns as soon as the response headers have arrived (httpx
  ``send(..., stream=True)``); the body is read later, with :meth:`HttpxResponse.aiter_bytes`
  yielding each piece as it comes off the socket (no buffering), so streaming stays incremental;
- every httpx transport failure (connect, read, write, protocol — e.g. the peer closing the
  connection in the middle of a chunked body — and pool timeouts) becomes ``OSError`` with the httpx
  exception as its cause, which is what the port promises, so adapters never import httpx;
- there is no read timeout: the port leaves timeouts to the caller (``asyncio.wait_for`` around each
  attempt or chunk read). ``connect_timeout`` only bounds connection set-up.

Use it as an async context manager (or call :meth:`HttpxClient.aclose`), and pass ``transport=`` to
run it over any httpx transport.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from types import TracebackType

import httpx

__all__ = ["HttpxClient", "HttpxResponse"]


class HttpxResponse:
    """A response whose body has not been read yet (implements ``edgerag.ports.HttpResponse``)."""

    def __init__(self, response: httpx.Response) -> None:
        self._response = response
        self._headers = {k.lower(): v for k, v in response.headers.items()}

    @property
    def status(self) -> int:
        return self._response.status_code

    @property
    def headers(self) -> Mapping[str, str]:
        return self._headers

    async def aiter_bytes(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self._response.aiter_bytes():
                if chunk:
                    yield chunk
        except httpx.TransportError as exc:
            raise OSError(f"the response body was cut off ({type(exc).__name__})") from exc
        except httpx.StreamError as exc:  # closed or already consumed: a programming error upstream
            raise OSError(f"the response body cannot be read ({type(exc).__name__})") from exc

    async def read(self) -> bytes:
        try:
            return await self._response.aread()
        except httpx.TransportError as exc:
            raise OSError(f"the response body was cut off ({type(exc).__name__})") from exc

    async def aclose(self) -> None:
        await self._response.aclose()


class HttpxClient:
    """``edgerag.ports.HttpClient`` over one pooled ``httpx.AsyncClient``."""

    def __init__(
        self,
        *,
        connect_timeout: float | None = 10.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._client = httpx.AsyncClient(
            timeout=httpx.Timeout(None, connect=connect_timeout),
            transport=transport,
            trust_env=False,  # a developer's proxy variables must not reroute calls to loopback servers
            follow_redirects=False,
        )

    async def request(
        self, method: str, url: str, *, headers: Mapping[str, str], body: bytes | None = None
    ) -> HttpxResponse:
        request = self._client.build_request(method, url, headers=dict(headers), content=body)
        try:
            response = await self._client.send(request, stream=True)
        except httpx.TransportError as exc:
            raise OSError(f"no response from {request.url.host} ({type(exc).__name__}: {exc})") from exc
        return HttpxResponse(response)

    async def aclose(self) -> None:
        await self._client.aclose()

    async def __aenter__(self) -> HttpxClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()
