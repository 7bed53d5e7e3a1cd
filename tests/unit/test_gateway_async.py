"""Every route and dependency of the gateway is a coroutine function.

FastAPI runs a plain ``def`` endpoint or dependency in a worker thread (anyio's thread pool), and
Pyodide — the Python of Python Workers — cannot start threads ("can't start new thread"). Under
CPython that works and no other test would notice, so this test walks the whole app and fails on the
first plain function it finds.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterator
from typing import Any

from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from gateway.app import build_app


def _routes(routes: list[Any]) -> Iterator[APIRoute]:
    for route in routes:
        if isinstance(route, APIRoute):
            yield route
        elif hasattr(route, "original_router"):  # FastAPI's included routers
            yield from _routes(route.original_router.routes)


def _calls(dependant: Dependant) -> Iterator[Any]:
    if dependant.call is not None:
        yield dependant.call
    for sub in dependant.dependencies:
        yield from _calls(sub)


def _is_async(call: Any) -> bool:
    if inspect.iscoroutinefunction(call) or inspect.isasyncgenfunction(call):
        return True
    method = getattr(call, "__call__", None)  # noqa: B004 - instances such as HTTPBearer
    return not inspect.isfunction(call) and inspect.iscoroutinefunction(method)


def test_no_route_or_dependency_needs_a_thread() -> None:
    routes = list(_routes(build_app().router.routes))
    assert len(routes) > 20  # the walk found the included routers
    sync = sorted(
        {
            f"{route.path}: {getattr(call, '__qualname__', repr(call))}"
            for route in routes
            for call in _calls(route.dependant)
            if not _is_async(call)
        }
    )
    assert sync == []
