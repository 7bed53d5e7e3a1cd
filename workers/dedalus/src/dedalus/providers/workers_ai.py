"""The Workers AI provider: text generation through the ``env.AI`` binding (``await ai.run(model, inputs)``).

Shapes (pinned in tests/contract/test_ai.py against the local binding, and in
tests/unit/test_provider_workers_ai.py with fakes shaped like the docs):

- Request (model pages' input schema, e.g. developers.cloudflare.com/workers-ai/models/
  llama-3.3-70b-instruct-fp8-fast/ and /llama-3.1-8b-instruct/): ``{"messages": [{"role", "content"}],
  "tools"?, "stream"?, "max_tokens"?, "temperature"?}``. ``content`` must be a string on every message.
  Assistant turns that called tools are sent as workers-ai-provider (cloudflare/ai) sends them:
  ``tool_calls: [{"id", "type": "function", "function": {"name", "arguments": <JSON text>}}]`` and, when
  the turn had no text, ``content`` = the call as ``{"name", "parameters"}`` JSON (a list for several);
  tool results are ``{"role": "tool", "content", "tool_call_id", "name"?}``. Tools go in the
  OpenAI-style form the schema accepts, ``{"type": "function", "function": {"name", "description",
  "parameters"}}`` (/workers-ai/features/function-calling/traditional/ shows the older flat form).
  ``ProviderRequest.options`` are merged into the inputs (``top_p``, ``seed``, ``response_format`` ...),
  except ``gateway``, which is the binding's run option (AI Gateway) and is passed as such.
- Result: ``{"response": str, "tool_calls"?: [{"name", "arguments": {object}}], "usage"?:
  {"prompt_tokens", "completion_tokens", "total_tokens"}}``. Calls without an id get
  ``call_<turn>_<i>`` (turn = assistant messages so far, i = index): deterministic, unique within a
  conversation. ``arguments`` objects become JSON text; OpenAI-style ``{"id", "function": {"name",
  "arguments": str}}`` calls, which newer models return, are accepted too. No usage -> estimated with
  :func:`edgerag.tokens.estimate_tokens` (``Usage.estimated``).
- Stream (``stream: true``): a ReadableStream of server-sent events ``data: {"response": "..."}``, a
  last event carrying ``usage``, then ``data: [DONE]``. At the edge it is a JS ReadableStream proxy
  (async-iterable, chunks are ``Uint8Array`` proxies with ``to_bytes()``); locally the emulator's
  :class:`edgerag_local.sdk.ReadableStream` of ``bytes``. Both are read incrementally (duck-typed, no
  ``js`` import) through :class:`edgerag.sse.SseParser`. Tool calls may arrive complete (native
  ``tool_calls``) or as OpenAI-style deltas (``choices[0].delta.tool_calls`` by ``index``); either way a
  :class:`ToolCallPart` is yielded only once a call is complete (at the end of the stream). A stream that
  ends without ``[DONE]`` is ``BAD_RESPONSE`` (truncated).
- Finish reason: a ``finish_reason`` the model sends (top level or in ``choices[0]``), else
  ``tool_calls`` when it called tools, else ``length`` when it used all of ``max_tokens``, else ``stop``.

Failures: the binding raises an error whose message carries Workers AI's internal code,
``AiError: <code>: ...`` (sometimes ``<code>: AiError: ...``). Codes from
developers.cloudflare.com/workers-ai/platform/errors/ (+ 5021, the context-window error seen from the
live service) map to :class:`FailureKind` in :data:`ERROR_KINDS`; an error without a known code is
``SERVER`` (retryable). Messages are Cloudflare's text (no credentials cross the binding), cut to
:data:`_MAX_MESSAGE` characters.

To support another Workers AI output shape, extend :func:`_tool_call` / :class:`_StreamState`; to map
another error code, add it to :data:`ERROR_KINDS`.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncGenerator, AsyncIterator, Mapping, Sequence
from typing import Any

from edgerag.llm.events import FinishReason
from edgerag.llm.types import ChatMessage, ToolCall, ToolSpec, Usage
from edgerag.ports import Ai
from edgerag.sse import SseError, SseParser
from edgerag.tokens import BASE_TOKENS, estimate_tokens
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

__all__ = ["ERROR_KINDS", "WorkersAIProvider", "translate_error"]

# Workers AI internal code -> (kind, HTTP status the REST API answers with).
ERROR_KINDS: dict[int, tuple[FailureKind, int]] = {
    5007: (FailureKind.INVALID_REQUEST, 400),  # No such model ${model} or task
    3042: (FailureKind.INVALID_REQUEST, 404),  # The model name is invalid
    5006: (FailureKind.INVALID_REQUEST, 400),  # input failed the model's schema
    5004: (FailureKind.INVALID_REQUEST, 400),  # Invalid data type for base64 input
    3003: (FailureKind.INVALID_REQUEST, 400),  # Request is missing headers or body
    3039: (FailureKind.INVALID_REQUEST, 400),  # Finetune is missing required files
    5005: (FailureKind.INVALID_REQUEST, 405),  # The model does not support LoRa inference
    5019: (FailureKind.INVALID_REQUEST, 405),  # deprecated SDK version
    3006: (FailureKind.INVALID_REQUEST, 413),  # Request is too large
    5021: (FailureKind.INVALID_REQUEST, 413),  # input + max_tokens exceed the context window
    3030: (FailureKind.INVALID_REQUEST, 400),  # input or output flagged by the model's filter
    3023: (FailureKind.AUTH, 403),  # Service unavailable for account
    5016: (FailureKind.AUTH, 403),  # User has not agreed to the model's terms
    5018: (FailureKind.AUTH, 403),  # The account is not allowed to access this model
    3041: (FailureKind.AUTH, 403),  # The account is not allowed to access this model
    3007: (FailureKind.TIMEOUT, 408),  # Request timeout
    3008: (FailureKind.TIMEOUT, 408),  # Request was aborted
    3036: (FailureKind.RATE_LIMITED, 429),  # daily free allocation used up
    3040: (FailureKind.RATE_LIMITED, 429),  # Out of capacity: no more data centers to forward to
}
# "AiError: 5007: ..." or "3010: AiError: ..." (the code right before or right after "AiError:").
_CODE = re.compile(r"AiError:\s*(\d{4})\b|^\s*(\d{4}):\s*AiError\b")
_CONTEXT_WINDOW = re.compile(r"context window limit|maximum context length", re.IGNORECASE)
_MAX_MESSAGE = 300
_FINISH: dict[str, FinishReason] = {
    "stop": "stop",
    "eos": "stop",
    "length": "length",
    "max_tokens": "length",
    "tool_calls": "tool_calls",
    "function_call": "tool_calls",
    "content_filter": "content_filter",
}


def translate_error(exc: BaseException, provider: str) -> ProviderError:
    """The :class:`ProviderError` for an exception the binding raised."""
    text = " ".join(str(exc).split())[:_MAX_MESSAGE] or type(exc).__name__
    match = _CODE.search(text)
    code = int(match.group(1) or match.group(2)) if match else None
    kind, status = FailureKind.SERVER, 500
    if code in ERROR_KINDS:
        kind, status = ERROR_KINDS[code]
    elif _CONTEXT_WINDOW.search(text):
        kind, status = FailureKind.INVALID_REQUEST, 413
    return ProviderError(kind, f"{provider}: {text}", provider=provider, status=status)


class WorkersAIProvider:
    """:class:`~dedalus.providers.base.ChatProvider` over a Workers AI binding (``env.AI``)."""

    def __init__(self, ai: Ai, name: str = "workers-ai") -> None:
        self._ai = ai
        self._name = name

    @property
    def name(self) -> str:
        return self._name

    def __repr__(self) -> str:
        return f"WorkersAIProvider(name={self._name!r})"

    async def complete(self, request: ProviderRequest) -> Completion:
        result = _plain(await self._run(request, stream=False))
        if not isinstance(result, Mapping):
            raise self._bad(f"expected a JSON object from {request.model}, got {type(result).__name__}")
        state = _StreamState(self, request)
        state.absorb(result)
        return Completion(
            text=state.text,
            tool_calls=state.tool_calls(),
            usage=state.usage(),
            finish_reason=state.finish_reason(),
        )

    async def stream(self, request: ProviderRequest) -> AsyncIterator[StreamPart]:
        result = await self._run(request, stream=True)
        state = _StreamState(self, request)
        plain = _plain(result)
        if isinstance(plain, Mapping):  # a model that ignores ``stream`` answers in one piece
            state.absorb(plain)
            if state.text:
                yield TextDelta(state.text)
        else:
            async for text in self._read(plain, request, state):
                yield TextDelta(text)
        for call in state.tool_calls():
            yield ToolCallPart(call)
        yield UsagePart(state.usage())
        yield FinishPart(state.finish_reason())

    # ------------------------------------------------------------------------------------ internals

    async def _run(self, request: ProviderRequest, *, stream: bool) -> Any:
        inputs, options = build_inputs(request, stream=stream)
        try:
            return await self._ai.run(request.model, inputs, **options)
        except Exception as exc:  # the binding's errors arrive as plain exceptions (JsException at the edge)
            raise translate_error(exc, self._name) from exc

    async def _read(self, body: Any, request: ProviderRequest, state: _StreamState) -> AsyncIterator[str]:
        parser = SseParser()
        iterator = _chunks(body, self)
        done = False
        try:
            async for chunk in iterator:
                for event in parser.feed(chunk):
                    if event.data.strip() == "[DONE]":
                        done = True
                        break
                    text = state.absorb(_json(event.data, self))
                    if text:
                        yield text
                if done:
                    break
        except ProviderError:
            raise
        except SseError as exc:
            raise self._bad(f"malformed event stream from {request.model}: {exc}") from exc
        except Exception as exc:  # the stream itself failed mid-read
            raise translate_error(exc, self._name) from exc
        finally:
            await iterator.aclose()  # stop reading after [DONE]; closes the binding's stream too
        if not done or parser.close():
            raise self._bad(f"the event stream from {request.model} ended without [DONE] (truncated)")

    def _bad(self, message: str) -> ProviderError:
        return ProviderError(FailureKind.BAD_RESPONSE, f"{self._name}: {message}", provider=self._name)


# ------------------------------------------------------------------------------------ requests


def build_inputs(request: ProviderRequest, *, stream: bool) -> tuple[dict[str, Any], dict[str, Any]]:
    """The ``inputs`` and run options for ``ai.run(request.model, inputs, **options)``."""
    options = dict(request.options)
    run_options = {"gateway": options.pop("gateway")} if "gateway" in options else {}
    inputs: dict[str, Any] = {**options, "messages": _messages(request.messages)}
    if request.tools:
        inputs["tools"] = [_tool(spec) for spec in request.tools]
    if stream:
        inputs["stream"] = True
    else:
        inputs.pop("stream", None)
    if request.max_tokens is not None:
        inputs["max_tokens"] = request.max_tokens
    if request.temperature is not None:
        inputs["temperature"] = request.temperature
    return inputs, run_options


def _messages(messages: Sequence[ChatMessage]) -> list[dict[str, Any]]:
    wire: list[dict[str, Any]] = []
    for message in messages:
        entry: dict[str, Any] = {"role": message.role, "content": message.content or ""}
        if message.role == "assistant" and message.tool_calls:
            calls = message.tool_calls
            entry["tool_calls"] = [
                {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}
                for c in calls
            ]
            if not message.content:
                # Llama's own JSON tool-call form, so a model that reads only `content` sees the call.
                shown = [{"name": c.name, "parameters": _loads_or_text(c.arguments)} for c in calls]
                entry["content"] = json.dumps(shown[0] if len(shown) == 1 else shown, ensure_ascii=False)
        if message.role == "tool":
            if message.tool_call_id:
                entry["tool_call_id"] = message.tool_call_id
            if message.name:
                entry["name"] = message.name
        wire.append(entry)
    return wire


def _tool(spec: ToolSpec) -> dict[str, Any]:
    parameters = {"type": "object", "properties": {}, **spec.parameters}
    return {
        "type": "function",
        "function": {"name": spec.name, "description": spec.description, "parameters": parameters},
    }


def _loads_or_text(text: str) -> Any:
    try:
        return json.loads(text or "{}")
    except ValueError:
        return text


# ------------------------------------------------------------------------------------ results


def _plain(value: Any) -> Any:
    """A JS object proxy as Python (``to_py``); anything else unchanged."""
    to_py = getattr(value, "to_py", None)
    if callable(to_py) and not isinstance(value, Mapping):
        return to_py()
    return value


async def _chunks(body: Any, provider: WorkersAIProvider) -> AsyncGenerator[bytes, None]:
    """The stream's chunks as bytes: a JS ReadableStream proxy, the local stand-in, or a whole body."""
    if isinstance(body, bytes | bytearray | memoryview | str):
        yield body.encode() if isinstance(body, str) else bytes(body)
        return
    if not hasattr(body, "__aiter__"):
        raise provider._bad(f"expected an event stream, got {type(body).__name__}")
    source = body.__aiter__()
    try:
        async for chunk in source:
            to_bytes = getattr(chunk, "to_bytes", None)
            if callable(to_bytes):
                yield bytes(to_bytes())  # a Uint8Array proxy at the edge
            elif isinstance(chunk, str):
                yield chunk.encode()
            else:
                try:
                    yield bytes(chunk)
                except TypeError as exc:
                    raise provider._bad(f"unreadable stream chunk {type(chunk).__name__}") from exc
    finally:
        # A Python async iterator has aclose(); a JS stream's iterator has return(), which releases the
        # reader and cancels the stream, so Workers AI stops generating for a reader that went away.
        close = getattr(source, "aclose", None) or getattr(source, "return", None)
        if callable(close):
            await close()


def _json(data: str, provider: WorkersAIProvider) -> Mapping[str, Any]:
    try:
        payload = json.loads(data)
    except ValueError as exc:
        raise provider._bad(f"invalid JSON in the event stream: {data[:80]!r}") from exc
    if not isinstance(payload, Mapping):
        raise provider._bad(f"expected a JSON object in the event stream, got {type(payload).__name__}")
    return payload


class _StreamState:
    """What one completion (streamed or not) has said so far: text, tool calls, usage, finish."""

    def __init__(self, provider: WorkersAIProvider, request: ProviderRequest) -> None:
        self._provider = provider
        self._request = request
        self._turn = sum(1 for m in request.messages if m.role == "assistant")
        self._parts: list[str] = []
        self._calls: list[ToolCall] = []
        self._deltas: dict[int, dict[str, str]] = {}  # OpenAI-style deltas by index
        self._usage: Usage | None = None
        self._finish: str | None = None

    @property
    def text(self) -> str:
        return "".join(self._parts)

    def absorb(self, payload: Mapping[str, Any]) -> str:
        """Take in one result or stream event; return the text it adds."""
        error = payload.get("error") or payload.get("errors")
        if error and not payload.get("response"):
            raise translate_error(RuntimeError(json.dumps(error, default=str)), self._provider.name)
        added = _text(payload.get("response"))
        choices = payload.get("choices")
        choice = choices[0] if isinstance(choices, list) and choices else None
        if not isinstance(choice, Mapping):
            choice = {}
        delta = choice.get("delta") or choice.get("message")
        if isinstance(delta, Mapping):
            added += _text(delta.get("content"))
            for item in delta.get("tool_calls") or []:
                self._add_delta(item)
        for item in payload.get("tool_calls") or []:
            if _is_sentinel(item):
                continue  # the null "finalise" chunk some models send after a streamed call
            if isinstance(item, Mapping) and "index" in item and not _is_complete(item):
                self._add_delta(item)
            else:
                self._calls.append(self._tool_call(item, len(self._calls) + len(self._deltas)))
        finish = payload.get("finish_reason") or choice.get("finish_reason")
        if isinstance(finish, str):
            self._finish = finish
        usage = payload.get("usage")
        if isinstance(usage, Mapping):
            self._usage = _usage(usage)
        if added:
            self._parts.append(added)
        return added

    def _add_delta(self, item: Any) -> None:
        if not isinstance(item, Mapping):
            raise self._provider._bad("a streamed tool call delta is not an object")
        if _is_sentinel(item):
            return
        fn = _obj(item.get("function"))
        call_id, name = item.get("id"), fn.get("name") or item.get("name")
        arguments = fn.get("arguments", item.get("arguments"))
        index = item.get("index")
        slot = self._deltas.setdefault(
            index if isinstance(index, int) else 0, {"id": "", "name": "", "arguments": ""}
        )
        slot["id"] = slot["id"] or str(call_id or "")
        slot["name"] = slot["name"] or str(name or "")
        if arguments is not None:
            slot["arguments"] += arguments if isinstance(arguments, str) else json.dumps(arguments)

    def _tool_call(self, item: Any, index: int) -> ToolCall:
        if not isinstance(item, Mapping):
            raise self._provider._bad("a tool call is not an object")
        fn = _obj(item.get("function")) or item
        arguments = fn.get("arguments", fn.get("parameters"))
        if arguments is None:
            text = "{}"
        elif isinstance(arguments, str):
            text = arguments
        else:
            text = json.dumps(arguments, ensure_ascii=False)
        return self._call(str(item.get("id") or ""), str(fn.get("name") or ""), text, index)

    def _call(self, call_id: str, name: str, arguments: str, index: int) -> ToolCall:
        try:
            return ToolCall(id=call_id or f"call_{self._turn}_{index}", name=name, arguments=arguments)
        except ValidationError as exc:
            raise self._provider._bad(f"invalid tool call from the model (name {name[:40]!r})") from exc

    def tool_calls(self) -> list[ToolCall]:
        calls = list(self._calls)
        for index in sorted(self._deltas):
            slot = self._deltas[index]
            calls.append(self._call(slot["id"], slot["name"], slot["arguments"] or "{}", len(calls)))
        return calls

    def usage(self) -> Usage:
        if self._usage is not None:
            return self._usage
        prompt = "\n".join(f"{m.role}: {m.content or ''}" for m in self._request.messages)
        if self._request.tools:
            prompt += "\n" + json.dumps([_tool(t) for t in self._request.tools])
        completion = self.text + "".join(c.name + c.arguments for c in self.tool_calls())
        return Usage(
            prompt_tokens=estimate_tokens(prompt),
            completion_tokens=estimate_tokens(completion) - BASE_TOKENS if completion else 0,
            estimated=True,
        )

    def finish_reason(self) -> FinishReason:
        mapped = _FINISH.get(self._finish or "")
        if mapped is not None and not (mapped == "stop" and self.tool_calls()):
            return mapped
        if self.tool_calls():
            return "tool_calls"
        limit = self._request.max_tokens
        if limit is not None and self._usage is not None and self._usage.completion_tokens >= limit:
            return "length"
        return "stop"


def _is_sentinel(item: Any) -> bool:
    """A tool-call entry with no id, no name and no arguments (a stream's "finalise" marker)."""
    if not isinstance(item, Mapping):
        return False
    fn = _obj(item.get("function"))
    return not (
        item.get("id") or fn.get("name") or item.get("name") or fn.get("arguments") or item.get("arguments")
    )


def _is_complete(item: Mapping[str, Any]) -> bool:
    """A native call (name + arguments object), as opposed to a streamed OpenAI-style delta."""
    fn = _obj(item.get("function")) or item
    return bool(fn.get("name")) and isinstance(fn.get("arguments"), Mapping)


def _obj(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False)  # JSON mode answers with an object


def _usage(raw: Mapping[str, Any]) -> Usage:
    def count(key: str) -> int:
        value = raw.get(key)
        return max(0, int(value)) if isinstance(value, int | float) and not isinstance(value, bool) else 0

    return Usage(prompt_tokens=count("prompt_tokens"), completion_tokens=count("completion_tokens"))
