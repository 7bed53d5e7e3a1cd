"""Queue consumers started by ``LocalStack.start`` cannot starve the serving loop (issue 7, defect 2).

At the edge the consumer is another isolate; locally it is another thread with its own event loop.
The probe project below has a web worker (fetch + an RPC method) and a consumer worker whose queue
handler blocks its event loop synchronously, as CPU-bound ingestion does, until the test releases it.
The web worker must answer while the handler is blocked; the handler's wait has a timeout only so
that a host running the consumer on the serving loop fails the test instead of hanging it.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest
from edgerag_local.runtime.host import LocalStack

from .conftest import StackHarness

HANG_GUARD_SECONDS = 20.0

WEB_CONFIG = """
name = "probe-web"
main = "src/entry.py"
compatibility_date = "2026-05-26"
compatibility_flags = ["python_workers"]

[[queues.producers]]
binding = "JOBS"
queue = "probe-jobs"
"""

WEB_ENTRY = """
from urllib.parse import urlsplit

from workers import Response, WorkerEntrypoint


class Default(WorkerEntrypoint):
    async def fetch(self, request):
        path = urlsplit(request.url).path
        if path == "/send":
            await self.env.JOBS.send({"job": 1})
            return Response("queued", status=202)
        if path == "/boom":
            raise RuntimeError("the worker failed")
        return Response("ok")

    async def echo(self, value):
        return {"echo": value}
"""

CONSUMER_CONFIG = """
name = "probe-consumer"
main = "src/entry.py"
compatibility_date = "2026-05-26"
compatibility_flags = ["python_workers"]

[[services]]
binding = "WEB"
service = "probe-web"

[[queues.consumers]]
queue = "probe-jobs"
max_batch_size = 1
max_batch_timeout = 1
max_retries = 0
"""

CONSUMER_ENTRY = """
import asyncio

from workers import WorkerEntrypoint

GATE = None  # the test's Gate, set on this module before messages are sent


class Default(WorkerEntrypoint):
    async def queue(self, batch, env=None, ctx=None):
        gate = GATE
        for message in batch.messages:
            gate.started.set()
            # A synchronous wait holds this event loop exactly as a CPU-bound batch does.
            gate.outcomes.append(gate.release.wait(timeout=gate.timeout))
            gate.replies.append(dict(await self.env.WEB.echo(message.body["job"])))
            self.ctx.waitUntil(_later(gate))
            message.ack()


async def _later(gate):
    await asyncio.sleep(0)
    gate.after.append("waitUntil ran")
"""


@dataclass
class Gate:
    timeout: float = HANG_GUARD_SECONDS
    started: threading.Event = field(default_factory=threading.Event)
    release: threading.Event = field(default_factory=threading.Event)
    outcomes: list[bool] = field(default_factory=list)
    replies: list[dict[str, Any]] = field(default_factory=list)
    after: list[str] = field(default_factory=list)


@dataclass
class Probe:
    stack: LocalStack
    gate: Gate
    client: httpx.AsyncClient


def write_probe_project(root: Path) -> None:
    for key, config, entry in (
        ("probe_web", WEB_CONFIG, WEB_ENTRY),
        ("probe_consumer", CONSUMER_CONFIG, CONSUMER_ENTRY),
    ):
        (root / "workers" / key / "src").mkdir(parents=True)
        (root / "workers" / key / "wrangler.toml").write_text(config)
        (root / "workers" / key / "src" / "entry.py").write_text(entry)


@pytest.fixture
async def probe(tmp_path: Path) -> AsyncIterator[Probe]:
    write_probe_project(tmp_path / "project")
    stack = LocalStack(
        tmp_path / "project",
        state_dir=tmp_path / "state",
        vectorize_indexes={},
        workers=("probe_web", "probe_consumer"),
    )
    gate = Gate()
    consumer: ModuleType = stack.workers["probe_consumer"].module
    consumer.GATE = gate  # type: ignore[attr-defined]
    client = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=stack.asgi("probe_web")), base_url="http://h"
    )
    try:
        yield Probe(stack, gate, client)
    finally:
        gate.release.set()
        await client.aclose()
        await stack.stop()
        stack.close()


async def test_the_web_worker_answers_while_a_consumer_batch_blocks_its_loop(probe: Probe) -> None:
    await probe.stack.start()
    assert (await probe.client.post("/send")).status_code == 202
    assert await asyncio.to_thread(probe.gate.started.wait, HANG_GUARD_SECONDS)

    response = await probe.client.get("/health")
    still_blocked = probe.gate.outcomes == []  # the handler has not come back from its wait
    probe.gate.release.set()

    assert response.status_code == 200
    assert response.text == "ok"
    assert still_blocked, "the request was only answered after the consumer's batch gave up waiting"
    await probe.stack.stop()
    assert probe.gate.outcomes == [True]  # released by the test, not by the hang guard


async def test_consumer_thread_reaches_other_workers_and_its_wait_until_work_is_awaited(probe: Probe) -> None:
    probe.gate.release.set()
    await probe.stack.start()
    assert (await probe.client.post("/send")).status_code == 202
    assert await asyncio.to_thread(probe.gate.started.wait, HANG_GUARD_SECONDS)
    await probe.stack.stop()  # lets the running batch finish, then awaits its waitUntil work
    assert probe.gate.replies == [{"echo": 1}]  # RPC over the service binding, from the consumer thread
    assert probe.gate.after == ["waitUntil ran"]


async def test_drain_queues_still_delivers_on_the_callers_loop(probe: Probe) -> None:
    probe.gate.release.set()
    assert (await probe.client.post("/send")).status_code == 202
    assert await probe.stack.drain_queues() == 1
    assert probe.gate.outcomes == [True]
    assert probe.gate.replies == [{"echo": 1}]


async def test_an_exception_in_a_workers_fetch_is_a_problem_json_500(probe: Probe) -> None:
    response = await probe.client.get("/boom")
    assert response.status_code == 500
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["status"] == 500
    assert "the worker failed" not in response.text


async def test_start_twice_without_stop_is_refused(probe: Probe) -> None:
    await probe.stack.start()
    with pytest.raises(RuntimeError, match="already running"):
        await probe.stack.start()


async def test_the_real_ingest_consumer_runs_on_its_thread_against_the_shared_emulators(
    harness: StackHarness,
) -> None:
    tenant = await harness.tenant("threaded")
    await harness.stack.start()
    text = "Thread-safe emulators keep the gateway answering while ingestion runs. " * 200
    created = await tenant.client.post("/v1/documents", json={"title": "threads", "text": text})
    assert created.status_code == 202, created.text
    document_id = created.json()["document"]["id"]
    harness.clock.advance(10)  # past the consumer's max_batch_timeout, on the broker's clock
    status = ""
    for _ in range(int(HANG_GUARD_SECONDS / 0.05)):
        status = (await tenant.client.get(f"/v1/documents/{document_id}")).json()["status"]
        if status in ("ready", "failed"):
            break
        await asyncio.sleep(0.05)
    assert status == "ready"
    found = await tenant.client.post("/v1/search", json={"query": "thread-safe emulators", "mode": "vector"})
    assert found.status_code == 200, found.text
    assert found.json()["results"][0]["document_id"] == document_id
