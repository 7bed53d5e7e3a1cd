"""Builders for the scripted replies: OpenAI and Anthropic bodies and streams from simple arguments.

Each builder returns a :class:`~edgerag_local.fakeprovider.server.Respond` or
:class:`~edgerag_local.fakeprovider.server.Stream` (or the raw dicts/bytes, for tests that want to
take them apart and break them). The shapes are the documented ones (see the adapters' docstrings in
``dedalus.providers`` for the sources):

- OpenAI ``chat.completion`` / ``chat.completion.chunk``: text deltas, tool-call fragments keyed by
  ``index`` (``id`` and ``name`` first, then argument pieces), ``finish_reason``, the usage chunk with
  ``"choices": []`` and ``data: [DONE]``;
- Anthropic ``message`` and its event stream: ``message_start``, ``ping``, ``content_block_start`` /
  ``_delta`` (``text_delta``, ``input_json_delta``) / ``_stop``, ``message_delta``, ``message_stop``.

``pause`` puts a :class:`Pause` between every two events (for incrementality and stall tests).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from edgerag.sse import encode_event

from edgerag_local.fakeprovider.server import Pause, Respond, Stream

__all__ = [
    "DEFAULT_TOKENS",
    "FakeToolCall",
    "Tokens",
    "anthropic_events",
    "anthropic_message",
    "anthropic_stream",
    "error_reply",
    "invalid_json",
    "json_reply",
    "openai_chunks",
    "openai_completion",
    "openai_stream",
    "sse",
    "sse_stream",
]

MODEL = "fake-model"


@dataclass(frozen=True)
class FakeToolCall:
    """A tool call to script. ``arguments`` as a sequence is streamed one piece per event."""

    name: str
    arguments: str | Sequence[str] = "{}"
    id: str | None = None

    def pieces(self) -> list[str]:
        return [self.arguments] if isinstance(self.arguments, str) else list(self.arguments)

    def text(self) -> str:
        return "".join(self.pieces())

    def call_id(self, index: int, prefix: str) -> str:
        return self.id or f"{prefix}{index}"


@dataclass(frozen=True)
class Tokens:
    """Usage to report. For Anthropic ``prompt`` is ``input_tokens`` (the uncached part),
    ``cached`` is ``cache_read_input_tokens`` and ``cache_write`` ``cache_creation_input_tokens``; for
    OpenAI ``prompt`` is ``prompt_tokens`` (cached included) and ``cached`` its ``cached_tokens``."""

    prompt: int
    completion: int
    cached: int = 0
    cache_write: int = 0

    def openai(self) -> dict[str, Any]:
        return {
            "prompt_tokens": self.prompt,
            "completion_tokens": self.completion,
            "total_tokens": self.prompt + self.completion,
            "prompt_tokens_details": {"cached_tokens": self.cached},
        }

    def anthropic(self) -> dict[str, Any]:
        return {
            "input_tokens": self.prompt,
            "output_tokens": self.completion,
            "cache_read_input_tokens": self.cached,
            "cache_creation_input_tokens": self.cache_write,
        }


DEFAULT_TOKENS = Tokens(12, 5)


# -- generic ------------------------------------------------------------------------------------


def json_reply(body: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> Respond:
    return Respond(status=status, body=json.dumps(body).encode(), headers=dict(headers or {}))


def invalid_json(status: int = 200) -> Respond:
    return Respond(status=status, body=b'{"choices": [ this is not JSON')


def error_reply(
    status: int,
    message: str = "scripted failure",
    *,
    headers: Mapping[str, str] | None = None,
    style: Literal["openai", "anthropic"] = "openai",
    error_type: str = "api_error",
) -> Respond:
    """An error body in the provider's documented shape."""
    if style == "anthropic":
        body: dict[str, Any] = {"type": "error", "error": {"type": error_type, "message": message}}
    else:
        body = {"error": {"message": message, "type": error_type, "param": None, "code": None}}
    return json_reply(body, status=status, headers=headers)


def sse(data: Any, event: str | None = None) -> bytes:
    """One server-sent event (``data`` as JSON unless it is already text)."""
    return encode_event(data if isinstance(data, str) else json.dumps(data), event=event)


def sse_stream(
    pieces: Sequence[bytes],
    *,
    pause: float | None = None,
    end: Literal["complete", "drop", "stall"] = "complete",
    headers: Mapping[str, str] | None = None,
) -> Stream:
    items: list[bytes | Pause] = []
    for i, piece in enumerate(pieces):
        if pause is not None and i:
            items.append(Pause(pause))
        items.append(piece)
    return Stream(pieces=items, end=end, headers=dict(headers or {}))


# -- OpenAI -------------------------------------------------------------------------------------


def openai_completion(
    text: str | None = None,
    tool_calls: Sequence[FakeToolCall] = (),
    *,
    usage: Tokens | None = DEFAULT_TOKENS,
    finish_reason: str | None = None,
) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": text, "refusal": None}
    if tool_calls:
        message["tool_calls"] = [
            {
                "id": c.call_id(i, "call_"),
                "type": "function",
                "function": {"name": c.name, "arguments": c.text()},
            }
            for i, c in enumerate(tool_calls)
        ]
    body: dict[str, Any] = {
        "id": "chatcmpl-fake",
        "object": "chat.completion",
        "created": 1700000000,
        "model": MODEL,
        "choices": [
            {
                "index": 0,
                "message": message,
                "logprobs": None,
                "finish_reason": finish_reason or ("tool_calls" if tool_calls else "stop"),
            }
        ],
    }
    if usage is not None:
        body["usage"] = usage.openai()
    return body


def openai_chunks(
    text: Sequence[str] = (),
    tool_calls: Sequence[FakeToolCall] = (),
    *,
    usage: Tokens | None = DEFAULT_TOKENS,
    finish_reason: str | None = None,
) -> list[dict[str, Any]]:
    """The chunk objects of a streamed completion (without ``[DONE]``)."""
    deltas: list[dict[str, Any]] = [{"role": "assistant", "content": ""}]
    deltas += [{"content": piece} for piece in text]
    for i, call in enumerate(tool_calls):
        first = {"index": i, "id": call.call_id(i, "call_"), "type": "function"}
        deltas.append({"tool_calls": [{**first, "function": {"name": call.name, "arguments": ""}}]})
        deltas += [{"tool_calls": [{"index": i, "function": {"arguments": p}}]} for p in call.pieces()]
    reason = finish_reason or ("tool_calls" if tool_calls else "stop")
    choices: list[list[dict[str, Any]]] = [
        [{"index": 0, "delta": d, "logprobs": None, "finish_reason": None}] for d in deltas
    ]
    choices.append([{"index": 0, "delta": {}, "logprobs": None, "finish_reason": reason}])
    chunks = [_chunk(c) for c in choices]
    if usage is not None:
        chunks.append({**_chunk([]), "usage": usage.openai()})
    return chunks


def _chunk(choices: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "id": "chatcmpl-fake",
        "object": "chat.completion.chunk",
        "created": 1700000000,
        "model": MODEL,
        "choices": choices,
    }


def openai_stream(
    text: Sequence[str] = (),
    tool_calls: Sequence[FakeToolCall] = (),
    *,
    usage: Tokens | None = DEFAULT_TOKENS,
    finish_reason: str | None = None,
    pause: float | None = None,
    done: bool = True,
    end: Literal["complete", "drop", "stall"] = "complete",
) -> Stream:
    pieces = [sse(c) for c in openai_chunks(text, tool_calls, usage=usage, finish_reason=finish_reason)]
    if done:
        pieces.append(sse("[DONE]"))
    return sse_stream(pieces, pause=pause, end=end)


# -- Anthropic ----------------------------------------------------------------------------------


def anthropic_message(
    text: str | None = None,
    tool_calls: Sequence[FakeToolCall] = (),
    *,
    usage: Tokens = DEFAULT_TOKENS,
    stop_reason: str | None = None,
) -> dict[str, Any]:
    content: list[dict[str, Any]] = [{"type": "text", "text": text}] if text else []
    content += [
        {"type": "tool_use", "id": c.call_id(i, "toolu_"), "name": c.name, "input": json.loads(c.text())}
        for i, c in enumerate(tool_calls)
    ]
    return {
        "id": "msg_fake",
        "type": "message",
        "role": "assistant",
        "model": MODEL,
        "content": content,
        "stop_reason": stop_reason or ("tool_use" if tool_calls else "end_turn"),
        "stop_sequence": None,
        "usage": usage.anthropic(),
    }


def anthropic_events(
    text: Sequence[str] = (),
    tool_calls: Sequence[FakeToolCall] = (),
    *,
    usage: Tokens = DEFAULT_TOKENS,
    stop_reason: str | None = None,
    stop: bool = True,
) -> list[bytes]:
    """The events of a streamed message, each one SSE event (``stop=False`` leaves out ``message_stop``)."""
    start_usage = {**usage.anthropic(), "output_tokens": 1}
    message = {**anthropic_message(usage=usage), "content": [], "stop_reason": None, "usage": start_usage}
    events: list[tuple[str, dict[str, Any]]] = [
        ("message_start", {"message": message}),
        ("ping", {}),
    ]
    index = 0
    if text:
        events.append(
            ("content_block_start", {"index": index, "content_block": {"type": "text", "text": ""}})
        )
        events += [
            ("content_block_delta", {"index": index, "delta": {"type": "text_delta", "text": piece}})
            for piece in text
        ]
        events.append(("content_block_stop", {"index": index}))
        index += 1
    for i, call in enumerate(tool_calls):
        block = {"type": "tool_use", "id": call.call_id(i, "toolu_"), "name": call.name, "input": {}}
        events.append(("content_block_start", {"index": index, "content_block": block}))
        events += [
            (
                "content_block_delta",
                {"index": index, "delta": {"type": "input_json_delta", "partial_json": p}},
            )
            for p in call.pieces()
        ]
        events.append(("content_block_stop", {"index": index}))
        index += 1
    reason = stop_reason or ("tool_use" if tool_calls else "end_turn")
    events.append(
        (
            "message_delta",
            {
                "delta": {"stop_reason": reason, "stop_sequence": None},
                "usage": {"output_tokens": usage.completion},
            },
        )
    )
    if stop:
        events.append(("message_stop", {}))
    return [sse({"type": name, **data}, event=name) for name, data in events]


def anthropic_stream(
    text: Sequence[str] = (),
    tool_calls: Sequence[FakeToolCall] = (),
    *,
    usage: Tokens = DEFAULT_TOKENS,
    stop_reason: str | None = None,
    pause: float | None = None,
    stop: bool = True,
    end: Literal["complete", "drop", "stall"] = "complete",
) -> Stream:
    events = anthropic_events(text, tool_calls, usage=usage, stop_reason=stop_reason, stop=stop)
    return sse_stream(events, pause=pause, end=end)
