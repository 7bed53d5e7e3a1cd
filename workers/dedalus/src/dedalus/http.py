"""dedalus over HTTP: a small ASGI application served through the service binding's ``fetch``.

Routes:

- ``GET /health`` -> :class:`edgerag.contracts.dedalus.HealthReply` as JSON;
- ``POST /v1/chat`` with a :class:`~edgerag.contracts.dedalus.ChatCall` JSON body -> the normalised
  event stream (:mod:`edgerag.llm.events`): ``text/event-stream`` when the call says ``stream: true``
  (each event flushed as it happens, a ``:`` heartbeat comment after ``heartbeat_s`` of silence), else
  one JSON document ``{"events": [...]}`` whose HTTP status is the terminal error's status (200 when
  the call ends with ``done``). An invalid body is a 422 problem before anything runs.

Every response carries ``X-Request-Id`` (the call context's request id, else the header's) and every
request writes one log line and one metrics point (:mod:`edgerag.observability`); the service sees
an instrumented env (spans for D1, Vectorize and Workers AI).

Why raw ASGI and not a framework: two routes, and the streaming path needs direct control of when
bytes are sent and of cancellation. The entry hands it to ``asgi.fetch``, which bridges the response
body into a JavaScript stream at the edge (and the local runtime's stand-in streams the same way), so
the gateway reads events while the model is still producing them. The run happens in its own task
feeding a queue: a slow reader never blocks a provider read, and when the reader goes away (the
ASGI ``http.disconnect``, or a failed send) the run is cancelled — generation stops.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any, Protocol

from edgerag.contracts.dedalus import ChatCall
from edgerag.llm import events
from edgerag.observability import Observation, annotate, finish, observe, request_id_from
from edgerag.observability.instrument import instrument_env
from edgerag.problems import NotFound, Problem, ValidationFailed
from edgerag.sse import encode_comment
from pydantic import ValidationError

from dedalus.turns import EventSink

__all__ = ["ChatRunner", "build_asgi"]

log = logging.getLogger("edgerag.dedalus")

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]
_MAX_BODY = 4 * 1024 * 1024  # a ChatCall is messages + options; 4 MiB is far past any real prompt


class ChatRunner(Protocol):
    """What the HTTP layer needs from the service (``dedalus.service.DedalusService``)."""

    async def health(self) -> dict[str, Any]: ...

    async def run(self, call: ChatCall, sink: EventSink) -> None:
        """Run the call, sending every event to ``sink``; the last one is ``done`` or ``error``."""


def build_asgi(
    runner_for: Callable[[Any], ChatRunner], *, heartbeat_s: float = 15.0
) -> Callable[[Scope, Receive, Send], Awaitable[None]]:
    """The ASGI app; ``runner_for(env)`` builds the service for a request's ``scope["env"]``."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        method, path = scope["method"].upper(), scope["path"]
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        obs = Observation(
            worker="dedalus",
            kind="request",
            request_id=request_id_from(headers),
            method=method,
            route=path if path in _ROUTES else "unmatched",
        )
        env = instrument_env(scope.get("env"))
        send = _observed(send, obs)
        with observe(obs):
            try:
                if path == "/health" and method in ("GET", "HEAD"):
                    await _json(send, 200, await runner_for(env).health())
                elif path == "/v1/chat" and method == "POST":
                    call = _parse_call(await _read_body(receive))
                    # The gateway's authenticated context is the truth about who and which request.
                    obs.request_id, obs.tenant = call.context.request_id, call.context.tenant_id
                    runner = runner_for(env)
                    if call.stream:
                        await _stream(runner, call, receive, send, heartbeat_s)
                    else:
                        await _collect(runner, call, send)
                else:
                    raise NotFound(f"dedalus serves no {method} {path}")
            except Problem as problem:
                body = {**problem.to_dict(), "request_id": obs.request_id}
                await _json(send, problem.status, body, "application/problem+json")
            except BaseException as exc:
                obs.status = obs.status or (500 if isinstance(exc, Exception) else 499)
                obs.error = type(exc).__name__
                raise
            finally:
                finish(obs, scope.get("env"))

    return app


_ROUTES = frozenset({"/health", "/v1/chat"})


def _observed(send: Send, obs: Observation) -> Send:
    """``send`` that records the status and adds ``X-Request-Id`` (read when the start is sent, so
    the id the call's context names is the one answered)."""

    async def wrapped(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            obs.status = int(message["status"])
            kept = [(k, v) for k, v in message.get("headers", []) if k.lower() != b"x-request-id"]
            message = {**message, "headers": [*kept, (b"x-request-id", obs.request_id.encode("latin-1"))]}
        await send(message)

    return wrapped


async def _read_body(receive: Receive) -> bytes:
    parts, size = [], 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return b""  # the caller is gone; an empty body fails validation and nothing runs
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > _MAX_BODY:
            raise ValidationFailed(f"the chat call exceeds {_MAX_BODY} bytes")
        parts.append(chunk)
        if not message.get("more_body"):
            return b"".join(parts)


def _parse_call(body: bytes) -> ChatCall:
    try:
        return ChatCall.model_validate_json(body)
    except ValidationError as exc:
        raise ValidationFailed.from_pydantic(exc) from exc


async def _json(send: Send, status: int, body: Any, media_type: str = "application/json") -> None:
    data = json.dumps(body, separators=(",", ":")).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", media_type.encode()), (b"content-length", str(len(data)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": data})


async def _guarded(runner: ChatRunner, call: ChatCall, sink: EventSink) -> None:
    """Run the call; a bug that escapes the service still ends the stream with a typed error."""

    async def noted(event: events.AnyEvent) -> None:
        if isinstance(event, events.ErrorEvent):
            annotate(error=event.code)  # the request's log line says how the call ended
        await sink(event)

    try:
        await runner.run(call, noted)
    except Exception:
        log.exception("chat call %s failed unexpectedly", call.context.request_id)
        await sink(events.ErrorEvent(code="internal", message="dedalus failed unexpectedly", status=500))


async def _collect(runner: ChatRunner, call: ChatCall, send: Send) -> None:
    collected: list[events.AnyEvent] = []

    async def sink(event: events.AnyEvent) -> None:
        collected.append(event)

    await _guarded(runner, call, sink)
    last = collected[-1] if collected else None
    status = last.status if isinstance(last, events.ErrorEvent) else 200
    await _json(send, status, {"events": [e.model_dump(mode="json") for e in collected]})


async def _stream(
    runner: ChatRunner, call: ChatCall, receive: Receive, send: Send, heartbeat_s: float
) -> None:
    queue: asyncio.Queue[events.AnyEvent | None] = asyncio.Queue()

    async def sink(event: events.AnyEvent) -> None:
        await queue.put(event)

    async def run() -> None:
        try:
            await _guarded(runner, call, sink)
        finally:
            await queue.put(None)

    async def watch_disconnect() -> None:
        while (await receive())["type"] != "http.disconnect":
            pass

    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [
                (b"content-type", b"text/event-stream; charset=utf-8"),
                (b"cache-control", b"no-store"),
                (b"x-accel-buffering", b"no"),
            ],
        }
    )
    async def emit(body: bytes, more: bool = True) -> bool:
        """Send a body chunk; False when the reader is gone. At the edge a reader that hangs up cancels
        the response stream and the next write fails (the ASGI bridge raises) instead of delivering an
        ``http.disconnect``: that is the same hang-up, not an error of this call."""
        try:
            await send({"type": "http.response.body", "body": body, "more_body": more})
        except Exception as exc:
            log.info("chat stream %s: the reader went away (%s); stopping", call.context.request_id, exc)
            return False
        return True

    task = asyncio.ensure_future(run())
    watcher = asyncio.ensure_future(watch_disconnect())
    try:
        while True:
            getter = asyncio.ensure_future(queue.get())
            done, _ = await asyncio.wait(
                {getter, watcher}, timeout=heartbeat_s, return_when=asyncio.FIRST_COMPLETED
            )
            if watcher in done:
                getter.cancel()
                log.info("chat stream %s: the reader went away; stopping", call.context.request_id)
                return
            if getter not in done:
                getter.cancel()
                if not await emit(encode_comment("keep-alive")):
                    return
                continue
            event = getter.result()
            if event is None:
                break
            if not await emit(events.encode(event)):
                return
        await emit(b"", more=False)
    finally:
        watcher.cancel()
        if not task.done():
            task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
