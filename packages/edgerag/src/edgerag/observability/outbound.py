"""Outbound HTTP that carries the request id: providers see ``X-Request-Id`` on every call.

:class:`CorrelatedHttpClient` wraps an :class:`~edgerag.ports.HttpClient` (dedalus wraps the one its
providers use) and adds the current request id as ``X-Request-Id`` unless the caller set one. Model
providers ignore headers they do not know, and OpenAI-compatible servers (vLLM, llama.cpp) and most
proxies log it, which lets a provider-side log be matched to ours. Nothing else is added: no
traceparent, since providers would start traces we cannot see.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from edgerag.observability.context import REQUEST_ID_HEADER, current_request_id
from edgerag.ports import HttpClient, HttpResponse

__all__ = ["CorrelatedHttpClient", "correlated"]


class CorrelatedHttpClient:
    def __init__(self, inner: HttpClient) -> None:
        self._inner = inner

    async def request(
        self, method: str, url: str, *, headers: Mapping[str, str], body: bytes | None = None
    ) -> HttpResponse:
        request_id = current_request_id()
        if request_id is not None and not any(k.lower() == REQUEST_ID_HEADER for k in headers):
            headers = {**headers, "X-Request-Id": request_id}
        return await self._inner.request(method, url, headers=headers, body=body)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


def correlated(http: HttpClient | None) -> HttpClient | None:
    if http is None or isinstance(http, CorrelatedHttpClient):
        return http
    return CorrelatedHttpClient(http)
