"""No tool reaches another tenant's data: two tenants built through the gateway (keys, uploads,
ingestion), then every dedalus tool run through the registry with the dedalus worker's own env and a
ToolContext for tenant A, given tenant B's ids. Each answers a 404-style error result (or nothing
found) with none of B's data; the same call with A's own ids works, so the refusals are not vacuous.
``ctx.llm`` is a scripted fake that records its prompts: B's text must never reach a prompt."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import pytest
from dedalus.tools import all_tools, build_registry
from dedalus.turns import ToolContext, TurnResult
from edgerag.contracts.dedalus import CallContext
from edgerag.llm.types import ChatMessage, ToolCall, Usage
from edgerag.store.user_context import UserContext, UserContextStore

from .conftest import StackHarness, Tenant

A_DOC = (
    "Liquid rocket engines burn kerosene and liquid oxygen. The nozzle accelerates exhaust to make thrust."
)
B_DOC = "Sourdough bread rises with a starter of wild yeast. Zanzibar cloves flavour the crumb."
B_MARKERS = ("sourdough", "zanzibar", "yeast")


@dataclass
class Llm:
    answer: str = '{"tags": ["rockets"], "entities": [], "labels": [{"label": "question", "confidence": 1}]}'
    prompts: list[str] = field(default_factory=list)

    async def __call__(self, purpose: str, messages: list[ChatMessage]) -> TurnResult:
        self.prompts.append("\n".join(m.content or "" for m in messages))
        return TurnResult(self.answer, [], "stop", Usage(), "m", "fake")


@dataclass
class Two:
    harness: StackHarness
    a: Tenant
    b: Tenant
    a_doc: str
    b_doc: str
    llm: Llm

    def ctx(self, end_user: str | None = "alice") -> ToolContext:
        call = CallContext(
            tenant_id=self.a.id,
            key_id="key_a",
            scopes=["admin"],  # every scope: only the tenant boundary may stop these calls
            end_user=end_user,
            request_id="req_iso",
        )
        return ToolContext(call=call, env=self.harness.stack.workers["dedalus"].env, llm=self.llm)  # type: ignore[arg-type]

    async def run(self, tool: str, arguments: dict[str, Any]) -> tuple[bool, str]:
        outcome = await build_registry().run(
            ToolCall(id="c", name=tool, arguments=json.dumps(arguments)), self.ctx()
        )
        return outcome.ok, outcome.content


async def upload(tenant: Tenant, title: str, text: str) -> str:
    response = await tenant.client.post("/v1/documents", json={"title": title, "text": text})
    assert response.status_code == 202, response.text
    return str(response.json()["document"]["id"])


@pytest.fixture
async def two(harness: StackHarness) -> Two:
    a, b = await harness.tenant("acme"), await harness.tenant("globex")
    a_doc = await upload(a, "Rocket engines", A_DOC)
    b_doc = await upload(b, "Sourdough baking", B_DOC)
    await harness.ingest()
    db = harness.stack.workers["dedalus"].env.DB
    # Tenant A turns on the one default-off tool, so every tool is reachable and only the tenant
    # boundary (or the schema) can stop a call.
    await (
        db.prepare("INSERT INTO tenant_tools (tenant_id, tool, enabled) VALUES (?1, 'ingest_document', 1)")
        .bind(a.id)
        .run()
    )
    await UserContextStore(db).put(b.id, "alice", UserContext(goals=["globex alice's private goal"]))
    return Two(harness, a, b, a_doc, b_doc, Llm())


def leaks(content: str) -> bool:
    lowered = content.lower()
    return any(marker in lowered for marker in (*B_MARKERS, "private goal"))


async def test_search_finds_only_the_callers_documents(two: Two) -> None:
    ok, content = await two.run("search_knowledge_base", {"query": "sourdough yeast zanzibar"})
    sources = json.loads(content)["sources"]  # vectors always find a nearest chunk: A's, never B's
    assert ok and {s["document_id"] for s in sources} <= {two.a_doc} and not leaks(json.dumps(sources))
    ok, content = await two.run("search_knowledge_base", {"query": "bread", "document_ids": [two.b_doc]})
    assert ok and json.loads(content)["sources"] == []
    ok, content = await two.run("search_knowledge_base", {"query": "rocket nozzle thrust"})
    sources = json.loads(content)["sources"]
    assert ok and sources and {s["document_id"] for s in sources} == {two.a_doc}
    assert sources[0]["title"] == "Rocket engines" and sources[0]["id"] and "score" in sources[0]


@pytest.mark.parametrize("tool", ["summarize", "extract_entities", "tag_document"])
async def test_document_tools_answer_not_found_for_another_tenants_document(two: Two, tool: str) -> None:
    ok, content = await two.run(tool, {"document_id": two.b_doc})
    assert not ok and json.loads(content) == {"code": "not_found", "error": f"no document {two.b_doc}"}
    assert two.llm.prompts == [] and not leaks(content)

    ok, content = await two.run(tool, {"document_id": two.a_doc})  # the caller's own document works
    assert ok, content
    assert "kerosene" in two.llm.prompts[-1] and not any(leaks(p) for p in two.llm.prompts)


async def test_classify_intent_sees_only_the_text_it_is_given(two: Two) -> None:
    ok, content = await two.run("classify_intent", {"text": "How do nozzles work?"})
    assert ok and json.loads(content)["selected"] == ["question"]
    assert not any(leaks(p) for p in two.llm.prompts)


async def test_get_user_context_reads_the_callers_tenant_only(two: Two) -> None:
    ok, content = await two.run("get_user_context", {})  # B has an "alice"; A does not
    assert ok and json.loads(content)["found"] is False and not leaks(content)


@pytest.mark.parametrize("tool", [tool.name for tool in all_tools()])
async def test_no_tool_takes_a_tenant_or_user_from_the_model(two: Two, tool: str) -> None:
    for extra in ({"tenant_id": two.b.id}, {"user": "alice"}, {"end_user": "alice"}):
        ok, content = await two.run(tool, {"document_id": two.b_doc, **extra})
        assert not ok and json.loads(content)["code"] == "invalid_arguments", (tool, extra)


async def test_audit_rows_belong_to_the_caller(two: Two) -> None:
    await two.run("search_knowledge_base", {"query": "rocket"})
    await two.run("summarize", {"document_id": two.b_doc})
    db = two.harness.stack.workers["dedalus"].env.DB
    rows = (await db.prepare("SELECT tenant_id, tool, outcome FROM tool_calls_audit ORDER BY id").all())[
        "results"
    ]
    assert [(r["tenant_id"], r["tool"], r["outcome"]) for r in rows] == [
        (two.a.id, "search_knowledge_base", "ok"),
        (two.a.id, "summarize", "error"),
    ]


async def test_ingest_document_files_into_the_callers_tenant_only(two: Two) -> None:
    ok, content = await two.run(
        "ingest_document", {"title": "Turbopumps", "text": "Turbopumps feed propellant."}
    )
    assert ok, content
    document_id = json.loads(content)["document_id"]
    assert await two.harness.ingest() == 1

    assert (await two.a.client.get(f"/v1/documents/{document_id}")).json()["status"] == "ready"
    assert (await two.b.client.get(f"/v1/documents/{document_id}")).status_code == 404
    for tenant, expected in ((two.a, {document_id}), (two.b, set())):
        found = (
            await tenant.client.post("/v1/search", json={"query": "turbopumps", "mode": "keyword"})
        ).json()
        assert {r["document_id"] for r in found["results"]} == expected
