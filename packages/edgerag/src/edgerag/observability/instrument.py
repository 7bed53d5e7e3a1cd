"""Instrumented bindings: the env a worker's code sees, with a span around each platform step.

:func:`instrument_env` wraps a worker's env at its boundary (the gateway middleware, dedalus's HTTP
app, the ingest consumer), so every route, store and pipeline below is measured without taking a
tracer argument:

- ``DB.batch(...)`` -> span ``d1.batch`` (``statements``);
- ``VECTORS.query`` / ``queryById`` -> span ``vectorize.query`` and the ``vectorize_queries`` count;
  ``upsert`` / ``insert`` / ``deleteByIds`` -> span ``vectorize.write``;
- ``AI.run`` -> span ``embed`` (``{"text": [...]}``, with ``inputs``), ``rerank``
  (``{"query", "contexts"}``) or ``ai.run`` (text generation and the rest), each with ``model``
  (dedalus logs one ``model.call`` span per model turn on top, with tokens and the answering model).

Everything else passes through untouched (the wrappers forward unknown attributes), so the wrapped
env is the real one to every caller; spans never see inputs or outputs, only names and counts.
To instrument another call, add a method to the wrapper of its binding.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from edgerag.observability.context import count
from edgerag.observability.spans import span

__all__ = ["InstrumentedEnv", "instrument_env"]


class _Forwarding:
    def __init__(self, inner: Any) -> None:
        object.__setattr__(self, "_inner", inner)

    def __getattr__(self, name: str) -> Any:
        return getattr(object.__getattribute__(self, "_inner"), name)


class _D1(_Forwarding):
    def prepare(self, query: str) -> Any:
        return self._inner.prepare(query)

    async def batch(self, statements: Sequence[Any]) -> list[Any]:
        async with span("d1.batch", statements=len(statements)):
            result: list[Any] = await self._inner.batch(statements)
            return result

    async def exec(self, query: str) -> Any:
        return await self._inner.exec(query)


class _Vectorize(_Forwarding):
    async def query(self, vector: Sequence[float], *args: Any, **options: Any) -> Any:
        count("vectorize_queries")
        async with span("vectorize.query"):
            return await self._inner.query(vector, *args, **options)

    async def queryById(self, vector_id: str, *args: Any, **options: Any) -> Any:
        count("vectorize_queries")
        async with span("vectorize.query"):
            return await self._inner.queryById(vector_id, *args, **options)

    async def upsert(self, vectors: Sequence[Any]) -> Any:
        async with span("vectorize.write", op="upsert", vectors=len(vectors)):
            return await self._inner.upsert(vectors)

    async def insert(self, vectors: Sequence[Any]) -> Any:
        async with span("vectorize.write", op="insert", vectors=len(vectors)):
            return await self._inner.insert(vectors)

    async def deleteByIds(self, ids: Sequence[str]) -> Any:
        async with span("vectorize.write", op="delete", vectors=len(ids)):
            return await self._inner.deleteByIds(ids)


def _ai_step(inputs: Any) -> tuple[str, dict[str, Any]]:
    if isinstance(inputs, Mapping):
        if "query" in inputs and "contexts" in inputs:
            contexts = inputs.get("contexts")
            return "rerank", {"contexts": len(contexts) if isinstance(contexts, Sequence) else None}
        text = inputs.get("text")
        if text is not None:
            return "embed", {"inputs": len(text) if isinstance(text, list) else 1}
    return "ai.run", {}


class _Ai(_Forwarding):
    async def run(self, model: str, inputs: Any, *args: Any, **options: Any) -> Any:
        name, fields = _ai_step(inputs)
        async with span(name, model=str(model), **fields):
            return await self._inner.run(model, inputs, *args, **options)


_WRAPPERS: Mapping[str, type[_Forwarding]] = {"DB": _D1, "VECTORS": _Vectorize, "AI": _Ai}


class InstrumentedEnv(_Forwarding):
    """A worker env whose ``DB``, ``VECTORS`` and ``AI`` are wrapped (built once per unit of work)."""

    def __init__(self, inner: Any) -> None:
        super().__init__(inner)
        object.__setattr__(self, "_wrapped", {})

    def __getattr__(self, name: str) -> Any:
        wrapped: dict[str, Any] = object.__getattribute__(self, "_wrapped")
        if name in wrapped:
            return wrapped[name]
        value = getattr(object.__getattribute__(self, "_inner"), name)
        wrapper = _WRAPPERS.get(name)
        if wrapper is not None and value is not None:
            value = wrapper(value)
            wrapped[name] = value
        return value

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("env is read-only")

    def __contains__(self, name: str) -> bool:
        return name in object.__getattribute__(self, "_inner")

    def __dir__(self) -> list[str]:
        return dir(object.__getattribute__(self, "_inner"))


def instrument_env(env: Any) -> Any:
    """``env`` with its bindings instrumented (an already instrumented env, or None, as it is)."""
    if env is None or isinstance(env, InstrumentedEnv):
        return env
    return InstrumentedEnv(env)
