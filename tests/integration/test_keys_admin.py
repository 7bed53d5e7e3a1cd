"""API keys and the operator API over HTTP: last_used_at, the last-admin-key rule, tenants by id or
name, the rate limit's Retry-After, and what /openapi.json says about these routes.

Time is the harness's ManualClock, which drives both the emulators (the rate limiter's windows) and the
gateway (``get_clock``), so window arithmetic is exact.
"""

from __future__ import annotations

from typing import Any

import pytest

from .conftest import StackHarness

PERIOD = 60  # workers/gateway/wrangler.toml: [[ratelimits]] simple.period (and RATE_LIMIT_PERIOD)
LIMIT = 600


def _iso(harness: StackHarness) -> str:
    import datetime as dt

    moment = dt.datetime.fromtimestamp(harness.clock(), dt.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


async def _key(client: Any, key_id: str) -> dict[str, Any]:
    listed = await client.get("/v1/keys")
    assert listed.status_code == 200, listed.text
    return next(k for k in listed.json()["keys"] if k["id"] == key_id)


async def test_last_used_at_is_recorded_to_the_minute(harness: StackHarness) -> None:
    acme = await harness.tenant("acme")
    created = await acme.client.post("/v1/keys", json={"name": "ci", "scopes": ["read"]})
    ci_id, ci_key = created.json()["id"], created.json()["key"]
    assert created.json()["last_used_at"] is None
    ci = harness.client(ci_key)

    assert (await ci.get("/v1/documents")).status_code == 200
    first = _iso(harness)
    assert (await _key(acme.client, ci_id))["last_used_at"] == first
    harness.clock.advance(59)
    assert (await ci.get("/v1/documents")).status_code == 200
    assert (await _key(acme.client, ci_id))["last_used_at"] == first  # within the minute: no write
    harness.clock.advance(1)
    assert (await ci.get("/v1/documents")).status_code == 200
    assert (await _key(acme.client, ci_id))["last_used_at"] == _iso(harness)


async def test_a_tenant_cannot_revoke_its_last_admin_key(harness: StackHarness) -> None:
    acme = await harness.tenant("acme")  # one admin key, the one acme.client uses
    own_id = (await acme.client.get("/v1/keys")).json()["keys"][0]["id"]

    refused = await acme.client.delete(f"/v1/keys/{own_id}")
    assert refused.status_code == 409, refused.text
    assert refused.headers["content-type"] == "application/problem+json"
    assert refused.json()["type"] == "https://edgerag.dev/problems/conflict"
    assert "last active admin key" in refused.json()["detail"]
    assert (await acme.client.get("/v1/keys")).status_code == 200  # still usable

    # With a second admin key, the first can go (even revoking itself); then the second is the last.
    second = (await acme.client.post("/v1/keys", json={"name": "ops", "scopes": ["admin"]})).json()
    assert (await acme.client.delete(f"/v1/keys/{own_id}")).status_code == 200
    ops = harness.client(second["key"])
    assert (await ops.delete(f"/v1/keys/{second['id']}")).status_code == 409
    assert (await ops.delete(f"/v1/keys/{own_id}")).status_code == 200  # already revoked: idempotent


async def test_the_operator_can_revoke_any_key_and_rescue_a_tenant(harness: StackHarness) -> None:
    acme = await harness.tenant("acme")
    keys = (await harness.admin.get("/v1/admin/tenants/acme/keys")).json()["keys"]
    (only,) = keys
    revoked = await harness.admin.delete(f"/v1/admin/tenants/acme/keys/{only['id']}")
    assert revoked.status_code == 200, revoked.text
    assert revoked.json()["revoked_at"] == _iso(harness)
    assert (await acme.client.get("/v1/keys")).status_code == 401
    rescued = await harness.admin.post(
        "/v1/admin/tenants/acme/keys", json={"name": "new", "scopes": ["admin"]}
    )
    assert rescued.status_code == 201
    assert (await harness.client(rescued.json()["key"]).get("/v1/keys")).status_code == 200


async def test_admin_routes_take_the_tenant_name_or_id(harness: StackHarness) -> None:
    acme = await harness.tenant("acme")
    by_name = await harness.admin.get("/v1/admin/tenants/acme")
    by_id = await harness.admin.get(f"/v1/admin/tenants/{acme.id}")
    assert by_name.status_code == by_id.status_code == 200
    assert by_name.json() == by_id.json()
    assert by_name.json()["name"] == "acme" and by_name.json()["id"] == acme.id
    for ref in ("acme", acme.id):
        issued = await harness.admin.post(f"/v1/admin/tenants/{ref}/keys", json={"name": ref})
        assert issued.status_code == 201, issued.text
        assert issued.json()["tenant_id"] == acme.id
    listed = (await harness.admin.get(f"/v1/admin/tenants/{acme.id}/keys")).json()["keys"]
    assert [k["name"] for k in listed] == ["test", "acme", acme.id]
    assert all("key" not in k for k in listed)
    for path in ("/v1/admin/tenants/globex", "/v1/admin/tenants/globex/keys"):
        missing = await harness.admin.get(path)
        assert missing.status_code == 404
        assert missing.headers["content-type"] == "application/problem+json"


async def test_a_tenant_key_cannot_reach_the_operator_routes(harness: StackHarness) -> None:
    acme = await harness.tenant("acme")
    for method, path in (("GET", "/v1/admin/tenants/acme/keys"), ("DELETE", "/v1/admin/tenants/acme/keys/x")):
        answer = await acme.client.request(method, path)
        assert answer.status_code == 401


# (seconds into the window, Retry-After): the seconds left, rounded up so that waiting them suffices.
@pytest.mark.parametrize(("offset", "expected"), [(17.25, 43), (0.5, 60), (59.5, 1)])
async def test_retry_after_is_the_time_left_in_the_window(
    harness: StackHarness, offset: float, expected: int
) -> None:
    acme = await harness.tenant("acme")
    globex = await harness.tenant("globex")
    # Move to a known point of the window, then use up acme's allowance through the binding itself.
    harness.clock.advance((PERIOD - harness.clock() % PERIOD) + offset)
    limiter = harness.stack.workers["gateway"].env.RATE_LIMITER
    for _ in range(LIMIT):
        assert (await limiter.limit({"key": acme.id}))["success"]

    limited = await acme.client.get("/v1/documents")
    assert limited.status_code == 429
    assert limited.headers["content-type"] == "application/problem+json"
    assert limited.headers["retry-after"] == str(expected)
    assert limited.json()["retry_after"] == expected
    assert (await globex.client.get("/v1/documents")).status_code == 200  # per tenant

    harness.clock.advance(PERIOD - offset - 0.25)
    assert (await acme.client.get("/v1/documents")).status_code == 429  # not yet
    harness.clock.advance(0.25)
    assert (await acme.client.get("/v1/documents")).status_code == 200  # waiting Retry-After sufficed


async def test_openapi_types_the_keys_and_admin_routes(harness: StackHarness) -> None:
    spec = (await harness.client().get("/openapi.json")).json()
    schemas = spec["components"]["schemas"]
    assert {"ApiKey", "ApiKeyList", "IssuedKey", "Tenant", "TenantList"} <= set(schemas)
    assert "key" in schemas["IssuedKey"]["properties"] and "key" not in schemas["ApiKey"]["properties"]
    assert all("description" in p for p in schemas["ApiKey"]["properties"].values())
    expected = {
        ("/v1/keys", "get"): ("ApiKeyList", {401, 403, 429}),
        ("/v1/keys", "post"): ("IssuedKey", {401, 403, 422, 429}),
        ("/v1/keys/{key_id}", "delete"): ("ApiKey", {401, 403, 404, 409, 422, 429}),
        ("/v1/admin/tenants", "get"): ("TenantList", {401, 403}),
        ("/v1/admin/tenants", "post"): ("Tenant", {401, 403, 409, 422}),
        ("/v1/admin/tenants/{tenant}", "get"): ("Tenant", {401, 403, 404, 422}),
        ("/v1/admin/tenants/{tenant}/keys", "get"): ("ApiKeyList", {401, 403, 404, 422}),
        ("/v1/admin/tenants/{tenant}/keys", "post"): ("IssuedKey", {401, 403, 404, 422}),
        ("/v1/admin/tenants/{tenant}/keys/{key_id}", "delete"): ("ApiKey", {401, 403, 404, 422}),
    }
    for (path, method), (model, errors) in expected.items():
        operation = spec["paths"][path][method]
        responses = operation["responses"]
        success = next(s for s in responses if s.startswith("2"))
        assert responses[success]["content"]["application/json"]["schema"] == {
            "$ref": f"#/components/schemas/{model}"
        }, (path, method)
        assert {int(s) for s in responses if not s.startswith("2")} == errors, (path, method)
        for status in errors:
            content = responses[str(status)]["content"]
            assert content["application/problem+json"]["schema"] == {
                "$ref": "#/components/schemas/ProblemDetails"
            }, (path, method, status)
        scheme = "operatorToken" if path.startswith("/v1/admin") else "apiKey"
        assert operation["security"] == [{scheme: []}], (path, method)
