"""Chat sessions over HTTP on the whole local stack: scoping to (tenant, end user), pagination with
opaque cursors, message counts, metadata, cascade on delete, and the chat scope."""

from __future__ import annotations

import base64

import pytest
from edgerag.store.d1 import fetch_all

from .conftest import StackHarness

SES = "ses_00000000000000000000000000"


async def test_sessions_are_created_listed_fetched_and_deleted(harness: StackHarness) -> None:
    acme = await harness.tenant("acme")
    created = await acme.client.post(
        "/v1/chat/sessions", json={"title": "Rockets", "document_ids": ["doc_0000000000000000000000000a"]}
    )
    assert created.status_code == 201, created.text
    session = created.json()
    assert session["id"].startswith("ses_") and session["title"] == "Rockets"
    assert session["document_ids"] == ["doc_0000000000000000000000000a"] and session["message_count"] == 0
    fetched = await acme.client.get(f"/v1/chat/sessions/{session['id']}")
    assert fetched.status_code == 200 and fetched.json() == session
    listed = (await acme.client.get("/v1/chat/sessions")).json()
    assert [s["id"] for s in listed["sessions"]] == [session["id"]] and listed["next_cursor"] is None
    assert (await acme.client.delete(f"/v1/chat/sessions/{session['id']}")).status_code == 204
    assert (await acme.client.get(f"/v1/chat/sessions/{session['id']}")).status_code == 404
    assert (await acme.client.delete(f"/v1/chat/sessions/{session['id']}")).status_code == 404


async def test_a_session_without_metadata_searches_every_document(harness: StackHarness) -> None:
    acme = await harness.tenant("acme")
    session = (await acme.client.post("/v1/chat/sessions", json={})).json()
    assert session["title"] is None and session["document_ids"] is None


async def test_another_tenants_or_end_users_session_is_not_found(harness: StackHarness) -> None:
    acme, globex = await harness.tenant("acme"), await harness.tenant("globex")
    alice = {"x-end-user": "alice@example.com"}
    session = (await acme.client.post("/v1/chat/sessions", json={"title": "a"}, headers=alice)).json()
    path = f"/v1/chat/sessions/{session['id']}"
    assert (await acme.client.get(path, headers=alice)).status_code == 200
    for client, headers in (
        (globex.client, alice),  # another tenant, same end user id
        (acme.client, {"x-end-user": "bob"}),  # same tenant, another end user
        (acme.client, {}),  # the tenant's default end user is someone else too
    ):
        for method in ("GET", "DELETE"):
            response = await client.request(method, path, headers=headers)
            assert response.status_code == 404, (method, headers, response.text)
            assert response.headers["content-type"].startswith("application/problem+json")
        assert (await client.get(f"{path}/messages", headers=headers)).status_code == 404
        sent = await client.post(f"{path}/messages", json={"content": "hello?"}, headers=headers)
        assert sent.status_code == 404
        assert (await client.get("/v1/chat/sessions", headers=headers)).json()["sessions"] == []
    assert (await acme.client.get(path, headers=alice)).status_code == 200  # still there


@pytest.mark.parametrize("end_user", ["", " alice", "-x", "a" * 129, "al ice", "al/ice", "é"])
async def test_an_invalid_end_user_header_is_a_422(harness: StackHarness, end_user: str) -> None:
    acme = await harness.tenant("acme")
    response = await acme.client.get("/v1/chat/sessions", headers={"x-end-user": end_user.encode("utf-8")})
    assert response.status_code == 422, response.text
    assert response.json()["errors"][0]["loc"] == ["header", "x-end-user"]


async def test_sessions_page_with_cursors_newest_first_with_message_counts(harness: StackHarness) -> None:
    acme = await harness.tenant("acme")
    ids = []
    for n in range(5):
        harness.clock.advance(1)
        ids.append((await acme.client.post("/v1/chat/sessions", json={"title": f"s{n}"})).json()["id"])
    seen, cursor = [], None
    while True:
        params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = (await acme.client.get("/v1/chat/sessions", params=params)).json()
        seen += [s["id"] for s in page["sessions"]]
        assert all(s["message_count"] == 0 for s in page["sessions"])
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == list(reversed(ids))


def _b64(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


@pytest.mark.parametrize(
    "cursor",
    [
        "!!",
        "a" * 201,
        "not-base64-at-all",
        _b64("s|2026-01-01T00:00:00.000Z|doc_00000000000000000000000000"),
        _b64("m|1"),  # a messages cursor is not a sessions cursor
        _b64(f"s|2026-01-01T00:00:00Z|{SES}"),
        _b64(f"s|2026-01-01T00:00:00.000Z|{SES}\n"),
        "%00",
        "_w",
    ],
)
async def test_every_malformed_sessions_cursor_is_a_400(harness: StackHarness, cursor: str) -> None:
    acme = await harness.tenant("acme")
    response = await acme.client.get("/v1/chat/sessions", params={"cursor": cursor})
    assert response.status_code == 400, response.text
    assert response.json()["type"].endswith("/bad-request")


@pytest.mark.parametrize(
    "cursor",
    [
        "!!",
        _b64("m|0"),
        _b64("m|-1"),
        _b64("m|01"),
        _b64("m|99999999999"),
        _b64(f"s|2026-01-01T00:00:00.000Z|{SES}"),
    ],
)
async def test_every_malformed_messages_cursor_is_a_400(harness: StackHarness, cursor: str) -> None:
    acme = await harness.tenant("acme")
    session = (await acme.client.post("/v1/chat/sessions", json={})).json()
    response = await acme.client.get(f"/v1/chat/sessions/{session['id']}/messages", params={"cursor": cursor})
    assert response.status_code == 400, response.text


@pytest.mark.parametrize(
    "body",
    [
        {"title": ""},
        {"title": "x" * 201},
        {"document_ids": ["nope"]},
        {"document_ids": ["doc_" + "0" * 26] * 51},
        {"unknown": 1},
    ],
)
async def test_invalid_session_metadata_is_a_422(harness: StackHarness, body: dict[str, object]) -> None:
    acme = await harness.tenant("acme")
    response = await acme.client.post("/v1/chat/sessions", json=body)
    assert response.status_code == 422, response.text


async def test_deleting_a_session_deletes_its_messages(harness: StackHarness) -> None:
    acme = await harness.tenant("acme")
    session = (await acme.client.post("/v1/chat/sessions", json={})).json()
    sent = await acme.client.post(f"/v1/chat/sessions/{session['id']}/messages", json={"content": "Hello?"})
    assert sent.status_code == 200, sent.text
    counted = (await acme.client.get(f"/v1/chat/sessions/{session['id']}")).json()["message_count"]
    assert counted == 2
    db = harness.stack.workers["gateway"].env.DB
    assert len(await fetch_all(db, "SELECT id FROM chat_messages WHERE session_id = ?1", session["id"])) == 2
    assert (await acme.client.delete(f"/v1/chat/sessions/{session['id']}")).status_code == 204
    assert await fetch_all(db, "SELECT id FROM chat_messages WHERE session_id = ?1", session["id"]) == []


async def test_chat_needs_the_chat_scope_and_a_chat_key_cannot_upload_or_delete(
    harness: StackHarness,
) -> None:
    writer = await harness.tenant("acme", scopes=("read", "write"))
    assert (await writer.client.post("/v1/chat/sessions", json={})).status_code == 403
    assert (await writer.client.get("/v1/users/alice/context")).status_code == 403
    chatter_key = await harness.admin.post(
        f"/v1/admin/tenants/{writer.id}/keys", json={"name": "bot", "scopes": ["chat"]}
    )
    assert chatter_key.status_code == 201 and chatter_key.json()["scopes"] == ["chat"]
    chatter = harness.client(chatter_key.json()["key"])
    assert (await chatter.post("/v1/chat/sessions", json={})).status_code == 201
    uploaded = await chatter.post("/v1/documents", json={"title": "t", "text": "some text"})
    assert uploaded.status_code == 403
    document = await writer.client.post("/v1/documents", json={"title": "t", "text": "some text"})
    assert (await chatter.delete(f"/v1/documents/{document.json()['document']['id']}")).status_code == 403
    await chatter.aclose()


async def test_messages_page_oldest_first(harness: StackHarness) -> None:
    acme = await harness.tenant("acme")
    session = (await acme.client.post("/v1/chat/sessions", json={})).json()
    path = f"/v1/chat/sessions/{session['id']}/messages"
    for question in ("one?", "two?", "three?"):
        assert (await acme.client.post(path, json={"content": question})).status_code == 200
    seen, cursor = [], None
    while True:
        page = (
            await acme.client.get(path, params={"limit": 2, **({"cursor": cursor} if cursor else {})})
        ).json()
        seen += [(m["seq"], m["role"], m["status"]) for m in page["messages"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert [s[0] for s in seen] == [1, 2, 3, 4, 5, 6]
    assert [s[1] for s in seen] == ["user", "assistant"] * 3
    assert {s[2] for s in seen} == {"complete"}
