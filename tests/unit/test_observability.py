"""edgerag.observability: request ids, log lines, spans, metrics points, outbound and env wrappers."""

from __future__ import annotations

import asyncio
import io
import json
from collections.abc import Mapping
from typing import Any

import pytest
from edgerag.observability import (
    Observation,
    annotate,
    count,
    current_request_id,
    emit,
    observe,
    request_id_from,
    span,
)
from edgerag.observability.instrument import instrument_env
from edgerag.observability.logs import REDACTED, clean_fields, unit_record
from edgerag.observability.metrics import BLOBS, DOUBLES, decode_point, gauge_point, unit_point, write_point
from edgerag.observability.outbound import CorrelatedHttpClient

TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


def _lines(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"x-request-id": "abc-123"}, "abc-123"),
        ({"x-request-id": "  padded.id:7  "}, "padded.id:7"),
        ({"x-request-id": "abc", "traceparent": TRACEPARENT}, "abc"),
        ({"traceparent": TRACEPARENT}, "4bf92f3577b34da6a3ce929d0e0e4736"),
        ({"x-request-id": "has space", "traceparent": TRACEPARENT}, "4bf92f3577b34da6a3ce929d0e0e4736"),
    ],
)
def test_request_ids_are_taken_from_sane_headers(headers: dict[str, str], expected: str) -> None:
    assert request_id_from(headers, mint=lambda: "minted") == expected


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"x-request-id": ""},
        {"x-request-id": "x" * 65},
        {"x-request-id": "-leading-dash"},
        {"x-request-id": "new\nline"},
        {"x-request-id": "<script>"},
        {"traceparent": "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"},
        {"traceparent": "00-00000000000000000000000000000000-00f067aa0ba902b7-01"},
        {"traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01"},
        {"traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra"},
        {"traceparent": "not a traceparent"},
    ],
)
def test_anything_else_gets_a_minted_id(headers: dict[str, str]) -> None:
    assert request_id_from(headers, mint=lambda: "minted") == "minted"
    assert request_id_from(headers).startswith("req_")


def test_free_form_fields_are_redacted_by_name_and_cut_to_scalars() -> None:
    cleaned = clean_fields(
        {
            "authorization": "Bearer sk-1",
            "api_key": "sk-2",
            "content": "the user's words",
            "document_text": "a document",
            "prompt": "you are",
            "key_id": "key_01",
            "tokens_in": 12,
            "hits": 3,
            "long": "x" * 500,
            "object": object,
        }
    )
    for name in ("authorization", "api_key", "content", "document_text", "prompt"):
        assert cleaned[name] == REDACTED
    assert cleaned["key_id"] == "key_01" and cleaned["tokens_in"] == 12 and cleaned["hits"] == 3
    assert len(cleaned["long"]) < 210 and isinstance(cleaned["object"], str)


def test_a_unit_line_has_the_documented_fields() -> None:
    obs = Observation(worker="gateway", kind="request", request_id="r1", method="POST", route="/v1/search")
    with observe(obs):
        annotate(tenant="tnt_1", status=200, model="m", provider="p", secret_thing="sk-3")
        count("tokens_in", 10)
        count("tokens_out", 4)
        count("vectorize_queries")
        count("cache_hit:search")
        count("cache_miss:embedding")
    record = unit_record(obs)
    assert record["event"] == "request" and record["level"] == "info" and record["status"] == 200
    assert (record["tenant"], record["route"], record["request_id"]) == ("tnt_1", "/v1/search", "r1")
    assert (record["tokens_in"], record["tokens_out"], record["vectorize_queries"]) == (10, 4, 1)
    assert (record["cache_hit"], record["cache_hits"], record["cache_misses"]) == (False, 1, 1)
    assert record["secret_thing"] == REDACTED and record["ts"].endswith("Z")
    assert unit_record(Observation("ingest", "message", "r2", status="failed"))["level"] == "error"
    assert unit_record(Observation("gateway", "request", "r3", status=404))["level"] == "warn"


def test_annotations_outside_a_unit_of_work_are_ignored() -> None:
    annotate(tenant="t")
    count("vectorize_queries")
    assert current_request_id() is None


def test_emit_writes_one_json_line_and_survives_a_broken_stream() -> None:
    out = io.StringIO()
    emit({"event": "x", "n": 1}, out)
    emit({"event": "y", "text": "line\nbreak"}, out)
    assert [r["event"] for r in _lines(out.getvalue())] == ["x", "y"]
    closed = io.StringIO()
    closed.close()
    emit({"event": "z"}, closed)  # no exception


async def test_a_span_logs_its_duration_the_request_id_and_the_error_class(
    capsys: pytest.CaptureFixture[str],
) -> None:
    obs = Observation(worker="dedalus", kind="request", request_id="req-span", tenant="tnt_9")
    with observe(obs):
        async with span("tool.call", tool="search") as step:
            step["hits"] = 2
        with pytest.raises(KeyError):
            async with span("d1.batch"):
                raise KeyError("a secret key name")
    ok, failed = _lines(capsys.readouterr().out)
    assert ok["span"] == "tool.call" and ok["outcome"] == "ok" and ok["hits"] == 2
    assert (ok["request_id"], ok["worker"], ok["tenant"]) == ("req-span", "dedalus", "tnt_9")
    assert ok["duration_ms"] >= 0
    assert failed["outcome"] == "error" and failed["error"] == "KeyError"
    assert "a secret key name" not in json.dumps(failed)


async def test_the_observation_follows_tasks_started_inside_it() -> None:
    seen: list[str | None] = []

    async def child() -> None:
        seen.append(current_request_id())

    with observe(Observation("gateway", "request", "parent")):
        await asyncio.gather(child(), asyncio.ensure_future(child()))
    await child()
    assert seen == ["parent", "parent", None]


def test_a_metrics_point_follows_the_layout_and_limits() -> None:
    obs = Observation("gateway", "request", "r1", tenant="tnt_1", route="/v1/chat", method="POST", status=429)
    obs.tokens_in, obs.tokens_out = 5, 7
    obs.counts.update({"vectorize_queries": 2, "cache_hit:answer": 1})
    point = unit_point(obs)
    assert len(point["blobs"]) == len(BLOBS) <= 20 and len(point["doubles"]) == len(DOUBLES) <= 20
    assert point["indexes"] == ["tnt_1"] and all(isinstance(b, str) for b in point["blobs"])
    decoded = decode_point(point)
    assert decoded.blobs["route"] == "/v1/chat" and decoded.blobs["status"] == "429"
    assert decoded.doubles["rate_limited"] == 1 and decoded.doubles["error"] == 0
    assert (decoded.doubles["tokens_in"], decoded.doubles["vectorize_queries"]) == (5, 2)
    assert decoded.doubles["cache_hits"] == 1 and decoded.index == "tnt_1"
    assert (
        decode_point(unit_point(Observation("ingest", "message", "r", status="retried"))).doubles["error"]
        == 1
    )
    assert unit_point(Observation("ingest", "message", "r"))["indexes"] == ["-"]
    gauge = decode_point(gauge_point("gateway", "documents", "ready", 3, "tnt_1"))
    assert (gauge.blobs["kind"], gauge.blobs["route"], gauge.blobs["status"]) == (
        "gauge",
        "documents",
        "ready",
    )
    assert gauge.doubles["count"] == 3


class _Refusing:
    def writeDataPoint(self, point: Mapping[str, Any] | None = None) -> None:
        raise TypeError("Maximum of 20 blobs supported.")


class _Recording:
    def __init__(self) -> None:
        self.points: list[Mapping[str, Any]] = []

    def writeDataPoint(self, point: Mapping[str, Any] | None = None) -> None:
        assert point is not None
        self.points.append(point)


def test_write_point_never_raises() -> None:
    recording = _Recording()
    assert write_point(recording, {"blobs": ["a"]}) and recording.points == [{"blobs": ["a"]}]
    assert write_point(_Refusing(), {"blobs": ["a"]}) is False
    assert write_point(None, {"blobs": ["a"]}) is False


class _Http:
    def __init__(self) -> None:
        self.headers: list[Mapping[str, str]] = []

    async def request(
        self, method: str, url: str, *, headers: Mapping[str, str], body: bytes | None = None
    ) -> Any:
        self.headers.append(dict(headers))
        return None


async def test_outbound_calls_carry_the_request_id_unless_one_is_set() -> None:
    inner = _Http()
    client = CorrelatedHttpClient(inner)
    await client.request("POST", "https://p/v1", headers={"a": "1"})
    with observe(Observation("dedalus", "request", "req-out")):
        await client.request("POST", "https://p/v1", headers={"a": "1"})
        await client.request("POST", "https://p/v1", headers={"X-Request-ID": "theirs"})
    assert inner.headers == [{"a": "1"}, {"a": "1", "X-Request-Id": "req-out"}, {"X-Request-ID": "theirs"}]


class _Vectors:
    def __init__(self) -> None:
        self.queries = 0

    async def query(self, vector: list[float], options: Mapping[str, Any]) -> Any:
        self.queries += 1
        return {"matches": []}

    async def describe(self) -> Any:
        return {"dimensions": 3}


class _Ai:
    async def run(self, model: str, inputs: Mapping[str, Any]) -> Any:
        return {"ok": model}


class _Db:
    def prepare(self, query: str) -> str:
        return query

    async def batch(self, statements: list[Any]) -> list[Any]:
        return [{"ran": s} for s in statements]


class _Env:
    def __init__(self) -> None:
        self.VECTORS = _Vectors()
        self.AI = _Ai()
        self.DB = _Db()
        self.NAME = "plain var"


async def test_the_instrumented_env_counts_and_spans_platform_calls(
    capsys: pytest.CaptureFixture[str],
) -> None:
    raw = _Env()
    env = instrument_env(raw)
    assert instrument_env(env) is env and env.NAME == "plain var"
    obs = Observation("gateway", "request", "req-env")
    with observe(obs):
        assert await env.VECTORS.query([0.1], {"topK": 1}) == {"matches": []}
        assert await env.VECTORS.describe() == {"dimensions": 3}
        await env.AI.run("@cf/baai/bge-base-en-v1.5", {"text": ["a", "b"]})
        await env.AI.run("@cf/baai/bge-reranker-base", {"query": "q", "contexts": [{"text": "c"}]})
        await env.AI.run("@cf/meta/llama", {"messages": []})
        assert await env.DB.batch([env.DB.prepare("SELECT 1")]) == [{"ran": "SELECT 1"}]
    assert raw.VECTORS.queries == 1 and obs.counts["vectorize_queries"] == 1
    spans = [(r["span"], r.get("inputs"), r.get("statements")) for r in _lines(capsys.readouterr().out)]
    assert spans == [
        ("vectorize.query", None, None),
        ("embed", 2, None),
        ("rerank", None, None),
        ("ai.run", None, None),
        ("d1.batch", None, 1),
    ]
    with pytest.raises(AttributeError):
        env.OTHER = 1
