"""The OpenAI-compatible adapter, through the real httpx client, against the scripted server on loopback."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from email.utils import format_datetime

import pytest
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
from dedalus.providers.openai_compat import OpenAICompatibleProvider
from edgerag.llm.types import ChatMessage, ToolCall, ToolSpec, Usage
from edgerag_local.fakeprovider import (
    FakeProvider,
    FakeToolCall,
    Stream,
    Tokens,
    error_reply,
    invalid_json,
    json_reply,
    openai_chunks,
    openai_completion,
    openai_stream,
    sse,
    sse_stream,
)
from edgerag_local.sdk.http_client import HttpxClient

KEY = "sk-test-0123456789abcdef"
NOW = 1_700_000_000.0
GUARD = 10.0  # only guards against a hang


@pytest.fixture
async def fake() -> AsyncIterator[FakeProvider]:
    async with FakeProvider() as server:
        yield server


@pytest.fixture
async def http() -> AsyncIterator[HttpxClient]:
    async with HttpxClient() as client:
        yield client


@pytest.fixture
def provider(fake: FakeProvider, http: HttpxClient) -> OpenAICompatibleProvider:
    return OpenAICompatibleProvider("openai", fake.openai_base_url, KEY, http, clock=lambda: NOW)


def ask(text: str = "hi", **kwargs: object) -> ProviderRequest:
    return ProviderRequest(model="gpt-test", messages=[ChatMessage(role="user", content=text)], **kwargs)  # type: ignore[arg-type]


async def collect(provider: OpenAICompatibleProvider, request: ProviderRequest) -> list[StreamPart]:
    async def run() -> list[StreamPart]:
        return [part async for part in provider.stream(request)]

    return await asyncio.wait_for(run(), GUARD)


async def failure(coro: object) -> ProviderError:
    with pytest.raises(ProviderError) as info:
        await asyncio.wait_for(coro, GUARD)  # type: ignore[arg-type]
    return info.value


def text_of(parts: list[StreamPart]) -> str:
    return "".join(p.text for p in parts if isinstance(p, TextDelta))


# -- request shape ------------------------------------------------------------------------------


async def test_non_streamed_text_and_the_request_it_sent(
    fake: FakeProvider, provider: OpenAICompatibleProvider
) -> None:
    fake.reply(json_reply(openai_completion("Hello there", usage=Tokens(20, 3, cached=8))))
    result = await provider.complete(ask("hello", max_tokens=50, temperature=0.2))
    assert result == Completion(
        text="Hello there",
        tool_calls=[],
        usage=Usage(prompt_tokens=20, completion_tokens=3, cached_prompt_tokens=8),
        finish_reason="stop",
    )
    (request,) = fake.requests
    assert (request.method, request.path) == ("POST", "/v1/chat/completions")
    assert request.headers["authorization"] == f"Bearer {KEY}"
    assert request.headers["content-type"] == "application/json"
    assert request.json == {
        "model": "gpt-test",
        "messages": [{"role": "user", "content": "hello"}],
        "max_tokens": 50,
        "temperature": 0.2,
    }


async def test_tools_tool_messages_and_options_are_sent_in_openai_shape(
    fake: FakeProvider, provider: OpenAICompatibleProvider
) -> None:
    fake.reply(json_reply(openai_completion("done")))
    request = ProviderRequest(
        model="openai/gpt-4o-mini",
        messages=[
            ChatMessage(role="system", content="be brief"),
            ChatMessage(role="user", content="weather?", name="alice"),
            ChatMessage(
                role="assistant",
                tool_calls=[ToolCall(id="call_1", name="weather", arguments='{"city":"Oslo"}')],
            ),
            ChatMessage(role="tool", tool_call_id="call_1", content='{"temp": 3}', name="weather"),
        ],
        tools=[ToolSpec(name="weather", description="current weather", parameters={"type": "object"})],
        options={"mcp_servers": ["dedalus-labs/brave-search"], "handoff_config": {"x": 1}},
    )
    await provider.complete(request)
    body = fake.requests[0].json
    assert body["messages"] == [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": "weather?", "name": "alice"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "weather", "arguments": '{"city":"Oslo"}'},
                }
            ],
        },
        {"role": "tool", "content": '{"temp": 3}', "tool_call_id": "call_1"},
    ]
    assert body["tools"] == [
        {
            "type": "function",
            "function": {
                "name": "weather",
                "description": "current weather",
                "parameters": {"type": "object"},
            },
        }
    ]
    assert body["mcp_servers"] == ["dedalus-labs/brave-search"]
    assert body["handoff_config"] == {"x": 1}
    assert "stream" not in body


@pytest.mark.parametrize(
    "key", ["model", "messages", "max_tokens", "max_completion_tokens", "stream", "tools"]
)
async def test_options_cannot_override_what_the_adapter_owns(
    fake: FakeProvider, provider: OpenAICompatibleProvider, key: str
) -> None:
    error = await failure(provider.complete(ask(options={key: "x"})))
    assert error.kind is FailureKind.INVALID_REQUEST and key in error.message
    assert fake.requests == []  # nothing was sent


async def test_no_api_key_sends_no_authorization_header(fake: FakeProvider, http: HttpxClient) -> None:
    local = OpenAICompatibleProvider("ollama", fake.openai_base_url, None, http)
    fake.reply(json_reply(openai_completion("local")))
    assert (await local.complete(ask())).text == "local"
    assert "authorization" not in fake.requests[0].headers


async def test_default_headers_are_sent(fake: FakeProvider, http: HttpxClient) -> None:
    custom = OpenAICompatibleProvider(
        "p", fake.openai_base_url + "/", KEY, http, default_headers={"X-Title": "edgerag"}
    )
    fake.reply(json_reply(openai_completion("ok")))
    await custom.complete(ask())
    assert fake.requests[0].path == "/v1/chat/completions"
    assert fake.requests[0].headers["x-title"] == "edgerag"


# -- non-streamed answers -----------------------------------------------------------------------


async def test_non_streamed_tool_calls(fake: FakeProvider, provider: OpenAICompatibleProvider) -> None:
    calls = [
        FakeToolCall("search", '{"q": "a"}', id="call_a"),
        FakeToolCall("lookup", '{"id": 2}', id="call_b"),
    ]
    fake.reply(json_reply(openai_completion(None, calls)))
    result = await provider.complete(ask())
    assert result.text == ""
    assert result.finish_reason == "tool_calls"
    assert result.tool_calls == [
        ToolCall(id="call_a", name="search", arguments='{"q": "a"}'),
        ToolCall(id="call_b", name="lookup", arguments='{"id": 2}'),
    ]


async def test_local_server_quirks_are_tolerated(
    fake: FakeProvider, provider: OpenAICompatibleProvider
) -> None:
    body = openai_completion(None, usage=None)
    body["choices"][0]["message"]["tool_calls"] = [
        {"type": "function", "function": {"name": "f", "arguments": {"a": 1}}}
    ]
    body["choices"][0]["finish_reason"] = "stop"  # some local servers say stop while calling tools
    fake.reply(json_reply(body))
    result = await provider.complete(ask())
    assert result.tool_calls == [ToolCall(id="call_0", name="f", arguments='{"a": 1}')]
    assert result.finish_reason == "tool_calls"
    assert result.usage == Usage()  # no usage reported: zeros, the caller estimates


@pytest.mark.parametrize(
    "body",
    [{"choices": []}, {"choices": [{"index": 0}]}, [1, 2], {"choices": [{"message": {"content": 5}}]}],
)
async def test_a_body_without_a_message_is_a_bad_response(
    fake: FakeProvider, provider: OpenAICompatibleProvider, body: object
) -> None:
    fake.reply(json_reply(body))
    assert (await failure(provider.complete(ask()))).kind is FailureKind.BAD_RESPONSE


async def test_invalid_json_is_a_bad_response(fake: FakeProvider, provider: OpenAICompatibleProvider) -> None:
    fake.reply(invalid_json())
    error = await failure(provider.complete(ask()))
    assert error.kind is FailureKind.BAD_RESPONSE and error.retryable
    assert "not valid JSON" in error.message


# -- streams ------------------------------------------------------------------------------------


async def test_streamed_text_with_usage(fake: FakeProvider, provider: OpenAICompatibleProvider) -> None:
    fake.reply(openai_stream(["Hel", "lo", " wörld"], usage=Tokens(30, 4, cached=16)))
    parts = await collect(provider, ask())
    assert parts == [
        TextDelta("Hel"),
        TextDelta("lo"),
        TextDelta(" wörld"),
        UsagePart(Usage(prompt_tokens=30, completion_tokens=4, cached_prompt_tokens=16)),
        FinishPart("stop"),
    ]
    body = fake.requests[0].json
    assert body["stream"] is True
    assert body["stream_options"] == {"include_usage": True}
    assert fake.requests[0].headers["accept"] == "text/event-stream"


async def test_tool_call_deltas_are_assembled_across_chunks_for_two_parallel_calls(
    fake: FakeProvider, provider: OpenAICompatibleProvider
) -> None:
    calls = [
        FakeToolCall("search", ['{"q', '": "ca', 'ts"}'], id="call_s"),
        FakeToolCall("lookup", ["", '{"id"', ": 7}"], id="call_l"),
    ]
    fake.reply(openai_stream(["Let me check."], calls))
    parts = await collect(provider, ask())
    assert parts[0] == TextDelta("Let me check.")
    assert parts[1:3] == [
        ToolCallPart(ToolCall(id="call_s", name="search", arguments='{"q": "cats"}')),
        ToolCallPart(ToolCall(id="call_l", name="lookup", arguments='{"id": 7}')),
    ]
    assert parts[-1] == FinishPart("tool_calls")


async def test_interleaved_tool_call_fragments_are_assembled_by_index(
    fake: FakeProvider, provider: OpenAICompatibleProvider
) -> None:
    def chunk(*fragments: dict[str, object], finish: str | None = None) -> bytes:
        return sse(
            {"choices": [{"index": 0, "delta": {"tool_calls": list(fragments)}, "finish_reason": finish}]}
        )

    fake.reply(
        sse_stream(
            [
                chunk({"index": 1, "id": "call_b", "function": {"name": "b", "arguments": '{"y"'}}),
                chunk({"index": 0, "id": "call_a", "function": {"name": "a", "arguments": '{"x"'}}),
                chunk(
                    {"index": 0, "function": {"arguments": ": 1}"}},
                    {"index": 1, "function": {"arguments": ": 2}"}},
                ),
                chunk(finish="tool_calls"),
                sse("[DONE]"),
            ]
        )
    )
    parts = await collect(provider, ask())
    assert parts == [
        ToolCallPart(ToolCall(id="call_a", name="a", arguments='{"x": 1}')),
        ToolCallPart(ToolCall(id="call_b", name="b", arguments='{"y": 2}')),
        FinishPart("tool_calls"),
    ]


async def test_comments_multiline_data_crlf_and_arbitrary_splits_follow_the_sse_rules(
    fake: FakeProvider, provider: OpenAICompatibleProvider
) -> None:
    first, finish, usage = (
        json.dumps(c, ensure_ascii=False) for c in openai_chunks(["é"], usage=Tokens(1, 1))[1:]
    )
    # a JSON chunk spread over two data lines (joined with "\n", which JSON ignores), CRLF endings,
    # comments (keep-alives) between events, and the bytes cut in the middle of a UTF-8 character
    split = first.index(",") + 1  # between two JSON members
    wire = (
        b": keep-alive\r\n\r\n"
        + b"data: "
        + first[:split].encode()
        + b"\r\ndata: "
        + first[split:].encode()
        + b"\r\n\r\n:another comment\n"
        + b"data: "
        + finish.encode()
        + b"\n\n"
        + b"data: "
        + usage.encode()
        + b"\r\rdata: [DONE]\n\n"
    )
    cut = wire.index("é".encode()) + 1
    fake.reply(Stream([wire[:cut], wire[cut : cut + 7], wire[cut + 7 :]]))
    parts = await collect(provider, ask())
    assert parts == [
        TextDelta("é"),
        UsagePart(Usage(prompt_tokens=1, completion_tokens=1)),
        FinishPart("stop"),
    ]


async def test_nothing_is_read_after_done(fake: FakeProvider, provider: OpenAICompatibleProvider) -> None:
    # the connection stays open and silent after [DONE]: the adapter must finish anyway
    fake.reply(openai_stream(["ok"], end="stall"))
    assert text_of(await collect(provider, ask())) == "ok"


async def test_a_stream_is_read_incrementally(fake: FakeProvider, provider: OpenAICompatibleProvider) -> None:
    gate = asyncio.Event()
    chunks = [sse(c) for c in openai_chunks(["first", "second"])] + [sse("[DONE]")]
    fake.reply(Stream([chunks[0], chunks[1], gate, *chunks[2:]]))
    stream = provider.stream(ask())
    # the first token arrives while the server is still holding back the rest of the stream
    assert await asyncio.wait_for(anext(stream), GUARD) == TextDelta("first")
    assert fake.chunks_sent == 2
    gate.set()
    rest = [part async for part in stream]
    assert rest[0] == TextDelta("second") and rest[-1] == FinishPart("stop")


async def test_a_stalled_stream_is_ended_by_the_callers_timeout_and_releases_the_connection(
    fake: FakeProvider, provider: OpenAICompatibleProvider
) -> None:
    fake.reply(Stream([sse(openai_chunks(["a"])[1])], end="stall"))
    stream = provider.stream(ask())
    assert await asyncio.wait_for(anext(stream), GUARD) == TextDelta("a")
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(anext(stream), 0.05)  # the per-chunk timeout the resilience layer applies
    with pytest.raises(StopAsyncIteration):
        await anext(stream)  # the cancelled stream is finished, not resumable ...
    await asyncio.wait_for(fake.wait_for_hangups(1), GUARD)  # ... and its connection was closed


# -- stream failures ----------------------------------------------------------------------------


async def test_a_stream_without_done_is_truncated(
    fake: FakeProvider, provider: OpenAICompatibleProvider
) -> None:
    fake.reply(openai_stream(["a"], done=False))
    error = await failure(collect(provider, ask()))
    assert error.kind is FailureKind.BAD_RESPONSE and "truncated" in error.message


async def test_a_stream_without_finish_reason_is_truncated(
    fake: FakeProvider, provider: OpenAICompatibleProvider
) -> None:
    chunks = openai_chunks(["a"], usage=None)[:-1]  # drop the finish_reason chunk
    fake.reply(sse_stream([*map(sse, chunks), sse("[DONE]")]))
    error = await failure(collect(provider, ask()))
    assert error.kind is FailureKind.BAD_RESPONSE and "finish_reason" in error.message


async def test_a_stream_ending_inside_an_event_is_truncated(
    fake: FakeProvider, provider: OpenAICompatibleProvider
) -> None:
    whole = sse(openai_chunks(["a"])[1])
    fake.reply(Stream([sse(openai_chunks(["a"])[0]), whole[: len(whole) // 2]]))
    error = await failure(collect(provider, ask()))
    assert error.kind is FailureKind.BAD_RESPONSE and "inside an event" in error.message


async def test_a_dropped_connection_after_tokens_fails_after_the_tokens(
    fake: FakeProvider, provider: OpenAICompatibleProvider
) -> None:
    fake.reply(openai_stream(["partial"], done=False, end="drop"))
    seen: list[StreamPart] = []
    with pytest.raises(ProviderError) as info:
        async with asyncio.timeout(GUARD):
            async for part in provider.stream(ask()):
                seen.append(part)
    assert seen == [TextDelta("partial")]  # the caller knows tokens were sent before the failure
    assert info.value.kind is FailureKind.BAD_RESPONSE and "connection was lost" in info.value.message


async def test_invalid_json_in_a_chunk_is_a_bad_response(
    fake: FakeProvider, provider: OpenAICompatibleProvider
) -> None:
    fake.reply(sse_stream([b"data: {not json\n\n", sse("[DONE]")]))
    error = await failure(collect(provider, ask()))
    assert error.kind is FailureKind.BAD_RESPONSE and "not valid JSON" in error.message


async def test_malformed_sse_is_a_bad_response(
    fake: FakeProvider, provider: OpenAICompatibleProvider
) -> None:
    fake.reply(sse_stream([b"<html>502 Bad Gateway</html>\n\n"]))  # no event at all
    assert (await failure(collect(provider, ask()))).kind is FailureKind.BAD_RESPONSE


async def test_an_error_chunk_mid_stream_is_a_server_failure(
    fake: FakeProvider, provider: OpenAICompatibleProvider
) -> None:
    fake.reply(sse_stream([sse(openai_chunks(["a"])[1]), sse({"error": {"message": "engine died"}})]))
    error = await failure(collect(provider, ask()))
    assert error.kind is FailureKind.SERVER and "engine died" in error.message


# -- HTTP failures ------------------------------------------------------------------------------


async def test_429_with_retry_after_seconds(fake: FakeProvider, provider: OpenAICompatibleProvider) -> None:
    fake.reply(error_reply(429, "Rate limit reached", headers={"retry-after": "7"}))
    error = await failure(provider.complete(ask()))
    assert (error.kind, error.status, error.retry_after) == (FailureKind.RATE_LIMITED, 429, 7.0)
    assert "Rate limit reached" in error.message


async def test_429_with_retry_after_http_date(fake: FakeProvider, provider: OpenAICompatibleProvider) -> None:
    when = format_datetime(datetime.fromtimestamp(NOW + 12, tz=UTC), usegmt=True)
    fake.reply(error_reply(429, headers={"retry-after": when}))
    error = await failure(collect(provider, ask()))
    assert (error.kind, error.retry_after) == (FailureKind.RATE_LIMITED, 12.0)


async def test_retry_after_ms_wins_over_retry_after(
    fake: FakeProvider, provider: OpenAICompatibleProvider
) -> None:
    fake.reply(error_reply(429, headers={"retry-after-ms": "1500", "retry-after": "2"}))
    assert (await failure(provider.complete(ask()))).retry_after == 1.5


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"retry-after": "soon"}, None),
        ({"retry-after": "-3"}, None),
        ({"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"}, 0.0),  # a date in the past: retry now
        ({"retry-after-ms": "x", "retry-after": "4"}, 4.0),
        ({}, None),
    ],
)
async def test_unusable_retry_after_values_are_ignored(
    fake: FakeProvider, provider: OpenAICompatibleProvider, headers: dict[str, str], expected: float | None
) -> None:
    fake.reply(error_reply(429, headers=headers))
    error = await failure(provider.complete(ask()))
    assert (error.kind, error.retry_after) == (FailureKind.RATE_LIMITED, expected)


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (500, FailureKind.SERVER),
        (503, FailureKind.SERVER),
        (408, FailureKind.TIMEOUT),
        (504, FailureKind.TIMEOUT),
        (401, FailureKind.AUTH),
        (403, FailureKind.AUTH),
        (400, FailureKind.INVALID_REQUEST),
        (404, FailureKind.INVALID_REQUEST),
        (413, FailureKind.INVALID_REQUEST),
    ],
)
async def test_http_statuses_map_to_failure_kinds(
    fake: FakeProvider, provider: OpenAICompatibleProvider, status: int, kind: FailureKind
) -> None:
    fake.reply(error_reply(status, "the provider's own words"))
    error = await failure(provider.complete(ask()))
    assert (error.kind, error.status, error.retry_after) == (kind, status, None)
    assert "the provider's own words" in error.message
    assert error.retryable is kind.retryable


async def test_400_carries_the_providers_message(
    fake: FakeProvider, provider: OpenAICompatibleProvider
) -> None:
    fake.reply(
        error_reply(
            400, "This model's maximum context length is 8192 tokens", error_type="invalid_request_error"
        )
    )
    error = await failure(collect(provider, ask()))
    assert error.kind is FailureKind.INVALID_REQUEST and not error.retryable
    assert "maximum context length is 8192 tokens" in error.message


async def test_connection_refused_is_a_server_failure(http: HttpxClient) -> None:
    with socket.socket() as sock:  # a port that was free a moment ago: nothing listens on it
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    provider = OpenAICompatibleProvider("down", f"http://127.0.0.1:{port}/v1", KEY, http)
    error = await failure(provider.complete(ask()))
    assert error.kind is FailureKind.SERVER and error.status is None and "no response" in error.message


async def test_the_api_key_never_appears_in_an_error(
    fake: FakeProvider, provider: OpenAICompatibleProvider
) -> None:
    fake.reply(error_reply(401, f"Incorrect API key provided: {KEY}. Find your key at ..."))
    error = await failure(provider.complete(ask()))
    assert error.kind is FailureKind.AUTH
    assert "Incorrect API key provided: [redacted]" in error.message
    for text in (error.message, str(error), repr(error), repr(provider)):
        assert KEY not in text
    assert fake.requests[0].headers["authorization"] == f"Bearer {KEY}"  # it was sent, only to the provider
