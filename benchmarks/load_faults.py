"""Fault injection for the load test's served stack (``load_stack.py``): wrappers around the bindings,
never changes to the product code. Each wrapper counts what it injected, so the load report can say
how many faults the run survived.

- :class:`D1Faults` — a fraction of D1 calls fail with ``D1Error('D1_ERROR: ...')``, the error a real D1
  raises when it is overloaded. The workers share one ``LocalD1Database`` per database, as two workers
  bound to one database share it at the edge, so the wrapper patches the instance's public methods
  (``prepare`` — its statements' ``bind``/``all``/``run``/``first``/``raw`` — and ``batch``) and picks
  the rate by *where* the call runs: on a queue consumer's thread (``edgerag-consumer-*``, the ingest
  worker) or on the serving loop (gateway and dedalus). Gateway-side injections mark the current request
  (:data:`REQUEST_FAULTS`), and ``load_stack.py`` answers them with an ``x-load-fault`` header, so the
  load client can tell an injected 500 from a real one.
- :class:`ConsumerCrashes` — the ingest consumer's isolate dies: :class:`IsolateKilled` (a
  ``BaseException``, which no ``except Exception`` in the worker catches) is raised while it embeds
  (before anything is written) or right after the D1 batch that writes a document's chunks committed
  (after the write, before the ack — the redelivery that must not duplicate chunks). At the edge the
  platform redelivers the batch's unacknowledged messages; the local host has no isolate to restart, so
  :func:`install_crash_boundary` gives the ingest entry's ``queue`` handler that boundary: a killed
  invocation is reported to the queue as a failed one (every unacknowledged message retried, with the
  queue's retry delay and attempt count), exactly what the platform does.
- :class:`PolicyProvider` — the scripted provider server (``edgerag_local.fakeprovider``) answering
  every request by a seeded policy instead of a script: a normal completion (JSON or SSE, whichever
  the request asked for), a 500, or a stall (read the request, never answer).
"""

from __future__ import annotations

import contextvars
import random
import threading
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from edgerag_local.d1.errors import D1Error
from edgerag_local.fakeprovider import FakeProvider, Respond, Stall, Stream
from edgerag_local.fakeprovider.shapes import error_reply, json_reply, openai_completion, openai_stream

__all__ = [
    "REQUEST_FAULTS",
    "ConsumerCrashes",
    "D1Faults",
    "FaultRates",
    "IsolateKilled",
    "PolicyProvider",
    "install_crash_boundary",
]

# The faults injected while serving the current request (a fresh list per request, set by load_stack).
REQUEST_FAULTS: contextvars.ContextVar[list[str] | None] = contextvars.ContextVar(
    "load_request_faults", default=None
)


@dataclass(frozen=True)
class FaultRates:
    """Probabilities per call (0 disables the fault)."""

    d1_gateway: float = 0.0  # a D1 call on the serving loop (gateway, dedalus) fails
    d1_ingest: float = 0.0  # a D1 call on the ingest consumer fails
    crash_embed: float = 0.0  # the consumer dies while embedding (nothing written yet)
    crash_after_write: float = 0.0  # the consumer dies right after its chunk batch committed
    provider_500: float = 0.0  # the scripted provider answers 500
    provider_stall: float = 0.0  # the scripted provider never answers
    # Deterministic on top of the rates, so a short run surely takes each path: the first this many
    # chunk batches are followed by a crash, and the provider's first two replies are a 500 and a stall.
    crash_after_first_writes: int = 0
    provider_first_failures: bool = False

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> FaultRates:
        counts = {"crash_after_first_writes": int, "provider_first_failures": bool}
        rates = cls(**{k: counts.get(k, float)(v) for k, v in values.items()})
        for name, value in rates.__dict__.items():
            if name not in counts and not 0.0 <= value <= 1.0:
                raise ValueError(f"fault rate {name}={value} is not a probability")
        return rates

    @property
    def any(self) -> bool:
        return any(value > 0 for value in self.__dict__.values())


def on_consumer_thread() -> bool:
    """Whether this call runs on a queue consumer's thread (the local host names them so)."""
    return threading.current_thread().name.startswith("edgerag-consumer-")


class IsolateKilled(BaseException):
    """The consumer's isolate died (out of memory, CPU limit): nothing after this runs."""


class _Dice:
    """A seeded random source shared by the wrappers (calls come from two threads; the GIL orders them)."""

    def __init__(self, seed: int) -> None:
        self._rng = random.Random(seed)
        self._lock = threading.Lock()

    def roll(self, probability: float) -> bool:
        if probability <= 0:
            return False
        with self._lock:
            return self._rng.random() < probability

    def choice(self, weights: Mapping[str, float]) -> str:
        with self._lock:
            return self._rng.choices(list(weights), weights=list(weights.values()))[0]


class D1Faults:
    """Fails a fraction of one ``LocalD1Database``'s calls; see the module docstring."""

    def __init__(self, db: Any, rates: FaultRates, seed: int) -> None:
        self._dice = _Dice(seed)
        self._rates = rates
        self._prepare = db.prepare
        self._batch = db.batch
        self.injected: Counter[str] = Counter()
        db.prepare = self.prepare
        db.batch = self.batch

    def maybe_fail(self, what: str) -> None:
        site = "ingest" if on_consumer_thread() else "gateway"
        rate = self._rates.d1_ingest if site == "ingest" else self._rates.d1_gateway
        if self._dice.roll(rate):
            self.injected[f"d1_{site}"] += 1
            marks = REQUEST_FAULTS.get()
            if marks is not None and site == "gateway":
                marks.append("d1")
            raise D1Error(f"D1_ERROR: D1 is overloaded, try again later (injected by the load test: {what})")

    def prepare(self, query: str) -> _FlakyStatement:
        return _FlakyStatement(self, self._prepare(query))

    async def batch(self, statements: Any) -> Any:
        self.maybe_fail("batch")
        return await self._batch([s.inner if isinstance(s, _FlakyStatement) else s for s in statements])


class _FlakyStatement:
    """A prepared statement whose executions go through :meth:`D1Faults.maybe_fail` first."""

    def __init__(self, faults: D1Faults, inner: Any) -> None:
        self._faults = faults
        self.inner = inner

    def __getattr__(self, name: str) -> Any:  # statement, params, ...
        return getattr(self.inner, name)

    def bind(self, *values: Any) -> _FlakyStatement:
        return _FlakyStatement(self._faults, self.inner.bind(*values))

    async def all(self) -> Any:
        self._faults.maybe_fail("all")
        return await self.inner.all()

    async def run(self) -> Any:
        self._faults.maybe_fail("run")
        return await self.inner.run()

    async def first(self, column: str | None = None) -> Any:
        self._faults.maybe_fail("first")
        return await self.inner.first(column)

    async def raw(self, *args: Any, **kwargs: Any) -> Any:
        self._faults.maybe_fail("raw")
        return await self.inner.raw(*args, **kwargs)


class ConsumerCrashes:
    """Kills the ingest consumer mid-batch; wrap the shared AI binding and the (already faulty) D1."""

    def __init__(self, ai: Any, db: Any, rates: FaultRates, seed: int) -> None:
        self._dice = _Dice(seed)
        self._rates = rates
        self._run = ai.run
        self._batch = db.batch
        self.injected: Counter[str] = Counter()
        self._writes = 0
        ai.run = self.run
        db.batch = self.batch

    async def run(self, model: str, inputs: Any, *args: Any, **kwargs: Any) -> Any:
        if on_consumer_thread() and self._dice.roll(self._rates.crash_embed):
            self.injected["crash_embed"] += 1
            raise IsolateKilled("killed while embedding (injected)")
        return await self._run(model, inputs, *args, **kwargs)

    async def batch(self, statements: Any) -> Any:
        result = await self._batch(statements)
        writes_chunks = any("INSERT INTO chunks" in str(getattr(s, "statement", "")) for s in statements)
        if not (writes_chunks and on_consumer_thread()):
            return result
        self._writes += 1
        if self._writes <= self._rates.crash_after_first_writes or self._dice.roll(
            self._rates.crash_after_write
        ):
            self.injected["crash_after_write"] += 1
            raise IsolateKilled("killed after the chunk batch committed, before the ack (injected)")
        return result


class ConsumerCrashedError(RuntimeError):
    """What the queue sees of a killed invocation: the handler failed, nothing in it was settled."""


def install_crash_boundary(entry_module: Any) -> None:
    """Give the ingest entry's ``queue`` handler the platform's crash boundary (module docstring)."""
    base: type[Any] = entry_module.Default

    class Default(base):  # type: ignore[misc, valid-type]
        async def queue(self, batch: Any, env: Any = None, ctx: Any = None) -> None:
            try:
                await super().queue(batch, env, ctx)
            except IsolateKilled as exc:
                raise ConsumerCrashedError(str(exc)) from None

    Default.__qualname__ = base.__qualname__
    entry_module.Default = Default


Reply = Respond | Stream | Stall


class PolicyProvider(FakeProvider):
    """The scripted provider server answering each request by a seeded policy (module docstring)."""

    def __init__(self, rates: FaultRates, seed: int) -> None:
        super().__init__()
        self._dice = _Dice(seed)
        ok = max(0.0, 1.0 - rates.provider_500 - rates.provider_stall)
        self._weights = {"ok": ok, "500": rates.provider_500, "stall": rates.provider_stall}
        self._first = ["500", "stall"] if rates.provider_first_failures else []
        self.served: Counter[str] = Counter()

    def _reply_for(self, body: Mapping[str, Any]) -> tuple[str, Reply]:
        kind = self._first.pop(0) if self._first else self._dice.choice(self._weights)
        if kind == "500":
            return kind, error_reply(500, "scripted provider failure (load test)")
        if kind == "stall":
            return kind, Stall()
        words = ["The ", "scripted ", "provider ", "answers ", "from ", "the ", "sources ", "[1]."]
        if body.get("stream"):
            return kind, openai_stream(words)
        return kind, json_reply(openai_completion("".join(words)))

    async def _serve(self, reply: Reply, reader: Any, writer: Any) -> bool:
        # The base class took the (empty) script's reply for the request it just recorded: answer that
        # request by the policy instead. Recorded requests are dropped so a long run stays small.
        request = self.requests.pop()
        try:
            body = request.json if request.body else {}
        except ValueError:
            body = {}
        kind, chosen = self._reply_for(body if isinstance(body, dict) else {})
        self.served[kind] += 1
        return await super()._serve(chosen, reader, writer)
