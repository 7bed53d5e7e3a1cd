"""The never-500 property for the chat and user-context routes: arbitrary bodies, raw bytes, cursors,
paths and X-End-User values get a 2xx or a 4xx problem-details answer (the same property as
test_never_500.py, which covers the other routes)."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from .conftest import StackHarness
from .test_never_500 import NON_STANDARD_JSON, assert_not_server_error, json_values

message_bodies = st.fixed_dictionaries(
    {},
    optional={
        "content": st.text(max_size=60) | st.sampled_from(["How do rockets work?", " ", ""]) | json_values,
        "tools": st.lists(st.sampled_from(["search_knowledge_base", "summarize", "nope", ""]), max_size=3)
        | json_values,
        "model": st.sampled_from(["no-such-model", "@cf/meta/llama-3.1-8b-instruct", ""]) | json_values,
        "stream": st.booleans() | json_values,
    },
)
session_bodies = st.fixed_dictionaries(
    {},
    optional={
        "title": st.text(max_size=30) | json_values,
        "document_ids": st.lists(st.text(max_size=30), max_size=3) | json_values,
    },
)
context_bodies = st.fixed_dictionaries(
    {},
    optional={
        "goals": st.lists(st.text(max_size=20), max_size=3) | json_values,
        "constraints": json_values,
        "preferences": st.dictionaries(st.text(max_size=10), json_values, max_size=3) | json_values,
    },
)
printable = st.text(alphabet=st.characters(min_codepoint=33, max_codepoint=126), max_size=20)


async def test_chat_routes_get_answers_or_client_errors_not_500(harness: StackHarness) -> None:
    tenant = await harness.tenant("fuzz-chat", scopes=("chat", "read", "write"))
    await tenant.client.post("/v1/documents", json={"title": "Seed", "text": "rockets and nozzles"})
    await harness.ingest()
    session = (await tenant.client.post("/v1/chat/sessions", json={})).json()["id"]
    calls: list[tuple[Any, ...]] = []

    @settings(
        max_examples=40,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        database=None,
        derandomize=True,
    )
    @given(
        message=message_bodies,
        new_session=session_bodies,
        context=context_bodies,
        raw=st.binary(max_size=60) | st.sampled_from(NON_STANDARD_JSON),
        text=printable,
        end_user=st.none() | printable,
    )
    def collect(message: Any, new_session: Any, context: Any, raw: bytes, text: str, end_user: Any) -> None:
        calls.append((message, new_session, context, raw, text, end_user))

    collect()
    messages = f"/v1/chat/sessions/{session}/messages"
    for message, new_session, context, raw, text, end_user in calls:
        headers = {"x-end-user": end_user} if end_user is not None else {}
        raw_headers = {**headers, "content-type": "application/json"}
        for response in (
            await tenant.client.post(messages, json=message),
            await tenant.client.post(messages, content=raw, headers=raw_headers),
            await tenant.client.post("/v1/chat/sessions", json=new_session, headers=headers),
            await tenant.client.post("/v1/chat/sessions", content=raw, headers=raw_headers),
            await tenant.client.get(
                "/v1/chat/sessions", params={"cursor": text, "limit": text}, headers=headers
            ),
            await tenant.client.get(messages, params={"cursor": text}),
            await tenant.client.get(f"/v1/chat/sessions/{text}", headers=headers),
            await tenant.client.delete(f"/v1/chat/sessions/{text}"),
            await tenant.client.put(f"/v1/users/{text or 'u'}/context", json=context),
            await tenant.client.put("/v1/users/alice/context", content=raw, headers=raw_headers),
            await tenant.client.get(f"/v1/users/{text or 'u'}/context"),
        ):
            assert_not_server_error(response)
    # Nothing was left half-way: every answer stored by those calls is finished.
    listed = await tenant.client.get(messages, params={"limit": 200})
    assert {m["status"] for m in listed.json()["messages"]} <= {"complete", "failed", "interrupted"}
