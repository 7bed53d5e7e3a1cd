"""The local host: runs the workers through their real ``entry.py`` modules, like ``wrangler dev``.

:class:`LocalStack` reads each worker's wrangler config, opens the emulated resources in one state
directory, applies D1 migrations (as ``wrangler d1 migrations apply --local`` would), builds every env,
imports each entry module with the SDK stand-in installed, wires service bindings between the workers,
and runs a queue dispatcher for every ``[[queues.consumers]]`` entry. :meth:`LocalStack.asgi` serves a
worker's ``fetch`` handler as an ASGI app, so uvicorn (or httpx's ``ASGITransport`` in tests) reaches
the worker exactly along its edge path: request -> entry ``fetch`` -> ``asgi.fetch`` -> application.

Two ways to deliver queues: :meth:`LocalStack.start` runs each consumer worker's dispatchers on a
thread with its own event loop (:mod:`edgerag_local.runtime.consumers`), as separate isolates run at the
edge, so a CPU-bound batch cannot starve the serving loop; :meth:`LocalStack.drain_queues` delivers
on the caller's loop, so tests decide exactly when ingestion happens. Cron triggers likewise:
:meth:`LocalStack.start` runs a :class:`~edgerag_local.runtime.cron.CronScheduler` on the serving loop, and
:meth:`LocalStack.run_scheduled` fires a tick on the caller's loop, at the time the test says.
Whatever a worker's ``fetch`` does, the host answers HTTP with the worker's response or an
``application/problem+json`` 500. ``GET /metrics`` is the host's own: the workers' Analytics Engine
points as Prometheus counters plus queue depth and documents by status read at scrape time
(:meth:`LocalStack.metrics_text`).
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import logging
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import quote, urlsplit

from edgerag.observability.gauges import document_counts

from edgerag_local import sdk
from edgerag_local.analytics import CONTENT_TYPE as METRICS_CONTENT_TYPE
from edgerag_local.d1.migrations import apply_migrations
from edgerag_local.queues import ConsumerSettings, QueueDispatcher
from edgerag_local.runtime.config import WorkerConfig, load_worker_config
from edgerag_local.runtime.consumers import ConsumerThread
from edgerag_local.runtime.cron import CronScheduler, ScheduledController
from edgerag_local.runtime.env import LocalEnv, ResourcePool, build_env
from edgerag_local.runtime.state import StateDir
from edgerag_local.vectorize import VectorizeIndexConfig

__all__ = ["METRICS_PATH", "WORKER_ORDER", "LocalStack", "WorkerRuntime"]

log = logging.getLogger("edgerag.host")

# The host's own route: the workers' metrics in Prometheus text (edgerag_local.analytics.prometheus).
METRICS_PATH = "/metrics"
# Service-binding targets first: the order wrangler dev and deploy need.
WORKER_ORDER = ("ingest", "dedalus", "gateway")


@dataclass
class WorkerRuntime:
    """One hosted worker: its config, env and imported entry module.

    Its handlers may run on the serving loop and on its consumer thread's loop at once, so the
    contexts with ``waitUntil`` work in flight are tracked under a lock.
    """

    key: str
    config: WorkerConfig
    env: LocalEnv
    module: ModuleType
    contexts: list[sdk.ExecutionContext] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def name(self) -> str:
        return self.config.name

    def entrypoint(self, name: str | None) -> type[Any]:
        cls = getattr(self.module, name or "Default", None)
        if not isinstance(cls, type):
            raise LookupError(f"worker {self.name!r} has no entrypoint class {name or 'Default'!r}")
        return cls

    def new_instance(self, cls: type[Any], ctx: sdk.ExecutionContext) -> Any:
        ctx.on_wait_until = self._track
        return cls(ctx, self.env)

    def _track(self, ctx: sdk.ExecutionContext) -> None:
        # Keep only contexts with waitUntil work in flight, so a long-running server does not grow.
        with self._lock:
            self.contexts = [c for c in self.contexts if not c.idle and c is not ctx]
            self.contexts.append(ctx)

    async def fetch(self, request: sdk.Request) -> sdk.Response:
        instance = self.new_instance(self.entrypoint(None), sdk.ExecutionContext())
        response = await instance.fetch(request)
        if not isinstance(response, sdk.Response):
            raise TypeError(f"{self.name}: fetch returned {type(response).__name__}, not a Response")
        return response

    async def queue(self, batch: Any) -> None:
        instance = self.new_instance(self.entrypoint(None), sdk.ExecutionContext())
        await instance.queue(batch, self.env, instance.ctx)

    async def scheduled(self, cron: str, scheduled_time_ms: float) -> None:
        instance = self.new_instance(self.entrypoint(None), sdk.ExecutionContext())
        await instance.scheduled(ScheduledController(cron, scheduled_time_ms), self.env, instance.ctx)

    async def drain(self) -> None:
        """Wait for every ``ctx.waitUntil`` task started so far on the running event loop.

        Work on another loop (the consumer thread's) is that loop's to wait for: a future can only
        be awaited on its own loop.
        """
        loop = asyncio.get_running_loop()
        while True:
            with self._lock:
                mine = [c for c in self.contexts if c.loop is loop]
                self.contexts = [c for c in self.contexts if c.loop is not loop]
            if not mine:
                return
            for ctx in mine:
                await ctx.drain()


def _load_entry(key: str, config: WorkerConfig) -> ModuleType:
    src = str(config.main.parent)
    if src not in sys.path:
        sys.path.insert(0, src)
    module_name = f"edgerag_entry_{key}"
    if module_name in sys.modules:
        return sys.modules[module_name]
    spec = importlib.util.spec_from_file_location(module_name, config.main)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load entry module {config.main}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[module_name]  # never leave a half-imported entry behind for the next stack
        raise
    return module


class LocalStack:
    """The three workers, their bindings and queue consumers, running in this process."""

    def __init__(
        self,
        project_root: Path,
        *,
        state_dir: Path,
        vectorize_indexes: Mapping[str, VectorizeIndexConfig],
        workers: Sequence[str] = WORKER_ORDER,
        environment: str | None = None,
        var_overrides: Mapping[str, Mapping[str, Any]] | None = None,
        clock: Callable[[], float] | None = None,
    ) -> None:
        self.project_root = project_root
        self.state_dir = state_dir
        self.admin_token_file: Path | None = None
        self.pool = ResourcePool(StateDir(state_dir), vectorize_indexes, clock)
        self.workers: dict[str, WorkerRuntime] = {}
        self._by_name: dict[str, WorkerRuntime] = {}
        self._dispatchers: dict[str, list[QueueDispatcher]] = {}
        self._consumers: list[ConsumerThread] = []
        self._crons: list[asyncio.Task[None]] = []
        self._clock = clock or time.time
        sdk.install()
        configs = {
            key: load_worker_config(project_root / "workers" / key / "wrangler.toml", environment)
            for key in workers
        }
        for config in configs.values():
            for d1 in config.d1:
                if d1.migrations_dir is not None:
                    apply_migrations(self.pool.d1(d1.database_id), d1.migrations_dir)
        for key, config in configs.items():
            env = build_env(config, self.pool, self._target, var_overrides=(var_overrides or {}).get(key))
            runtime = WorkerRuntime(key, config, env, _load_entry(key, config))
            self.workers[key] = runtime
            self._by_name[config.name] = runtime
        for runtime in self.workers.values():
            for consumer in runtime.config.consumers:
                settings = ConsumerSettings.from_wrangler(dict(consumer.settings))
                self._dispatchers.setdefault(runtime.key, []).append(
                    QueueDispatcher(self.pool.broker(), consumer.queue, settings, runtime.queue)
                )

    def _target(self, service_name: str) -> WorkerRuntime:
        try:
            return self._by_name[service_name]
        except KeyError:
            raise LookupError(
                f"service {service_name!r} is not running locally (running: {sorted(self._by_name)})"
            ) from None

    async def start(self) -> None:
        """Start the queue consumers in the background: one thread and event loop per consumer worker."""
        if self._consumers:
            raise RuntimeError("the queue consumers are already running; stop() them first")
        for key, dispatchers in self._dispatchers.items():
            consumer = ConsumerThread(key, dispatchers, self.workers[key].drain)
            consumer.start()
            self._consumers.append(consumer)
        for runtime in self.workers.values():
            if runtime.config.crons:
                scheduler = CronScheduler(runtime.config.crons, runtime.scheduled, self._clock)
                self._crons.append(asyncio.create_task(scheduler.run(), name=f"cron-{runtime.key}"))

    async def stop(self) -> None:
        """Stop the consumers (running batches finish first) and wait for ``waitUntil`` work."""
        consumers, self._consumers = self._consumers, []
        crons, self._crons = self._crons, []
        for task in crons:
            task.cancel()
        await asyncio.gather(*crons, return_exceptions=True)
        failures: list[BaseException] = []
        for consumer in consumers:
            try:
                await consumer.stop()
            except Exception as exc:
                failures.append(exc)
        for runtime in self.workers.values():
            await runtime.drain()
        if failures:
            raise failures[0]

    async def drain_queues(self) -> int:
        """Deliver everything deliverable now, repeatedly, until the queues are idle; returns deliveries."""
        delivered = 0
        while True:
            round_total = 0
            for dispatchers in self._dispatchers.values():
                for dispatcher in dispatchers:
                    round_total += (await dispatcher.drain()).delivered
            delivered += round_total
            if round_total == 0:
                return delivered

    async def run_scheduled(
        self, cron: str | None = None, *, worker: str | None = None, at: float | None = None
    ) -> int:
        """Fire a cron tick now, on this loop: every trigger (or those equal to ``cron``) of every
        worker (or ``worker``), with ``scheduledTime`` = ``at`` (default: the stack's clock), as if
        due. Handler errors propagate. Returns how many handlers ran."""
        when_ms = (self._clock() if at is None else at) * 1000
        fired = 0
        for key, runtime in self.workers.items():
            if worker is not None and key != worker:
                continue
            for expression in runtime.config.crons:
                if cron is None or cron == expression:
                    await runtime.scheduled(expression, when_ms)
                    fired += 1
        return fired

    def close(self) -> None:
        self.pool.close()

    async def metrics_text(self) -> bytes:
        """The Prometheus text of ``GET /metrics``: every worker's data points (counted as written)
        plus, read now, each queue's depth (the broker) and documents by status (D1)."""
        queues = {p.queue for r in self.workers.values() for p in r.config.producers}
        queues |= {c.queue for r in self.workers.values() for c in r.config.consumers}
        depth = {q: int(self.pool.broker().metrics(q)["backlogCount"]) for q in sorted(queues)}
        documents: dict[tuple[str, str], int] = {}
        for database_id in sorted({d.database_id for r in self.workers.values() for d in r.config.d1}):
            try:
                db: Any = self.pool.d1(database_id)  # the emulator implements the D1Database port
                documents.update(await document_counts(db))
            except Exception:  # a database without the documents table: nothing to count there
                log.warning("documents by status could not be read from D1 %s", database_id, exc_info=True)
        return self.pool.metrics.render(queue_depth=depth, documents=documents)

    async def _send_metrics(self, send: Callable[..., Any], *, head: bool) -> None:
        body = await self.metrics_text()
        headers = [
            (b"content-type", METRICS_CONTENT_TYPE.encode()),
            (b"content-length", str(len(body)).encode()),
        ]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": b"" if head else body})

    def asgi(self, worker: str = "gateway") -> Callable[..., Any]:
        """An ASGI app that serves ``worker``'s fetch handler through its entry module."""
        runtime = self.workers[worker]

        async def app(scope: dict[str, Any], receive: Callable[..., Any], send: Callable[..., Any]) -> None:
            if scope["type"] == "lifespan":
                while (await receive())["type"] != "lifespan.shutdown":
                    await send({"type": "lifespan.startup.complete"})
                await send({"type": "lifespan.shutdown.complete"})
                return
            if scope["type"] != "http":
                return
            if scope.get("path") == METRICS_PATH and scope.get("method") in ("GET", "HEAD"):
                await self._send_metrics(send, head=scope["method"] == "HEAD")
                return
            chunks = []
            while True:
                message = await receive()
                chunks.append(message.get("body", b""))
                if not message.get("more_body"):
                    break
            try:
                request = _request_from_scope(scope, b"".join(chunks))
            except (TypeError, ValueError) as exc:
                # workerd refuses a request it cannot represent before any worker code runs.
                await _send_problem(send, 400, "Bad Request", str(exc), scope.get("path", "/"))
                return
            try:
                response = await runtime.fetch(request)
            except Exception:
                log.exception("%s: unhandled exception in fetch", runtime.name)
                await _send_problem(send, 500, "Internal Server Error", None, scope.get("path", "/"))
                return
            await _send_response(send, runtime.name, response)

        return app


# Printable ASCII but space and the characters a URL parser would percent-encode in a path or query.
_URL_SAFE = "".join(chr(c) for c in range(0x21, 0x7F) if chr(c) not in '"#<>`{}')


def _request_from_scope(scope: Mapping[str, Any], body: bytes) -> sdk.Request:
    headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in scope.get("headers", [])]
    host = dict(scope.get("headers", [])).get(b"host", b"127.0.0.1").decode("latin-1")
    # Raw bytes outside ASCII are percent-encoded, as workerd's URL parser does, instead of failing.
    query = quote(scope.get("query_string", b""), safe=_URL_SAFE)
    path = quote(scope.get("raw_path") or scope["path"].encode(), safe=_URL_SAFE)
    url = f"{scope.get('scheme', 'http')}://{host}{path}" + (f"?{query}" if query else "")
    urlsplit(url).port  # noqa: B018 - raises ValueError for a Host header with a bad port
    return sdk.Request(url, method=scope["method"], headers=headers, body=body)


async def _send_problem(
    send: Callable[..., Any], status: int, title: str, detail: str | None, instance: str
) -> None:
    problem: dict[str, Any] = {"type": "about:blank", "title": title, "status": status}
    if detail:
        problem["detail"] = detail
    problem["instance"] = instance
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/problem+json")],
        }
    )
    await send({"type": "http.response.body", "body": json.dumps(problem).encode()})


async def _send_response(send: Callable[..., Any], worker: str, response: sdk.Response) -> None:
    try:
        headers = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in response.headers.items()]
    except UnicodeEncodeError:
        log.exception("%s: response header is not latin-1", worker)
        await _send_problem(send, 500, "Internal Server Error", None, "")
        return
    await send({"type": "http.response.start", "status": response.status, "headers": headers})
    try:
        async for chunk in response.body:
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
    except Exception:
        # The status line is out already: end the body early; the client sees a truncated response.
        log.exception("%s: response body failed while streaming", worker)
    await send({"type": "http.response.body", "body": b"", "more_body": False})
