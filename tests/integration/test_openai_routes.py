"""The OpenAI-compatible routes through the whole local stack: shapes, grounding, client tools, errors.

Two stacks: the default one (the local Workers AI stand-in answers by quoting the prompt's sources,
so a grounded answer is checkable), and one whose dedalus routes to the scripted provider server
(``edgerag_local.fakeprovider``) to script tool calls and invalid citations and to see exactly what
reached the provider. Timeouts only guard against hangs.
"""

from __future__ import annotations

import asyncio
import base64
import json
import struct
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from edgerag.problems import RateLimited, Unauthorized
from edgerag.store.d1 import fetch_all
from edgerag_local.fakeprovider import (
    FakeProvider,
    FakeToolCall,
    json_reply,
    openai_completion,
    openai_stream,
)
from gateway.openai_api.errors import openai_error_response, to_openai
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from .conftest import StackHarness, Tenant, open_harness

LOCAL_8B = "@cf/meta/llama-3.1-8b-instruct"  # the free plan's model in the default local config
EMBEDDING_MODEL = "@cf/baai/bge-base-en-v1.5"
ROCKETS = (
    "Liquid rocket engines burn kerosene and liquid oxygen. "
    "The nozzle accelerates the exhaust gases to make thrust."
)


def _ask(question: str, **extra: Any) -> dict[str, Any]:
    return {"model": LOCAL_8B, "messages": [{"role": "user", "content": question}], **extra}


async def _rockets(harness: StackHarness, scopes: tuple[str, ...] = ("chat", "write")) -> Tenant:
    tenant = await harness.tenant("acme", scopes=scopes)
    uploaded = await tenant.client.post("/v1/documents", json={"title": "Rocket engines", "text": ROCKETS})
    assert uploaded.status_code in (200, 201, 202), uploaded.text
    await harness.ingest()
    return tenant


def _openai_error(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"} and error["message"]
    return dict(error)


def _data_lines(text: str) -> list[str]:
    return [line[len("data: ") :] for line in text.split("\n") if line.startswith("data: ")]


# ---- models --------------------------------------------------------------------------------------


async def test_models_lists_what_the_plan_may_use_in_openai_shape(harness: StackHarness) -> None:
    tenant = await harness.tenant("acme", scopes=("chat",))
    response = await tenant.client.get("/v1/models")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["object"] == "list"
    assert [m["id"] for m in body["data"]] == [LOCAL_8B, EMBEDDING_MODEL]
    assert all(m["object"] == "model" and m["created"] == 0 for m in body["data"])
    assert body["data"][0]["owned_by"] == "workers-ai"


# ---- chat completions with the local stand-in ---------------------------------------------------


async def test_a_completion_is_grounded_in_the_tenants_documents_and_cites_them(
    harness: StackHarness,
) -> None:
    tenant = await _rockets(harness)
    response = await tenant.client.post("/v1/chat/completions", json=_ask("How does the nozzle make thrust?"))
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["object"] == "chat.completion" and body["id"].startswith("chatcmpl-")
    assert body["model"] == LOCAL_8B
    choice = body["choices"][0]
    assert choice["finish_reason"] == "stop" and choice["message"]["role"] == "assistant"
    assert "nozzle accelerates the exhaust" in choice["message"]["content"]
    assert "[1]" in choice["message"]["content"]
    usage = body["usage"]
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"] > 0
    ext = body["edgerag"]
    assert ext["grounded"] is True and ext["removed_citations"] == 0
    assert [(s["n"], s["title"]) for s in ext["sources"]] == [(1, "Rocket engines")]
    assert [(c["n"], c["title"]) for c in ext["citations"]] == [(1, "Rocket engines")]
    assert ext["citations"][0]["document_id"] == ext["sources"][0]["document_id"]


async def test_another_tenants_documents_never_ground_an_answer(harness: StackHarness) -> None:
    await _rockets(harness)
    other = await harness.tenant("globex", scopes=("chat",))
    response = await other.client.post("/v1/chat/completions", json=_ask("How does the nozzle make thrust?"))
    body = response.json()
    assert body["edgerag"]["sources"] == [] and body["edgerag"]["citations"] == []
    assert "kerosene" not in body["choices"][0]["message"]["content"]


async def test_grounding_can_be_turned_off_per_request(harness: StackHarness) -> None:
    tenant = await _rockets(harness)
    response = await tenant.client.post(
        "/v1/chat/completions",
        json=_ask("How does the nozzle make thrust?", edgerag={"grounding": False}),
    )
    body = response.json()
    assert response.status_code == 200, response.text
    assert body["edgerag"]["grounded"] is False and body["edgerag"]["sources"] == []
    assert "kerosene" not in body["choices"][0]["message"]["content"]


async def test_a_streamed_completion_sends_chunks_citations_usage_and_done(harness: StackHarness) -> None:
    tenant = await _rockets(harness)
    response = await tenant.client.post(
        "/v1/chat/completions",
        json=_ask("How does the nozzle make thrust?", stream=True, stream_options={"include_usage": True}),
    )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/event-stream")
    lines = _data_lines(response.text)
    assert lines[-1] == "[DONE]"
    chunks = [json.loads(line) for line in lines[:-1]]
    assert {c["object"] for c in chunks} == {"chat.completion.chunk"}
    assert len({c["id"] for c in chunks}) == 1
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
    assert "nozzle accelerates the exhaust" in text and "[1]" in text
    finishing = chunks[-2]
    assert finishing["choices"][0]["finish_reason"] == "stop"
    assert [c["title"] for c in finishing["edgerag"]["citations"]] == ["Rocket engines"]
    usage_chunk = chunks[-1]
    assert usage_chunk["choices"] == [] and usage_chunk["usage"]["total_tokens"] > 0
    assert all(c["usage"] is None for c in chunks[:-1])  # present-but-null, as OpenAI sends it


async def test_without_include_usage_the_stream_has_no_usage_chunk(harness: StackHarness) -> None:
    tenant = await _rockets(harness)
    response = await tenant.client.post(
        "/v1/chat/completions", json=_ask("How does the nozzle make thrust?", stream=True)
    )
    chunks = [json.loads(line) for line in _data_lines(response.text)[:-1]]
    assert all(c["choices"] for c in chunks) and all("usage" not in c for c in chunks)


# ---- errors in OpenAI's shape --------------------------------------------------------------------


async def test_errors_are_openai_shaped_with_the_right_status_and_headers(harness: StackHarness) -> None:
    tenant = await harness.tenant("acme", scopes=("chat",))
    reader = await harness.tenant("readonly", scopes=("read",))

    missing = await harness.client().get("/v1/models")
    assert _openai_error(missing, 401)["code"] == "invalid_api_key"
    assert missing.headers["www-authenticate"].startswith("Bearer")
    bad = await harness.client("er_nope_nope").post("/v1/chat/completions", json=_ask("hi"))
    assert _openai_error(bad, 401)["type"] == "invalid_request_error"
    assert _openai_error(await reader.client.post("/v1/embeddings", json={"input": "x"}), 403)

    unknown = await tenant.client.post("/v1/chat/completions", json={**_ask("hi"), "model": "gpt-nope"})
    error = _openai_error(unknown, 404)
    assert (error["code"], error["param"]) == ("model_not_found", "model")
    streamed = await tenant.client.post(
        "/v1/chat/completions", json={**_ask("hi", stream=True), "model": "gpt-nope"}
    )
    assert _openai_error(streamed, 404)["code"] == "model_not_found"  # before any chunk

    empty = await tenant.client.post("/v1/chat/completions", json={"model": LOCAL_8B, "messages": []})
    assert _openai_error(empty, 400)["param"] == "messages"
    two = await tenant.client.post("/v1/chat/completions", json=_ask("hi", n=2))
    assert _openai_error(two, 400)["param"] == "n"
    image = await tenant.client.post(
        "/v1/chat/completions",
        json={"model": LOCAL_8B, "messages": [{"role": "user", "content": [{"type": "image_url"}]}]},
    )
    assert _openai_error(image, 400)["type"] == "invalid_request_error"
    not_json = await tenant.client.post(
        "/v1/chat/completions", content=b"{nope", headers={"content-type": "application/json"}
    )
    assert _openai_error(not_json, 400)
    bad_user = await tenant.client.post("/v1/chat/completions", json=_ask("hi", user="no spaces allowed"))
    assert _openai_error(bad_user, 400)["param"] == "user"
    method = await tenant.client.get("/v1/chat/completions")
    assert _openai_error(method, 405) and method.headers["allow"] == "POST"

    # The rest of the API keeps problem+json.
    other = await tenant.client.get("/v1/documents/doc_nope")
    assert other.headers["content-type"] == "application/problem+json"


def test_problems_keep_their_headers_when_made_openai_shaped() -> None:
    limited = openai_error_response(to_openai(RateLimited("slow down", retry_after=7)))
    assert limited.status_code == 429 and limited.headers["retry-after"] == "7"
    assert json.loads(limited.body)["error"]["code"] == "rate_limit_exceeded"
    denied = openai_error_response(to_openai(Unauthorized("no key")))
    assert denied.headers["www-authenticate"].startswith("Bearer")


async def test_the_plans_limits_apply_before_anything_is_generated(harness: StackHarness) -> None:
    acme = await _rockets(harness)
    db = harness.stack.workers["gateway"].env.DB
    calls_before = len(await fetch_all(db, "SELECT id FROM llm_calls WHERE tenant_id = ?1", acme.id))
    limits = await harness.admin.put(f"/v1/admin/tenants/{acme.name}/limits", json={"requests_per_hour": 0})
    assert limits.status_code == 200, limits.text
    limited = await acme.client.post("/v1/chat/completions", json=_ask("How does the nozzle make thrust?"))
    error = _openai_error(limited, 429)
    assert int(limited.headers["retry-after"]) > 0 and error["code"]
    await harness.admin.put(
        f"/v1/admin/tenants/{acme.name}/limits", json={"requests_per_hour": 1000, "monthly_token_budget": 0}
    )
    spent = await acme.client.post("/v1/chat/completions", json=_ask("How does the nozzle make thrust?"))
    assert _openai_error(spent, 402)["code"] == "insufficient_quota"
    calls_after = len(await fetch_all(db, "SELECT id FROM llm_calls WHERE tenant_id = ?1", acme.id))
    assert calls_after == calls_before  # nothing was generated


async def test_unknown_fields_are_ignored_and_unsupported_values_refused(harness: StackHarness) -> None:
    tenant = await _rockets(harness)
    ignored = await tenant.client.post(
        "/v1/chat/completions", json=_ask("What do rocket engines burn?", top_p=0.5, seed=3, future=1)
    )
    assert ignored.status_code == 200, ignored.text
    forced = await tenant.client.post("/v1/chat/completions", json=_ask("hi", tool_choice="required"))
    assert _openai_error(forced, 400)["param"] == "tool_choice"


# ---- embeddings ----------------------------------------------------------------------------------


async def test_embeddings_float_and_base64_with_usage(harness: StackHarness) -> None:
    tenant = await harness.tenant("acme", scopes=("chat",))
    floats = await tenant.client.post("/v1/embeddings", json={"input": ["rockets", "bread"]})
    assert floats.status_code == 200, floats.text
    body = floats.json()
    assert body["object"] == "list" and body["model"] == EMBEDDING_MODEL
    assert [d["index"] for d in body["data"]] == [0, 1]
    vector = body["data"][0]["embedding"]
    assert len(vector) == 768 and all(isinstance(x, float) for x in vector)
    assert body["usage"]["prompt_tokens"] == body["usage"]["total_tokens"] > 0

    packed = await tenant.client.post(
        "/v1/embeddings", json={"input": "rockets", "model": EMBEDDING_MODEL, "encoding_format": "base64"}
    )
    raw = base64.b64decode(packed.json()["data"][0]["embedding"])
    decoded = struct.unpack(f"<{len(raw) // 4}f", raw)
    assert decoded == pytest.approx(vector, abs=1e-6)

    long = await tenant.client.post("/v1/embeddings", json={"input": "word " * 5000})
    assert long.status_code == 200  # cut to the model's input limit, like search
    wrong = await tenant.client.post("/v1/embeddings", json={"input": "x", "model": "text-embedding-3"})
    assert _openai_error(wrong, 404)["code"] == "model_not_found"
    assert _openai_error(await tenant.client.post("/v1/embeddings", json={"input": ""}), 400)
    dims = await tenant.client.post("/v1/embeddings", json={"input": "x", "dimensions": 12})
    assert _openai_error(dims, 400)["param"] == "dimensions"


# ---- never a 500 ---------------------------------------------------------------------------------

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=10), inner, max_size=3),
    max_leaves=10,
)
messages = st.lists(
    st.fixed_dictionaries(
        {"role": st.sampled_from(["system", "developer", "user", "assistant", "tool", "x"]) | json_values},
        optional={
            "content": st.text(max_size=40) | json_values,
            "tool_call_id": st.text(max_size=8),
            "tool_calls": json_values,
        },
    ),
    max_size=3,
)
chat_bodies = st.fixed_dictionaries(
    {},
    optional={
        "model": st.sampled_from([LOCAL_8B, "nope"]) | json_values,
        "messages": messages | json_values,
        "tools": json_values,
        "stream": st.booleans() | json_values,
        "max_tokens": st.integers(-2, 40000) | json_values,
        "temperature": st.floats(-1, 3) | json_values,
        "edgerag": json_values,
    },
)
embedding_bodies = st.fixed_dictionaries(
    {}, optional={"input": st.text(max_size=30) | json_values, "model": json_values}
)


async def test_arbitrary_bodies_get_openai_errors_not_500(harness: StackHarness) -> None:
    tenant = await _rockets(harness, scopes=("chat", "write"))
    calls: list[tuple[str, Any]] = []

    @settings(
        max_examples=60,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        database=None,
        derandomize=True,
    )
    @given(chat=chat_bodies, embedding=embedding_bodies, raw=st.binary(max_size=40))
    def collect(chat: Any, embedding: Any, raw: bytes) -> None:
        calls.append(("/v1/chat/completions", chat))
        calls.append(("/v1/embeddings", embedding))
        calls.append(("/v1/chat/completions", raw))

    collect()
    for url, payload in calls:
        if isinstance(payload, bytes):
            response = await tenant.client.post(
                url, content=payload, headers={"content-type": "application/json"}
            )
        else:
            response = await tenant.client.post(url, json=payload)
        assert response.status_code < 500, (url, payload, response.text)
        if response.status_code >= 400:
            _openai_error(response, response.status_code)


# ---- client tools and citations with the scripted provider ---------------------------------------


def _models_config(base_url: str) -> str:
    return json.dumps(
        {
            "providers": {
                "workers-ai": {"kind": "workers-ai"},
                "fake": {"kind": "openai", "base_url": base_url, "api_key_secret": "FAKE_API_KEY"},
            },
            "models": {
                "chat": "fake-model",
                "fallback_chat": [],
                "allow_override": [LOCAL_8B],
                "catalog": {
                    "fake-model": {
                        "provider": "fake",
                        "model": "gpt-fake",
                        "input_usd_per_mtok": 1.0,
                        "output_usd_per_mtok": 2.0,
                        "context_window": 8000,
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
async def fake() -> AsyncIterator[FakeProvider]:
    async with FakeProvider() as server:
        yield server


@pytest.fixture
async def scripted(tmp_path: Path, fake: FakeProvider) -> AsyncIterator[StackHarness]:
    config = {
        "MODELS_CONFIG": _models_config(fake.openai_base_url),
        "FAKE_API_KEY": "sk-test",
        "PROVIDER_MAX_RETRIES": "0",
        "PROVIDER_TIMEOUT_S": "10",
    }
    async with open_harness(tmp_path, extra_vars={"dedalus": config}) as opened:
        yield opened


WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The weather in a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}


def _tool_request(**extra: Any) -> dict[str, Any]:
    return {
        "model": "fake-model",
        "messages": [{"role": "user", "content": "Weather in Paris?"}],
        "tools": [WEATHER_TOOL],
        "edgerag": {"grounding": False},
        **extra,
    }


async def test_client_tools_reach_the_provider_and_their_calls_come_back_unrun(
    scripted: StackHarness, fake: FakeProvider
) -> None:
    tenant = await scripted.tenant("acme", scopes=("chat",))
    fake.reply(
        json_reply(openai_completion(None, [FakeToolCall("get_weather", '{"city":"Paris"}', "call_1")]))
    )
    response = await asyncio.wait_for(tenant.client.post("/v1/chat/completions", json=_tool_request()), 20)
    assert response.status_code == 200, response.text
    choice = response.json()["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    assert choice["message"]["content"] is None
    assert choice["message"]["tool_calls"] == [
        {
            "id": "call_1",
            "type": "function",
            "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'},
        }
    ]
    sent = fake.requests[0].json
    assert [t["function"]["name"] for t in sent["tools"]] == ["get_weather"]
    assert sent["tools"][0]["function"]["parameters"] == WEATHER_TOOL["function"]["parameters"]
    assert len(fake.requests) == 1  # the gateway's agent did not run anything or call again

    # The client runs the tool and sends the result back: the conversation goes to the provider as is.
    fake.reply(json_reply(openai_completion("It is sunny in Paris.")))
    follow = _tool_request(
        messages=[
            {"role": "user", "content": "Weather in Paris?"},
            {"role": "assistant", "content": None, "tool_calls": choice["message"]["tool_calls"]},
            {"role": "tool", "tool_call_id": "call_1", "content": '{"sky":"sunny"}'},
        ]
    )
    answered = await asyncio.wait_for(tenant.client.post("/v1/chat/completions", json=follow), 20)
    assert answered.json()["choices"][0]["message"]["content"] == "It is sunny in Paris."
    roles = [m["role"] for m in fake.requests[1].json["messages"]]
    assert roles == ["user", "assistant", "tool"]


async def test_streamed_client_tool_calls_arrive_as_tool_call_deltas(
    scripted: StackHarness, fake: FakeProvider
) -> None:
    tenant = await scripted.tenant("acme", scopes=("chat",))
    fake.reply(openai_stream([], [FakeToolCall("get_weather", ['{"city":', '"Paris"}'], "call_9")]))
    response = await asyncio.wait_for(
        tenant.client.post("/v1/chat/completions", json=_tool_request(stream=True)), 20
    )
    chunks = [json.loads(line) for line in _data_lines(response.text)[:-1]]
    calls = [tc for c in chunks for tc in c["choices"][0]["delta"].get("tool_calls") or ()]
    assert calls == [
        {
            "index": 0,
            "id": "call_9",
            "type": "function",
            "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'},
        }
    ]
    assert chunks[-1]["choices"][0]["finish_reason"] == "tool_calls"


async def test_tool_choice_none_offers_no_tools(scripted: StackHarness, fake: FakeProvider) -> None:
    tenant = await scripted.tenant("acme", scopes=("chat",))
    fake.reply(json_reply(openai_completion("No tools needed.")))
    response = await tenant.client.post("/v1/chat/completions", json=_tool_request(tool_choice="none"))
    assert response.status_code == 200, response.text
    assert "tools" not in fake.requests[0].json


async def test_citation_markers_naming_no_source_are_removed_and_counted(
    scripted: StackHarness, fake: FakeProvider
) -> None:
    tenant = await _rockets(scripted)
    fake.reply(json_reply(openai_completion("The nozzle makes thrust [1]. Also magic [7].")))
    response = await tenant.client.post(
        "/v1/chat/completions",
        json={"model": "fake-model", "messages": [{"role": "user", "content": "How does the nozzle work?"}]},
    )
    body = response.json()
    assert body["choices"][0]["message"]["content"] == "The nozzle makes thrust [1]. Also magic."
    assert body["edgerag"]["removed_citations"] == 1
    assert [c["n"] for c in body["edgerag"]["citations"]] == [1]
    system = fake.requests[0].json["messages"][0]
    assert system["role"] == "system" and "[1] Rocket engines" in system["content"]


async def test_the_end_user_and_key_travel_in_the_call_context(
    scripted: StackHarness, fake: FakeProvider
) -> None:
    tenant = await scripted.tenant("acme", scopes=("chat",))
    fake.reply(json_reply(openai_completion("ok")), json_reply(openai_completion("ok")))
    await tenant.client.post("/v1/chat/completions", json=_tool_request(user="alice@example.com"))
    await tenant.client.post(
        "/v1/chat/completions", json=_tool_request(user="ignored"), headers={"x-end-user": "bob"}
    )
    rows = await fetch_all(
        scripted.stack.workers["gateway"].env.DB,
        "SELECT end_user FROM llm_calls WHERE tenant_id = ?1 ORDER BY created_at, id",
        tenant.id,
    )
    assert [r["end_user"] for r in rows] == ["alice@example.com", "bob"]
