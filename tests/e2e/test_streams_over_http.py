"""Streams reach a real HTTP client: chat messages as server-sent events through uvicorn, not just
through an in-process ASGI transport (which ignores a wrong Content-Length)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from edgerag_local.runtime.threaded import ServedStack, serve_stack

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
GUARD_S = 30  # hang guard only


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServedStack, str]]:
    with serve_stack(REPO, state_dir=tmp_path_factory.mktemp("streams") / "state") as stack:
        admin = {"authorization": f"Bearer {stack.admin_token}"}
        with httpx.Client(base_url=stack.base_url, timeout=GUARD_S) as client:
            tenant = client.post("/v1/admin/tenants", json={"name": "streams"}, headers=admin).json()
            key = client.post(
                f"/v1/admin/tenants/{tenant['id']}/keys",
                json={"name": "k", "scopes": ["admin"]},
                headers=admin,
            ).json()["key"]
            auth = {"authorization": f"Bearer {key}"}
            text = "Liquid rocket engines burn kerosene and liquid oxygen. The nozzle makes thrust."
            doc = client.post("/v1/documents", json={"title": "Rockets", "text": text}, headers=auth).json()
            deadline = time.monotonic() + GUARD_S
            while (
                client.get(f"/v1/documents/{doc['document']['id']}", headers=auth).json()["status"] != "ready"
            ):
                assert time.monotonic() < deadline
                time.sleep(0.05)
        yield stack, key


def test_a_chat_message_streams_events_to_a_real_http_client(served: tuple[ServedStack, str]) -> None:
    stack, key = served
    headers = {"authorization": f"Bearer {key}", "accept": "text/event-stream"}
    with httpx.Client(base_url=stack.base_url, timeout=GUARD_S, headers=headers) as client:
        session = client.post("/v1/chat/sessions", json={"title": "t"}).json()["id"]
        with client.stream(
            "POST", f"/v1/chat/sessions/{session}/messages", json={"content": "What do rocket engines burn?"}
        ) as reply:
            assert reply.status_code == 200
            assert "content-length" not in reply.headers
            lines = [line for line in reply.iter_lines() if line.startswith("event: ")]
            body_events = [line.removeprefix("event: ") for line in lines]
    assert body_events[0] == "sources" and body_events[-1] == "done" and "token" in body_events
    stored = httpx.get(
        f"{stack.base_url}/v1/chat/sessions/{session}/messages", headers={"authorization": f"Bearer {key}"}
    ).json()
    assert json.dumps(stored).count("kerosene") >= 1
