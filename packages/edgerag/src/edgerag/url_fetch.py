"""Fetch one web page for a URL source, within limits, through the outbound HTTP port.

:func:`fetch_url` sends ``GET`` through an :class:`edgerag.ports.HttpClient` (the runtime's
``fetch`` at the edge, :mod:`edgerag.fetch_http`) and answers a :class:`FetchedPage` (200 with its
body, or 304 when the conditional request matched) or raises :class:`UrlFetchError` with a reason a
user can act on. The limits (:class:`FetchLimits`, from the ingest worker's ``URL_FETCH_*`` vars):

- the whole exchange, redirects and body included, gets ``timeout_seconds`` (``asyncio.wait_for``);
- the body is read as it streams and abandoned as soon as it passes ``max_bytes`` (a declared
  ``Content-Length`` over the limit is refused before reading);
- redirects are followed here, by hand, at most ``max_redirects`` of them, and every hop's address
  goes through :func:`edgerag.url_policy.check_url` first. The port must hand 3xx responses back
  instead of following them: the ingest entry builds its ``FetchHttpClient`` with
  ``follow_redirects=False`` (fetch's ``redirect: "manual"``), and the local stand-in's httpx client
  never follows. So a redirect to a private address is refused without sending anything there. A
  redirect back to a URL already visited is a loop.

Anything but 200 or 304 at the end (4xx, 5xx, a 3xx without ``Location``) is an error naming the
status. To accept more statuses or add a header, change :func:`_exchange`; the policy itself lives in
:mod:`edgerag.url_policy`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit

from edgerag.ports import HttpClient, HttpResponse
from edgerag.settings import non_negative_float, positive_int, var
from edgerag.url_policy import UrlRefused, check_url, parse_allow_hosts

__all__ = ["FetchLimits", "FetchedPage", "UrlFetchError", "UrlSourceSettings", "fetch_url"]

_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_USER_AGENT = "edgerag-url-source/1 (+https://github.com/edgerag)"


class UrlFetchError(Exception):
    """The page could not be fetched within the limits; ``str()`` is the reason to record."""


@dataclass(frozen=True)
class FetchLimits:
    max_bytes: int = 10 * 1024 * 1024
    timeout_seconds: float = 20.0
    max_redirects: int = 5
    allow_hosts: frozenset[str] = frozenset()


@dataclass(frozen=True)
class UrlSourceSettings:
    """The ``URL_FETCH_*`` vars (both the gateway, for the address check at creation, and ingest)."""

    max_bytes: int = var("URL_FETCH_MAX_BYTES", positive_int, 10 * 1024 * 1024)
    timeout_seconds: float = var("URL_FETCH_TIMEOUT_SECONDS", non_negative_float, 20.0)
    max_redirects: int = var("URL_FETCH_MAX_REDIRECTS", int, 5)
    allow_hosts: frozenset[str] = var("URL_FETCH_ALLOW_HOSTS", parse_allow_hosts, frozenset())
    resync_batch: int = var("URL_RESYNC_BATCH", positive_int, 50)  # sources queued per cron tick

    def limits(self) -> FetchLimits:
        return FetchLimits(self.max_bytes, self.timeout_seconds, self.max_redirects, self.allow_hosts)


@dataclass(frozen=True)
class FetchedPage:
    status: int  # 200, or 304 (not modified: no body)
    url: str  # the final URL, after redirects
    body: bytes
    content_type: str | None  # as the server sent it, parameters included
    etag: str | None
    last_modified: str | None


async def fetch_url(
    http: HttpClient,
    url: str,
    limits: FetchLimits,
    *,
    etag: str | None = None,
    last_modified: str | None = None,
) -> FetchedPage:
    """Fetch ``url`` (conditionally, when ``etag``/``last_modified`` of the last good fetch are given)."""
    headers = {"user-agent": _USER_AGENT, "accept": "text/html, text/*;q=0.9, */*;q=0.5"}
    if etag:
        headers["if-none-match"] = etag
    if last_modified:
        headers["if-modified-since"] = last_modified
    try:
        return await asyncio.wait_for(_follow(http, url, headers, limits), timeout=limits.timeout_seconds)
    except TimeoutError:
        raise UrlFetchError(
            f"the page did not arrive within {limits.timeout_seconds:g} seconds (URL_FETCH_TIMEOUT_SECONDS)"
        ) from None


async def _follow(http: HttpClient, url: str, headers: Mapping[str, str], limits: FetchLimits) -> FetchedPage:
    seen: list[str] = []
    current = url
    while True:
        try:
            check_url(current, limits.allow_hosts)
        except UrlRefused as exc:
            where = f"a redirect to {_safe(current)}" if seen else _safe(current)
            raise UrlFetchError(f"refused {where}: {exc}") from None
        seen.append(current)
        response = await _send(http, current, headers)
        try:
            if response.status in _REDIRECTS:
                location = response.headers.get("location")
                if not location:
                    raise UrlFetchError(f"{_safe(current)} answered {response.status} without a Location")
                target = urljoin(current, location.strip())
                if _fragmentless(target) in {_fragmentless(u) for u in seen}:
                    raise UrlFetchError(f"redirect loop: {_safe(target)} redirects back to itself")
                if len(seen) > limits.max_redirects:
                    raise UrlFetchError(
                        f"more than {limits.max_redirects} redirects (URL_FETCH_MAX_REDIRECTS)"
                    )
                current = target
                continue
            return await _page(response, current, limits)
        finally:
            await response.aclose()


async def _send(http: HttpClient, url: str, headers: Mapping[str, str]) -> HttpResponse:
    try:
        return await http.request("GET", _fragmentless(url), headers=headers)
    except OSError as exc:
        raise UrlFetchError(f"no response from {urlsplit(url).hostname}: {exc}") from exc


async def _page(response: HttpResponse, url: str, limits: FetchLimits) -> FetchedPage:
    headers = response.headers
    if response.status not in (200, 304):
        raise UrlFetchError(f"{_safe(url)} answered HTTP {response.status}")
    if response.status == 304:
        body = b""
    else:
        declared = headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limits.max_bytes:
            raise _too_big(limits, f"it declares {int(declared):,} bytes")
        body = await _read_capped(response, limits)
    return FetchedPage(
        status=response.status,
        url=url,
        body=body,
        content_type=headers.get("content-type"),
        etag=headers.get("etag"),
        last_modified=headers.get("last-modified"),
    )


async def _read_capped(response: HttpResponse, limits: FetchLimits) -> bytes:
    parts: list[bytes] = []
    size = 0
    try:
        async for chunk in response.aiter_bytes():
            size += len(chunk)
            if size > limits.max_bytes:
                raise _too_big(limits, f"more than {limits.max_bytes:,} bytes arrived")
            parts.append(chunk)
    except OSError as exc:
        raise UrlFetchError(f"the page's body was cut off: {exc}") from exc
    return b"".join(parts)


def _too_big(limits: FetchLimits, what: str) -> UrlFetchError:
    return UrlFetchError(
        f"the page is too large: {what}; the limit is {limits.max_bytes:,} (URL_FETCH_MAX_BYTES)"
    )


def _fragmentless(url: str) -> str:
    return url.split("#", 1)[0]


def _safe(url: str, limit: int = 200) -> str:
    """A URL for an error message: no query string (it may hold a token), bounded length."""
    parts = urlsplit(url)
    shown = f"{parts.scheme}://{parts.netloc.rsplit('@', 1)[-1]}{parts.path}"
    return shown if len(shown) <= limit else shown[: limit - 3] + "..."
