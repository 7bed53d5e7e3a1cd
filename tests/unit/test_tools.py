"""The tool registry (schemas, scopes, enablement, audit) and the tools that read documents or ask the
model, on the local D1 with a scripted ``ctx.llm`` that records the prompts it was given."""

from __future__ import annotations

import hashlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from dedalus.tools import all_tools, build_registry
from dedalus.tools.registry import Tool, ToolNotAllowedError, ToolRegistry, args_sha256
from dedalus.turns import ToolContext, TurnFailedError, TurnResult
from edgerag.contracts.dedalus import CallContext
from edgerag.llm.events import ErrorEvent
from edgerag.llm.types import ChatMessage, ToolCall, Usage
from edgerag.store.d1 import fetch_all, run
from edgerag.store.documents import DocumentStore, NewChunk
from edgerag.store.tenants import TenantStore
from edgerag.store.user_context import UserContext, UserContextStore
from edgerag_local.d1 import LocalD1Database
from edgerag_local.d1.migrations import apply_migrations

MIGRATIONS = Path(__file__).resolve().parents[2] / "migrations"
DOC_TEXT = "Ada Lovelace worked with Charles Babbage in London in 1843 on the Analytical Engine."


@dataclass
class ScriptedLlm:
    """``ctx.llm``: answers from a list and records (purpose, messages)."""

    answers: list[str] = field(default_factory=list)
    prompts: list[tuple[str, list[ChatMessage]]] = field(default_factory=list)
    fail: bool = False

    async def __call__(self, purpose: str, messages: list[ChatMessage]) -> TurnResult:
        self.prompts.append((purpose, messages))
        if self.fail:
            raise TurnFailedError(ErrorEvent(code="unavailable", message="no model answered", status=503))
        return TurnResult(self.answers.pop(0), [], "stop", Usage(), "m", "fake")

    def user_prompt(self, index: int = -1) -> str:
        return self.prompts[index][1][-1].content or ""

    def system_prompt(self, index: int = -1) -> str:
        return self.prompts[index][1][0].content or ""


@dataclass
class World:
    db: LocalD1Database
    tenant_id: str
    other_tenant_id: str
    document_id: str
    llm: ScriptedLlm
    registry: ToolRegistry

    def ctx(self, scopes: tuple[str, ...] = ("read", "chat"), end_user: str | None = "alice") -> ToolContext:
        call = CallContext(
            tenant_id=self.tenant_id,
            key_id="key_a",
            scopes=list(scopes),
            end_user=end_user,
            request_id="req_7",
        )
        return ToolContext(call=call, env=type("Env", (), {"DB": self.db})(), llm=self.llm)  # type: ignore[arg-type]

    async def run(self, name: str, arguments: Any, **kw: Any) -> tuple[bool, dict[str, Any]]:
        text = arguments if isinstance(arguments, str) else json.dumps(arguments)
        outcome = await self.registry.run(ToolCall(id="c1", name=name, arguments=text), self.ctx(**kw))
        return outcome.ok, json.loads(outcome.content)


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[World]:
    db = LocalD1Database(tmp_path / "db.sqlite")
    apply_migrations(db, MIGRATIONS)
    tenants = TenantStore(db)
    acme, globex = await tenants.create_tenant("acme"), await tenants.create_tenant("globex")
    docs = DocumentStore(db)
    await docs.create(
        document_id="doc_1",
        tenant_id=acme.id,
        title="Engines",
        filename=None,
        content_type="text/plain",
        size_bytes=len(DOC_TEXT),
        r2_key="k",
        sha256="0" * 64,
        metadata={},
    )
    half = DOC_TEXT.index(" on the")
    await docs.replace_chunks(
        acme.id,
        "doc_1",
        "Engines",
        [
            NewChunk("doc_1:0", 0, DOC_TEXT[:half], 0, half, 20),
            NewChunk("doc_1:1", 1, DOC_TEXT[half:].strip(), half, len(DOC_TEXT), 8),
        ],
    )
    yield World(db, acme.id, globex.id, "doc_1", ScriptedLlm(), build_registry())
    db.close()


async def audit_rows(world: World) -> list[dict[str, Any]]:
    return await fetch_all(world.db, "SELECT * FROM tool_calls_audit ORDER BY id")


# ---------------------------------------------------------------------------------------- registry


def test_every_tool_schema_is_closed_and_offers_no_tenant_or_user() -> None:
    for tool in all_tools():
        assert tool.parameters["additionalProperties"] is False, tool.name
        assert not {"tenant_id", "tenant", "user", "end_user"} & set(tool.parameters["properties"]), tool.name


@pytest.mark.parametrize(
    "parameters",
    [
        {"type": "object", "properties": {}},  # open to extra arguments
        {"type": "object", "properties": {"tenant_id": {"type": "string"}}, "additionalProperties": False},
        {"type": "object", "oneOf": [{"required": ["a"]}], "additionalProperties": False},
        {"type": "object", "properties": {"a": {"type": "nonsense"}}, "additionalProperties": False},
    ],
)
def test_a_tool_with_an_unsafe_or_invalid_schema_is_refused_at_registration(
    parameters: dict[str, Any],
) -> None:
    async def noop(args: dict[str, Any], ctx: ToolContext) -> None:
        return None

    with pytest.raises(Exception, match=r"additionalProperties|context|oneOf|nonsense|is not valid"):
        ToolRegistry([Tool("t", "d", parameters, "read", noop)])


async def test_specs_refuse_unknown_disabled_and_out_of_scope_tools_with_a_typed_error(world: World) -> None:
    read_only = world.ctx(scopes=("read",))
    specs = await world.registry.specs(["search_knowledge_base", "get_user_context"], read_only)
    assert [s.name for s in specs] == ["search_knowledge_base", "get_user_context"]

    with pytest.raises(ToolNotAllowedError) as unknown:
        await world.registry.specs(["search_knowledge_base", "rm_rf"], read_only)
    assert unknown.value.denied == {"rm_rf": "unknown"} and unknown.value.status == 400

    with pytest.raises(ToolNotAllowedError) as scope:
        await world.registry.specs(["summarize"], read_only)  # needs chat
    assert scope.value.denied == {"summarize": "scope"} and scope.value.status == 403
    assert "'chat' scope" in str(scope.value)
    assert scope.value.error_event().code == "invalid_request"

    # admin implies chat; a tenant switch turns a default-on tool off.
    assert [s.name for s in await world.registry.specs(["summarize"], world.ctx(scopes=("admin",)))] == [
        "summarize"
    ]
    await run(
        world.db,
        "INSERT INTO tenant_tools (tenant_id, tool, enabled) VALUES (?1, 'summarize', 0)",
        world.tenant_id,
    )
    with pytest.raises(ToolNotAllowedError) as disabled:
        await world.registry.specs(["summarize"], world.ctx(scopes=("admin",)))
    assert disabled.value.denied == {"summarize": "disabled"}


async def test_run_without_an_offered_set_checks_enablement_and_scope_itself(world: World) -> None:
    ok, result = await world.run("summarize", {"text": "x"}, scopes=("read",))
    assert not ok and result["code"] == "denied" and "'chat' scope" in result["error"]
    await run(
        world.db,
        "INSERT INTO tenant_tools (tenant_id, tool, enabled) VALUES (?1, 'get_user_context', 0)",
        world.tenant_id,
    )
    ok, result = await world.run("get_user_context", {})
    assert not ok and "not enabled" in result["error"]
    assert [r["outcome"] for r in await audit_rows(world)] == ["denied", "denied"]
    assert world.llm.prompts == []


async def test_every_call_is_audited_with_a_hash_of_the_canonical_arguments_only(world: World) -> None:
    world.llm.answers = ["A short summary.", "A short summary."]
    await world.run("summarize", '{"text": "Ada Lovelace wrote notes", "length": "short"}')
    await world.run(
        "summarize", '{ "length":"short",  "text":"Ada Lovelace wrote notes" }'
    )  # same, reordered
    await world.run("summarize", '{"text": "secret-value-123", "length": 7}')  # schema-invalid
    await world.run("summarize", '{"text": "unterminated')  # invalid JSON

    rows = await audit_rows(world)
    canonical = json.dumps(
        {"length": "short", "text": "Ada Lovelace wrote notes"}, sort_keys=True, separators=(",", ":")
    )
    assert rows[0]["args_sha256"] == rows[1]["args_sha256"] == hashlib.sha256(canonical.encode()).hexdigest()
    assert rows[3]["args_sha256"] == hashlib.sha256(b'{"text": "unterminated').hexdigest()
    assert [r["outcome"] for r in rows] == ["ok", "ok", "invalid", "invalid"]
    for row in rows:
        assert (row["tenant_id"], row["key_id"], row["end_user"], row["request_id"], row["tool"]) == (
            world.tenant_id, "key_a", "alice", "req_7", "summarize",
        )  # fmt: skip
        assert row["latency_ms"] >= 0 and row["created_at"].endswith("Z")
        assert "secret-value-123" not in json.dumps(row) and "Lovelace" not in json.dumps(row)


def test_args_sha256_is_independent_of_key_order_and_spacing() -> None:
    assert args_sha256('{"b": 1, "a": [1, 2]}') == args_sha256('{"a":[1,2],"b":1}')
    assert args_sha256("") == args_sha256("{}")


# --------------------------------------------------------------------------------------- the tools


async def test_summarize_a_document_reads_its_chunks_and_honours_length_and_format(world: World) -> None:
    world.llm.answers = ["- Ada worked with Babbage\n- in 1843"]
    ok, result = await world.run(
        "summarize", {"document_id": world.document_id, "length": "short", "format": "bullets"}
    )

    assert ok, result
    assert result["summary"].startswith("- Ada") and result["format"] == "bullets"
    assert result["source"] == {
        "kind": "document",
        "document_id": "doc_1",
        "title": "Engines",
        "truncated": False,
    }
    purpose, _ = world.llm.prompts[0]
    assert purpose == "summarize"
    assert (
        "Charles Babbage in London" in world.llm.user_prompt()
        and "Analytical Engine" in world.llm.user_prompt()
    )
    assert "at most 3 bullets" in world.llm.system_prompt()


async def test_summarize_needs_exactly_one_source_and_reports_a_failed_model(world: World) -> None:
    ok, result = await world.run("summarize", {"text": "a", "document_id": "doc_1"})
    assert not ok and "exactly one" in result["error"]
    ok, result = await world.run("summarize", {})
    assert not ok and "exactly one" in result["error"]
    world.llm.fail = True
    ok, result = await world.run("summarize", {"text": "Some text."})
    assert not ok and result == {"code": "model_failed", "error": "the model call failed: no model answered"}


async def test_extract_entities_validates_the_models_json_and_drops_invented_entities(world: World) -> None:
    world.llm.answers = [
        json.dumps(
            {
                "entities": [
                    {"type": "person", "text": "Ada Lovelace"},
                    {"type": "person", "text": "Alan Turing"},  # not in the text: invented
                    {"type": "location", "text": "London"},
                    {"type": "date", "text": "1843"},
                    {"type": "machine", "text": "Analytical Engine"},  # a custom type asked for
                    {"type": "weapon", "text": "Engine"},  # a type nobody asked for
                ]
            }
        )
    ]
    ok, result = await world.run("extract_entities", {"text": DOC_TEXT, "custom_types": ["machine"]})

    assert ok, result
    assert result["entities"] == [
        {"type": "person", "text": "Ada Lovelace"},
        {"type": "location", "text": "London"},
        {"type": "date", "text": "1843"},
        {"type": "machine", "text": "Analytical Engine"},
    ]
    assert result["dropped"] == 2 and "machine" in result["types"]
    assert "person, organization, location, date, quantity, machine" in world.llm.system_prompt()


@pytest.mark.parametrize(
    "answer", ["Ada Lovelace is a person.", '{"entities": "none"}', "```\nnot json\n```"]
)
async def test_extract_entities_with_a_non_json_answer_is_an_error_not_a_guess(
    world: World, answer: str
) -> None:
    world.llm.answers = [answer]
    ok, result = await world.run("extract_entities", {"text": DOC_TEXT})
    assert not ok and result["code"] == "model_answer_invalid"


async def test_a_fenced_json_answer_is_accepted(world: World) -> None:
    world.llm.answers = ['```json\n{"entities": [{"type": "person", "text": "Charles Babbage"}]}\n```']
    ok, result = await world.run("extract_entities", {"text": DOC_TEXT})
    assert ok and result["entities"] == [{"type": "person", "text": "Charles Babbage"}]


async def test_classify_intent_single_and_multi_label_with_a_custom_label_set(world: World) -> None:
    world.llm.answers = [
        json.dumps(
            {"labels": [{"label": "question", "confidence": 0.7}, {"label": "complaint", "confidence": 0.2}]}
        ),
        json.dumps(
            {
                "labels": [
                    {"label": "billing", "confidence": 0.9},
                    {"label": "Bug", "confidence": 0.6},
                    {"label": "unrelated", "confidence": 1.0},  # outside the set: dropped
                ]
            }
        ),
    ]
    ok, single = await world.run("classify_intent", {"text": "Why was I charged twice?"})
    assert ok and single["selected"] == ["question"] and single["multi_label"] is False
    assert single["labels"][0] == {"label": "question", "confidence": 0.7}
    assert {entry["label"] for entry in single["labels"]} == {
        "question", "task_request", "complaint", "feedback", "greeting", "other",
    }  # fmt: skip
    assert all(0 <= entry["confidence"] <= 1 for entry in single["labels"])

    ok, multi = await world.run(
        "classify_intent",
        {"text": "The invoice page crashes", "labels": ["billing", "bug", "praise"], "multi_label": True},
    )
    assert ok and multi["selected"] == ["billing", "bug"]
    assert multi["labels"] == [
        {"label": "billing", "confidence": 0.9},
        {"label": "bug", "confidence": 0.6},
        {"label": "praise", "confidence": 0.0},
    ]
    assert "billing, bug, praise" in world.llm.system_prompt()


async def test_classify_intent_rejects_confidences_outside_0_1(world: World) -> None:
    world.llm.answers = [json.dumps({"labels": [{"label": "question", "confidence": 1.5}]})]
    ok, result = await world.run("classify_intent", {"text": "hi?"})
    assert not ok and result["code"] == "model_answer_invalid"


async def test_tag_document_normalises_tags_and_keeps_to_a_vocabulary(world: World) -> None:
    world.llm.answers = [
        json.dumps({"tags": ["Computing History", "computing history", "Babbage!!", "mathematics"]}),
        json.dumps({"tags": ["history", "cooking"]}),
    ]
    ok, result = await world.run("tag_document", {"document_id": world.document_id, "max_tags": 5})
    assert ok and result["tags"] == ["computing history", "mathematics"] and result["title"] == "Engines"
    assert "Analytical Engine" in world.llm.user_prompt()

    ok, result = await world.run(
        "tag_document", {"document_id": world.document_id, "vocabulary": ["History", "Science"]}
    )
    assert ok and result["tags"] == ["history"]


async def test_document_tools_answer_not_found_for_a_missing_document(world: World) -> None:
    for name in ("tag_document", "summarize", "extract_entities"):
        ok, result = await world.run(name, {"document_id": "doc_nope"})
        assert not ok and result == {"code": "not_found", "error": "no document doc_nope"}, name
    assert world.llm.prompts == []


async def test_get_user_context_reads_the_calls_end_user_only(world: World) -> None:
    store = UserContextStore(world.db)
    await store.put(
        world.tenant_id, "alice", UserContext(goals=["learn Rust"], preferences={"tone": "terse"})
    )
    await store.put(world.tenant_id, "bob", UserContext(goals=["bob's secret goal"]))

    ok, result = await world.run("get_user_context", {})
    assert ok and result["found"] and result["end_user"] == "alice" and result["goals"] == ["learn Rust"]
    assert result["preferences"] == {"tone": "terse"}

    ok, result = await world.run("get_user_context", {"end_user": "bob"})  # the model cannot pick the user
    assert not ok and result["code"] == "invalid_arguments" and "bob's" not in json.dumps(result)

    ok, result = await world.run("get_user_context", {}, end_user="carol")
    assert ok and result == {
        "end_user": "carol",
        "found": False,
        "goals": [],
        "constraints": [],
        "preferences": {},
    }

    ok, result = await world.run("get_user_context", {}, end_user=None)
    assert not ok and result["code"] == "no_end_user"


async def test_a_tool_that_exceeds_its_timeout_is_a_timeout_result(world: World) -> None:
    import asyncio

    async def slow(args: dict[str, Any], ctx: ToolContext) -> None:
        await asyncio.Event().wait()

    registry = ToolRegistry(
        [Tool("slow", "never ends", {"type": "object", "additionalProperties": False}, "read", slow)]
    )
    outcome = await asyncio.wait_for(
        registry.run(ToolCall(id="c", name="slow"), world.ctx(), timeout_s=0.01), timeout=10
    )
    assert (
        not outcome.ok and outcome.outcome == "timeout" and json.loads(outcome.content)["code"] == "timeout"
    )
    assert [r["outcome"] for r in await audit_rows(world)] == ["timeout"]


# ---------------------------------------------------------------------------------- ingest_document


@dataclass
class FakeR2:
    objects: dict[str, bytes] = field(default_factory=dict)

    async def put(self, key: str, data: bytes, **options: Any) -> None:
        self.objects[key] = data

    async def delete(self, key: str) -> None:
        self.objects.pop(key, None)


@dataclass
class FakeQueue:
    sent: list[Any] = field(default_factory=list)
    down: bool = False

    async def send(self, body: Any, **options: Any) -> None:
        if self.down:
            raise RuntimeError("queue unavailable")
        self.sent.append(body)


def ingest_ctx(world: World, files: FakeR2, queue: FakeQueue) -> ToolContext:
    call = CallContext(tenant_id=world.tenant_id, key_id="key_w", scopes=["write"], request_id="req_8")
    env = type("Env", (), {"DB": world.db, "FILES": files, "INGEST_QUEUE": queue})()
    return ToolContext(call=call, env=env, llm=world.llm)  # type: ignore[arg-type]


async def test_ingest_document_is_off_until_the_tenant_enables_it(world: World) -> None:
    ctx = ingest_ctx(world, FakeR2(), FakeQueue())
    with pytest.raises(ToolNotAllowedError) as raised:
        await world.registry.specs(["ingest_document"], ctx)
    assert raised.value.denied == {"ingest_document": "disabled"}
    await run(
        world.db,
        "INSERT INTO tenant_tools (tenant_id, tool, enabled) VALUES (?1, 'ingest_document', 1)",
        world.tenant_id,
    )
    assert [s.name for s in await world.registry.specs(["ingest_document"], ctx)] == ["ingest_document"]
    with pytest.raises(ToolNotAllowedError):  # a read-only key may not write, enabled or not
        await world.registry.specs(["ingest_document"], world.ctx(scopes=("read", "chat")))


async def test_ingest_document_stores_like_an_upload_and_dedups(world: World) -> None:
    await run(
        world.db,
        "INSERT INTO tenant_tools (tenant_id, tool, enabled) VALUES (?1, 'ingest_document', 1)",
        world.tenant_id,
    )
    files, queue = FakeR2(), FakeQueue()
    call = ToolCall(
        id="c", name="ingest_document", arguments=json.dumps({"title": "Notes", "text": "Kerosene burns."})
    )
    first = await world.registry.run(call, ingest_ctx(world, files, queue))
    second = await world.registry.run(call, ingest_ctx(world, files, queue))

    stored = json.loads(first.content)
    assert first.ok and stored["status"] == "queued" and stored["duplicate"] is False
    assert json.loads(second.content) == {**stored, "duplicate": True}
    (key,) = files.objects
    assert key == f"tenants/{world.tenant_id}/documents/{stored['document_id']}/original"
    assert files.objects[key] == b"Kerosene burns."
    (message,) = queue.sent
    assert message["tenant_id"] == world.tenant_id and message["document_id"] == stored["document_id"]
    record = await DocumentStore(world.db).get(world.tenant_id, stored["document_id"])
    assert (record.title, record.content_type, record.size_bytes) == ("Notes", "text/plain", 15)


async def test_ingest_document_leaves_nothing_behind_when_the_queue_fails(world: World) -> None:
    await run(
        world.db,
        "INSERT INTO tenant_tools (tenant_id, tool, enabled) VALUES (?1, 'ingest_document', 1)",
        world.tenant_id,
    )
    files, queue = FakeR2(), FakeQueue(down=True)
    call = ToolCall(
        id="c", name="ingest_document", arguments=json.dumps({"title": "Notes", "text": "Kerosene burns."})
    )
    outcome = await world.registry.run(call, ingest_ctx(world, files, queue))

    assert not outcome.ok and json.loads(outcome.content)["code"] == "unavailable"
    assert files.objects == {}
    rows = await fetch_all(
        world.db, "SELECT id FROM documents WHERE tenant_id = ?1 AND id != 'doc_1'", world.tenant_id
    )
    assert rows == []


@pytest.mark.parametrize("text", ["   \n ", "nul\x00byte"])
async def test_ingest_document_refuses_text_the_gateway_would_refuse(world: World, text: str) -> None:
    await run(
        world.db,
        "INSERT INTO tenant_tools (tenant_id, tool, enabled) VALUES (?1, 'ingest_document', 1)",
        world.tenant_id,
    )
    files, queue = FakeR2(), FakeQueue()
    call = ToolCall(id="c", name="ingest_document", arguments=json.dumps({"title": "T", "text": text}))
    outcome = await world.registry.run(call, ingest_ctx(world, files, queue))
    assert not outcome.ok and json.loads(outcome.content)["code"] == "invalid_arguments"
    assert files.objects == {} and queue.sent == []
