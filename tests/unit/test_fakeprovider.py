"""The scripted provider server and the local httpx HttpClient, tested together on loopback."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator

import httpx
import pytest
from edgerag.ports import HttpClient
from edgerag_local.fakeprovider import (
    FakeProvider,
    Pause,
    Respond,
    Stall,
    Stream,
    error_reply,
    json_reply,
    openai_completion,
)
from edgerag_local.sdk.http_client import HttpxClient

GUARD = 10.0  # only guards against a hang


@pytest.fixture
async def fake() -> AsyncIterator[FakeProvider]:
    async with FakeProvider() as server:
        yield server


@pytest.fixture
async def http() -> AsyncIterator[HttpxClient]:
    async with HttpxClient() as client:
        yield client


async def test_the_client_implements_the_port(http: HttpxClient) -> None:
    assert isinstance(http, HttpClient)


async def test_requests_are_recorded_and_answered_in_script_order(
    fake: FakeProvider, http: HttpxClient
) -> None:
    fake.reply(json_reply({"n": 1}), error_reply(503, "busy", headers={"Retry-After": "3"}))
    first = await http.request(
        "POST",
        fake.openai_base_url + "/chat/completions",
        headers={"authorization": "Bearer k", "x-custom": "v"},
        body=b'{"model": "m"}',
    )
    assert (first.status, await first.read()) == (200, b'{"n": 1}')
    second = await http.request("GET", fake.base_url + "/v1/messages?x=1", headers={})
    assert second.status == 503
    assert second.headers["retry-after"] == "3"  # header names reach the port in lower case
    await second.aclose()
    one, two = fake.requests
    assert (one.method, one.path, one.json) == ("POST", "/v1/chat/completions", {"model": "m"})
    assert one.headers["authorization"] == "Bearer k" and one.headers["x-custom"] == "v"
    assert (two.method, two.path, two.body) == ("GET", "/v1/messages?x=1", b"")
    assert fake.pending == 0


async def test_an_unscripted_request_gets_a_500_that_says_so(fake: FakeProvider, http: HttpxClient) -> None:
    response = await http.request("POST", fake.base_url + "/v1/messages", headers={}, body=b"{}")
    assert response.status == 500
    assert b"no scripted reply" in await response.read()


async def test_keep_alive_connections_serve_several_requests(fake: FakeProvider, http: HttpxClient) -> None:
    fake.reply(*(json_reply(openai_completion(str(i))) for i in range(3)))
    for _ in range(3):
        response = await http.request(
            "POST", fake.openai_base_url + "/chat/completions", headers={}, body=b"{}"
        )
        await response.read()
    assert len(fake.requests) == 3


async def test_a_stream_arrives_piece_by_piece(fake: FakeProvider, http: HttpxClient) -> None:
    gate = asyncio.Event()
    fake.reply(Stream([b"one", Pause(0.01), b"two", gate, b"three"]))
    response = await http.request("POST", fake.base_url, headers={})
    chunks = response.aiter_bytes()
    assert await asyncio.wait_for(anext(chunks), GUARD) == b"one"
    assert await asyncio.wait_for(anext(chunks), GUARD) == b"two"
    assert fake.chunks_sent == 2  # "three" is held back until the test opens the gate
    gate.set()
    assert [c async for c in chunks] == [b"three"]
    await response.aclose()


async def test_a_dropped_stream_is_an_os_error_from_the_client(fake: FakeProvider, http: HttpxClient) -> None:
    fake.reply(Stream([b"data: partial"], end="drop"))
    response = await http.request("POST", fake.base_url, headers={})
    with pytest.raises(OSError, match="cut off"):
        async with asyncio.timeout(GUARD):
            async for _ in response.aiter_bytes():
                pass
    await response.aclose()


async def test_a_stalled_reply_never_answers(fake: FakeProvider, http: HttpxClient) -> None:
    fake.reply(Stall())
    request = asyncio.ensure_future(http.request("POST", fake.base_url, headers={}, body=b"{}"))
    await asyncio.wait_for(fake.wait_for_requests(1), GUARD)  # the server has read the request ...
    await asyncio.sleep(0.05)
    assert not request.done()  # ... and never answers: only the caller's timeout ends this
    request.cancel()
    with pytest.raises(asyncio.CancelledError):
        await request


async def test_a_stream_that_stalls_mid_way_holds_the_connection_open(
    fake: FakeProvider, http: HttpxClient
) -> None:
    fake.reply(Stream([b"data: first\n\n"], end="stall"))
    response = await http.request("POST", fake.base_url, headers={})
    chunks = response.aiter_bytes()
    assert await asyncio.wait_for(anext(chunks), GUARD) == b"data: first\n\n"
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(anext(chunks), 0.05)  # the caller's per-chunk timeout is what ends a stall
    await response.aclose()


async def test_connection_refused_is_an_os_error(http: HttpxClient) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(OSError, match=r"no response from 127\.0\.0\.1"):
        await http.request("POST", f"http://127.0.0.1:{port}/v1/chat/completions", headers={}, body=b"{}")


async def test_chunked_request_bodies_are_read(fake: FakeProvider) -> None:
    async def body() -> AsyncIterator[bytes]:
        yield b'{"a": '
        yield b"1}"

    fake.reply(Respond(body=b"{}"))
    async with httpx.AsyncClient() as client:
        response = await client.post(fake.base_url + "/x", content=body())
    assert response.status_code == 200
    assert fake.requests[0].json == {"a": 1}


async def test_status_codes_without_a_standard_phrase(fake: FakeProvider, http: HttpxClient) -> None:
    fake.reply(error_reply(529, "Overloaded", style="anthropic", error_type="overloaded_error"))
    response = await http.request("POST", fake.base_url + "/v1/messages", headers={}, body=b"{}")
    assert response.status == 529
    assert b"overloaded_error" in await response.read()


async def test_shutting_down_with_open_connections_reports_no_loop_errors() -> None:
    loop = asyncio.get_running_loop()
    reported: list[dict[str, object]] = []
    previous = loop.get_exception_handler()
    loop.set_exception_handler(lambda _loop, context: reported.append(context))
    try:
        async with HttpxClient() as client, HttpxClient() as other:
            async with FakeProvider() as server:
                server.reply(json_reply({}), Stream([b"x"], end="stall"), Stream([b"y", asyncio.Event()]))
                await (await client.request("POST", server.base_url, headers={})).read()  # idle keep-alive
                stalled = await client.request("POST", server.base_url, headers={})
                paused = await other.request("POST", server.base_url, headers={})  # paused mid-stream
                await anext(paused.aiter_bytes())
            # the server has shut down with all three connections still open
            await paused.aclose()
            await stalled.aclose()
            await asyncio.sleep(0)  # let the loop run the connections' done-callbacks
    finally:
        loop.set_exception_handler(previous)
    assert reported == []
