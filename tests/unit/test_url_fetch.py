"""edgerag.url_fetch through a fake HttpClient port that records every request it is sent."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field

import pytest
from edgerag.url_fetch import FetchLimits, UrlFetchError, fetch_url

ALLOW = frozenset({"127.0.0.1"})


@dataclass
class FakeResponse:
    status: int
    headers: Mapping[str, str]
    chunks: list[bytes] = field(default_factory=list)
    closed: bool = False

    async def aiter_bytes(self) -> AsyncIterator[bytes]:
        for chunk in self.chunks:
            yield chunk

    async def read(self) -> bytes:
        return b"".join(self.chunks)

    async def aclose(self) -> None:
        self.closed = True


@dataclass
class FakeHttp:
    routes: dict[str, FakeResponse]
    sent: list[tuple[str, dict[str, str]]] = field(default_factory=list)
    delay: float = 0.0

    async def request(
        self, method: str, url: str, *, headers: Mapping[str, str], body: bytes | None = None
    ) -> FakeResponse:
        self.sent.append((url, dict(headers)))
        if self.delay:
            await asyncio.sleep(self.delay)
        return self.routes[url]


def _redirect(to: str, status: int = 302) -> FakeResponse:
    return FakeResponse(status, {"location": to})


async def test_a_page_and_its_validators() -> None:
    http = FakeHttp(
        {
            "http://127.0.0.1/p": FakeResponse(
                200, {"content-type": "text/html", "etag": '"v1"'}, [b"<p>hi</p>"]
            )
        }
    )
    page = await fetch_url(http, "http://127.0.0.1/p", FetchLimits(allow_hosts=ALLOW))
    assert (page.status, page.body, page.content_type, page.etag) == (200, b"<p>hi</p>", "text/html", '"v1"')
    assert http.routes["http://127.0.0.1/p"].closed


async def test_conditional_headers_are_sent_and_304_has_no_body() -> None:
    http = FakeHttp({"http://127.0.0.1/p": FakeResponse(304, {})})
    page = await fetch_url(
        http,
        "http://127.0.0.1/p",
        FetchLimits(allow_hosts=ALLOW),
        etag='"v1"',
        last_modified="Mon, 01 Jan 2026",
    )
    assert page.status == 304 and page.body == b""
    headers = http.sent[0][1]
    assert headers["if-none-match"] == '"v1"' and headers["if-modified-since"] == "Mon, 01 Jan 2026"


async def test_redirects_are_followed_relative_and_absolute() -> None:
    http = FakeHttp(
        {
            "http://127.0.0.1/a": _redirect("/b", 301),
            "http://127.0.0.1/b": _redirect("http://127.0.0.1/c", 307),
            "http://127.0.0.1/c": FakeResponse(200, {}, [b"done"]),
        }
    )
    page = await fetch_url(http, "http://127.0.0.1/a", FetchLimits(allow_hosts=ALLOW))
    assert page.url == "http://127.0.0.1/c" and page.body == b"done"
    assert [u for u, _ in http.sent] == ["http://127.0.0.1/a", "http://127.0.0.1/b", "http://127.0.0.1/c"]


async def test_a_redirect_to_a_private_address_is_refused_before_anything_is_sent_there() -> None:
    http = FakeHttp({"http://127.0.0.1/a": _redirect("http://169.254.169.254/latest/meta-data/")})
    with pytest.raises(UrlFetchError, match=r"refused a redirect to http://169\.254\.169\.254.*link-local"):
        await fetch_url(http, "http://127.0.0.1/a", FetchLimits(allow_hosts=ALLOW))
    assert [u for u, _ in http.sent] == ["http://127.0.0.1/a"]


async def test_a_redirect_loop_and_too_many_redirects() -> None:
    loop = FakeHttp({"http://127.0.0.1/a": _redirect("/b"), "http://127.0.0.1/b": _redirect("/a")})
    with pytest.raises(UrlFetchError, match="redirect loop"):
        await fetch_url(loop, "http://127.0.0.1/a", FetchLimits(allow_hosts=ALLOW))
    chain = FakeHttp({f"http://127.0.0.1/{i}": _redirect(f"/{i + 1}") for i in range(10)})
    with pytest.raises(UrlFetchError, match="more than 3 redirects"):
        await fetch_url(chain, "http://127.0.0.1/0", FetchLimits(max_redirects=3, allow_hosts=ALLOW))
    assert len(chain.sent) == 4  # the first request and three redirects followed


async def test_the_body_stops_past_the_size_limit() -> None:
    streamed = FakeResponse(200, {}, [b"x" * 60, b"x" * 60, b"never read"])
    http = FakeHttp({"http://127.0.0.1/big": streamed})
    with pytest.raises(UrlFetchError, match="too large: more than 100 bytes arrived"):
        await fetch_url(http, "http://127.0.0.1/big", FetchLimits(max_bytes=100, allow_hosts=ALLOW))
    assert streamed.closed
    declared = FakeHttp({"http://127.0.0.1/big": FakeResponse(200, {"content-length": "5000"}, [b"x"])})
    with pytest.raises(UrlFetchError, match="declares 5,000 bytes"):
        await fetch_url(declared, "http://127.0.0.1/big", FetchLimits(max_bytes=100, allow_hosts=ALLOW))


async def test_errors_name_the_status_and_the_time_limit() -> None:
    http = FakeHttp({"http://127.0.0.1/gone?token=secret": FakeResponse(404, {})})
    with pytest.raises(UrlFetchError, match="answered HTTP 404") as refused:
        await fetch_url(http, "http://127.0.0.1/gone?token=secret", FetchLimits(allow_hosts=ALLOW))
    assert "secret" not in str(refused.value)  # a query string may carry a token
    slow = FakeHttp({"http://127.0.0.1/slow": FakeResponse(200, {}, [b"x"])}, delay=30)
    with pytest.raises(UrlFetchError, match=r"within 0\.05 seconds"):
        await fetch_url(slow, "http://127.0.0.1/slow", FetchLimits(timeout_seconds=0.05, allow_hosts=ALLOW))


async def test_the_first_url_is_checked_too() -> None:
    http = FakeHttp({})
    with pytest.raises(UrlFetchError, match=r"10\.0\.0\.1 is a private address"):
        await fetch_url(http, "http://10.0.0.1/", FetchLimits())
    assert http.sent == []
