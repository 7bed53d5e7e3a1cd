"""Plans' hourly request limits, monthly budgets and GET /v1/usage on the whole local stack.

The model routes add ``Depends(require_budget)``; here a probe route with only that dependency, in an
app with the gateway's own problem handlers and served with the gateway's env, stands for them. Model
calls are rows in dedalus's ``llm_calls`` (written here as dedalus's UsageRecorder writes them).
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from edgerag.budgets import Admission
from edgerag.ids import new_id
from fastapi import Depends, FastAPI
from gateway.budgets import require_budget
from gateway.deps import get_clock
from gateway.errors import install_problem_handlers
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from .conftest import StackHarness, Tenant
from .test_never_500 import assert_not_server_error, json_values

HOUR = 3600


def probe_app(harness: StackHarness) -> Any:
    app = FastAPI()
    install_problem_handlers(app)
    app.dependency_overrides[get_clock] = lambda: harness.clock

    @app.post("/probe")
    async def probe(admission: Admission = Depends(require_budget)) -> dict[str, Any]:
        return {"plan": admission.plan, "requests_this_hour": admission.requests_this_hour}

    env = harness.stack.workers["gateway"].env

    async def asgi(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await app({**scope, "env": env}, receive, send)

    return asgi


@pytest.fixture
async def probe(harness: StackHarness) -> AsyncIterator[Any]:
    transport = httpx.ASGITransport(app=probe_app(harness))
    clients: list[httpx.AsyncClient] = []

    def client(tenant: Tenant) -> httpx.AsyncClient:
        made = httpx.AsyncClient(
            transport=transport, base_url="http://local", headers={"authorization": f"Bearer {tenant.key}"}
        )
        clients.append(made)
        return made

    yield client
    for made in clients:
        await made.aclose()


def at_minute(harness: StackHarness, minute: float) -> None:
    """Move the clock forward to ``minute`` minutes into an hour (of the same UTC day, or the next)."""
    now = harness.clock()
    day_start = now - now % 86400
    target = day_start + 86400 + 10 * HOUR + minute * 60  # 10:mm tomorrow: never crosses midnight
    harness.clock.advance(target - now)


async def set_limits(harness: StackHarness, tenant: Tenant, **limits: int | None) -> dict[str, Any]:
    response = await harness.admin.put(f"/v1/admin/tenants/{tenant.name}/limits", json=limits)
    assert response.status_code == 200, response.text
    return dict(response.json())


async def record_call(
    harness: StackHarness, tenant: Tenant, model: str, tokens_in: int, tokens_out: int, cost: int
) -> None:
    moment = dt.datetime.fromtimestamp(harness.clock(), dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    db = harness.stack.workers["gateway"].env.DB
    await (
        db.prepare(
            "INSERT INTO llm_calls (id, tenant_id, request_id, purpose, model, provider, prompt_tokens,"
            " completion_tokens, cost_micro_usd, status, created_at)"
            " VALUES (?1, ?2, ?3, 'chat', ?4, 'workers-ai', ?5, ?6, ?7, 'ok', ?8)"
        )
        .bind(new_id("llm"), tenant.id, new_id("req"), model, tokens_in, tokens_out, cost, moment)
        .run()
    )


async def test_plans_set_the_default_limits(harness: StackHarness) -> None:
    free = await harness.tenant("acme")
    created = await harness.admin.post("/v1/admin/tenants", json={"name": "globex", "plan": "standard"})
    assert created.status_code == 201
    own = (await free.client.get("/v1/usage/limits")).json()
    assert own["plan"] == "free" and own["overrides"] is None
    assert own["limits"] == {
        "requests_per_hour": 100,
        "monthly_token_budget": 1_000_000,
        "monthly_cost_budget_micro_usd": None,
        "max_documents": 1_000,
        "max_stored_bytes": 1024**3,
    }
    paid = (await harness.admin.get("/v1/admin/tenants/globex/limits")).json()
    assert paid["limits"]["requests_per_hour"] == 1000 and paid["limits"]["monthly_token_budget"] is None


async def test_the_hourly_limit_answers_429_until_the_hour_ends_and_consumes_nothing(
    harness: StackHarness, probe: Any
) -> None:
    acme = await harness.tenant("acme")
    globex = await harness.tenant("globex")
    at_minute(harness, 45.5)  # 14.5 minutes = 870 s before the hour ends
    for _ in range(100):  # the free plan's default: 100 an hour
        answer = await probe(acme).post("/probe")
        assert answer.status_code == 200, answer.text
    assert answer.json() == {"plan": "free", "requests_this_hour": 100}

    refused = await probe(acme).post("/probe")
    assert refused.status_code == 429
    assert refused.headers["content-type"] == "application/problem+json"
    assert refused.headers["retry-after"] == "870"
    problem = refused.json()
    assert problem["type"] == "https://edgerag.dev/problems/request-limit"
    assert problem["limit"] == "requests_per_hour" and problem["requests_per_hour"] == 100
    assert problem["resets_at"].endswith("T11:00:00Z") and problem["retry_after"] == 870
    assert (await probe(globex).post("/probe")).status_code == 200  # per tenant

    limits = (await acme.client.get("/v1/usage/limits")).json()
    assert limits["requests_this_hour"] == 100  # the refusal counted nothing
    harness.clock.advance(869)
    assert (await probe(acme).post("/probe")).status_code == 429
    harness.clock.advance(1)
    assert (await probe(acme).post("/probe")).json()["requests_this_hour"] == 1

    usage = (await acme.client.get("/v1/usage")).json()
    assert [(d["requests"], d["rate_limited"]) for d in usage["days"]] == [(101, 2)]


async def test_racing_requests_cannot_overshoot_the_limit(harness: StackHarness, probe: Any) -> None:
    acme = await harness.tenant("acme")
    await set_limits(harness, acme, requests_per_hour=5)
    at_minute(harness, 1)
    answers = await asyncio.gather(*(probe(acme).post("/probe") for _ in range(12)))
    assert sorted(a.status_code for a in answers) == [200] * 5 + [429] * 7


async def test_a_used_up_monthly_budget_answers_402_naming_it_and_the_reset(
    harness: StackHarness, probe: Any
) -> None:
    acme = await harness.tenant("acme")
    set_to = await set_limits(harness, acme, monthly_token_budget=500, requests_per_hour=50)
    assert set_to["overrides"] == {
        "requests_per_hour": 50,
        "monthly_token_budget": 500,
        "monthly_cost_budget_micro_usd": None,
        "max_documents": None,
        "max_stored_bytes": None,
    }
    at_minute(harness, 5)
    assert (await probe(acme).post("/probe")).status_code == 200
    await record_call(harness, acme, "@cf/meta/llama-3.1-8b-instruct", 300, 150, 1200)
    assert (await probe(acme).post("/probe")).status_code == 200  # 450 < 500
    await record_call(harness, acme, "@cf/meta/llama-3.1-8b-instruct", 40, 10, 100)

    refused = await probe(acme).post("/probe")
    assert refused.status_code == 402
    problem = refused.json()
    assert problem["type"] == "https://edgerag.dev/problems/budget-exhausted"
    assert (problem["limit"], problem["budget"], problem["used"]) == ("token", 500, 500)
    today = dt.datetime.fromtimestamp(harness.clock(), dt.UTC)
    first_of_next = dt.date(today.year + today.month // 12, today.month % 12 + 1, 1)
    assert problem["resets_at"] == f"{first_of_next.isoformat()}T00:00:00Z"
    limits = (await acme.client.get("/v1/usage/limits")).json()
    assert (limits["requests_this_hour"], limits["tokens_this_month"]) == (2, 500)  # nothing consumed

    await set_limits(harness, acme, monthly_cost_budget_micro_usd=1300, monthly_token_budget=10_000)
    refused = await probe(acme).post("/probe")
    assert refused.status_code == 402 and refused.json()["limit"] == "cost (micro-USD)"


async def test_usage_reports_each_day_per_model(harness: StackHarness) -> None:
    acme = await harness.tenant("acme")
    globex = await harness.tenant("globex")
    at_minute(harness, 0)
    await record_call(harness, acme, "model-a", 100, 20, 50)
    await record_call(harness, acme, "model-a", 10, 2, 5)
    await record_call(harness, acme, "model-b", 1, 1, 1)
    await record_call(harness, globex, "model-a", 999, 999, 999)  # another tenant's
    first_day = dt.datetime.fromtimestamp(harness.clock(), dt.UTC).date()
    harness.clock.advance(86400)
    await record_call(harness, acme, "model-b", 7, 3, 2)

    usage = (await acme.client.get("/v1/usage", params={"from": first_day.isoformat()})).json()
    assert usage["from"] == first_day.isoformat()
    assert usage["to"] == (first_day + dt.timedelta(days=1)).isoformat()
    day1, day2 = usage["days"]
    assert (day1["prompt_tokens"], day1["completion_tokens"], day1["cost_micro_usd"]) == (111, 23, 56)
    assert [(m["model"], m["calls"], m["prompt_tokens"]) for m in day1["models"]] == [
        ("model-a", 2, 110),
        ("model-b", 1, 1),
    ]
    assert [(m["model"], m["completion_tokens"]) for m in day2["models"]] == [("model-b", 3)]
    only_first = await acme.client.get("/v1/usage", params={"to": first_day.isoformat()})
    assert [d["date"] for d in only_first.json()["days"]] == [first_day.isoformat()]


async def test_burst_rate_limited_requests_are_counted(harness: StackHarness) -> None:
    acme = await harness.tenant("acme")
    at_minute(harness, 30)
    limiter = harness.stack.workers["gateway"].env.RATE_LIMITER
    while (await limiter.limit({"key": acme.id}))["success"]:
        pass
    assert (await acme.client.get("/v1/documents")).status_code == 429
    harness.clock.advance(60)
    usage = (await acme.client.get("/v1/usage")).json()
    assert [d["rate_limited"] for d in usage["days"]] == [1]


@pytest.mark.parametrize(
    ("params", "status"),
    [
        ({"from": "2026-02-01", "to": "2026-01-01"}, 400),
        ({"from": "2020-01-01", "to": "2026-01-01"}, 400),
        ({"from": "2026-02-30"}, 400),
        ({"from": "x"}, 422),
        ({"to": "0"}, 422),
    ],
)
async def test_bad_ranges_are_client_errors(
    harness: StackHarness, params: dict[str, str], status: int
) -> None:
    acme = await harness.tenant("acme")
    answer = await acme.client.get("/v1/usage", params=params)
    assert answer.status_code == status
    assert answer.headers["content-type"] == "application/problem+json"


async def test_usage_needs_the_read_scope_and_limits_the_operator(harness: StackHarness) -> None:
    chat_only = await harness.tenant("acme", scopes=("chat",))
    assert (await chat_only.client.get("/v1/usage")).status_code == 403
    reader = await harness.tenant("globex", scopes=("read",))
    assert (await reader.client.get("/v1/usage")).status_code == 200
    assert (await reader.client.put("/v1/admin/tenants/globex/limits", json={})).status_code == 401
    missing = await harness.admin.put("/v1/admin/tenants/nobody/limits", json={})
    assert missing.status_code == 404
    assert (
        await harness.admin.put("/v1/admin/tenants/globex/limits", json={"requests_per_hour": 7.0})
    ).json()["limits"]["requests_per_hour"] == 7
    for bad in (-1, False, "5", 1.5, 10**16):
        refused = await harness.admin.put("/v1/admin/tenants/globex/limits", json={"requests_per_hour": bad})
        assert refused.status_code == 422, bad


async def test_a_zero_limit_refuses_everything(harness: StackHarness, probe: Any) -> None:
    acme = await harness.tenant("acme")
    await set_limits(harness, acme, requests_per_hour=0)
    assert (await probe(acme).post("/probe")).status_code == 429
    assert (await acme.client.get("/v1/usage/limits")).json()["requests_this_hour"] == 0


async def test_arbitrary_queries_and_bodies_never_get_a_500(harness: StackHarness) -> None:
    acme = await harness.tenant("acme")
    calls: list[tuple[str, str, Any]] = []
    limit_values = st.integers(-5, 10**12) | st.none() | json_values
    limit_bodies = st.fixed_dictionaries(
        {},
        optional={
            "requests_per_hour": limit_values,
            "monthly_token_budget": limit_values,
            "monthly_cost_budget_micro_usd": limit_values,
            "other": json_values,
        },
    )
    dates = st.dates().map(dt.date.isoformat) | st.text(max_size=12)

    @settings(
        max_examples=60,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        database=None,
        derandomize=True,
    )
    @given(
        start=dates,
        end=dates,
        body=limit_bodies | json_values,
        tenant=st.text(alphabet=st.characters(min_codepoint=33, max_codepoint=126), max_size=20),
    )
    def collect(start: str, end: str, body: Any, tenant: str) -> None:
        calls.append(("GET", "/v1/usage", {"from": start, "to": end}))
        calls.append(("GET", "/v1/usage", {"from": start}))
        calls.append(("PUT", "/v1/admin/tenants/acme/limits", body))
        calls.append(("GET", f"/v1/admin/tenants/{tenant}/limits", None))

    collect()
    for method, url, payload in calls:
        if method == "PUT":
            response = await harness.admin.put(url, json=payload)
        elif url.startswith("/v1/admin"):
            response = await harness.admin.get(url)
        else:
            response = await acme.client.get(url, params=payload)
        assert_not_server_error(response)
    assert (await acme.client.get("/v1/usage/limits")).status_code == 200


async def test_a_chat_message_over_the_limit_stores_nothing_and_asks_no_model(harness: StackHarness) -> None:
    acme = await harness.tenant("acme")
    await acme.client.post("/v1/documents", json={"title": "Rockets", "text": "Rockets burn kerosene."})
    await harness.ingest()
    await set_limits(harness, acme, requests_per_hour=1)
    at_minute(harness, 20)
    session = (await acme.client.post("/v1/chat/sessions", json={})).json()["id"]
    path = f"/v1/chat/sessions/{session}/messages"
    assert (await acme.client.post(path, json={"content": "What do rockets burn?"})).status_code == 200

    refused = await acme.client.post(path, json={"content": "And what else?"})
    assert refused.status_code == 429
    assert refused.json()["type"] == "https://edgerag.dev/problems/request-limit"
    assert refused.headers["retry-after"] == str(40 * 60)
    messages = (await acme.client.get(f"{path}")).json()["messages"]
    assert [m["role"] for m in messages] == ["user", "assistant"]  # the refused question was not kept
    db = harness.stack.workers["gateway"].env.DB
    calls = await db.prepare("SELECT count(*) AS n FROM llm_calls WHERE tenant_id = ?1").bind(acme.id).first()
    assert calls["n"] == 1
