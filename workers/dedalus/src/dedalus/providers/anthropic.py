"""Anthropic's Messages API (``POST {base_url}/v1/messages``) behind the provider port.

Request: headers ``x-api-key`` and ``anthropic-version`` (default ``2023-06-01``); body ``model``,
``max_tokens`` (required by Anthropic: :data:`DEFAULT_MAX_TOKENS` when the caller names none),
``messages``, ``system``, ``tools``, ``temperature``, ``stream``, and ``ProviderRequest.options`` at
the top level except the keys this adapter owns (:data:`RESERVED`, an ``INVALID_REQUEST``). The
provider-neutral messages are translated:

- ``system`` messages are joined into the top-level ``system`` (the Messages API has no system role);
- assistant ``tool_calls`` become ``tool_use`` blocks (``input`` is the parsed arguments; arguments
  that are not a JSON object — the model's own earlier mistake, already answered with an error
  result — are sent as ``{}`` because Anthropic only accepts an object there);
- ``tool`` messages become ``tool_result`` blocks in a user turn; consecutive turns of one role are
  merged into one turn (so parallel tool results share one user message, as Anthropic requires), with
  ``tool_result`` blocks first in it;
- tool specs become ``{name, description, input_schema}``.

Prompt caching (``cache_prompt=True``, the default): the system prompt is sent as one text block and it
and the last tool definition carry ``cache_control: {"type": "ephemeral"}``, which caches the tools and
the system prompt as a prefix (below the model's minimum cacheable length Anthropic silently caches
nothing). Usage maps ``input_tokens + cache_read_input_tokens + cache_creation_input_tokens`` to
``prompt_tokens`` (Anthropic's ``input_tokens`` excludes both, OpenAI's ``prompt_tokens`` includes
cached tokens, and the provider-neutral :class:`~edgerag.llm.types.Usage` follows OpenAI) and
``cache_read_input_tokens`` to ``cached_prompt_tokens``.

``stop_reason``: ``end_turn`` / ``stop_sequence`` / ``pause_turn`` -> ``stop``, ``max_tokens`` ->
``length``, ``tool_use`` -> ``tool_calls``, ``refusal`` -> ``content_filter``.

Streaming (SSE parsed by :mod:`edgerag.sse`; each event's ``data`` carries its ``type``):
``message_start`` (usage: input and cache counts), ``content_block_start`` (``text`` or ``tool_use``
with ``id`` and ``name``), ``content_block_delta`` (``text_delta`` -> a text part; ``input_json_delta``
``partial_json`` pieces assembled per block ``index`` until ``content_block_stop`` -> one complete tool
call), ``message_delta`` (``stop_reason``; ``usage.output_tokens`` is cumulative), ``message_stop``
(the end), ``ping`` (ignored), ``error`` mid-stream (``overloaded_error``, ``api_error`` -> ``SERVER``,
retryable; ``invalid_request_error`` -> ``INVALID_REQUEST``). Unknown events and delta types
(``thinking_delta``, ``signature_delta``, ``citations_delta`` ...) are ignored, as Anthropic's
versioning policy asks. A stream that ends before ``message_stop`` is truncated (``BAD_RESPONSE``).
HTTP ``529`` (overloaded) is ``SERVER`` like any 5xx.

Shapes from: https://docs.anthropic.com/en/api/messages-streaming (event flow, ``error`` events,
``input_json_delta``), https://docs.anthropic.com/en/docs/build-with-claude/prompt-caching
(``cache_control``, ``cache_read_input_tokens``, ``cache_creation_input_tokens``),
https://docs.anthropic.com/en/docs/build-with-claude/tool-use (``tool_use`` / ``tool_result``,
results first in the user turn), https://docs.anthropic.com/en/api/errors (error body, 529);
anthropics/anthropic-sdk-python ``src/anthropic/types/usage.py``, ``message_delta_usage.py``
("cumulative" counts) and ``src/anthropic/_streaming.py`` (``ping`` skipped, ``error`` raised).
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Callable
from contextlib import aclosing
from dataclasses import dataclass, field
from typing import Any

from edgerag.llm.events import FinishReason
from edgerag.llm.types import ChatMessage, ToolCall, ToolSpec, Usage
from edgerag.ports import HttpClient, HttpResponse
from pydantic import ValidationError

from dedalus.providers.base import (
    Completion,
    FailureKind,
    FinishPart,
    ProviderError,
    ProviderRequest,
    StreamPart,
    TextDelta,
    ToolCallPart,
    UsagePart,
)
from dedalus.providers.wire import bad_response, parse_json_data, post_json, read_json, sse_events

__all__ = ["DEFAULT_MAX_TOKENS", "RESERVED", "AnthropicProvider"]

DEFAULT_MAX_TOKENS = 1024
RESERVED = frozenset({"model", "messages", "system", "tools", "max_tokens", "temperature", "stream"})
_EPHEMERAL = {"type": "ephemeral"}
_STOP: dict[str, FinishReason] = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "pause_turn": "stop",
    "max_tokens": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}
_STREAM_ERRORS = {
    "invalid_request_error": FailureKind.INVALID_REQUEST,
    "not_found_error": FailureKind.INVALID_REQUEST,
    "request_too_large": FailureKind.INVALID_REQUEST,
    "authentication_error": FailureKind.AUTH,
    "permission_error": FailureKind.AUTH,
    "rate_limit_error": FailureKind.RATE_LIMITED,
    "timeout_error": FailureKind.TIMEOUT,
}  # anything else (overloaded_error, api_error, new types) -> SERVER


class AnthropicProvider:
    def __init__(
        self,
        name: str,
        api_key: str,
        http: HttpClient,
        base_url: str = "https://api.anthropic.com",
        version: str = "2023-06-01",
        *,
        cache_prompt: bool = True,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._name = name
        self._api_key = api_key
        self._http = http
        self._url = base_url.rstrip("/") + "/v1/messages"
        self._version = version
        self._cache_prompt = cache_prompt
        self._clock = clock

    @property
    def name(self) -> str:
        return self._name

    def __repr__(self) -> str:  # never the key
        return f"AnthropicProvider(name={self._name!r}, url={self._url!r})"

    async def complete(self, request: ProviderRequest) -> Completion:
        payload = await read_json(await self._post(request, stream=False), self._name)
        content = payload.get("content")
        if not isinstance(content, list):
            raise bad_response(self._name, "the message has no content list")
        texts: list[str] = []
        calls: list[ToolCall] = []
        for block in content:
            if not isinstance(block, dict):
                raise bad_response(self._name, "a content block is not an object")
            if block.get("type") == "text" and isinstance(block.get("text"), str):
                texts.append(block["text"])
            elif block.get("type") == "tool_use":
                calls.append(
                    self._call(block.get("id"), block.get("name"), json.dumps(block.get("input", {})))
                )
        usage = _Counts()
        usage.update(payload.get("usage"))
        return Completion(
            text="".join(texts),
            tool_calls=calls,
            usage=usage.usage(),
            finish_reason=_stop_reason(payload.get("stop_reason")),
        )

    async def stream(self, request: ProviderRequest) -> AsyncIterator[StreamPart]:
        response = await self._post(request, stream=True)
        state = _StreamState()
        try:
            async with aclosing(sse_events(response, self._name)) as events:
                async for event in events:
                    data = parse_json_data(event, self._name)
                    for part in self._event(str(data.get("type") or event.event), data, state):
                        yield part
                    if state.stopped:
                        break
        finally:
            await response.aclose()
        if not state.stopped:
            raise bad_response(self._name, "truncated stream (it ended without message_stop)")
        yield UsagePart(state.counts.usage())
        yield FinishPart(_stop_reason(state.stop_reason))

    # -- request --------------------------------------------------------------------------------

    async def _post(self, request: ProviderRequest, *, stream: bool) -> HttpResponse:
        if not self._api_key:
            raise ProviderError(
                FailureKind.CONFIGURATION, f"{self._name}: no API key is configured", provider=self._name
            )
        headers = {
            "content-type": "application/json",
            "accept": "text/event-stream" if stream else "application/json",
            "x-api-key": self._api_key,
            "anthropic-version": self._version,
        }
        return await post_json(
            self._http,
            self._url,
            provider=self._name,
            headers=headers,
            body=self._body(request, stream=stream),
            secrets=[self._api_key],
            now=self._clock,
        )

    def _body(self, request: ProviderRequest, *, stream: bool) -> dict[str, Any]:
        clash = sorted(RESERVED.intersection(request.options))
        if clash:
            raise ProviderError(
                FailureKind.INVALID_REQUEST,
                f"{self._name}: provider options may not set {', '.join(clash)}",
                provider=self._name,
            )
        system, turns = _turns(request.messages)
        body: dict[str, Any] = {
            "model": request.model,
            "max_tokens": request.max_tokens if request.max_tokens is not None else DEFAULT_MAX_TOKENS,
            "messages": turns,
        }
        if system:
            body["system"] = (
                [{"type": "text", "text": system, "cache_control": _EPHEMERAL}]
                if self._cache_prompt
                else system
            )
        if request.tools:
            body["tools"] = [_tool(t) for t in request.tools]
            if self._cache_prompt:
                body["tools"][-1]["cache_control"] = _EPHEMERAL
        if request.temperature is not None:
            body["temperature"] = request.temperature
        if stream:
            body["stream"] = True
        body.update(request.options)
        return body

    # -- response -------------------------------------------------------------------------------

    def _call(self, call_id: Any, name: Any, arguments: str) -> ToolCall:
        try:
            return ToolCall(id=call_id, name=name, arguments=arguments)
        except ValidationError as exc:
            raise bad_response(self._name, "a tool_use block has no valid id or name") from exc

    def _event(self, kind: str, data: dict[str, Any], state: _StreamState) -> list[StreamPart]:
        if kind == "message_start":
            message = data.get("message")
            if isinstance(message, dict):
                state.counts.update(message.get("usage"))
        elif kind == "content_block_start":
            block = data.get("content_block")
            if isinstance(block, dict) and block.get("type") == "tool_use":
                initial = block.get("input")
                state.blocks[_index(data, self._name)] = _ToolBlock(
                    id=block.get("id"),
                    name=block.get("name"),
                    initial=json.dumps(initial) if isinstance(initial, dict) and initial else "",
                )
        elif kind == "content_block_delta":
            return self._delta(data, state)
        elif kind == "content_block_stop":
            tool = state.blocks.pop(_index(data, self._name), None)
            if tool is not None:
                arguments = "".join(tool.parts) or tool.initial or "{}"
                return [ToolCallPart(self._call(tool.id, tool.name, arguments))]
        elif kind == "message_delta":
            delta = data.get("delta")
            if isinstance(delta, dict) and delta.get("stop_reason") is not None:
                state.stop_reason = delta["stop_reason"]
            state.counts.update(data.get("usage"))
        elif kind == "message_stop":
            state.stopped = True
        elif kind == "error":
            raise self._stream_error(data.get("error"))
        return []  # ping and event types this version does not know

    def _delta(self, data: dict[str, Any], state: _StreamState) -> list[StreamPart]:
        delta = data.get("delta")
        if not isinstance(delta, dict):
            raise bad_response(self._name, "a content_block_delta has no delta")
        if delta.get("type") == "text_delta" and isinstance(delta.get("text"), str):
            return [TextDelta(delta["text"])] if delta["text"] else []
        if delta.get("type") == "input_json_delta":
            tool = state.blocks.get(_index(data, self._name))
            if tool is None:
                raise bad_response(self._name, "input_json_delta for a block that is not a tool_use")
            if isinstance(delta.get("partial_json"), str):
                tool.parts.append(delta["partial_json"])
        return []

    def _stream_error(self, error: Any) -> ProviderError:
        kind_name = error.get("type") if isinstance(error, dict) else None
        message = error.get("message") if isinstance(error, dict) else None
        if not isinstance(kind_name, str):
            kind_name = None
        text = f"{self._name} reported {kind_name or 'an error'} mid-stream"
        if isinstance(message, str) and message:
            text += f": {message[:300]}"
        kind = _STREAM_ERRORS.get(kind_name or "", FailureKind.SERVER)
        return ProviderError(kind, text, provider=self._name)


@dataclass
class _ToolBlock:
    id: Any
    name: Any
    initial: str
    parts: list[str] = field(default_factory=list)


@dataclass
class _Counts:
    input: int = 0
    cache_read: int = 0
    cache_creation: int = 0
    output: int = 0

    def update(self, raw: Any) -> None:
        """Fold in a usage object; counts are cumulative, so a later value replaces an earlier one."""
        if not isinstance(raw, dict):
            return
        for attr, key in (
            ("input", "input_tokens"),
            ("cache_read", "cache_read_input_tokens"),
            ("cache_creation", "cache_creation_input_tokens"),
            ("output", "output_tokens"),
        ):
            value = raw.get(key)
            if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
                setattr(self, attr, value)

    def usage(self) -> Usage:
        return Usage(
            prompt_tokens=self.input + self.cache_read + self.cache_creation,
            completion_tokens=self.output,
            cached_prompt_tokens=self.cache_read,
        )


@dataclass
class _StreamState:
    blocks: dict[int, _ToolBlock] = field(default_factory=dict)
    counts: _Counts = field(default_factory=_Counts)
    stop_reason: Any = None
    stopped: bool = False


def _index(data: dict[str, Any], provider: str) -> int:
    index = data.get("index")
    if not isinstance(index, int) or isinstance(index, bool):
        raise bad_response(provider, "a content block event has no integer index")
    return index


def _stop_reason(raw: Any) -> FinishReason:
    return _STOP.get(raw, "stop") if isinstance(raw, str) else "stop"


def _tool(spec: ToolSpec) -> dict[str, Any]:
    return {"name": spec.name, "description": spec.description, "input_schema": spec.parameters}


def _tool_input(arguments: str) -> dict[str, Any]:
    try:
        parsed = json.loads(arguments or "{}")
    except ValueError:
        return {}
    return parsed if isinstance(parsed, dict) else {}


def _blocks(message: ChatMessage) -> list[dict[str, Any]]:
    if message.role == "tool":
        return [
            {"type": "tool_result", "tool_use_id": message.tool_call_id, "content": message.content or ""}
        ]
    blocks: list[dict[str, Any]] = []
    if message.content:  # Anthropic rejects empty text blocks
        blocks.append({"type": "text", "text": message.content})
    for call in message.tool_calls or []:
        blocks.append(
            {"type": "tool_use", "id": call.id, "name": call.name, "input": _tool_input(call.arguments)}
        )
    return blocks


def _turns(messages: list[ChatMessage]) -> tuple[str, list[dict[str, Any]]]:
    """(the system prompt, the alternating user/assistant turns)."""
    system: list[str] = []
    turns: list[dict[str, Any]] = []
    for message in messages:
        if message.role == "system":
            if message.content:
                system.append(message.content)
            continue
        role = "assistant" if message.role == "assistant" else "user"
        blocks = _blocks(message)
        if not blocks:
            continue
        if turns and turns[-1]["role"] == role:
            turns[-1]["content"].extend(blocks)
        else:
            turns.append({"role": role, "content": blocks})
    for turn in turns:
        # tool results must open the user turn that answers the tool calls
        turn["content"].sort(key=lambda block: block["type"] != "tool_result")
        if len(turn["content"]) == 1 and turn["content"][0]["type"] == "text":
            turn["content"] = turn["content"][0]["text"]
    return "\n\n".join(system), turns
