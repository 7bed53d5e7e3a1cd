"""dedalus's streamed chat treats a write that fails after the reader hung up as the hang-up it is.

At the edge (seen running dedalus on real Pyodide, tests/pyodide) a reader that cancels the response
stream makes the next write raise inside the Workers ASGI bridge ("WritableStream is closed") instead
of delivering ``http.disconnect``. The app must stop the run and return, not raise.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from dedalus.http import build_asgi
from edgerag.contracts.dedalus import ChatCall
from edgerag.llm import events


class _SlowRunner:
    def __init__(self) -> None:
        self.cancelled = False

    async def health(self) -> dict[str, Any]:
        return {"service": "dedalus", "status": "ok"}

    async def run(self, call: ChatCall, sink: Any) -> None:
        try:
            for i in range(1000):
                await sink(events.TokenEvent(text=f"t{i} "))
                await asyncio.sleep(0)
        except asyncio.CancelledError:
            self.cancelled = True
            raise


async def test_a_failed_write_after_a_hang_up_stops_the_run_without_raising() -> None:
    runner = _SlowRunner()
    app = build_asgi(lambda env: runner, heartbeat_s=30)
    call = {
        "context": {"tenant_id": "tnt_x", "request_id": "req_x"},
        "messages": [{"role": "user", "content": "hi"}],
        "stream": True,
    }
    bodies: list[bytes] = []
    delivered = False

    async def receive() -> dict[str, Any]:
        nonlocal delivered
        if not delivered:
            delivered = True
            return {"type": "http.request", "body": json.dumps(call).encode(), "more_body": False}
        await asyncio.Event().wait()  # the bridge never reports the hang-up
        raise AssertionError("unreachable")

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.body":
            if len(bodies) == 2:
                raise RuntimeError("Invalid state: WritableStream is closed")
            bodies.append(message["body"])

    scope = {"type": "http", "method": "POST", "path": "/v1/chat", "headers": []}
    await asyncio.wait_for(app(scope, receive, send), timeout=10)
    assert len(bodies) == 2
    assert runner.cancelled
