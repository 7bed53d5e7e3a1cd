"""The HTTP plumbing both HTTP adapters share: send a JSON request, read a JSON or SSE answer.

Every transport failure becomes a :class:`ProviderError` here, so the adapters only translate
shapes:

- no response at all (the :class:`~edgerag.ports.HttpClient` raised ``OSError``: DNS, refused, reset)
  -> ``SERVER``;
- a non-2xx status -> :func:`dedalus.providers.http_errors.status_error` (body read for the
  provider's message, connection released);
- a body cut off, invalid JSON, an event stream that breaks the SSE parser's limits or ends in the
  middle of an event -> ``BAD_RESPONSE``.

Event streams are parsed with :class:`edgerag.sse.SseParser` (the WHATWG rules: multi-line data,
comments, any line ending, chunks split anywhere). The adapters decide what a complete stream is
(OpenAI's ``[DONE]``, Anthropic's ``message_stop``); this module only reports a stream that stopped
mid-event.

Nothing here retries or times out: the resilience layer wraps each attempt.
"""

from __future__ import annotations

import json
from collections.abc import AsyncGenerator, Callable, Iterable, Mapping
from typing import Any

from edgerag.ports import HttpClient, HttpResponse
from edgerag.sse import SseError, SseEvent, SseParser

from dedalus.providers.base import FailureKind, ProviderError
from dedalus.providers.http_errors import redact, status_error

__all__ = ["bad_response", "parse_json_data", "post_json", "read_json", "sse_events"]


def bad_response(provider: str, message: str) -> ProviderError:
    return ProviderError(FailureKind.BAD_RESPONSE, f"{provider}: {message}", provider=provider)


async def post_json(
    http: HttpClient,
    url: str,
    *,
    provider: str,
    headers: Mapping[str, str],
    body: Mapping[str, Any],
    secrets: Iterable[str | None],
    now: Callable[[], float],
) -> HttpResponse:
    """POST ``body`` as JSON; returns a 2xx response whose body is still unread."""
    secrets = list(secrets)
    data = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    try:
        response = await http.request("POST", url, headers=headers, body=data)
    except OSError as exc:
        detail = redact(str(exc) or type(exc).__name__, secrets)
        raise ProviderError(
            FailureKind.SERVER, f"{provider}: no response ({detail})", provider=provider
        ) from exc
    if 200 <= response.status <= 299:
        return response
    try:
        raw = await response.read()
    except OSError:
        raw = b""
    finally:
        await response.aclose()
    raise status_error(provider, response.status, response.headers, raw, secrets=secrets, now=now)


async def read_json(response: HttpResponse, provider: str) -> dict[str, Any]:
    """The whole body as a JSON object (and the connection released)."""
    try:
        raw = await response.read()
    except OSError as exc:
        raise bad_response(provider, "the response body was cut off") from exc
    finally:
        await response.aclose()
    try:
        parsed = json.loads(raw)
    except ValueError as exc:
        raise bad_response(provider, "the response is not valid JSON") from exc
    if not isinstance(parsed, dict):
        raise bad_response(provider, "the response is not a JSON object")
    return parsed


async def sse_events(response: HttpResponse, provider: str) -> AsyncGenerator[SseEvent, None]:
    """The response's server-sent events as they arrive.

    Raises ``BAD_RESPONSE`` when the connection drops or the stream ends inside an event. The caller
    owns ``response`` (closes it when done, including when it stops reading early).
    """
    parser = SseParser()
    try:
        async for chunk in response.aiter_bytes():
            for event in parser.feed(chunk):
                yield event
    except OSError as exc:
        raise bad_response(provider, "truncated stream (the connection was lost)") from exc
    except SseError as exc:
        raise bad_response(provider, f"malformed stream ({exc})") from exc
    if parser.close():
        raise bad_response(provider, "truncated stream (it ended inside an event)")


def parse_json_data(event: SseEvent, provider: str) -> dict[str, Any]:
    """One event's data as a JSON object (``BAD_RESPONSE`` otherwise)."""
    try:
        parsed = json.loads(event.data)
    except ValueError as exc:
        raise bad_response(provider, "a stream event is not valid JSON") from exc
    if not isinstance(parsed, dict):
        raise bad_response(provider, "a stream event is not a JSON object")
    return parsed
