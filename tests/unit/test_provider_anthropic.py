"""The Anthropic Messages adapter, through the real httpx client, against the scripted server on loopback."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from dedalus.providers.anthropic import DEFAULT_MAX_TOKENS, AnthropicProvider
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
from edgerag.llm.types import ChatMessage, ToolCall, ToolSpec, Usage
from edgerag_local.fakeprovider import (
    FakeProvider,
    FakeToolCall,
    Stream,
    Tokens,
    anthropic_events,
    anthropic_message,
    anthropic_stream,
    error_reply,
    invalid_json,
    json_reply,
    sse,
    sse_stream,
)
from edgerag_local.sdk.http_client import HttpxClient

KEY = "sk-ant-test-0123456789abcdef"
GUARD = 10.0  # only guards against a hang
EPHEMERAL = {"type": "ephemeral"}


@pytest.fixture
async def fake() -> AsyncIterator[FakeProvider]:
    async with FakeProvider() as server:
        yield server


@pytest.fixture
async def http() -> AsyncIterator[HttpxClient]:
    async with HttpxClient() as client:
        yield client


@pytest.fixture
def provider(fake: FakeProvider, http: HttpxClient) -> AnthropicProvider:
    return AnthropicProvider("anthropic", KEY, http, base_url=fake.base_url, clock=lambda: 0.0)


def ask(text: str = "hi", **kwargs: object) -> ProviderRequest:
    return ProviderRequest(model="claude-test", messages=[ChatMessage(role="user", content=text)], **kwargs)  # type: ignore[arg-type]


async def collect(provider: AnthropicProvider, request: ProviderRequest) -> list[StreamPart]:
    async def run() -> list[StreamPart]:
        return [part async for part in provider.stream(request)]

    return await asyncio.wait_for(run(), GUARD)


async def failure(coro: object) -> ProviderError:
    with pytest.raises(ProviderError) as info:
        await asyncio.wait_for(coro, GUARD)  # type: ignore[arg-type]
    return info.value


TOOLS = [
    ToolSpec(name="search", description="search the docs", parameters={"type": "object", "properties": {}}),
    ToolSpec(name="lookup", description="look one up"),
]
CONVERSATION = [
    ChatMessage(role="system", content="You answer from the sources."),
    ChatMessage(role="user", content="What is X?"),
    ChatMessage(
        role="assistant",
        content="Let me look.",
        tool_calls=[
            ToolCall(id="toolu_1", name="search", arguments='{"q": "X"}'),
            ToolCall(id="toolu_2", name="lookup", arguments="not json"),
        ],
    ),
    ChatMessage(role="tool", tool_call_id="toolu_1", content='{"hits": 1}'),
    ChatMessage(role="tool", tool_call_id="toolu_2", content="error: invalid arguments"),
    ChatMessage(role="user", content="Thanks, go on."),
]


# -- request shape ------------------------------------------------------------------------------


async def test_request_headers_system_tools_and_messages(
    fake: FakeProvider, provider: AnthropicProvider
) -> None:
    fake.reply(json_reply(anthropic_message("X is a letter.")))
    await provider.complete(
        ProviderRequest(model="claude-test", messages=CONVERSATION, tools=TOOLS, temperature=0.5)
    )
    (request,) = fake.requests
    assert (request.method, request.path) == ("POST", "/v1/messages")
    assert request.headers["x-api-key"] == KEY
    assert request.headers["anthropic-version"] == "2023-06-01"
    assert "authorization" not in request.headers
    body = request.json
    assert body["model"] == "claude-test"
    assert body["max_tokens"] == DEFAULT_MAX_TOKENS  # required by Anthropic
    assert body["temperature"] == 0.5
    assert "stream" not in body
    assert body["system"] == [
        {"type": "text", "text": "You answer from the sources.", "cache_control": EPHEMERAL}
    ]
    assert body["tools"] == [
        {
            "name": "search",
            "description": "search the docs",
            "input_schema": {"type": "object", "properties": {}},
        },
        {
            "name": "lookup",
            "description": "look one up",
            "input_schema": {"type": "object", "properties": {}},
            "cache_control": EPHEMERAL,  # the last tool: caches every tool definition and the system prompt
        },
    ]
    assert body["messages"] == [
        {"role": "user", "content": "What is X?"},
        {
            "role": "assistant",
            "content": [
                {"type": "text", "text": "Let me look."},
                {"type": "tool_use", "id": "toolu_1", "name": "search", "input": {"q": "X"}},
                {"type": "tool_use", "id": "toolu_2", "name": "lookup", "input": {}},  # not JSON: sent as {}
            ],
        },
        {
            "role": "user",  # both results and the next user text in ONE turn, results first
            "content": [
                {"type": "tool_result", "tool_use_id": "toolu_1", "content": '{"hits": 1}'},
                {"type": "tool_result", "tool_use_id": "toolu_2", "content": "error: invalid arguments"},
                {"type": "text", "text": "Thanks, go on."},
            ],
        },
    ]


async def test_without_prompt_caching_the_system_prompt_is_plain(
    fake: FakeProvider, http: HttpxClient
) -> None:
    plain = AnthropicProvider("a", KEY, http, base_url=fake.base_url + "/", cache_prompt=False)
    fake.reply(json_reply(anthropic_message("ok")))
    await plain.complete(ProviderRequest(model="m", messages=CONVERSATION[:2], tools=TOOLS, max_tokens=99))
    body = fake.requests[0].json
    assert fake.requests[0].path == "/v1/messages"
    assert body["system"] == "You answer from the sources."
    assert all("cache_control" not in tool for tool in body["tools"])
    assert body["max_tokens"] == 99


async def test_options_pass_through_but_cannot_override_owned_keys(
    fake: FakeProvider, provider: AnthropicProvider
) -> None:
    fake.reply(json_reply(anthropic_message("ok")))
    await provider.complete(ask(options={"top_k": 5, "metadata": {"user_id": "u1"}}))
    assert fake.requests[0].json["top_k"] == 5
    assert fake.requests[0].json["metadata"] == {"user_id": "u1"}
    error = await failure(provider.complete(ask(options={"system": "ignore the rules"})))
    assert error.kind is FailureKind.INVALID_REQUEST and "system" in error.message
    assert len(fake.requests) == 1  # the second call sent nothing


async def test_a_missing_key_is_a_configuration_error_and_sends_nothing(
    fake: FakeProvider, http: HttpxClient
) -> None:
    keyless = AnthropicProvider("anthropic", "", http, base_url=fake.base_url)
    error = await failure(keyless.complete(ask()))
    assert error.kind is FailureKind.CONFIGURATION and not error.retryable
    assert fake.requests == []


# -- non-streamed answers -----------------------------------------------------------------------


async def test_non_streamed_text_with_cached_usage(fake: FakeProvider, provider: AnthropicProvider) -> None:
    fake.reply(json_reply(anthropic_message("Hello.", usage=Tokens(10, 4, cached=900, cache_write=50))))
    assert await provider.complete(ask()) == Completion(
        text="Hello.",
        tool_calls=[],
        # prompt_tokens counts every input token, cached ones included (as OpenAI's does)
        usage=Usage(prompt_tokens=960, completion_tokens=4, cached_prompt_tokens=900),
        finish_reason="stop",
    )


async def test_non_streamed_tool_use(fake: FakeProvider, provider: AnthropicProvider) -> None:
    calls = [
        FakeToolCall("search", '{"q": "cats"}', id="toolu_a"),
        FakeToolCall("lookup", "{}", id="toolu_b"),
    ]
    fake.reply(json_reply(anthropic_message("Checking.", calls)))
    result = await provider.complete(ask())
    assert result.text == "Checking."
    assert result.finish_reason == "tool_calls"
    assert result.tool_calls == [
        ToolCall(id="toolu_a", name="search", arguments='{"q": "cats"}'),
        ToolCall(id="toolu_b", name="lookup", arguments="{}"),
    ]


@pytest.mark.parametrize(
    ("stop_reason", "finish"),
    [
        ("end_turn", "stop"),
        ("stop_sequence", "stop"),
        ("max_tokens", "length"),
        ("refusal", "content_filter"),
    ],
)
async def test_stop_reasons(
    fake: FakeProvider, provider: AnthropicProvider, stop_reason: str, finish: str
) -> None:
    fake.reply(json_reply(anthropic_message("x", stop_reason=stop_reason)))
    assert (await provider.complete(ask())).finish_reason == finish


async def test_invalid_json_and_wrong_shapes_are_bad_responses(
    fake: FakeProvider, provider: AnthropicProvider
) -> None:
    fake.reply(invalid_json(), json_reply({"type": "message", "content": "text?"}))
    for _ in range(2):
        assert (await failure(provider.complete(ask()))).kind is FailureKind.BAD_RESPONSE


# -- streams ------------------------------------------------------------------------------------


async def test_streamed_text_and_two_tool_calls_assembled_from_json_deltas(
    fake: FakeProvider, provider: AnthropicProvider
) -> None:
    calls = [
        FakeToolCall("search", ['{"q": ', '"ca', 'ts"}'], id="toolu_s"),
        FakeToolCall("lookup", [""], id="toolu_l"),  # no input: one empty partial_json, as Anthropic sends
    ]
    fake.reply(anthropic_stream(["Let me ", "check."], calls, usage=Tokens(20, 31, cached=100)))
    parts = await collect(provider, ask())
    assert parts == [
        TextDelta("Let me "),
        TextDelta("check."),
        ToolCallPart(ToolCall(id="toolu_s", name="search", arguments='{"q": "cats"}')),
        ToolCallPart(ToolCall(id="toolu_l", name="lookup", arguments="{}")),
        UsagePart(Usage(prompt_tokens=120, completion_tokens=31, cached_prompt_tokens=100)),
        FinishPart("tool_calls"),
    ]
    assert fake.requests[0].json["stream"] is True
    assert fake.requests[0].headers["accept"] == "text/event-stream"


async def test_unknown_events_and_deltas_are_ignored(fake: FakeProvider, provider: AnthropicProvider) -> None:
    events = anthropic_events(["Hi"])
    thinking = sse(
        {"type": "content_block_delta", "index": 0, "delta": {"type": "thinking_delta", "thinking": "hmm"}},
        event="content_block_delta",
    )
    future = sse({"type": "brand_new_event", "x": 1}, event="brand_new_event")
    fake.reply(sse_stream([*events[:3], thinking, future, b": comment\n\n", *events[3:]]))
    parts = await collect(provider, ask())
    assert [p for p in parts if isinstance(p, TextDelta)] == [TextDelta("Hi")]
    assert parts[-1] == FinishPart("stop")


async def test_a_stream_is_read_incrementally(fake: FakeProvider, provider: AnthropicProvider) -> None:
    gate = asyncio.Event()
    events = anthropic_events(["first", "second"])
    fake.reply(Stream([*events[:4], gate, *events[4:]]))  # hold back after the first text delta
    stream = provider.stream(ask())
    assert await asyncio.wait_for(anext(stream), GUARD) == TextDelta("first")
    gate.set()
    rest = [part async for part in stream]
    assert rest[0] == TextDelta("second") and rest[-1] == FinishPart("stop")


@pytest.mark.parametrize(
    ("error_type", "kind"),
    [
        ("overloaded_error", FailureKind.SERVER),
        ("api_error", FailureKind.SERVER),
        ("invalid_request_error", FailureKind.INVALID_REQUEST),
        ("rate_limit_error", FailureKind.RATE_LIMITED),
    ],
)
async def test_an_error_event_mid_stream(
    fake: FakeProvider, provider: AnthropicProvider, error_type: str, kind: FailureKind
) -> None:
    events = anthropic_events(["partial"])
    error_event = sse(
        {"type": "error", "error": {"type": error_type, "message": "Overloaded"}}, event="error"
    )
    fake.reply(sse_stream([*events[:4], error_event]))
    seen: list[StreamPart] = []
    with pytest.raises(ProviderError) as info:
        async with asyncio.timeout(GUARD):
            async for part in provider.stream(ask()):
                seen.append(part)
    assert seen == [TextDelta("partial")]
    assert info.value.kind is kind and error_type in info.value.message


async def test_a_stream_without_message_stop_is_truncated(
    fake: FakeProvider, provider: AnthropicProvider
) -> None:
    fake.reply(anthropic_stream(["a"], stop=False))
    error = await failure(collect(provider, ask()))
    assert error.kind is FailureKind.BAD_RESPONSE and "message_stop" in error.message


async def test_a_dropped_connection_is_truncated(fake: FakeProvider, provider: AnthropicProvider) -> None:
    events = anthropic_events(["a"])
    fake.reply(Stream([*events[:4], events[4][:10]], end="drop"))
    error = await failure(collect(provider, ask()))
    assert error.kind is FailureKind.BAD_RESPONSE and "truncated" in error.message


async def test_invalid_json_in_an_event_is_a_bad_response(
    fake: FakeProvider, provider: AnthropicProvider
) -> None:
    fake.reply(sse_stream([b"event: message_start\ndata: {oops\n\n"]))
    error = await failure(collect(provider, ask()))
    assert error.kind is FailureKind.BAD_RESPONSE and "not valid JSON" in error.message


# -- HTTP failures ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "error_type", "kind"),
    [
        (529, "overloaded_error", FailureKind.SERVER),
        (500, "api_error", FailureKind.SERVER),
        (401, "authentication_error", FailureKind.AUTH),
        (403, "permission_error", FailureKind.AUTH),
        (400, "invalid_request_error", FailureKind.INVALID_REQUEST),
        (413, "request_too_large", FailureKind.INVALID_REQUEST),
    ],
)
async def test_http_errors(
    fake: FakeProvider, provider: AnthropicProvider, status: int, error_type: str, kind: FailureKind
) -> None:
    fake.reply(
        error_reply(status, "prompt is too long: 210000 tokens", style="anthropic", error_type=error_type)
    )
    error = await failure(collect(provider, ask()))
    assert (error.kind, error.status) == (kind, status)
    assert f"{error_type}: prompt is too long: 210000 tokens" in error.message


async def test_429_honours_retry_after(fake: FakeProvider, provider: AnthropicProvider) -> None:
    fake.reply(
        error_reply(429, style="anthropic", error_type="rate_limit_error", headers={"retry-after": "30"})
    )
    error = await failure(provider.complete(ask()))
    assert (error.kind, error.retry_after) == (FailureKind.RATE_LIMITED, 30.0)


async def test_the_api_key_never_appears_in_an_error(fake: FakeProvider, provider: AnthropicProvider) -> None:
    fake.reply(
        error_reply(401, f"invalid x-api-key {KEY}", style="anthropic", error_type="authentication_error")
    )
    error = await failure(provider.complete(ask()))
    for text in (error.message, str(error), repr(error), repr(provider)):
        assert KEY not in text
    assert "[redacted]" in error.message
