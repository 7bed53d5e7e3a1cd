"""The local host: runs the workers through their real ``entry.py`` modules, like ``wrangler dev``.

:class:`LocalStack` reads each worker's wrangler config, opens the emulated resources in one state
directory, applies D1 migrations (as ``wrangler d1 migrations apply --local`` would), builds every env,
imports each entry module with the SDK stand-in installed, wires service bindings between the workers,
and runs a queue dispatcher for every ``[[queues.consumers]]`` entry. :meth:`LocalStack.asgi` serves a
worker's ``fetch`` handler as an ASGI app, so uvicorn (or httpx's ``ASGITransport`` in tests) reaches
the worker exactly along its edge path: request -> entry ``fetch`` -> ``asgi.fetch`` -> application.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import logging
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from edgerag_local import sdk
from edgerag_local.config import WorkerConfig, load_worker_config
from edgerag_local.env import LocalEnv, ResourcePool, build_env
from edgerag_local.migrations import apply_migrations
from edgerag_local.queues import ConsumerSettings, QueueDispatcher
from edgerag_local.state import StateDir
from edgerag_local.vectorize import VectorizeIndexConfig

__all__ = ["WORKER_ORDER", "LocalStack", "WorkerRuntime"]

log = logging.getLogger("edgerag.host")

# Service-binding targets first: the order wrangler dev and deploy need.
WORKER_ORDER = ("ingest", "dedalus", "gateway")


@dataclass
class WorkerRuntime:
    """One hosted worker: its config, env and imported entry module."""

    key: str
    config: WorkerConfig
    env: LocalEnv
    module: ModuleType
    contexts: list[sdk.ExecutionContext] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.config.name

    def entrypoint(self, name: str | None) -> type[Any]:
        cls = getattr(self.module, name or "Default", None)
        if not isinstance(cls, type):
            raise LookupError(f"worker {self.name!r} has no entrypoint class {name or 'Default'!r}")
        return cls

    def new_instance(self, cls: type[Any], ctx: sdk.ExecutionContext) -> Any:
        # Keep only contexts with waitUntil work in flight, so a long-running server does not grow.
        self.contexts = [c for c in self.contexts if not c.idle]
        self.contexts.append(ctx)
        return cls(ctx, self.env)

    async def fetch(self, request: sdk.Request) -> sdk.Response:
        instance = self.new_instance(self.entrypoint(None), sdk.ExecutionContext())
        response = await instance.fetch(request)
        if not isinstance(response, sdk.Response):
            raise TypeError(f"{self.name}: fetch returned {type(response).__name__}, not a Response")
        return response

    async def queue(self, batch: Any) -> None:
        instance = self.new_instance(self.entrypoint(None), sdk.ExecutionContext())
        await instance.queue(batch, self.env, instance.ctx)

    async def drain(self) -> None:
        """Wait for every ``ctx.waitUntil`` task started so far."""
        while self.contexts:
            await self.contexts.pop().drain()


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
        self._dispatchers: list[QueueDispatcher] = []
        self._tasks: list[asyncio.Task[None]] = []
        self._stop = asyncio.Event()
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
                self._dispatchers.append(
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
        """Start the queue consumers in the background."""
        self._stop.clear()
        for dispatcher in self._dispatchers:
            self._tasks.append(asyncio.create_task(dispatcher.run_forever(self._stop)))

    async def stop(self) -> None:
        self._stop.set()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        for runtime in self.workers.values():
            await runtime.drain()

    async def drain_queues(self) -> int:
        """Deliver everything deliverable now, repeatedly, until the queues are idle; returns deliveries."""
        delivered = 0
        while True:
            round_total = 0
            for dispatcher in self._dispatchers:
                round_total += (await dispatcher.drain()).delivered
            delivered += round_total
            if round_total == 0:
                return delivered

    def close(self) -> None:
        self.pool.close()

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
            chunks = []
            while True:
                message = await receive()
                chunks.append(message.get("body", b""))
                if not message.get("more_body"):
                    break
            host = dict(scope.get("headers", [])).get(b"host", b"127.0.0.1").decode()
            query = scope.get("query_string", b"").decode()
            raw_path = scope.get("raw_path") or scope["path"].encode()
            url = f"{scope.get('scheme', 'http')}://{host}{raw_path.decode()}" + (
                f"?{query}" if query else ""
            )
            headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in scope.get("headers", [])]
            request = sdk.Request(url, method=scope["method"], headers=headers, body=b"".join(chunks))
            try:
                response = await runtime.fetch(request)
            except Exception:
                log.exception("%s: unhandled exception in fetch", runtime.name)
                body = b'{"type":"about:blank","title":"Internal Server Error","status":500}'
                await send(
                    {
                        "type": "http.response.start",
                        "status": 500,
                        "headers": [(b"content-type", b"application/problem+json")],
                    }
                )
                await send({"type": "http.response.body", "body": body})
                return
            await send(
                {
                    "type": "http.response.start",
                    "status": response.status,
                    "headers": [
                        (k.encode("latin-1"), v.encode("latin-1")) for k, v in response.headers.items()
                    ],
                }
            )
            async for chunk in response.body:
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b"", "more_body": False})

        return app
