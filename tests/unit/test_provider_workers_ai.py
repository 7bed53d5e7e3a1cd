"""The Workers AI provider adapter (dedalus.providers.workers_ai).

Driven two ways: against the local binding (edgerag_local.ai.LocalAi, whose text-generation ids are the
extractive stand-in), and against a recording fake of the Ai port that answers the way Workers AI's docs
show (tool calls, streamed deltas, JS-shaped chunks, every error code), since the stand-in never calls
tools and never fails on purpose.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import pytest
from dedalus.providers.base import (
    FailureKind,
    FinishPart,
    ProviderError,
    ProviderRequest,
    StreamPart,
    TextDelta,
    ToolCallPart,
    UsagePart,
)
from dedalus.providers.workers_ai import ERROR_KINDS, WorkersAIProvider, build_inputs
from edgerag.llm.types import ChatMessage, ToolCall, ToolSpec
from edgerag_local.ai import LLAMA_33_70B, LocalAi
from edgerag_local.sdk import ReadableStream

SYSTEM = ChatMessage(
    role="system",
    content="[1] Rocket engines\nLiquid rocket engines burn propellant to produce thrust.",
)
QUESTION = ChatMessage(role="user", content="How do rocket engines produce thrust?")
ANSWER = "Liquid rocket engines burn propellant to produce thrust [1]."
SEARCH = ToolSpec(
    name="search_knowledge_base",
    description="Search the tenant's documents",
    parameters={"type": "object", "properties": {"query": {"type": "string", "description": "terms"}}},
)


def request(**changes: Any) -> ProviderRequest:
    fields: dict[str, Any] = {"model": LLAMA_33_70B, "messages": [SYSTEM, QUESTION]}
    fields.update(changes)
    return ProviderRequest(**fields)


async def collect(parts: AsyncIterator[StreamPart]) -> list[StreamPart]:
    return [part async for part in parts]


def texts(parts: list[StreamPart]) -> str:
    return "".join(p.text for p in parts if isinstance(p, TextDelta))


class JsChunk:
    """What a chunk of a JS ReadableStream looks like from Pyodide: a Uint8Array proxy."""

    def __init__(self, data: bytes) -> None:
        self._data = data

    def to_bytes(self) -> bytes:
        return self._data


class JsResult:
    """A JS object proxy (has to_py), as an un-converted binding result would be."""

    def __init__(self, value: dict[str, Any]) -> None:
        self._value = value

    def to_py(self) -> dict[str, Any]:
        return self._value


@dataclass
class FakeAi:
    """The Ai port: records every call and answers with the scripted result (or raises it)."""

    result: Any = None
    calls: list[tuple[str, dict[str, Any], dict[str, Any]]] = field(default_factory=list)

    async def run(self, model: str, inputs: Mapping[str, Any], **options: Any) -> Any:
        self.calls.append((model, dict(inputs), options))
        if isinstance(self.result, BaseException):
            raise self.result
        return self.result() if callable(self.result) else self.result


def sse(*payloads: Any, done: bool = True) -> list[bytes]:
    events = [b"data: " + json.dumps(p).encode() + b"\n\n" for p in payloads]
    return events + ([b"data: [DONE]\n\n"] if done else [])


def stream_of(chunks: list[Any]) -> Any:
    async def source() -> AsyncIterator[Any]:
        for chunk in chunks:
            await asyncio.sleep(0)
            yield chunk

    return lambda: ReadableStream(source())


# ------------------------------------------------------------------------- against the local binding


async def test_complete_against_the_local_binding() -> None:
    completion = await WorkersAIProvider(LocalAi()).complete(request(tools=[SEARCH]))
    assert completion.text == ANSWER
    assert completion.tool_calls == []
    assert completion.finish_reason == "stop"
    assert completion.usage.prompt_tokens > 0 and completion.usage.completion_tokens > 0
    assert not completion.usage.estimated


async def test_stream_against_the_local_binding_matches_complete() -> None:
    provider = WorkersAIProvider(LocalAi())
    parts = await collect(provider.stream(request()))
    completion = await provider.complete(request())
    deltas = [p for p in parts if isinstance(p, TextDelta)]
    assert len(deltas) > 1 and texts(parts) == completion.text
    assert parts[-2:] == [UsagePart(completion.usage), FinishPart("stop")]


async def test_a_cut_by_max_tokens_finishes_with_length() -> None:
    provider = WorkersAIProvider(LocalAi())
    completion = await provider.complete(request(max_tokens=4))
    assert completion.finish_reason == "length" and ANSWER.startswith(completion.text)
    parts = await collect(provider.stream(request(max_tokens=4)))
    assert parts[-1] == FinishPart("length")


async def test_local_errors_are_typed() -> None:
    provider = WorkersAIProvider(LocalAi())
    with pytest.raises(ProviderError) as unknown:
        await provider.complete(request(model="@cf/example/no-such-model"))
    assert unknown.value.kind is FailureKind.INVALID_REQUEST and unknown.value.status == 400
    too_long = [ChatMessage(role="user", content="word " * 30_000)]
    with pytest.raises(ProviderError) as window:
        await collect(provider.stream(request(messages=too_long)))
    assert window.value.kind is FailureKind.INVALID_REQUEST and window.value.status == 413
    assert "context window" in window.value.message and not window.value.retryable


# ------------------------------------------------------------------------------------ requests


def test_messages_tools_and_parameters_are_sent_in_the_workers_ai_form() -> None:
    call = ToolCall(id="call_0_0", name="search_knowledge_base", arguments='{"query": "thrust"}')
    history = [
        SYSTEM,
        QUESTION,
        ChatMessage(role="assistant", tool_calls=[call]),
        ChatMessage(
            role="tool", content='{"hits": []}', tool_call_id="call_0_0", name="search_knowledge_base"
        ),
    ]
    inputs, options = build_inputs(
        request(messages=history, tools=[SEARCH], max_tokens=64, temperature=0.2, options={"seed": 7}),
        stream=True,
    )
    assert options == {}
    assert inputs["messages"] == [
        {"role": "system", "content": SYSTEM.content},
        {"role": "user", "content": QUESTION.content},
        {
            "role": "assistant",
            "content": '{"name": "search_knowledge_base", "parameters": {"query": "thrust"}}',
            "tool_calls": [
                {
                    "id": "call_0_0",
                    "type": "function",
                    "function": {"name": "search_knowledge_base", "arguments": '{"query": "thrust"}'},
                }
            ],
        },
        {
            "role": "tool",
            "content": '{"hits": []}',
            "tool_call_id": "call_0_0",
            "name": "search_knowledge_base",
        },
    ]
    assert inputs["tools"] == [
        {
            "type": "function",
            "function": {
                "name": SEARCH.name,
                "description": SEARCH.description,
                "parameters": SEARCH.parameters,
            },
        }
    ]
    assert (inputs["stream"], inputs["max_tokens"], inputs["temperature"], inputs["seed"]) == (
        True,
        64,
        0.2,
        7,
    )


def test_every_message_has_string_content_and_gateway_is_a_run_option() -> None:
    inputs, options = build_inputs(
        request(messages=[ChatMessage(role="user")], options={"gateway": {"id": "g"}, "stream": True}),
        stream=False,
    )
    assert inputs["messages"] == [{"role": "user", "content": ""}]
    assert "stream" not in inputs and "tools" not in inputs and "max_tokens" not in inputs
    assert options == {"gateway": {"id": "g"}}


async def test_the_request_reaches_the_binding_with_the_provider_model_name() -> None:
    ai = FakeAi({"response": "ok"})
    await WorkersAIProvider(ai).complete(request(options={"gateway": {"id": "g"}}))
    [(model, inputs, options)] = ai.calls
    assert model == LLAMA_33_70B and "stream" not in inputs and options == {"gateway": {"id": "g"}}


# ------------------------------------------------------------------------------------ results


async def test_tool_calls_as_the_docs_show_get_ids_and_json_arguments() -> None:
    ai = FakeAi(
        {
            "response": "",
            "tool_calls": [
                {"name": "getWeather", "arguments": {"latitude": "51.5074", "longitude": "-0.1278"}},
                {"name": "search_knowledge_base", "arguments": {"query": "thrust"}},
            ],
            "usage": {"prompt_tokens": 120, "completion_tokens": 30, "total_tokens": 150},
        }
    )
    history = [SYSTEM, ChatMessage(role="assistant", content="earlier turn"), QUESTION]
    completion = await WorkersAIProvider(ai).complete(request(messages=history, tools=[SEARCH]))
    assert completion.tool_calls == [
        ToolCall(
            id="call_1_0", name="getWeather", arguments='{"latitude": "51.5074", "longitude": "-0.1278"}'
        ),
        ToolCall(id="call_1_1", name="search_knowledge_base", arguments='{"query": "thrust"}'),
    ]
    assert completion.tool_calls[0].parsed_arguments() == {"latitude": "51.5074", "longitude": "-0.1278"}
    assert completion.finish_reason == "tool_calls"
    assert (completion.usage.prompt_tokens, completion.usage.completion_tokens) == (120, 30)


async def test_openai_style_tool_calls_keep_their_ids_and_text_arguments() -> None:
    call = {"id": "chatcmpl-tool-9", "type": "function", "function": {"name": "f", "arguments": '{"a": 1}'}}
    completion = await WorkersAIProvider(FakeAi({"response": None, "tool_calls": [call]})).complete(request())
    assert completion.tool_calls == [ToolCall(id="chatcmpl-tool-9", name="f", arguments='{"a": 1}')]
    assert completion.text == ""


async def test_missing_usage_is_estimated() -> None:
    completion = await WorkersAIProvider(
        FakeAi({"response": "Thrust comes from burning propellant."})
    ).complete(request())
    assert completion.usage.estimated
    assert completion.usage.prompt_tokens > 0 and completion.usage.completion_tokens > 0


async def test_a_js_proxy_result_and_json_mode_objects_are_read() -> None:
    result = JsResult({"response": {"answer": 42}, "usage": {"prompt_tokens": 3.0, "completion_tokens": 2.0}})
    completion = await WorkersAIProvider(FakeAi(result)).complete(request())
    assert json.loads(completion.text) == {"answer": 42}
    assert completion.usage.prompt_tokens == 3


@pytest.mark.parametrize("result", [[1, 2], "text", None])
async def test_a_non_object_result_is_a_bad_response(result: Any) -> None:
    with pytest.raises(ProviderError) as caught:
        await WorkersAIProvider(FakeAi(result)).complete(request())
    assert caught.value.kind is FailureKind.BAD_RESPONSE and caught.value.retryable


async def test_a_nameless_tool_call_is_a_bad_response() -> None:
    with pytest.raises(ProviderError) as caught:
        await WorkersAIProvider(FakeAi({"response": "", "tool_calls": [{"arguments": {"q": 1}}]})).complete(
            request()
        )
    assert caught.value.kind is FailureKind.BAD_RESPONSE


# ------------------------------------------------------------------------------------- streams


async def test_a_js_stream_split_anywhere_is_read_event_by_event() -> None:
    raw = b"".join(
        sse(
            {"response": "Liquid", "p": "abc"},
            {"response": " rocket"},
            {"response": " h\u00e9"},
            {"response": "", "usage": {"prompt_tokens": 9, "completion_tokens": 3, "total_tokens": 12}},
        )
    )
    chunks = [JsChunk(raw[i : i + 7]) for i in range(0, len(raw), 7)]  # splits lines and the UTF-8 é
    parts = await collect(WorkersAIProvider(FakeAi(stream_of(chunks))).stream(request()))
    assert [p for p in parts if isinstance(p, TextDelta)] == [
        TextDelta("Liquid"),
        TextDelta(" rocket"),
        TextDelta(" h\u00e9"),
    ]
    assert parts[-2:] == [UsagePart(parts[-2].usage), FinishPart("stop")]  # type: ignore[union-attr]
    assert (parts[-2].usage.prompt_tokens, parts[-2].usage.estimated) == (9, False)  # type: ignore[union-attr]


async def test_native_tool_calls_in_a_stream_come_out_complete_at_the_end() -> None:
    chunks = sse(
        {"response": ""},
        {"response": "", "tool_calls": [{"name": "search_knowledge_base", "arguments": {"query": "x"}}]},
        {"response": "", "usage": {"prompt_tokens": 5, "completion_tokens": 5}},
    )
    parts = await collect(WorkersAIProvider(FakeAi(stream_of(chunks))).stream(request(tools=[SEARCH])))
    assert parts[0] == ToolCallPart(
        ToolCall(id="call_0_0", name="search_knowledge_base", arguments='{"query": "x"}')
    )
    assert parts[-1] == FinishPart("tool_calls")


async def test_streamed_tool_call_deltas_are_assembled() -> None:
    chunks = sse(
        {
            "tool_calls": [
                {"id": "t1", "type": "function", "index": 0, "function": {"name": "search_knowledge_base"}}
            ]
        },
        {"tool_calls": [{"index": 0, "function": {"arguments": '{"que'}}]},
        {"choices": [{"delta": {"tool_calls": [{"index": 0, "function": {"arguments": 'ry": "x"}'}}]}}]},
        {"tool_calls": [{"index": 1, "function": {"name": "f", "arguments": ""}}]},
        {"tool_calls": [{"id": None, "type": None, "function": {"name": None}}]},  # the finalise sentinel
        {"choices": [{"delta": {}, "finish_reason": "tool_calls"}]},
    )
    parts = await collect(WorkersAIProvider(FakeAi(stream_of(chunks))).stream(request()))
    calls = [p.call for p in parts if isinstance(p, ToolCallPart)]
    assert calls == [
        ToolCall(id="t1", name="search_knowledge_base", arguments='{"query": "x"}'),
        ToolCall(id="call_0_1", name="f", arguments="{}"),
    ]
    assert parts[-1] == FinishPart("tool_calls")


async def test_openai_style_content_deltas_are_text() -> None:
    chunks = sse(
        {"choices": [{"delta": {"content": "Hi"}}]}, {"choices": [{"delta": {}, "finish_reason": "length"}]}
    )
    parts = await collect(WorkersAIProvider(FakeAi(stream_of(chunks))).stream(request()))
    assert texts(parts) == "Hi" and parts[-1] == FinishPart("length")
    assert isinstance(parts[-2], UsagePart) and parts[-2].usage.estimated


async def test_a_stream_without_done_is_truncated_after_the_text_it_carried() -> None:
    chunks = sse({"response": "Liquid"}, {"response": " rocket"}, done=False)
    received: list[StreamPart] = []
    with pytest.raises(ProviderError) as caught:
        async for part in WorkersAIProvider(FakeAi(stream_of(chunks))).stream(request()):
            received.append(part)
    assert caught.value.kind is FailureKind.BAD_RESPONSE and "truncated" in caught.value.message
    assert texts(received) == "Liquid rocket"


async def test_a_stream_cut_inside_an_event_is_truncated() -> None:
    chunks = [b'data: {"response": "a"}\n\n', b'data: {"respo']
    with pytest.raises(ProviderError, match="truncated") as caught:
        await collect(WorkersAIProvider(FakeAi(stream_of(chunks))).stream(request()))
    assert caught.value.kind is FailureKind.BAD_RESPONSE


@pytest.mark.parametrize("event", [b"data: {not json}\n\n", b"data: [1, 2]\n\n"])
async def test_malformed_events_are_a_bad_response(event: bytes) -> None:
    with pytest.raises(ProviderError) as caught:
        await collect(WorkersAIProvider(FakeAi(stream_of([event, b"data: [DONE]\n\n"]))).stream(request()))
    assert caught.value.kind is FailureKind.BAD_RESPONSE


async def test_a_non_stream_answer_to_a_stream_request_is_still_read() -> None:
    ai = FakeAi({"response": "whole", "usage": {"prompt_tokens": 1, "completion_tokens": 1}})
    parts = await collect(WorkersAIProvider(ai).stream(request()))
    assert parts == [TextDelta("whole"), UsagePart(parts[1].usage), FinishPart("stop")]  # type: ignore[union-attr]


async def test_text_is_yielded_as_it_arrives_not_when_the_stream_ends() -> None:
    release = asyncio.Event()

    async def slow() -> AsyncIterator[bytes]:
        yield b'data: {"response": "first"}\n\n'
        await release.wait()  # the model has not produced its last token yet
        yield b'data: {"response": " last"}\n\ndata: [DONE]\n\n'

    parts = WorkersAIProvider(FakeAi(lambda: ReadableStream(slow()))).stream(request())
    first = await asyncio.wait_for(anext(parts), timeout=5)  # guards against a hang only
    assert first == TextDelta("first") and not release.is_set()
    release.set()
    assert texts([first, *(await collect(parts))]) == "first last"


async def test_reading_stops_at_done_and_closes_the_stream() -> None:
    closed = asyncio.Event()

    async def body() -> AsyncIterator[bytes]:
        try:
            yield b'data: {"response": "a"}\n\ndata: [DONE]\n\n'
            await asyncio.Event().wait()  # a stream that stays open after [DONE]
        finally:
            closed.set()

    parts = await asyncio.wait_for(collect(WorkersAIProvider(FakeAi(lambda: body())).stream(request())), 5)
    assert texts(parts) == "a" and closed.is_set()


# -------------------------------------------------------------------------------------- errors


DOCUMENTED = {
    5007: "AiError: 5007: No such model @cf/x/y or task",
    5006: "AiError: 5006: Error: required properties at '/' are 'messages'",
    5021: (
        "AiError: 5021: The estimated number of input and maximum output tokens (35000) exceeded this "
        "model context window limit (24000)."
    ),
    3006: "AiError: 3006: Request is too large",
    3007: "AiError: 3007: Request timeout",
    3036: "AiError: 3036: You have used up your daily free allocation of 10,000 neurons.",
    3040: "AiError: 3040: No more data centers to forward the request to",
    3023: "AiError: 3023: Service unavailable for account",
}


@pytest.mark.parametrize("code", sorted(ERROR_KINDS))
async def test_every_documented_code_maps_to_its_kind(code: int) -> None:
    message = DOCUMENTED.get(code, f"AiError: {code}: something")
    with pytest.raises(ProviderError) as caught:
        await WorkersAIProvider(FakeAi(RuntimeError(message)), name="wai").complete(request())
    kind, status = ERROR_KINDS[code]
    assert (caught.value.kind, caught.value.status, caught.value.provider) == (kind, status, "wai")
    assert isinstance(caught.value.__cause__, RuntimeError)
    assert caught.value.message.startswith("wai: ")


@pytest.mark.parametrize(
    ("message", "kind", "retryable"),
    [
        ("AiError: 5007: No such model @cf/x/y or task", FailureKind.INVALID_REQUEST, False),
        ("AiError: 5006: Error: oneOf at '/' not met", FailureKind.INVALID_REQUEST, False),
        ("Error: AiError: 3040: No more data centers", FailureKind.RATE_LIMITED, True),
        ("AiError: 3036: daily free allocation", FailureKind.RATE_LIMITED, True),
        ("AiError: 3007: Request timeout", FailureKind.TIMEOUT, True),
        (
            "3010: AiError: The estimated number of input and maximum output tokens (35000) exceeded this "
            "model context window limit (24000)",
            FailureKind.INVALID_REQUEST,
            False,
        ),
        (
            "AiError: This model's maximum context length is 131072 tokens.",
            FailureKind.INVALID_REQUEST,
            False,
        ),
        ("InferenceUpstreamError: AiError: 9999: new", FailureKind.SERVER, True),
        ("network connection lost", FailureKind.SERVER, True),
    ],
)
async def test_binding_errors_become_typed_provider_errors(
    message: str, kind: FailureKind, retryable: bool
) -> None:
    with pytest.raises(ProviderError) as caught:
        await collect(WorkersAIProvider(FakeAi(RuntimeError(message))).stream(request()))
    assert caught.value.kind is kind and caught.value.retryable is retryable


async def test_a_failure_mid_stream_is_translated() -> None:
    async def failing() -> AsyncIterator[bytes]:
        yield b'data: {"response": "a"}\n\n'
        raise RuntimeError("AiError: 3040: No more data centers to forward the request to")

    received: list[StreamPart] = []
    with pytest.raises(ProviderError) as caught:
        async for part in WorkersAIProvider(FakeAi(lambda: ReadableStream(failing()))).stream(request()):
            received.append(part)
    assert caught.value.kind is FailureKind.RATE_LIMITED and received == [TextDelta("a")]


async def test_an_error_event_in_the_stream_is_translated() -> None:
    chunks = sse({"errors": [{"message": "AiError: 3007: Request timeout", "code": 3007}]})
    with pytest.raises(ProviderError) as caught:
        await collect(WorkersAIProvider(FakeAi(stream_of(chunks))).stream(request()))
    assert caught.value.kind is FailureKind.TIMEOUT


async def test_long_error_messages_are_cut() -> None:
    with pytest.raises(ProviderError) as caught:
        await WorkersAIProvider(FakeAi(RuntimeError("AiError: 5006: " + "x" * 5000))).complete(request())
    assert len(caught.value.message) < 400
