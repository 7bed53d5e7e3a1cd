"""The gateway's client of the dedalus worker: send a :class:`~edgerag.contracts.dedalus.ChatCall`
over the service binding and read back the normalised event stream as it is produced.

:meth:`DedalusClient.chat` always yields a well-formed sequence ending in exactly one terminal
event (``done`` or ``error``), whatever happens on the way: an error reply from dedalus becomes an
``error`` event, a stream that ends early becomes an ``interrupted`` error (``partial`` when tokens
had arrived), and event types this gateway does not know are skipped (a newer dedalus may add some).
Callers therefore have one loop to write, for the streaming and the JSON paths alike.

The binding's ``fetch`` is used rather than RPC because the answer is a stream (streams over Python
RPC are unconfirmed); the URL's host is not used for routing by service bindings.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from typing import Any

from edgerag.contracts.dedalus import ChatCall
from edgerag.llm import events
from edgerag.observability import annotate, count
from edgerag.sse import SseError, SseParser
from edgerag.streams import iter_bytes

__all__ = ["CHAT_URL", "DedalusClient"]

log = logging.getLogger("edgerag.gateway")

CHAT_URL = "https://dedalus.internal/v1/chat"


class DedalusClient:
    def __init__(self, binding: Any) -> None:
        self._binding = binding

    async def chat(self, call: ChatCall) -> AsyncIterator[events.AnyEvent]:
        """The call's events as dedalus sends them (streamed if ``call.stream``), ending terminally."""
        try:
            response = await self._binding.fetch(
                CHAT_URL,
                method="POST",
                headers={
                    "content-type": "application/json",
                    "accept": "text/event-stream" if call.stream else "application/json",
                    "x-request-id": call.context.request_id,
                },
                body=call.model_dump_json(),
            )
        except Exception:
            log.exception("dedalus is unreachable for %s", call.context.request_id)
            yield events.ErrorEvent(
                code="unavailable", message="the model service is unreachable", status=503
            )
            return
        content_type = (response.headers.get("content-type") or "").split(";")[0].strip().lower()
        if content_type == "text/event-stream":
            async for event in self._from_stream(response, call):
                _observe(event)
                yield event
        else:
            for event in await self._from_json(response, call):
                _observe(event)
                yield event

    async def _from_stream(self, response: Any, call: ChatCall) -> AsyncIterator[events.AnyEvent]:
        parser = SseParser()
        tokens = False
        chunks = iter_bytes(response.body)
        try:
            async for chunk in chunks:
                for sse in parser.feed(chunk):
                    try:
                        event = events.decode(sse)
                    except events.UnknownEventError:
                        continue
                    tokens = tokens or isinstance(event, events.TokenEvent)
                    yield event
                    if isinstance(event, events.DoneEvent | events.ErrorEvent):
                        return
        except (SseError, ValueError) as exc:
            log.error("dedalus sent an invalid event stream for %s: %s", call.context.request_id, exc)
        except OSError as exc:
            log.error("the dedalus stream for %s broke: %s", call.context.request_id, exc)
        finally:
            await chunks.aclose()  # stop reading: dedalus sees the hang-up and stops generating
        parser.close()
        yield events.ErrorEvent(
            code="interrupted",
            message="the model service's stream ended before the answer was complete",
            status=502,
            partial=tokens,
        )

    async def _from_json(self, response: Any, call: ChatCall) -> list[events.AnyEvent]:
        raw = b"".join([chunk async for chunk in iter_bytes(response.body)])
        try:
            body = json.loads(raw)
        except ValueError:
            body = None
        if isinstance(body, dict) and isinstance(body.get("events"), list):
            out: list[events.AnyEvent] = []
            for item in body["events"]:
                try:
                    out.append(events.validate(item))
                except events.UnknownEventError:
                    continue
                except ValueError:
                    log.error("dedalus sent an invalid event for %s", call.context.request_id)
                    break
            if out and isinstance(out[-1], events.DoneEvent | events.ErrorEvent):
                return out
            return [
                *out,
                events.ErrorEvent(
                    code="upstream", message="the model service's reply was incomplete", status=502
                ),
            ]
        # A problem document (dedalus refused the call: a gateway bug) or something else entirely.
        detail = body.get("detail") if isinstance(body, dict) else None
        log.error("dedalus answered %s for %s: %s", response.status, call.context.request_id, detail)
        return [events.ErrorEvent(code="internal", message="the model service refused the call", status=500)]


def _observe(event: events.AnyEvent) -> None:
    """The request's log line and metrics get the model and tokens of each model turn."""
    if isinstance(event, events.UsageEvent):
        annotate(model=event.model, provider=event.provider)
        count("tokens_in", event.usage.prompt_tokens)
        count("tokens_out", event.usage.completion_tokens)
    elif isinstance(event, events.ErrorEvent):
        annotate(error=event.code)
