"""gateway.sse.EventStreamResponse driven as a raw ASGI response: events in order, heartbeats while
the producer is quiet, the producer stopped (its handlers run) when the client goes away, and a
typed last event when the producer fails. Timeouts only guard against hangs."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, MutableMapping
from typing import Any

from edgerag.sse import SseParser
from gateway.sse import EventStreamResponse, OutEvent

GUARD_S = 10


class Client:
    """The ASGI side of one request: records what is sent, and can hang up."""

    def __init__(self) -> None:
        self.sent: list[MutableMapping[str, Any]] = []
        self.gone = asyncio.Event()
        self.changed = asyncio.Event()

    async def receive(self) -> MutableMapping[str, Any]:
        await self.gone.wait()
        return {"type": "http.disconnect"}

    async def send(self, message: MutableMapping[str, Any]) -> None:
        self.sent.append(message)
        self.changed.set()

    @property
    def body(self) -> bytes:
        return b"".join(m.get("body", b"") for m in self.sent if m["type"] == "http.response.body")

    async def wait_for(self, data: bytes) -> None:
        while data not in self.body:
            self.changed.clear()
            await self.changed.wait()


async def _serve(response: EventStreamResponse, client: Client) -> None:
    await asyncio.wait_for(response({"type": "http"}, client.receive, client.send), GUARD_S)


async def test_events_are_sent_in_order_and_the_body_ends() -> None:
    async def produce() -> AsyncIterator[OutEvent]:
        yield OutEvent("sources", "[]")
        yield OutEvent("token", '{"text":"hi"}')

    client = Client()
    await _serve(EventStreamResponse(produce()), client)
    assert client.sent[0]["type"] == "http.response.start" and client.sent[0]["status"] == 200
    assert (b"content-type", b"text/event-stream; charset=utf-8") in client.sent[0]["headers"]
    assert [(e.event, e.data) for e in SseParser().feed(client.body)] == [
        ("sources", "[]"),
        ("token", '{"text":"hi"}'),
    ]
    assert client.sent[-1] == {"type": "http.response.body", "body": b"", "more_body": False}


async def test_a_quiet_producer_gets_heartbeats() -> None:
    release = asyncio.Event()

    async def produce() -> AsyncIterator[OutEvent]:
        await release.wait()
        yield OutEvent("done", "{}")

    client = Client()
    serving = asyncio.ensure_future(_serve(EventStreamResponse(produce(), heartbeat_s=0.01), client))
    await asyncio.wait_for(client.wait_for(b": keep-alive"), GUARD_S)
    release.set()
    await serving
    assert client.body.index(b": keep-alive") < client.body.index(b"event: done")


async def test_a_client_that_goes_away_stops_the_producer_and_its_handlers_run() -> None:
    stopped: list[str] = []
    never = asyncio.Event()

    async def produce() -> AsyncIterator[OutEvent]:
        try:
            yield OutEvent("token", '{"text":"one"}')
            await never.wait()
            yield OutEvent("done", "{}")
        except asyncio.CancelledError:
            stopped.append("cancelled")
            raise

    client = Client()
    serving = asyncio.ensure_future(_serve(EventStreamResponse(produce(), heartbeat_s=5), client))
    await asyncio.wait_for(client.wait_for(b"event: token"), GUARD_S)
    client.gone.set()
    await serving
    assert stopped == ["cancelled"] and b"event: done" not in client.body


async def test_a_cancelled_request_stops_the_producer_too() -> None:
    stopped: list[str] = []

    async def produce() -> AsyncIterator[OutEvent]:
        try:
            yield OutEvent("token", '{"text":"one"}')
            await asyncio.Event().wait()
            yield OutEvent("never", "{}")
        finally:
            stopped.append("closed")

    client = Client()
    serving = asyncio.ensure_future(_serve(EventStreamResponse(produce(), heartbeat_s=5), client))
    await asyncio.wait_for(client.wait_for(b"event: token"), GUARD_S)
    serving.cancel()  # what the Workers ASGI bridge does when the reader hangs up
    try:
        await serving
    except asyncio.CancelledError:
        pass
    assert stopped == ["closed"]


async def test_a_failing_producer_ends_with_the_typed_failure_event() -> None:
    async def produce() -> AsyncIterator[OutEvent]:
        yield OutEvent("sources", "[]")
        raise RuntimeError("bug")

    client = Client()
    response = EventStreamResponse(produce(), on_failure=lambda: OutEvent("error", '{"status":502}'))
    await _serve(response, client)
    assert [e.event for e in SseParser().feed(client.body)] == ["sources", "error"]
    assert client.sent[-1]["more_body"] is False
