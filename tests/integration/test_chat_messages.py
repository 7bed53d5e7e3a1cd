"""Sending chat messages over HTTP on the whole local stack.

Two model set-ups: the local Workers AI stand-in (extractive: it quotes the best-matching source
sentences and cites them as [n]), and the scripted provider server (edgerag_local.fakeprovider) behind
the real OpenAI-compatible adapter in dedalus, for failure modes: error events, streams that break,
stall (heartbeats) or are abandoned by the client (disconnect). Streaming tests that need to read
incrementally go through the gateway worker's own fetch (the runtime's asgi bridge streams; httpx's
ASGITransport buffers). Timeouts only guard against hangs; nothing asserts on wall-clock time.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from edgerag.settings import load_settings
from edgerag.sse import SseEvent, SseParser
from edgerag.store.chat import ChatStore
from edgerag.store.d1 import fetch_all
from edgerag.store.tenants import TenantStore
from edgerag_local import sdk
from edgerag_local.fakeprovider import (
    FakeProvider,
    FakeToolCall,
    error_reply,
    json_reply,
    openai_completion,
    openai_stream,
)
from gateway.chat import ChatSettings, ChatTurn, TurnInput
from gateway.settings import GatewaySettings

from .conftest import StackHarness, open_harness

GUARD_S = 20
LOCAL_8B = "@cf/meta/llama-3.1-8b-instruct"
ROCKETS = (
    "Liquid rocket engines burn kerosene and liquid oxygen. The nozzle accelerates the exhaust to make "
    "thrust. Falcon 9 boosters land on drone ships so they can fly again."
)
BREAD = "Sourdough bread rises with wild yeast and lactic bacteria. It is baked in a hot oven."


async def _document(client: httpx.AsyncClient, title: str, text: str) -> str:
    response = await client.post("/v1/documents", json={"title": title, "text": text})
    assert response.status_code == 202, response.text
    return str(response.json()["document"]["id"])


async def _session(client: httpx.AsyncClient, **body: Any) -> str:
    response = await client.post("/v1/chat/sessions", json=body)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def _events(body: bytes) -> list[SseEvent]:
    parser = SseParser()
    out = list(parser.feed(body))
    assert not parser.close()
    return out


async def _messages(client: httpx.AsyncClient, session: str, **headers: str) -> list[dict[str, Any]]:
    response = await client.get(f"/v1/chat/sessions/{session}/messages", headers=headers)
    assert response.status_code == 200, response.text
    return list(response.json()["messages"])


# -- the local stand-in model ---------------------------------------------------------------------


async def test_an_answer_quotes_the_document_cites_it_and_is_stored(harness: StackHarness) -> None:
    acme = await harness.tenant("acme")
    rockets = await _document(acme.client, "Rocket engines", ROCKETS)
    await _document(acme.client, "Sourdough", BREAD)
    await harness.ingest()
    session = await _session(acme.client, title="engines")
    reply = await acme.client.post(
        f"/v1/chat/sessions/{session}/messages", json={"content": "How does the nozzle make thrust?"}
    )
    assert reply.status_code == 200, reply.text
    answer = reply.json()
    assert answer["role"] == "assistant" and answer["status"] == "complete" and answer["seq"] == 2
    assert "nozzle accelerates the exhaust" in answer["content"] and "[1]" in answer["content"]
    assert answer["sources"][0]["document_id"] == rockets and answer["sources"][0]["n"] == 1
    assert [c["document_id"] for c in answer["citations"]] == [rockets]
    assert 0 < answer["confidence"] <= 1
    assert answer["usage"]["completion_tokens"] > 0 and answer["model"] == LOCAL_8B
    assert answer["error"] is None and answer["tool_calls"] == []
    stored = await _messages(acme.client, session)
    assert [(m["role"], m["status"]) for m in stored] == [("user", "complete"), ("assistant", "complete")]
    assert stored[0]["content"] == "How does the nozzle make thrust?" and stored[1] == answer


async def test_a_streamed_answer_sends_sources_then_tokens_then_done(harness: StackHarness) -> None:
    acme = await harness.tenant("acme")
    rockets = await _document(acme.client, "Rocket engines", ROCKETS)
    await harness.ingest()
    session = await _session(acme.client)
    reply = await acme.client.post(
        f"/v1/chat/sessions/{session}/messages",
        json={"content": "What do liquid rocket engines burn?"},
        headers={"accept": "text/event-stream"},
    )
    assert reply.status_code == 200 and reply.headers["content-type"].startswith("text/event-stream")
    received = _events(reply.content)
    kinds = [e.event for e in received]
    assert kinds[0] == "sources" and kinds[-1] == "done" and set(kinds[1:-1]) == {"token"}
    sources = json.loads(received[0].data)
    assert sources["session_id"] == session and sources["sources"][0]["document_id"] == rockets
    text = "".join(json.loads(e.data)["text"] for e in received if e.event == "token")
    done = json.loads(received[-1].data)
    assert done["id"] == sources["message_id"] and done["status"] == "complete"
    assert done["content"] == text and "kerosene" in text
    assert done["citations"][0]["document_id"] == rockets and done["confidence"] > 0
    assert (await _messages(acme.client, session))[1] == done


async def test_a_follow_up_is_rewritten_with_the_conversation_for_retrieval(harness: StackHarness) -> None:
    acme = await harness.tenant("acme")
    await _document(
        acme.client, "Falcon 9", "Falcon 9 is a reusable rocket. A Falcon 9 launch costs 67 million dollars."
    )
    await _document(acme.client, "Bakery", "A loaf of bread costs 4 dollars at the bakery.")
    await harness.ingest()
    session = await _session(acme.client)
    first = await acme.client.post(
        f"/v1/chat/sessions/{session}/messages", json={"content": "What is the Falcon 9 rocket?"}
    )
    assert first.status_code == 200
    follow = await acme.client.post(
        f"/v1/chat/sessions/{session}/messages", json={"content": "And what about its cost?"}
    )
    assert follow.status_code == 200, follow.text
    answer = follow.json()
    assert answer["sources"][0]["title"] == "Falcon 9"
    assert "67 million" in answer["content"]


async def test_the_session_document_filter_limits_retrieval(harness: StackHarness) -> None:
    acme = await harness.tenant("acme")
    await _document(acme.client, "Rocket engines", ROCKETS)
    bread = await _document(acme.client, "Sourdough", BREAD + " Rockets are not bread.")
    await harness.ingest()
    session = await _session(acme.client, document_ids=[bread])
    answer = (
        await acme.client.post(
            f"/v1/chat/sessions/{session}/messages", json={"content": "What do rockets burn?"}
        )
    ).json()
    assert {s["document_id"] for s in answer["sources"]} == {bread}
    empty = await _session(acme.client, document_ids=[])
    nothing = (
        await acme.client.post(
            f"/v1/chat/sessions/{empty}/messages", json={"content": "What do rockets burn?"}
        )
    ).json()
    assert nothing["sources"] == [] and nothing["citations"] == [] and nothing["status"] == "complete"


async def test_another_tenants_documents_never_reach_an_answer(harness: StackHarness) -> None:
    acme, globex = await harness.tenant("acme"), await harness.tenant("globex")
    await _document(globex.client, "Rocket engines", ROCKETS)
    await harness.ingest()
    session = await _session(acme.client)
    answer = (
        await acme.client.post(
            f"/v1/chat/sessions/{session}/messages", json={"content": "What do rockets burn?"}
        )
    ).json()
    assert answer["sources"] == [] and "kerosene" not in answer["content"]


@pytest.mark.parametrize(
    "body",
    [
        {"content": ""},
        {"content": "   \n\t"},
        {"content": "x" * 8001},
        {},
        {"content": "hi", "tools": ["not a tool!"]},
        {"content": "hi", "model": "bad model id"},
        {"content": "hi", "extra": True},
    ],
)
async def test_invalid_messages_are_422_and_store_nothing(
    harness: StackHarness, body: dict[str, Any]
) -> None:
    acme = await harness.tenant("acme")
    session = await _session(acme.client)
    response = await acme.client.post(f"/v1/chat/sessions/{session}/messages", json=body)
    assert response.status_code == 422, response.text
    assert await _messages(acme.client, session) == []


async def test_an_unknown_session_is_404_and_stores_nothing(harness: StackHarness) -> None:
    acme = await harness.tenant("acme")
    response = await acme.client.post(
        "/v1/chat/sessions/ses_00000000000000000000000000/messages", json={"content": "hello?"}
    )
    assert response.status_code == 404
    db = harness.stack.workers["gateway"].env.DB
    assert await fetch_all(db, "SELECT id FROM chat_messages") == []


async def test_a_model_the_plan_may_not_use_is_refused_and_the_turn_is_not_kept(
    harness: StackHarness,
) -> None:
    acme = await harness.tenant("acme")
    session = await _session(acme.client)
    response = await acme.client.post(
        f"/v1/chat/sessions/{session}/messages", json={"content": "hello?", "model": "gpt-9-ultra"}
    )
    assert response.status_code == 422, response.text
    problem = response.json()
    assert problem["code"] == "unknown_model" and problem["stored"] is False
    assert await _messages(acme.client, session) == []


@pytest.mark.parametrize(
    ("scopes", "tools", "status"),
    [
        (("chat",), ["search_knowledge_base"], 403),  # needs the read scope
        (("read", "chat"), ["ingest_document"], 403),  # a write tool, off for the tenant by default
        (("read", "chat"), ["no_such_tool"], 400),
    ],
)
async def test_tools_the_key_may_not_use_are_refused_before_any_model_call(
    harness: StackHarness, scopes: tuple[str, ...], tools: list[str], status: int
) -> None:
    acme = await harness.tenant("acme", scopes=scopes)
    session = await _session(acme.client)
    for headers in ({}, {"accept": "text/event-stream"}):
        response = await acme.client.post(
            f"/v1/chat/sessions/{session}/messages",
            json={"content": "hello?", "tools": tools},
            headers=headers,
        )
        if headers:
            error = _events(response.content)[-1]
            assert error.event == "error" and json.loads(error.data)["status"] == status
        else:
            assert response.status_code == status, response.text
    assert await _messages(acme.client, session) == []
    db = harness.stack.workers["gateway"].env.DB
    assert await fetch_all(db, "SELECT id FROM llm_calls WHERE tenant_id = ?1", acme.id) == []


async def test_the_end_users_context_reaches_the_prompt_and_the_usage_row_names_them(
    chat: Chat,
) -> None:
    acme = await chat.harness.tenant("acme")
    put = await acme.client.put(
        "/v1/users/alice/context",
        json={"goals": ["learn orbital mechanics"], "preferences": {"tone": "formal"}},
    )
    assert put.status_code == 201, put.text
    created = await acme.client.post("/v1/chat/sessions", json={}, headers={"x-end-user": "alice"})
    session = created.json()["id"]
    chat.fake.reply(json_reply(openai_completion("Noted.")))
    reply = await acme.client.post(
        f"/v1/chat/sessions/{session}/messages",
        json={"content": "Where do I start?"},
        headers={"x-end-user": "alice"},
    )
    assert reply.status_code == 200, reply.text
    system = chat.fake.requests[0].json["messages"][0]["content"]
    assert "learn orbital mechanics" in system and "tone=formal" in system
    rows = await fetch_all(
        chat.harness.stack.workers["gateway"].env.DB,
        "SELECT tenant_id, key_id, end_user, request_id FROM llm_calls WHERE tenant_id = ?1",
        acme.id,
    )
    assert len(rows) == 1 and rows[0]["end_user"] == "alice" and rows[0]["key_id"]
    assert rows[0]["request_id"].startswith("req_")


# -- the scripted provider: failure modes ---------------------------------------------------------


class Chat:
    def __init__(self, harness: StackHarness, fake: FakeProvider) -> None:
        self.harness, self.fake = harness, fake

    async def open_stream(self, key: str, path: str, body: dict[str, Any]) -> sdk.Response:
        """POST through the gateway worker's own fetch: the body streams as the worker writes it."""
        request = sdk.Request(
            f"http://127.0.0.1:8787{path}",
            method="POST",
            headers={
                "authorization": f"Bearer {key}",
                "content-type": "application/json",
                "accept": "text/event-stream",
            },
            body=json.dumps(body),
        )
        return await self.harness.stack.workers["gateway"].fetch(request)


def _models_config(base_url: str) -> str:
    return json.dumps(
        {
            "providers": {
                "workers-ai": {"kind": "workers-ai"},
                "fake": {"kind": "openai", "base_url": base_url, "api_key_secret": "FAKE_API_KEY"},
            },
            "models": {
                "chat": "fake-model",
                "allow_override": [LOCAL_8B],
                "catalog": {
                    "fake-model": {
                        "provider": "fake",
                        "model": "gpt-fake",
                        "input_usd_per_mtok": 1.0,
                        "output_usd_per_mtok": 2.0,
                        "context_window": 16000,
                        "supports_tools": True,
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
async def chat(tmp_path: Path) -> AsyncIterator[Chat]:
    async with FakeProvider() as fake:
        async with open_harness(
            tmp_path,
            extra_vars={
                "dedalus": {
                    "MODELS_CONFIG": _models_config(fake.openai_base_url),
                    "FAKE_API_KEY": "sk-test-secret-value",
                    "PROVIDER_MAX_RETRIES": "0",
                    "PROVIDER_TIMEOUT_S": "10",
                },
                "gateway": {"CHAT_HEARTBEAT_S": "0.05"},
            },
        ) as opened:
            yield Chat(opened, fake)


@pytest.mark.parametrize("stream", [False, True])
async def test_a_dedalus_error_event_stores_the_answer_as_failed(chat: Chat, stream: bool) -> None:
    acme = await chat.harness.tenant("acme")
    session = await _session(acme.client)
    chat.fake.reply(error_reply(500))
    response = await acme.client.post(
        f"/v1/chat/sessions/{session}/messages", json={"content": "hello?", "stream": stream}
    )
    if stream:
        last = _events(response.content)[-1]
        assert last.event == "error"
        problem = json.loads(last.data)
    else:
        assert response.status_code == 502, response.text
        assert response.headers["content-type"].startswith("application/problem+json")
        problem = response.json()
    assert problem["status"] == 502 and problem["stored"] is True and problem["code"] == "upstream"
    stored = await _messages(acme.client, session)
    assert [(m["role"], m["status"]) for m in stored] == [("user", "complete"), ("assistant", "failed")]
    assert stored[1]["id"] == problem["message_id"] and stored[1]["error"]["code"] == "upstream"


async def test_a_stream_that_breaks_after_tokens_keeps_the_partial_text_as_interrupted(chat: Chat) -> None:
    acme = await chat.harness.tenant("acme")
    session = await _session(acme.client)
    chat.fake.reply(openai_stream(["partial ", "answer"], done=False, end="drop"))
    response = await acme.client.post(
        f"/v1/chat/sessions/{session}/messages",
        json={"content": "hello?"},
        headers={"accept": "text/event-stream"},
    )
    received = _events(response.content)
    assert [e.event for e in received] == ["sources", "token", "token", "error"]
    assert json.loads(received[-1].data)["partial"] is True
    answer = (await _messages(acme.client, session))[1]
    assert (answer["status"], answer["content"], answer["error"]["code"]) == (
        "interrupted",
        "partial answer",
        "interrupted",
    )


async def test_a_client_disconnect_stops_generation_and_stores_the_partial_answer(
    chat: Chat, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="edgerag.dedalus")
    acme = await chat.harness.tenant("acme")
    session = await _session(acme.client)
    never = asyncio.Event()
    script = openai_stream(["one ", "two"])
    chat.fake.reply(type(script)(pieces=[*list(script.pieces)[:2], never, *list(script.pieces)[2:]]))
    response = await chat.open_stream(
        acme.key, f"/v1/chat/sessions/{session}/messages", {"content": "count?"}
    )
    chunks = aiter(response.body)
    parser, seen = SseParser(), []

    async def until_token() -> None:
        async for chunk in chunks:
            seen.extend(parser.feed(chunk))
            if any(e.event == "token" for e in seen):
                return

    await asyncio.wait_for(until_token(), GUARD_S)
    await chunks.aclose()  # type: ignore[attr-defined]  # the client hangs up mid-answer
    answer = (await _messages(acme.client, session))[1]
    assert (answer["status"], answer["content"]) == ("interrupted", "one ")
    assert answer["error"]["code"] == "interrupted"
    # dedalus's run was cancelled while the provider was still mid-answer: generation stopped.
    for _ in range(500):
        if any("was cancelled" in r.getMessage() for r in caplog.records):
            break
        await asyncio.sleep(0.01)
    assert any("was cancelled (the caller went away)" in r.getMessage() for r in caplog.records)
    never.set()


async def test_heartbeats_are_sent_while_the_model_is_silent(chat: Chat) -> None:
    acme = await chat.harness.tenant("acme")
    session = await _session(acme.client)
    release = asyncio.Event()
    script = openai_stream(["slow ", "answer"])
    chat.fake.reply(type(script)(pieces=[release, *script.pieces]))
    response = await chat.open_stream(acme.key, f"/v1/chat/sessions/{session}/messages", {"content": "hi?"})
    raw = b""

    async def read() -> None:
        nonlocal raw
        async for chunk in response.body:
            raw += chunk
            if b": keep-alive" in raw and not release.is_set():
                release.set()  # a heartbeat arrived while the provider was silent: let it answer

    await asyncio.wait_for(read(), GUARD_S)
    received = _events(raw)
    assert received[0].event == "sources" and received[-1].event == "done"
    assert raw.index(b": keep-alive") < raw.index(b"event: token")
    assert json.loads(received[-1].data)["content"] == "slow answer"


async def test_agent_mode_streams_tool_calls_and_stores_them(chat: Chat) -> None:
    acme = await chat.harness.tenant("acme", scopes=("read", "chat"))
    session = await _session(acme.client)
    call = FakeToolCall(name="search_knowledge_base", arguments='{"query": "rockets"}', id="call_1")
    chat.fake.reply(openai_stream(tool_calls=[call]), openai_stream(["Nothing about rockets."]))
    response = await acme.client.post(
        f"/v1/chat/sessions/{session}/messages",
        json={"content": "Search for rockets", "tools": ["search_knowledge_base"]},
        headers={"accept": "text/event-stream"},
    )
    kinds = [e.event for e in _events(response.content)]
    assert kinds[0] == "sources" and "tool_call" in kinds and "tool_result" in kinds and kinds[-1] == "done"
    assert kinds.index("tool_call") < kinds.index("tool_result")
    answer = (await _messages(acme.client, session))[1]
    assert answer["status"] == "complete" and answer["content"] == "Nothing about rockets."
    assert [(t["id"], t["name"], t["ok"]) for t in answer["tool_calls"]] == [
        ("call_1", "search_knowledge_base", True)
    ]
    assert chat.fake.requests[0].json["tools"][0]["function"]["name"] == "search_knowledge_base"


async def test_a_pending_answer_left_by_a_stopped_worker_is_recovered_as_interrupted(chat: Chat) -> None:
    acme = await chat.harness.tenant("acme")
    session = await _session(acme.client)
    # What a worker that died mid-generation leaves: the turn's rows, the answer pending, a checkpoint.
    store = ChatStore(chat.harness.stack.workers["gateway"].env.DB, clock=chat.harness.clock)
    rows = await store.start_turn(acme.id, session, "hello?", request_id="req_dead")
    await store.checkpoint(acme.id, rows.assistant.id, "half an ans")
    assert [m["status"] for m in await _messages(acme.client, session)] == ["complete", "pending"]
    chat.harness.clock.advance(601)  # past CHAT_PENDING_TIMEOUT_S (600 by default)
    answer = (await _messages(acme.client, session))[1]
    assert (answer["status"], answer["content"]) == ("interrupted", "half an ans")
    assert answer["error"]["code"] == "interrupted"
    # The next turn's history leaves the unfinished answer's text in (it was shown) and goes on.
    chat.fake.reply(json_reply(openai_completion("Fine.")))
    reply = await acme.client.post(f"/v1/chat/sessions/{session}/messages", json={"content": "again?"})
    assert reply.status_code == 200 and reply.json()["seq"] == 4


# -- an exception inside the turn ------------------------------------------------------------------


class _BrokenDedalus:
    """A Fetcher (the DEDALUS service binding's port) whose event stream raises part-way."""

    def __init__(self, before: list[bytes]) -> None:
        self.before = before
        self.calls = 0

    async def fetch(self, url: str, **options: Any) -> Any:
        self.calls += 1
        before = self.before

        async def body() -> AsyncIterator[bytes]:
            for chunk in before:
                yield chunk
            raise RuntimeError("a bug nobody expected")

        return sdk.Response(
            sdk.ReadableStream(body()), status=200, headers={"content-type": "text/event-stream"}
        )


class _EnvWith:
    """The gateway's env with some bindings replaced."""

    def __init__(self, env: Any, **replaced: Any) -> None:
        self._env, self._replaced = env, replaced

    def __getattr__(self, name: str) -> Any:
        return self._replaced[name] if name in self._replaced else getattr(self._env, name)


@pytest.mark.parametrize(
    ("before", "status", "content"),
    [([], "failed", ""), ([b'event: token\ndata: {"type":"token","text":"Hal"}\n\n'], "interrupted", "Hal")],
)
async def test_an_exception_mid_turn_ends_the_answer_failed_or_interrupted_never_pending(
    harness: StackHarness, before: list[bytes], status: str, content: str
) -> None:
    acme = await harness.tenant("acme")
    session_id = await _session(acme.client)
    real = harness.stack.workers["gateway"].env
    env = _EnvWith(real, DEDALUS=_BrokenDedalus(before))
    principal = await TenantStore(real.DB).authenticate(acme.key)
    assert principal is not None
    session = await ChatStore(real.DB).get_session(acme.id, "", session_id)
    turn = ChatTurn(
        env,
        load_settings(GatewaySettings, real),
        ChatSettings(),
        TurnInput(principal, "free", "", session, "hello?", [], None, stream=True),
    )
    await turn.prepare()
    received = [event async for event in turn.events()]
    assert received[0].event == "sources" and received[-1].event == "error"
    assert json.loads(received[-1].data)["status"] == 502
    answer = (await _messages(acme.client, session_id))[1]
    assert (answer["status"], answer["content"]) == (status, content)
