"""A ``text/event-stream`` response that sends heartbeats and stops its producer when the client goes.

:class:`EventStreamResponse` takes an async iterator of :class:`OutEvent` and writes each as one
server-sent event (:func:`edgerag.sse.encode_event`) as soon as it is produced. While the producer is
quiet for ``heartbeat_s`` a comment (``: keep-alive``) is sent, so proxies and clients do not time the
stream out during a long tool call or a slow first token.

When the client goes away — the ASGI ``http.disconnect`` message, a failed send, or the request's task
being cancelled (what the Workers ASGI bridge and the local runtime do when the reader hangs up) —
the producer is stopped: the pending step is cancelled and the iterator closed, so its ``finally``
and ``except`` blocks run (the chat flow stores what was produced as ``interrupted`` and closes the
dedalus stream, which cancels generation there). Nothing here knows about chat: any producer works.

Why not Starlette's ``StreamingResponse``: it sends no heartbeats, and on a disconnect it abandons
the iterator without telling it, which would leave a chat message ``pending``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from typing import Any

from edgerag.sse import encode_comment, encode_event
from starlette.responses import Response

__all__ = ["EventStreamResponse", "OutEvent"]

log = logging.getLogger("edgerag.gateway")

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]


@dataclass(frozen=True)
class OutEvent:
    """One event for the client: its type (the SSE ``event`` field) and its JSON text (``data``)."""

    event: str
    data: str


class EventStreamResponse(Response):
    media_type = "text/event-stream"

    def __init__(
        self,
        events: AsyncIterator[OutEvent],
        *,
        heartbeat_s: float = 15.0,
        on_failure: Callable[[], OutEvent] | None = None,
    ) -> None:
        """``on_failure`` makes the last event when the producer raises (it should say so, typed)."""
        super().__init__(
            status_code=200,
            headers={"cache-control": "no-store", "x-accel-buffering": "no"},
            media_type="text/event-stream; charset=utf-8",
        )
        # Response.__init__ declares the empty body's "content-length: 0"; a stream has no length, and a
        # real HTTP server would stop the client reading after zero bytes.
        self.raw_headers = [(k, v) for k, v in self.raw_headers if k != b"content-length"]
        self._events = events
        self._heartbeat_s = heartbeat_s
        self._on_failure = on_failure

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers})
        watcher: asyncio.Future[Any] = asyncio.ensure_future(_wait_for_disconnect(receive))
        step: asyncio.Future[Any] | None = None
        try:
            while True:
                if step is None:
                    step = asyncio.ensure_future(anext(self._events))
                done, _ = await asyncio.wait(
                    {step, watcher}, timeout=self._heartbeat_s, return_when=asyncio.FIRST_COMPLETED
                )
                if watcher in done:
                    log.info("event stream: the client went away; stopping the producer")
                    return
                if step not in done:
                    await send(
                        {
                            "type": "http.response.body",
                            "body": encode_comment("keep-alive"),
                            "more_body": True,
                        }
                    )
                    continue
                finished, step = step, None
                try:
                    event = finished.result()
                except StopAsyncIteration:
                    break
                except Exception:
                    log.exception("event stream: the producer failed")
                    if self._on_failure is not None:
                        await send(_body(self._on_failure()))
                    break
                await send(_body(event))
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        except OSError:
            log.info("event stream: sending failed (the client went away); stopping the producer")
        finally:
            watcher.cancel()
            await _stop(step, self._events)


def _body(event: OutEvent) -> MutableMapping[str, Any]:
    return {
        "type": "http.response.body",
        "body": encode_event(event.data, event=event.event),
        "more_body": True,
    }


async def _wait_for_disconnect(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


async def _stop(step: asyncio.Future[Any] | None, events: AsyncIterator[OutEvent]) -> None:
    """Stop the producer: cancel its running step (its handlers run), then close it."""
    if step is not None and not step.done():
        step.cancel()
        with contextlib.suppress(asyncio.CancelledError, StopAsyncIteration, Exception):
            await step
    aclose = getattr(events, "aclose", None)
    if aclose is not None:
        with contextlib.suppress(Exception):
            await aclose()
