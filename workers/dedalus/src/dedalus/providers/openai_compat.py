"""OpenAI-compatible chat completions (``POST {base_url}/chat/completions``) behind the provider port.

One adapter serves every server that speaks OpenAI's chat completions: OpenAI
(``https://api.openai.com/v1``), Dedalus Labs (``https://api.dedaluslabs.ai/v1``), Groq
(``https://api.groq.com/openai/v1``), and local llama.cpp / vLLM / Ollama
(``http://127.0.0.1:11434/v1``: no key, so ``api_key=None`` sends no ``Authorization`` header;
whether a key is required for a non-local URL is the caller's policy, not this adapter's).

Request: ``model``, ``messages`` (assistant ``tool_calls`` as ``{"id", "type": "function",
"function": {"name", "arguments"}}``, ``tool`` messages with ``tool_call_id``), ``tools`` as
``{"type": "function", "function": {"name", "description", "parameters"}}``, ``max_tokens``,
``temperature``; streamed calls add ``"stream": true`` and ``"stream_options": {"include_usage":
true}``. ``ProviderRequest.options`` go to the top level untouched (Dedalus Labs' ``mcp_servers``,
``handoff_config``, ``guardrails`` ...), except the keys this adapter owns (:data:`RESERVED`): an
option may not swap the model (that would bypass the tenant's allow-list), the messages, the tools or
the token limit, and trying is an ``INVALID_REQUEST`` before anything is sent.

Answer, not streamed: ``choices[0].message.content`` / ``.tool_calls``, ``choices[0].finish_reason``,
``usage.prompt_tokens`` / ``completion_tokens`` / ``prompt_tokens_details.cached_tokens``.

Answer, streamed (SSE parsed by :mod:`edgerag.sse`): ``chat.completion.chunk`` objects whose
``choices[0].delta`` carries ``content`` pieces and ``tool_calls`` fragments keyed by ``index`` (the
``id`` and ``function.name`` in the first fragment of a call, ``function.arguments`` as text pieces to
concatenate); ``finish_reason`` on the last choice chunk; with ``include_usage`` one more chunk with
``"choices": []`` and ``usage``; then ``data: [DONE]``. A stream that ends before ``[DONE]`` or never
gave a ``finish_reason`` is truncated (``BAD_RESPONSE``); a chunk that is not JSON is
``BAD_RESPONSE``; a chunk ``{"error": {...}}`` (how vLLM and proxies report a failure after the 200)
is ``SERVER``.

Leniency for local servers, each seen in the field: a tool call without an ``id`` gets ``call_<index>``;
``arguments`` sent as a JSON object instead of text is re-serialised; ``finish_reason: "stop"`` with
tool calls present is reported as ``tool_calls``; ``function_call`` (the deprecated name) means
``tool_calls``; an unknown finish reason is ``stop``. A response without ``usage`` gives zero counts
(the caller estimates).

Shapes from: openai/openai-python ``src/openai/types/chat/chat_completion_chunk.py`` (ChoiceDelta,
ChoiceDeltaToolCall with ``index``, ``usage`` "only on the last chunk ... include_usage", ``choices``
"can also be empty for the last chunk"), ``chat_completion.py``, ``completion_usage.py``
(``prompt_tokens_details.cached_tokens``), ``_base_client.py`` (``retry-after-ms`` before
``retry-after``); https://platform.openai.com/docs/api-reference/chat-streaming; Dedalus Labs:
dedalus-labs/dedalus-sdk-python ``src/dedalus_labs/resources/chat/completions.py`` (POST
``/v1/chat/completions``, ``Authorization: Bearer``, ``mcp_servers``, ``handoff_config``, the same
chunk and ``[DONE]`` stream).
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import aclosing
from dataclasses import dataclass, field
from typing import Any

from edgerag.llm.events import FinishReason
from edgerag.llm.types import ChatMessage, ToolCall, Usage
from edgerag.ports import HttpClient
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

__all__ = ["RESERVED", "OpenAICompatibleProvider"]

RESERVED = frozenset(
    {"model", "messages", "tools", "max_tokens", "max_completion_tokens", "temperature", "stream",
     "stream_options"}
)  # fmt: skip
_FINISH: dict[str, FinishReason] = {
    "stop": "stop",
    "length": "length",
    "tool_calls": "tool_calls",
    "function_call": "tool_calls",
    "content_filter": "content_filter",
}


class OpenAICompatibleProvider:
    """``POST {base_url}/chat/completions``; ``base_url`` ends in the API version (``.../v1``)."""

    def __init__(
        self,
        name: str,
        base_url: str,
        api_key: str | None,
        http: HttpClient,
        *,
        default_headers: Mapping[str, str] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._name = name
        self._url = base_url.rstrip("/") + "/chat/completions"
        self._api_key = api_key
        self._http = http
        self._default_headers = {k.lower(): v for k, v in (default_headers or {}).items()}
        self._clock = clock

    @property
    def name(self) -> str:
        return self._name

    def __repr__(self) -> str:  # never the key
        return f"OpenAICompatibleProvider(name={self._name!r}, url={self._url!r})"

    async def complete(self, request: ProviderRequest) -> Completion:
        response = await self._post(request, stream=False)
        payload = await read_json(response, self._name)
        choices = payload.get("choices")
        if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
            raise bad_response(self._name, "the response has no choices")
        message = choices[0].get("message")
        if not isinstance(message, dict):
            raise bad_response(self._name, "the response's first choice has no message")
        content = message.get("content")
        if content is not None and not isinstance(content, str):
            raise bad_response(self._name, "the message content is not text")
        raw_calls = message.get("tool_calls") or []
        if not isinstance(raw_calls, list):
            raise bad_response(self._name, "tool_calls is not a list")
        calls = [self._tool_call(raw, i) for i, raw in enumerate(raw_calls)]
        usage = _usage(payload.get("usage"))
        return Completion(
            text=content or "",
            tool_calls=calls,
            usage=usage if usage is not None else Usage(),
            finish_reason=_finish_reason(choices[0].get("finish_reason"), bool(calls)),
        )

    async def stream(self, request: ProviderRequest) -> AsyncIterator[StreamPart]:
        response = await self._post(request, stream=True)
        state = _StreamState()
        try:
            async with aclosing(sse_events(response, self._name)) as events:
                async for event in events:
                    if event.data.strip() == "[DONE]":
                        state.done = True
                        break
                    for part in self._chunk(parse_json_data(event, self._name), state):
                        yield part
        finally:
            await response.aclose()
        if not state.done or state.finish is None:
            missing = "[DONE]" if not state.done else "a finish_reason"
            raise bad_response(self._name, f"truncated stream (it ended without {missing})")
        if state.usage is not None:
            yield UsagePart(state.usage)
        yield FinishPart(state.finish)

    # -- request --------------------------------------------------------------------------------

    async def _post(self, request: ProviderRequest, *, stream: bool) -> Any:
        body = self._body(request, stream=stream)
        headers = {
            "content-type": "application/json",
            "accept": "text/event-stream" if stream else "application/json",
            **self._default_headers,
        }
        if self._api_key:
            headers["authorization"] = f"Bearer {self._api_key}"
        return await post_json(
            self._http,
            self._url,
            provider=self._name,
            headers=headers,
            body=body,
            secrets=[self._api_key, *self._default_headers.values()],
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
        body: dict[str, Any] = {
            "model": request.model,
            "messages": [_message(m) for m in request.messages],
        }
        if request.tools:
            body["tools"] = [
                {
                    "type": "function",
                    "function": {"name": t.name, "description": t.description, "parameters": t.parameters},
                }
                for t in request.tools
            ]
        if request.max_tokens is not None:
            body["max_tokens"] = request.max_tokens
        if request.temperature is not None:
            body["temperature"] = request.temperature
        if stream:
            body["stream"] = True
            body["stream_options"] = {"include_usage": True}
        body.update(request.options)
        return body

    # -- response -------------------------------------------------------------------------------

    def _tool_call(self, raw: Any, position: int) -> ToolCall:
        if not isinstance(raw, dict) or not isinstance(raw.get("function"), dict):
            raise bad_response(self._name, "a tool call has no function")
        function = raw["function"]
        return self._make_call(raw.get("id"), function.get("name"), function.get("arguments"), position)

    def _make_call(self, call_id: Any, name: Any, arguments: Any, index: int) -> ToolCall:
        if not isinstance(name, str) or not name:
            raise bad_response(self._name, "a tool call has no function name")
        if isinstance(arguments, dict | list):
            arguments = json.dumps(arguments)
        elif not isinstance(arguments, str):
            arguments = "{}" if arguments is None else str(arguments)
        try:
            return ToolCall(
                id=call_id if isinstance(call_id, str) and call_id else f"call_{index}",
                name=name,
                arguments=arguments or "{}",
            )
        except ValidationError as exc:
            raise bad_response(self._name, "a tool call's id or name is invalid") from exc

    def _chunk(self, chunk: dict[str, Any], state: _StreamState) -> list[StreamPart]:
        error = chunk.get("error")
        if error is not None:
            message = error.get("message") if isinstance(error, dict) else error
            raise ProviderError(
                FailureKind.SERVER,
                f"{self._name} reported an error mid-stream: {str(message)[:300]}",
                provider=self._name,
            )
        usage = _usage(chunk.get("usage"))
        if usage is not None:
            state.usage = usage
        choices = chunk.get("choices") or []
        if not isinstance(choices, list):
            raise bad_response(self._name, "a stream chunk's choices is not a list")
        parts: list[StreamPart] = []
        for choice in choices:
            if not isinstance(choice, dict) or choice.get("index", 0) != 0:
                continue  # n > 1 is never requested; ignore anything but the first choice
            delta = choice.get("delta") or {}
            if not isinstance(delta, dict):
                raise bad_response(self._name, "a stream chunk's delta is not an object")
            text = delta.get("content")
            if isinstance(text, str) and text:
                parts.append(TextDelta(text))
            for position, fragment in enumerate(delta.get("tool_calls") or []):
                state.add_fragment(fragment, position, self._name)
            reason = choice.get("finish_reason")
            if reason is not None:
                state.finish = _finish_reason(reason, bool(state.calls))
                parts.extend(ToolCallPart(call) for call in self._assembled(state))
        return parts

    def _assembled(self, state: _StreamState) -> list[ToolCall]:
        calls = [
            self._make_call(buf.id, buf.name, "".join(buf.arguments), index)
            for index, buf in sorted(state.calls.items())
        ]
        state.calls.clear()
        return calls


@dataclass
class _CallBuffer:
    id: str | None = None
    name: str | None = None
    arguments: list[str] = field(default_factory=list)


@dataclass
class _StreamState:
    calls: dict[int, _CallBuffer] = field(default_factory=dict)
    usage: Usage | None = None
    finish: FinishReason | None = None
    done: bool = False

    def add_fragment(self, fragment: Any, position: int, provider: str) -> None:
        if not isinstance(fragment, dict):
            raise bad_response(provider, "a tool-call fragment is not an object")
        index = fragment.get("index", position)
        if not isinstance(index, int):
            raise bad_response(provider, "a tool-call fragment has no integer index")
        buf = self.calls.setdefault(index, _CallBuffer())
        if isinstance(fragment.get("id"), str) and fragment["id"]:
            buf.id = fragment["id"]
        function = fragment.get("function") or {}
        if isinstance(function, dict):
            if isinstance(function.get("name"), str) and function["name"] and buf.name is None:
                buf.name = function["name"]
            arguments = function.get("arguments")
            if isinstance(arguments, str):
                buf.arguments.append(arguments)
            elif isinstance(arguments, dict):
                buf.arguments.append(json.dumps(arguments))


def _message(message: ChatMessage) -> dict[str, Any]:
    out: dict[str, Any] = {"role": message.role, "content": message.content}
    if message.role == "tool":
        out["tool_call_id"] = message.tool_call_id
        out["content"] = message.content or ""
        return out
    if message.tool_calls:
        out["tool_calls"] = [
            {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}
            for c in message.tool_calls
        ]
    elif out["content"] is None:
        out["content"] = ""
    if message.name:
        out["name"] = message.name
    return out


def _finish_reason(raw: Any, has_calls: bool) -> FinishReason:
    reason = _FINISH.get(raw, "stop") if isinstance(raw, str) else "stop"
    return "tool_calls" if has_calls and reason == "stop" else reason


def _count(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else 0


def _usage(raw: Any) -> Usage | None:
    if not isinstance(raw, dict):
        return None
    details = raw.get("prompt_tokens_details")
    cached = _count(details.get("cached_tokens")) if isinstance(details, dict) else 0
    return Usage(
        prompt_tokens=_count(raw.get("prompt_tokens")),
        completion_tokens=_count(raw.get("completion_tokens")),
        cached_prompt_tokens=cached,
    )
