"""Logs, request ids and spans across the three workers, on the whole local stack.

One scenario (tenant and key, a multipart upload and a JSON document, ingestion, search, an answer
and a chat message through the real OpenAI-compatible adapter against the scripted provider) runs
with standard output and every log record captured. Then:

- every JSON line has the documented shape, and there is one ``request`` line per gateway request;
- not one secret (API key, admin token, provider key) nor one document body, question, chat message
  or model reply appears anywhere in what was captured (JSON lines and ordinary log records alike);
- one request id, sent by the client, is followed gateway -> queue -> ingest and gateway -> dedalus
  -> provider, with spans for each step, and comes back in the response header and problem bodies.
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from edgerag_local.fakeprovider import FakeProvider, json_reply, openai_completion

from .conftest import StackHarness, Tenant, open_harness

PROVIDER_KEY = "sk-observability-provider-secret-4242"
FIRST_BODY = "Quasar telemetry shows the flux capacitor hums at 88 hertz inside vault seven."
SECOND_BODY = "The zeppelin hangar stores helium cylinders beside the marmalade pantry on level nine."
QUESTION = "What does the quasar telemetry say about the flux capacitor?"
CHAT_MESSAGE = "Tell me about the zeppelin hangar and its helium cylinders please"
REPLY_ONE = "The flux capacitor hums at eighty-eight hertz [1]."
REPLY_TWO = "Helium cylinders wait beside the marmalade pantry [1]."
UNIT_KEYS = {
    "ts",
    "level",
    "event",
    "worker",
    "request_id",
    "tenant",
    "route",
    "method",
    "status",
    "latency_ms",
}


def _models_config(base_url: str) -> str:
    return json.dumps(
        {
            "providers": {
                "workers-ai": {"kind": "workers-ai"},
                "fake": {"kind": "openai", "base_url": base_url, "api_key_secret": "FAKE_API_KEY"},
            },
            "models": {
                "chat": "fake-model",
                "catalog": {
                    "fake-model": {
                        "provider": "fake",
                        "model": "gpt-fake",
                        "input_usd_per_mtok": 1.0,
                        "output_usd_per_mtok": 2.0,
                        "context_window": 16000,
                        "supports_tools": True,
                    }
                },
            },
        }
    )


@dataclass
class Scenario:
    harness: StackHarness
    fake: FakeProvider
    tenant: Tenant
    admin_token: str
    lines: list[dict[str, Any]]
    captured: str
    responses: dict[str, Any]


def _json_lines(text: str) -> list[dict[str, Any]]:
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("{"):
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if isinstance(record, dict) and "event" in record:
                out.append(record)
    return out


@contextlib.asynccontextmanager
async def _scenario(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> AsyncIterator[Scenario]:
    caplog.set_level(logging.DEBUG)
    async with FakeProvider() as fake:
        extra = {
            "dedalus": {"MODELS_CONFIG": _models_config(fake.openai_base_url), "FAKE_API_KEY": PROVIDER_KEY}
        }
        async with open_harness(tmp_path, extra_vars=extra) as harness:
            assert harness.stack.admin_token_file is not None
            admin_token = harness.stack.admin_token_file.read_text().strip()
            tenant = await harness.tenant("acme")
            responses: dict[str, Any] = {}
            responses["upload"] = await tenant.client.post(
                "/v1/documents",
                files={"file": ("vault.txt", FIRST_BODY.encode(), "text/plain")},
                headers={"x-request-id": "trace-upload-0001"},
            )
            responses["json_document"] = await tenant.client.post(
                "/v1/documents", json={"title": "Hangar", "text": SECOND_BODY}
            )
            await harness.ingest()
            responses["search"] = await tenant.client.post(
                "/v1/search",
                json={"query": "flux capacitor"},
                headers={"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"},
            )
            fake.reply(json_reply(openai_completion(REPLY_ONE)))
            responses["answer"] = await tenant.client.post(
                "/v1/answer", json={"question": QUESTION}, headers={"x-request-id": "trace-answer-0002"}
            )
            session = await tenant.client.post("/v1/chat/sessions", json={"title": "hangar"})
            fake.reply(json_reply(openai_completion(REPLY_TWO)))
            responses["chat"] = await tenant.client.post(
                f"/v1/chat/sessions/{session.json()['id']}/messages",
                json={"content": CHAT_MESSAGE},
                headers={"x-request-id": "trace-chat-0003"},
            )
            responses["missing"] = await tenant.client.get(
                "/v1/documents/doc_00000000000000000000000000", headers={"x-request-id": "bad id with spaces"}
            )
            responses["unauthorized"] = await harness.client("not-a-key").get("/v1/documents")
            out = capsys.readouterr()
            captured = (
                out.out
                + out.err
                + "\n".join(
                    f"{r.name} {r.levelname} {r.getMessage()} {r.exc_text or ''}" for r in caplog.records
                )
            )
            yield Scenario(harness, fake, tenant, admin_token, _json_lines(out.out), captured, responses)


async def test_logs_ids_and_spans_across_a_full_scenario(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    # One scenario for all the checks: the stack and its model calls are the expensive part.
    async with _scenario(tmp_path, capsys, caplog) as scenario:
        _the_scenario_ran_as_intended(scenario)
        _no_secret_and_no_text_reaches_the_logs(scenario)
        _every_line_has_the_documented_shape(scenario)
        _one_request_id_is_followed_through_all_three_workers(scenario)
        _problem_bodies_carry_the_request_id(scenario)


def _the_scenario_ran_as_intended(scenario: Scenario) -> None:
    r = scenario.responses
    assert r["upload"].status_code == 202 and r["json_document"].status_code == 202
    assert r["search"].status_code == 200 and r["search"].json()["results"]
    assert r["answer"].status_code == 200, r["answer"].text
    assert r["chat"].status_code == 200, r["chat"].text
    assert r["missing"].status_code == 404 and r["unauthorized"].status_code == 401
    assert len(scenario.fake.requests) == 2  # the answer's and the chat's provider calls


def _no_secret_and_no_text_reaches_the_logs(scenario: Scenario) -> None:
    secrets = {
        "API key": scenario.tenant.key,
        "admin token": scenario.admin_token,
        "provider key": PROVIDER_KEY,
    }
    texts = {
        "first document": FIRST_BODY,
        "second document": SECOND_BODY,
        "question": QUESTION,
        "chat message": CHAT_MESSAGE,
        "first reply": REPLY_ONE,
        "second reply": REPLY_TWO,
    }
    assert scenario.lines, "nothing was logged"
    for name, value in {**secrets, **texts}.items():
        assert value not in scenario.captured, f"the {name} appears in the logs"
    # Pieces of the texts too: a log line that quotes part of a sentence is as bad as the whole.
    for name, value in texts.items():
        for fragment in (value[:24], value[-24:]):
            assert fragment not in scenario.captured, f"part of the {name} appears in the logs"
    for name in ("marmalade", "zeppelin", "quasar"):
        assert name not in scenario.captured.lower(), f"{name!r} (document or message text) was logged"


def _every_line_has_the_documented_shape(scenario: Scenario) -> None:
    units = [line for line in scenario.lines if line["event"] in ("request", "message")]
    spans = [line for line in scenario.lines if line["event"] == "span"]
    for line in units:
        assert UNIT_KEYS <= set(line), line
        assert line["level"] in ("info", "warn", "error") and line["ts"].endswith("Z")
        assert isinstance(line["latency_ms"], float) and line["latency_ms"] >= 0
        assert line["worker"] in ("gateway", "dedalus", "ingest")
    for line in spans:
        assert {"span", "duration_ms", "outcome", "worker", "request_id"} <= set(line), line
    gateway = [u for u in units if u["worker"] == "gateway"]
    # One line per gateway request the scenario made (admin set-up included), with route templates.
    assert len(gateway) == 2 + 8
    routes = {u["route"] for u in gateway}
    assert "/v1/chat/sessions/{session_id}/messages" in routes and "/v1/documents" in routes
    assert not any("sess_" in str(route) for route in routes)  # templates, never raw paths
    messages = [u for u in units if u["worker"] == "ingest"]
    assert sorted(m["status"] for m in messages) == ["acked", "acked"]
    tenant = scenario.tenant.id
    assert {u["tenant"] for u in gateway if u["route"] != "unmatched" and u["status"] != 401} >= {tenant}
    model_lines = [u for u in units if u.get("model") == "fake-model"]
    assert {u["worker"] for u in model_lines} == {"gateway", "dedalus"}
    assert all(u["tokens_in"] > 0 and u["tokens_out"] > 0 for u in model_lines)
    search = next(u for u in gateway if u["route"] == "/v1/search")
    assert search["vectorize_queries"] == 1 and search["cache_hit"] is False


def _one_request_id_is_followed_through_all_three_workers(scenario: Scenario) -> None:
    def lines(request_id: str) -> list[dict[str, Any]]:
        return [line for line in scenario.lines if line.get("request_id") == request_id]

    upload = lines("trace-upload-0001")
    assert scenario.responses["upload"].headers["x-request-id"] == "trace-upload-0001"
    assert {(u["worker"], u["event"]) for u in upload} >= {
        ("gateway", "request"),
        ("ingest", "message"),
        ("ingest", "span"),
    }
    assert {s["span"] for s in upload if s["event"] == "span"} >= {"embed", "d1.batch", "vectorize.write"}

    chat = lines("trace-chat-0003")
    assert scenario.responses["chat"].headers["x-request-id"] == "trace-chat-0003"
    assert {(u["worker"], u["event"]) for u in chat} >= {
        ("gateway", "request"),
        ("dedalus", "request"),
        ("gateway", "span"),
        ("dedalus", "span"),
    }
    assert {s["span"] for s in chat if s["event"] == "span"} >= {"search", "embed", "model.call"}
    # ... and on to the provider, as a header it may log.
    provider_ids = [r.headers.get("x-request-id") for r in scenario.fake.requests]
    assert provider_ids == ["trace-answer-0002", "trace-chat-0003"]

    # A W3C traceparent gives its trace-id; an insane X-Request-Id is replaced by a minted id.
    assert scenario.responses["search"].headers["x-request-id"] == "0af7651916cd43dd8448eb211c80319c"
    assert lines("0af7651916cd43dd8448eb211c80319c")
    minted = scenario.responses["missing"].headers["x-request-id"]
    assert minted.startswith("req_") and "bad id" not in scenario.captured


def _problem_bodies_carry_the_request_id(scenario: Scenario) -> None:
    for name in ("missing", "unauthorized"):
        response = scenario.responses[name]
        assert response.headers["content-type"].startswith("application/problem+json")
        assert response.json()["request_id"] == response.headers["x-request-id"]
