"""gateway -> service binding -> dedalus -> provider, and the event stream back, in the local stack.

The gateway side is the real client (:class:`gateway.dedalus.DedalusClient`) over the real local
service binding; dedalus runs through its entry module; providers are the local Workers AI stand-in
and the real OpenAI-compatible adapter against the scripted provider server on loopback, reached
through dedalus's outbound HTTP port (the SDK stand-in's fetch). Timeouts below only guard against
hangs; nothing asserts on wall-clock time.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from edgerag.contracts.dedalus import AgentLimits, CallContext, ChatCall
from edgerag.llm import events
from edgerag.llm.types import ChatMessage
from edgerag.store.d1 import fetch_all
from edgerag.store.tenants import TenantStore
from edgerag_local.fakeprovider import FakeProvider, error_reply, openai_stream
from edgerag_local.runtime.host import LocalStack
from gateway.dedalus import DedalusClient

from .conftest import make_stack

GUARD_S = 20
SOURCES = (
    "Answer from the sources.\n"
    "[1] Rocket engines\nLiquid rocket engines burn kerosene and liquid oxygen. "
    "The nozzle accelerates exhaust to make thrust.\n"
    "[2] Sourdough\nSourdough bread rises with wild yeast."
)
LOCAL_8B = "@cf/meta/llama-3.1-8b-instruct"


def _models_config(base_url: str) -> str:
    return json.dumps(
        {
            "providers": {
                "workers-ai": {"kind": "workers-ai"},
                "fake": {"kind": "openai", "base_url": base_url, "api_key_secret": "FAKE_API_KEY"},
                "nokey": {"kind": "openai", "base_url": base_url, "api_key_secret": "MISSING_API_KEY"},
            },
            "models": {
                "chat": "fake-model",
                "fallback_chat": [LOCAL_8B],
                "allow_override": ["keyless-model", LOCAL_8B],
                "catalog": {
                    "fake-model": {
                        "provider": "fake",
                        "model": "gpt-fake",
                        "input_usd_per_mtok": 1.0,
                        "output_usd_per_mtok": 2.0,
                        "context_window": 8000,
                        "supports_tools": True,
                    },
                    "keyless-model": {
                        "provider": "nokey",
                        "input_usd_per_mtok": 1.0,
                        "output_usd_per_mtok": 2.0,
                        "context_window": 8000,
                    },
                    LOCAL_8B: {
                        "provider": "workers-ai",
                        "input_usd_per_mtok": 0.282,
                        "output_usd_per_mtok": 0.827,
                        "context_window": 7968,
                    },
                },
            },
        }
    )


@pytest.fixture
async def fake() -> AsyncIterator[FakeProvider]:
    async with FakeProvider() as server:
        yield server


@pytest.fixture
async def stack(tmp_path: Path, fake: FakeProvider) -> AsyncIterator[LocalStack]:
    config = {
        "MODELS_CONFIG": _models_config(fake.openai_base_url),
        "FAKE_API_KEY": "sk-test-secret-value",
        "PROVIDER_MAX_RETRIES": "1",
        "PROVIDER_TIMEOUT_S": "10",
    }
    local = make_stack(tmp_path, extra_vars={"dedalus": config})
    try:
        yield local
    finally:
        await local.stop()
        local.close()


async def _tenant(stack: LocalStack, name: str = "acme") -> str:
    tenant = await TenantStore(stack.workers["gateway"].env.DB).create_tenant(name, "free")
    return tenant.id


def _call(tenant_id: str, *, stream: bool = True, model: str | None = None, **extra: Any) -> ChatCall:
    return ChatCall(
        context=CallContext(tenant_id=tenant_id, plan="free", request_id="req_test_1", key_id="key_1"),
        messages=[
            ChatMessage(role="system", content=SOURCES),
            ChatMessage(role="user", content="How does a nozzle make thrust?"),
        ],
        stream=stream,
        model=model,
        **extra,
    )


async def _collect(stack: LocalStack, call: ChatCall) -> list[events.AnyEvent]:
    client = DedalusClient(stack.workers["gateway"].env.DEDALUS)

    async def run() -> list[events.AnyEvent]:
        return [event async for event in client.chat(call)]

    return await asyncio.wait_for(run(), GUARD_S)


async def _usage_rows(stack: LocalStack, tenant_id: str) -> list[dict[str, Any]]:
    return await fetch_all(
        stack.workers["gateway"].env.DB,
        "SELECT request_id, key_id, model, provider, prompt_tokens, completion_tokens, estimated, status,"
        " error_code, cost_micro_usd FROM llm_calls WHERE tenant_id = ?1 ORDER BY created_at, id",
        tenant_id,
    )


@pytest.mark.parametrize("stream", [True, False])
async def test_a_chat_streams_tokens_then_usage_then_done_and_records_usage(
    stack: LocalStack, fake: FakeProvider, stream: bool
) -> None:
    tenant = await _tenant(stack)
    fake.reply(openai_stream(["The nozzle ", "makes thrust [1]."]) if stream else _completion())
    received = await _collect(stack, _call(tenant, stream=stream))
    kinds = [e.type for e in received]
    assert kinds[-2:] == ["usage", "done"] and set(kinds[:-2]) == {"token"}
    assert (
        "".join(e.text for e in received if isinstance(e, events.TokenEvent))
        == "The nozzle makes thrust [1]."
    )
    done = received[-1]
    assert isinstance(done, events.DoneEvent) and done.model == "fake-model" and done.provider == "fake"
    sent = fake.requests[0]
    assert sent.headers["authorization"] == "Bearer sk-test-secret-value"
    assert sent.json["model"] == "gpt-fake" and sent.json["messages"][1]["content"].startswith("How does")
    rows = await _usage_rows(stack, tenant)
    assert [(r["request_id"], r["key_id"], r["model"], r["status"]) for r in rows] == [
        ("req_test_1", "key_1", "fake-model", "ok")
    ]
    assert rows[0]["prompt_tokens"] > 0 and rows[0]["cost_micro_usd"] > 0


def _completion() -> Any:
    from edgerag_local.fakeprovider import json_reply, openai_completion

    return json_reply(openai_completion("The nozzle makes thrust [1]."))


async def test_the_first_event_reaches_the_gateway_before_the_model_finishes(
    stack: LocalStack, fake: FakeProvider
) -> None:
    tenant = await _tenant(stack)
    release = asyncio.Event()
    script = openai_stream(["first ", "second"])
    pieces = list(script.pieces)
    # Hold the provider after its first text chunk until the gateway has seen the first token.
    fake.reply(type(script)(pieces=[*pieces[:2], release, *pieces[2:]]))
    client = DedalusClient(stack.workers["gateway"].env.DEDALUS)
    stream = client.chat(_call(tenant))
    first = await asyncio.wait_for(anext(stream), GUARD_S)
    assert isinstance(first, events.TokenEvent) and first.text == "first "
    assert not release.is_set()  # the provider has not produced its last token yet
    release.set()
    rest = [e async for e in stream]
    assert [e.type for e in rest][-1] == "done"


async def test_a_failing_provider_falls_back_to_the_next_model(stack: LocalStack, fake: FakeProvider) -> None:
    tenant = await _tenant(stack)
    fake.reply(error_reply(500), error_reply(503))  # first attempt and its one retry
    received = await _collect(stack, _call(tenant))
    done = received[-1]
    assert isinstance(done, events.DoneEvent) and done.model == LOCAL_8B, received[-1]
    assert len(fake.requests) == 2
    rows = await _usage_rows(stack, tenant)
    assert [r["model"] for r in rows] == [LOCAL_8B]


async def test_a_stream_that_breaks_after_tokens_ends_interrupted_and_is_not_retried(
    stack: LocalStack, fake: FakeProvider
) -> None:
    tenant = await _tenant(stack)
    fake.reply(openai_stream(["partial ", "answer"], done=False, end="drop"))
    received = await _collect(stack, _call(tenant))
    error = received[-1]
    assert isinstance(error, events.ErrorEvent) and error.code == "interrupted" and error.partial
    assert [e.text for e in received if isinstance(e, events.TokenEvent)] == ["partial ", "answer"]
    assert len(fake.requests) == 1  # no retry that would send the same text again
    rows = await _usage_rows(stack, tenant)
    assert [(r["status"], r["error_code"]) for r in rows] == [("interrupted", "interrupted")]


async def test_an_unknown_or_disallowed_model_is_a_typed_error_never_a_substitution(
    stack: LocalStack, fake: FakeProvider
) -> None:
    tenant = await _tenant(stack)
    unknown = (await _collect(stack, _call(tenant, model="gpt-9-ultra")))[-1]
    assert isinstance(unknown, events.ErrorEvent) and (unknown.code, unknown.status) == ("unknown_model", 422)
    assert "gpt-9-ultra" in unknown.message
    assert fake.requests == []
    assert await _usage_rows(stack, tenant) == []


async def test_a_missing_provider_secret_falls_back_and_never_leaks(
    stack: LocalStack, fake: FakeProvider
) -> None:
    tenant = await _tenant(stack)
    received = await _collect(stack, _call(tenant, model="keyless-model"))
    done = received[-1]
    assert isinstance(done, events.DoneEvent) and done.model == LOCAL_8B
    assert fake.requests == []  # nothing was sent without its key


async def test_a_prompt_past_every_context_window_is_413_before_any_call(
    stack: LocalStack, fake: FakeProvider
) -> None:
    tenant = await _tenant(stack)
    huge = ChatMessage(role="user", content="word " * 20_000)
    call = _call(tenant).model_copy(update={"messages": [huge]})
    error = (await _collect(stack, call))[-1]
    assert isinstance(error, events.ErrorEvent) and (error.code, error.status) == ("invalid_request", 413)
    assert fake.requests == []


async def test_closing_the_stream_stops_generation(
    stack: LocalStack, fake: FakeProvider, caplog: pytest.LogCaptureFixture
) -> None:
    tenant = await _tenant(stack)
    never = asyncio.Event()
    script = openai_stream(["one ", "two"])
    fake.reply(type(script)(pieces=[*list(script.pieces)[:2], never, *list(script.pieces)[2:]]))
    stream = DedalusClient(stack.workers["gateway"].env.DEDALUS).chat(_call(tenant))
    first = await asyncio.wait_for(anext(stream), GUARD_S)
    assert isinstance(first, events.TokenEvent)
    caplog.set_level(logging.INFO, logger="edgerag.dedalus")
    await stream.aclose()  # the gateway's client went away
    # dedalus's run is cancelled (and with it the provider read), while the provider is still mid-answer.
    for _ in range(500):
        if any("was cancelled" in r.getMessage() for r in caplog.records):
            break
        await asyncio.sleep(0.01)
    assert any("req_test_1 was cancelled" in r.getMessage() for r in caplog.records)
    assert not never.is_set()
    never.set()
    assert [r["status"] for r in await _usage_rows(stack, tenant)] == []  # no answer was completed


async def test_agent_limits_cross_the_binding(stack: LocalStack, fake: FakeProvider) -> None:
    tenant = await _tenant(stack)
    fake.reply(openai_stream(["fine"]))
    call = _call(tenant, limits=AgentLimits(max_steps=1, max_tool_calls=0, deadline_s=5))
    assert (await _collect(stack, call))[-1].type == "done"
