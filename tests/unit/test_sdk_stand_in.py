"""The local stand-in for the Workers SDK behaves like the SDK surface the entries use."""

import sys

import pytest
from edgerag_local import sdk
from fastapi import FastAPI
from fastapi import Request as FastAPIRequest
from fastapi.responses import StreamingResponse


async def test_response_json_builds_and_reads() -> None:
    response = sdk.Response.json({"a": 1}, status=201, headers={"x-k": "v"})
    assert response.status == 201
    assert response.headers["content-type"] == "application/json"
    assert response.headers["x-k"] == "v"
    assert await response.json() == {"a": 1}


async def test_body_can_be_read_once() -> None:
    response = sdk.Response("hello")
    assert await response.text() == "hello"
    with pytest.raises(OSError, match="Body already used"):
        await response.text()


async def test_headers_are_case_insensitive_and_multi_valued() -> None:
    response = sdk.Response("x", headers=[("Set-Cookie", "a=1"), ("set-cookie", "b=2")])
    assert response.headers.get_all("set-cookie") == ["a=1", "b=2"]
    request = sdk.Request("http://h/", method="post", headers={"X-Key": "v"})
    assert request.headers["x-key"] == "v"
    assert request.method == "POST"


def test_python_generators_are_not_valid_bodies() -> None:
    async def gen():  # type: ignore[no-untyped-def]
        yield b"x"

    with pytest.raises(TypeError, match="Unsupported type in Response"):
        sdk.Response(gen())


def test_status_outside_range_is_rejected() -> None:
    with pytest.raises(ValueError, match="outside 200-599"):
        sdk.Response("x", status=101)


async def test_asgi_bridge_puts_env_in_scope_and_decodes_paths() -> None:
    app = FastAPI()

    @app.post("/items/{name}")
    async def item(name: str, request: FastAPIRequest) -> dict[str, object]:
        return {
            "name": name,
            "q": request.query_params["q"],
            "env": request.scope["env"]["who"],
            "body": (await request.body()).decode(),
        }

    request = sdk.Request("https://edge.example/items/a%20b?q=1", method="POST", body=b"data")
    response = await sdk.asgi_fetch(app, request, {"who": "env"})
    assert response.status == 200
    assert await response.json() == {"name": "a b", "q": "1", "env": "env", "body": "data"}


async def test_asgi_bridge_streams_chunks_as_produced() -> None:
    app = FastAPI()

    @app.get("/events")
    async def events() -> StreamingResponse:
        async def gen():  # type: ignore[no-untyped-def]
            for i in range(3):
                yield f"data: {i}\n\n"

        return StreamingResponse(gen(), media_type="text/event-stream")

    response = await sdk.asgi_fetch(app, sdk.Request("http://h/events"), {})
    assert response.headers["content-type"].startswith("text/event-stream")
    chunks = [chunk async for chunk in response.body]
    assert b"".join(chunks) == b"data: 0\n\ndata: 1\n\ndata: 2\n\n"
    assert len(chunks) >= 3


async def test_asgi_bridge_propagates_exceptions_before_the_response_starts() -> None:
    async def broken(scope, receive, send):  # type: ignore[no-untyped-def]
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        await sdk.asgi_fetch(broken, sdk.Request("http://h/"), {})


def test_install_registers_stand_ins_but_never_shadows_a_real_module(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delitem(sys.modules, "workers", raising=False)
    monkeypatch.delitem(sys.modules, "asgi", raising=False)
    sdk.install()
    import workers  # type: ignore[import-not-found]

    assert workers.WorkerEntrypoint is sdk.WorkerEntrypoint
    real = type(sys)("workers")
    monkeypatch.setitem(sys.modules, "workers", real)
    with pytest.raises(RuntimeError, match="refusing to shadow"):
        sdk.install()


async def test_wait_until_accepts_a_coroutine_and_drain_waits_for_it() -> None:
    ctx = sdk.ExecutionContext()
    done: list[str] = []

    async def later() -> None:
        done.append("ran")

    ctx.waitUntil(later())
    assert not ctx.idle
    await ctx.drain()
    assert done == ["ran"] and ctx.idle


@pytest.mark.parametrize("method", ["QUERY", "FOO", "PURGE", "M-SEARCH", "PATCH", "x~1"])
def test_any_token_is_a_request_method_as_in_fetch(method: str) -> None:
    assert sdk.Request("http://h/", method=method).method == method


@pytest.mark.parametrize(("given", "held"), [("get", "GET"), ("Post", "POST"), ("patch", "patch")])
def test_only_the_six_standard_methods_are_upper_cased(given: str, held: str) -> None:
    assert sdk.Request("http://h/", method=given).method == held


@pytest.mark.parametrize("method", ["", "GE T", "(x)", "GET\r\n", "ÜBER"])
def test_a_method_that_is_not_a_token_is_a_type_error(method: str) -> None:
    with pytest.raises(TypeError, match="not a valid HTTP method"):
        sdk.Request("http://h/", method=method)


async def test_unknown_methods_reach_the_asgi_app_unchanged() -> None:
    async def app(scope, receive, send):  # type: ignore[no-untyped-def]
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": scope["method"].encode()})

    response = await sdk.asgi_fetch(app, sdk.Request("http://h/x", method="QUERY"), {})
    assert await response.text() == "QUERY"
