"""Any request method reaches the gateway through the real local host (uvicorn) and gets a problem
document (issue 7, defect 5): 501 for a method name HTTP does not define, 405 with ``Allow`` for a known
method on a route that does not take it. Raw HTTP over loopback, because HTTP clients upper-case
methods. Also: what the host itself must refuse or repair before a worker runs is a problem too.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from edgerag_local.runtime.host import LocalStack

from .conftest import make_stack


@dataclass(frozen=True)
class RawResponse:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> dict[str, object]:
        value = json.loads(self.body)
        assert isinstance(value, dict)
        return value


@dataclass
class Served:
    stack: LocalStack
    port: int

    async def request(self, method: str, path: str, body: bytes = b"") -> RawResponse:
        reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
        try:
            head = (
                f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{self.port}\r\n"
                f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
            )
            writer.write(head.encode("latin-1") + body)
            await writer.drain()
            raw = await asyncio.wait_for(reader.read(), timeout=30)
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()
        head_bytes, _, payload = raw.partition(b"\r\n\r\n")
        status_line, *header_lines = head_bytes.decode("latin-1").split("\r\n")
        headers: dict[str, str] = {}
        for line in header_lines:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        return RawResponse(int(status_line.split()[1]), headers, payload)


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[Served]:
    stack = make_stack(tmp_path)
    config = uvicorn.Config(
        stack.asgi("gateway"), host="127.0.0.1", port=0, lifespan="off", log_level="warning"
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    try:
        while not server.started:
            assert not task.done(), "uvicorn did not start"
            await asyncio.sleep(0.01)
        port = server.servers[0].sockets[0].getsockname()[1]
        yield Served(stack, port)
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, timeout=30)
        await stack.stop()
        stack.close()


def assert_problem(response: RawResponse, status: int) -> dict[str, object]:
    assert response.status == status, (response.status, response.body)
    assert response.headers["content-type"] == "application/problem+json", response.headers
    problem = response.json()
    assert problem["status"] == status
    return problem


async def test_a_method_name_http_does_not_define_is_a_501_problem(served: Served) -> None:
    for path in ("/v1/documents", "/health"):
        response = await served.request("FOO", path, b'{"query": "x"}')
        assert_problem(response, 501)


async def test_query_reaches_the_gateway_and_gets_a_405_problem_with_allow(served: Served) -> None:
    # The local stand-in used to refuse QUERY before the gateway saw it (a plain-text 500).
    response = await served.request("QUERY", "/v1/documents", b'{"query": "x"}')
    assert_problem(response, 405)
    assert {m.strip() for m in response.headers["allow"].split(",")} >= {"GET", "POST"}


async def test_a_known_method_on_a_route_without_it_is_a_405_problem_with_allow(served: Served) -> None:
    response = await served.request("PATCH", "/v1/documents", b"{}")
    assert_problem(response, 405)
    allowed = {m.strip() for m in response.headers["allow"].split(",")}
    assert {"GET", "POST"} <= allowed
    assert "PATCH" not in allowed


async def test_standard_methods_in_lower_case_are_normalised_as_fetch_does(served: Served) -> None:
    # The Fetch standard upper-cases DELETE, GET, HEAD, OPTIONS, POST and PUT given in any case.
    health = await served.request("get", "/health")
    assert health.status == 200, health.body
    assert health.json()["status"] == "ok"


async def test_other_lower_case_methods_stay_as_sent_and_get_a_problem(served: Served) -> None:
    # "patch" is not "PATCH" (methods are case-sensitive and Fetch normalises only six of them).
    response = await served.request("patch", "/v1/documents", b"{}")
    assert response.status in (405, 501)
    assert_problem(response, response.status)


async def call_asgi(stack: LocalStack, **scope: Any) -> tuple[int, dict[bytes, bytes], bytes]:
    """One request straight into the host's ASGI app, with scope values no HTTP client would send."""
    messages: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        messages.append(message)

    base = {
        "type": "http",
        "method": "GET",
        "scheme": "http",
        "path": "/",
        "query_string": b"",
        "headers": [],
    }
    await stack.asgi("gateway")({**base, **scope}, receive, send)
    start = messages[0]
    assert start["type"] == "http.response.start"
    body = b"".join(m.get("body", b"") for m in messages[1:])
    return start["status"], dict(start["headers"]), body


async def test_raw_bytes_outside_ascii_in_path_or_query_are_percent_encoded(served: Served) -> None:
    status, headers, body = await call_asgi(
        served.stack, path="/health", raw_path=b"/health\xff", query_string=b"q=\xe9"
    )
    assert status == 404, body  # the gateway saw /health%FF, a path it does not serve
    assert headers[b"content-type"] == b"application/problem+json"
    assert json.loads(body)["status"] == 404


async def test_a_host_header_with_a_bad_port_is_a_400_problem(served: Served) -> None:
    status, headers, body = await call_asgi(served.stack, path="/health", headers=[(b"host", b"h:port")])
    assert status == 400, body
    assert headers[b"content-type"] == b"application/problem+json"
    assert json.loads(body)["status"] == 400
