"""Service bindings: ``env.X.fetch(...)`` and Workers RPC between locally hosted workers.

A :class:`LocalFetcher` stands for one ``[[services]]`` binding. ``fetch`` builds a request and hands
it to the target worker's ``fetch`` handler; any other attribute is an RPC method of the target
entrypoint class. Arguments and results make a serialisation round-trip that accepts what Workers RPC
accepts (str, numbers, bool, None, list, set, dict with string keys, datetime, bytes/memoryview,
Request, Response, callables) and raises ``TypeError`` for what it rejects (tuple, bytearray,
awaitables, arbitrary objects), so a value that cannot cross the binding at the edge cannot cross it
here. Dicts come back as :class:`~edgerag.jsdict.AttrDict`, like ``JsDict`` results of the wrapped SDK.

The target is resolved lazily through a :class:`ServiceTarget`, so workers can bind to each other in
any order; the host provides the targets.
"""

from __future__ import annotations

import datetime as dt
import inspect
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Protocol

from edgerag.jsdict import AttrDict

from edgerag_local.sdk import ExecutionContext, Request, Response
from edgerag_local.service.errors import RpcSerializationError, ServiceBindingError

__all__ = ["LocalFetcher", "ServiceTarget", "rpc_clone"]

# Methods every entrypoint has that are not RPC methods (the runtime calls them, callers cannot).
_NOT_RPC = frozenset({"fetch", "queue", "scheduled", "tail", "trace", "alarm", "constructor"})
_MAX_DEPTH = 64


class ServiceTarget(Protocol):
    """What a service binding needs from the worker it points at (the host implements it)."""

    @property
    def name(self) -> str:
        """The worker's name (what ``[[services]] service = ...`` refers to)."""

    def entrypoint(self, name: str | None) -> type[Any]:
        """The entrypoint class (``Default`` when ``name`` is None)."""

    def new_instance(self, cls: type[Any], ctx: ExecutionContext) -> Any:
        """An instance of ``cls`` bound to the target worker's env and ``ctx``."""


def rpc_clone(value: Any, *, _depth: int = 0, _path: str = "value") -> Any:
    """Copy ``value`` as Workers RPC would serialise it, or raise ``TypeError`` naming what fails."""
    if _depth > _MAX_DEPTH:
        raise RpcSerializationError(f"{_path}: nesting deeper than {_MAX_DEPTH} levels")
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, bytes | memoryview):
        return memoryview(bytes(value))
    if isinstance(value, dt.datetime):
        return value
    if isinstance(value, Request | Response):
        return value
    if isinstance(value, set | frozenset):
        return {rpc_clone(v, _depth=_depth + 1, _path=f"{_path} item") for v in value}
    if isinstance(value, tuple | bytearray):
        raise RpcSerializationError(
            f"{_path}: {type(value).__name__} cannot be serialized over Workers RPC "
            "(use a list, bytes or a dict)"
        )
    if inspect.isawaitable(value):
        raise RpcSerializationError(f"{_path}: an awaitable cannot be sent over Workers RPC; await it first")
    if isinstance(value, list):
        return [rpc_clone(v, _depth=_depth + 1, _path=f"{_path}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, Mapping):
        out = AttrDict()
        for key, item in value.items():
            if not isinstance(key, str):
                raise RpcSerializationError(f"{_path}: dict key {key!r} is not a string")
            dict.__setitem__(out, key, rpc_clone(item, _depth=_depth + 1, _path=f"{_path}[{key!r}]"))
        return out
    if callable(value):
        return value  # crosses as a stub that calls back into the sender
    raise RpcSerializationError(
        f"DataCloneError: {_path}: {type(value).__name__} could not be cloned; send plain data "
        "(dict, list, str, numbers, bool, None; pydantic models must be model_dump()ed)"
    )


class LocalFetcher:
    """A service binding to a locally hosted worker (``[[services]] binding = ...``)."""

    def __init__(self, binding: str, target: Callable[[], ServiceTarget], entrypoint: str | None = None):
        self._binding = binding
        self._target = target
        self._entrypoint = entrypoint

    def __repr__(self) -> str:
        return f"LocalFetcher({self._binding!r}, entrypoint={self._entrypoint!r})"

    async def fetch(
        self, url: str | Request, init: Mapping[str, Any] | None = None, **kwargs: Any
    ) -> Response:
        options = {**dict(init or {}), **kwargs}
        if isinstance(url, Request):
            request = url
        else:
            unknown = set(options) - {"method", "headers", "body"}
            if unknown:
                raise TypeError(f"{self._binding}.fetch: unsupported option(s) {sorted(unknown)}")
            request = Request(
                url,
                method=options.get("method", "GET"),
                headers=options.get("headers"),
                body=options.get("body"),
            )
        target = self._target()
        ctx = ExecutionContext()
        instance = target.new_instance(target.entrypoint(self._entrypoint), ctx)
        response = await instance.fetch(request)
        if not isinstance(response, Response):
            raise ServiceBindingError(
                f"{target.name}: fetch handler returned {type(response).__name__}, not a Response"
            )
        return response

    def __getattr__(self, name: str) -> Callable[..., Awaitable[Any]]:
        if name.startswith("_"):
            raise AttributeError(name)

        async def call(*args: Any, **kwargs: Any) -> Any:
            if kwargs:
                # JS has no keyword arguments: Pyodide folds them into one trailing object.
                args = (*args, dict(kwargs))
            cloned = [rpc_clone(a, _path=f"{self._binding}.{name} argument {i}") for i, a in enumerate(args)]
            target = self._target()
            cls = target.entrypoint(self._entrypoint)
            method = getattr(cls, name, None)
            if name in _NOT_RPC or method is None or not callable(method):
                raise ServiceBindingError(f"TypeError: Method {name} does not exist")
            instance = target.new_instance(cls, ExecutionContext())
            result = getattr(instance, name)(*cloned)
            if inspect.isawaitable(result):
                result = await result
            return rpc_clone(result, _path=f"{self._binding}.{name} result")

        call.__name__ = name
        return call
