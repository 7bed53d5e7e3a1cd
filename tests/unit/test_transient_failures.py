"""A platform binding's transient failure (D1 overloaded, its connection lost) answers 503 with
Retry-After, not 500; anything else unexpected stays a 500 that reveals nothing."""

from __future__ import annotations

import httpx
import pytest
from edgerag.problems import transient_platform_failure
from edgerag_local.d1 import D1Error
from edgerag_local.kv import KVError
from fastapi import FastAPI
from gateway.errors import install_problem_handlers


def _app(error: Exception) -> FastAPI:
    app = FastAPI()
    install_problem_handlers(app)

    @app.get("/boom")
    async def boom() -> None:
        raise error

    return app


async def _get(error: Exception) -> httpx.Response:
    transport = httpx.ASGITransport(app=_app(error), raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as client:
        return await client.get("/boom")


@pytest.mark.parametrize(
    "error",
    [
        D1Error("D1_ERROR: D1 DB is overloaded. Requests queued for too long."),
        D1Error("D1_ERROR: Network connection lost."),
        D1Error("D1_ERROR: internal error; reference = x: storage caused object to be reset"),
        Exception("Error: D1_ERROR: Durable Object reset because its code was updated."),
        KVError("KV GET failed: 503 Network connection lost"),
    ],
)
async def test_transient_binding_failures_are_503_with_retry_after(error: Exception) -> None:
    reply = await _get(error)
    assert reply.status_code == 503, reply.text
    assert reply.headers["retry-after"] == "1"
    body = reply.json()
    assert body["type"].endswith("/unavailable") and body["retry_after"] == 1
    assert "retry shortly" in body["detail"]


@pytest.mark.parametrize(
    "error",
    [
        D1Error("D1_ERROR: no such table: documents: SQLITE_ERROR"),  # a bug, not a blip
        RuntimeError("the model is overloaded"),  # not a binding's failure
        ValueError("a secret detail"),
    ],
)
async def test_other_failures_stay_500_and_reveal_nothing(error: Exception) -> None:
    reply = await _get(error)
    assert reply.status_code == 500
    assert "retry-after" not in reply.headers
    assert str(error) not in reply.text
    assert transient_platform_failure(error) is None
