"""The API description is usable offline: docs pages load only assets the gateway serves itself, the
schema carries bearer security, and every error is documented as problem+json."""

from __future__ import annotations

import re

from .conftest import StackHarness


async def test_docs_pages_load_only_bundled_assets(harness: StackHarness) -> None:
    client = harness.client()
    for page in ("/docs", "/redoc"):
        html = (await client.get(page)).text
        urls = re.findall(r"""(?:src|href)=["']([^"']+)["']|url: ?["']([^"']+)["']""", html)
        referenced = [u for pair in urls for u in pair if u]
        assert referenced, page
        assert all(u.startswith("/") for u in referenced), referenced  # nothing from a CDN
        for url in referenced:
            asset = await client.get(url)
            assert asset.status_code == 200, url
            assert asset.content
    missing = await client.get("/docs/assets/nope.js")
    assert missing.status_code == 404 and missing.headers["content-type"] == "application/problem+json"


async def test_the_schema_offers_bearer_auth_and_problem_json_errors(harness: StackHarness) -> None:
    schema = (await harness.client().get("/openapi.json")).json()
    schemes = schema["components"]["securitySchemes"]
    assert {s["scheme"] for s in schemes.values()} == {"bearer"}
    operations = [(p, m, o) for p, ops in schema["paths"].items() for m, o in ops.items()]
    for path, method, operation in operations:
        if path.startswith("/v1/"):
            assert operation.get("security"), (method, path)
        for status, response in operation["responses"].items():
            if status[0] in "45" and operation.get("x-error-format") == "openai":
                # The OpenAI-compatible routes answer errors in OpenAI's shape (gateway.openai_api).
                assert response["content"] == {
                    "application/json": {"schema": {"$ref": "#/components/schemas/OpenAIError"}}
                }, (method, path, status)
            elif status[0] in "45":
                assert list(response["content"]) == ["application/problem+json"], (method, path, status)
            elif status[0] == "2" and status != "204":
                content = response.get("content", {})
                assert content, (method, path, status)
                for body in content.values():
                    assert body["schema"] not in ({}, {"type": "object"}), (method, path, status)
    assert "HTTPValidationError" not in schema["components"]["schemas"]


async def test_one_error_vocabulary_on_every_path(harness: StackHarness) -> None:
    acme = await harness.tenant("acme")
    cases = [
        ("POST", "/v1/keys", {"content": b"garbage", "headers": {"content-type": "application/json"}}, 422),
        ("POST", "/v1/search", {"json": {"query": 5}}, 422),
        (
            "POST",
            "/v1/documents/batch",
            {"content": b"{", "headers": {"content-type": "application/json"}},
            422,
        ),
        ("GET", "/v1/nowhere", {}, 404),
        ("PUT", "/v1/documents", {}, 405),
        ("GET", "/v1/documents", {"params": {"cursor": "%C2%A9"}}, 400),
    ]
    slugs = {400: "bad-request", 404: "not-found", 405: "method-not-allowed", 422: "validation"}
    for method, path, kwargs, status in cases:
        reply = await acme.client.request(method, path, **kwargs)
        assert reply.status_code == status, (method, path, reply.text)
        assert reply.headers["content-type"] == "application/problem+json"
        body = reply.json()
        assert body["type"] == f"https://edgerag.dev/problems/{slugs[status]}", (method, path, body)
        assert body["status"] == status and body["title"] and body["instance"] == path
    allowed = await acme.client.put("/v1/documents")
    assert allowed.headers["allow"] == "GET, POST"
