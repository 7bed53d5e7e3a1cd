"""GET/PUT /v1/users/{user_id}/context over HTTP: validated, tenant-scoped, chat scope."""

from __future__ import annotations

from typing import Any

import pytest

from .conftest import StackHarness

CONTEXT = {
    "goals": ["ship the launch checklist"],
    "constraints": ["no jargon"],
    "preferences": {"tone": "formal", "units": "metric", "max_words": 200},
}


async def test_put_creates_then_replaces_and_get_reads_it(harness: StackHarness) -> None:
    acme = await harness.tenant("acme")
    assert (await acme.client.get("/v1/users/alice@example.com/context")).status_code == 404
    created = await acme.client.put("/v1/users/alice@example.com/context", json=CONTEXT)
    assert created.status_code == 201, created.text
    assert created.json()["end_user"] == "alice@example.com" and created.json()["goals"] == CONTEXT["goals"]
    replaced = await acme.client.put("/v1/users/alice@example.com/context", json={"goals": ["rest"]})
    assert replaced.status_code == 200
    got = (await acme.client.get("/v1/users/alice@example.com/context")).json()
    assert (got["goals"], got["constraints"], got["preferences"]) == (["rest"], [], {})
    assert got["created_at"] == created.json()["created_at"]


async def test_another_tenants_user_of_the_same_name_is_someone_else(harness: StackHarness) -> None:
    acme, globex = await harness.tenant("acme"), await harness.tenant("globex")
    assert (await acme.client.put("/v1/users/alice/context", json=CONTEXT)).status_code == 201
    assert (await globex.client.get("/v1/users/alice/context")).status_code == 404
    assert (await globex.client.put("/v1/users/alice/context", json={"goals": ["x"]})).status_code == 201
    assert (await acme.client.get("/v1/users/alice/context")).json()["goals"] == CONTEXT["goals"]


@pytest.mark.parametrize(
    "body",
    [
        {"goals": "not a list"},
        {"goals": [""]},
        {"goals": ["x" * 501]},
        {"goals": ["g"] * 21},
        {"preferences": {"1bad": "key"}},
        {"preferences": {"nested": {"a": 1}}},
        {"unknown": []},
        {"preferences": {f"k{i}": "v" * 400 for i in range(30)}},  # over 8 KiB of JSON
        {"preferences": {"a": "0" * 501}},  # too long a string is not the number 0
        {"preferences": {"a": "12"}, "goals": 5},
        {"goals": [1]},
    ],
)
async def test_invalid_contexts_are_422_and_change_nothing(
    harness: StackHarness, body: dict[str, Any]
) -> None:
    acme = await harness.tenant("acme")
    await acme.client.put("/v1/users/alice/context", json=CONTEXT)
    response = await acme.client.put("/v1/users/alice/context", json=body)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert (await acme.client.get("/v1/users/alice/context")).json()["goals"] == CONTEXT["goals"]


@pytest.mark.parametrize("user_id", ["-alice", "a" * 129, "al%20ice", "%C3%A9"])
async def test_an_invalid_user_id_is_not_a_route(harness: StackHarness, user_id: str) -> None:
    acme = await harness.tenant("acme")
    assert (await acme.client.get(f"/v1/users/{user_id}/context")).status_code == 404
    assert (await acme.client.put(f"/v1/users/{user_id}/context", json=CONTEXT)).status_code == 404


async def test_the_routes_need_the_chat_scope(harness: StackHarness) -> None:
    writer = await harness.tenant("acme", scopes=("read", "write"))
    assert (await writer.client.get("/v1/users/alice/context")).status_code == 403
    assert (await writer.client.put("/v1/users/alice/context", json=CONTEXT)).status_code == 403
    chat = await harness.tenant("globex", scopes=("chat",))
    assert (await chat.client.put("/v1/users/alice/context", json=CONTEXT)).status_code == 201


async def test_the_schema_closes_preferences_to_the_key_rule(harness: StackHarness) -> None:
    schema = (await harness.client().get("/openapi.json")).json()
    body = schema["paths"]["/v1/users/{user_id}/context"]["put"]["requestBody"]["content"]["application/json"]
    ref = body["schema"]["$ref"].rsplit("/", 1)[-1]
    preferences = schema["components"]["schemas"][ref]["properties"]["preferences"]
    assert preferences["additionalProperties"] is False and preferences["patternProperties"]


async def test_a_numeric_looking_preference_stays_a_string(harness: StackHarness) -> None:
    acme = await harness.tenant("acme")
    put = await acme.client.put("/v1/users/alice/context", json={"preferences": {"zip": "0012", "n": 3}})
    assert put.status_code == 201 and put.json()["preferences"] == {"zip": "0012", "n": 3}
