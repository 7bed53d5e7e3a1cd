"""Build a worker's ``env`` from its wrangler config, backed by the local emulators.

:class:`ResourcePool` opens each emulated resource once per state directory, keyed by the identity the
wrangler config gives it (D1 ``database_id``, KV ``id``, R2 ``bucket_name``, Vectorize ``index_name``,
queue name), so two workers bound to the same resource share one emulator, as they share one resource
at the edge. :func:`build_env` turns a :class:`~edgerag_local.runtime.config.WorkerConfig` into a
:class:`LocalEnv` holding exactly the bindings and vars the config declares: a binding missing from the
config raises ``AttributeError`` locally, as it is ``undefined`` at the edge.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from edgerag_local.ai import LocalAi
from edgerag_local.analytics import AnalyticsStore, LocalAnalyticsEngineDataset, MetricsAggregator
from edgerag_local.d1 import LocalD1Database
from edgerag_local.kv import LocalKVNamespace
from edgerag_local.queues import LocalQueueBroker
from edgerag_local.queues import producer as queue_producer
from edgerag_local.r2 import LocalR2Bucket
from edgerag_local.ratelimit import LocalRateLimit, RateLimitNamespace
from edgerag_local.runtime.config import WorkerConfig
from edgerag_local.runtime.state import StateDir
from edgerag_local.service import LocalFetcher, ServiceTarget
from edgerag_local.vectorize import LocalVectorizeIndex, VectorizeIndexConfig

__all__ = ["LocalEnv", "ResourcePool", "build_env"]


class LocalEnv:
    """A worker's ``env``: one attribute per binding or var in its config, nothing else."""

    def __init__(self, worker: str, values: Mapping[str, Any]) -> None:
        object.__setattr__(self, "_worker", worker)
        object.__setattr__(self, "_values", dict(values))

    def __getattr__(self, name: str) -> Any:
        values: dict[str, Any] = object.__getattribute__(self, "_values")
        try:
            return values[name]
        except KeyError:
            raise AttributeError(
                f"env.{name} is not bound for worker {object.__getattribute__(self, '_worker')!r}: "
                "add it to the worker's wrangler config"
            ) from None

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("env is read-only")

    def __contains__(self, name: str) -> bool:
        return name in object.__getattribute__(self, "_values")

    def __dir__(self) -> list[str]:
        return sorted(object.__getattribute__(self, "_values"))


@dataclass
class ResourcePool:
    """Every emulated resource of one local stack, opened lazily and shared between workers."""

    state: StateDir
    vectorize_indexes: Mapping[str, VectorizeIndexConfig]
    clock: Callable[[], float] | None = None
    _d1: dict[str, LocalD1Database] = field(default_factory=dict)
    _kv: dict[str, LocalKVNamespace] = field(default_factory=dict)
    _r2: dict[str, LocalR2Bucket] = field(default_factory=dict)
    _vectorize: dict[str, LocalVectorizeIndex] = field(default_factory=dict)
    _ai: LocalAi | None = None
    _broker: LocalQueueBroker | None = None
    _ratelimits: dict[str, LocalRateLimit] = field(default_factory=dict)
    _rate_namespaces: dict[str, RateLimitNamespace] = field(default_factory=dict)
    _analytics: dict[str, AnalyticsStore] = field(default_factory=dict)
    # Every dataset's points, folded into the counters GET /metrics serves (edgerag_local.analytics).
    metrics: MetricsAggregator = field(default_factory=MetricsAggregator)

    def _clock_kwargs(self) -> dict[str, Any]:
        return {} if self.clock is None else {"clock": self.clock}

    def d1(self, database_id: str) -> LocalD1Database:
        if database_id not in self._d1:
            self._d1[database_id] = LocalD1Database(self.state.path_for("d1", database_id, ".sqlite"))
        return self._d1[database_id]

    def kv(self, namespace_id: str) -> LocalKVNamespace:
        if namespace_id not in self._kv:
            path = self.state.path_for("kv", namespace_id, ".sqlite")
            self._kv[namespace_id] = LocalKVNamespace(path, **self._clock_kwargs())
        return self._kv[namespace_id]

    def r2(self, bucket: str) -> LocalR2Bucket:
        if bucket not in self._r2:
            self._r2[bucket] = LocalR2Bucket(self.state.path_for("r2", bucket), **self._clock_kwargs())
        return self._r2[bucket]

    def vectorize(self, index_name: str) -> LocalVectorizeIndex:
        if index_name not in self._vectorize:
            try:
                config = self.vectorize_indexes[index_name]
            except KeyError:
                raise KeyError(
                    f"Vectorize index {index_name!r} has no dimensions/metric configured "
                    f"(known: {sorted(self.vectorize_indexes)}); declare it in the tenant file"
                ) from None
            path = self.state.path_for("vectorize", index_name, ".sqlite")
            self._vectorize[index_name] = LocalVectorizeIndex(path, config)
        return self._vectorize[index_name]

    def ai(self) -> LocalAi:
        if self._ai is None:
            self._ai = LocalAi()
        return self._ai

    def broker(self) -> LocalQueueBroker:
        if self._broker is None:
            path = self.state.path_for("queues", "queues", ".sqlite")
            self._broker = LocalQueueBroker(path, **self._clock_kwargs())
        return self._broker

    def ratelimit(self, namespace_id: str, limit: int, period: int) -> LocalRateLimit:
        # Bindings that share a namespace_id share counters, as they do at the edge.
        namespace = self._rate_namespaces.setdefault(namespace_id, RateLimitNamespace())
        key = f"{namespace_id}:{limit}:{period}"
        if key not in self._ratelimits:
            self._ratelimits[key] = LocalRateLimit(limit, period, namespace=namespace, **self._clock_kwargs())
        return self._ratelimits[key]

    def analytics(self, dataset: str) -> AnalyticsStore:
        # Workers bound to one dataset share its store, as they share the dataset at the edge.
        if dataset not in self._analytics:
            store = AnalyticsStore(dataset, clock=self.clock)
            store.subscribe(self.metrics.add)
            self._analytics[dataset] = store
        return self._analytics[dataset]

    def close(self) -> None:
        for group in (self._d1, self._kv, self._r2, self._vectorize):
            for resource in group.values():
                closer = getattr(resource, "close", None)
                if callable(closer):
                    closer()
        if self._broker is not None:
            self._broker.close()


def build_env(
    config: WorkerConfig,
    pool: ResourcePool,
    services: Callable[[str], ServiceTarget],
    *,
    var_overrides: Mapping[str, Any] | None = None,
) -> LocalEnv:
    """The env for ``config``: its vars (with ``var_overrides`` applied, like ``.dev.vars``) and bindings."""
    values: dict[str, Any] = {**config.vars, **dict(var_overrides or {})}
    for d1 in config.d1:
        values[d1.binding] = pool.d1(d1.database_id)
    for kv in config.kv:
        values[kv.binding] = pool.kv(kv.id)
    for r2 in config.r2:
        values[r2.binding] = pool.r2(r2.bucket_name)
    for vec in config.vectorize:
        values[vec.binding] = pool.vectorize(vec.index_name)
    if config.ai is not None:
        values[config.ai.binding] = pool.ai()
    for producer in config.producers:
        values[producer.binding] = queue_producer(
            pool.broker(), producer.queue, delivery_delay=producer.delivery_delay
        )
    for service in config.services:
        values[service.binding] = LocalFetcher(
            service.binding, functools.partial(services, service.service), service.entrypoint
        )
    for rl in config.ratelimits:
        values[rl.name] = pool.ratelimit(rl.namespace_id, rl.limit, rl.period)
    for dataset in config.analytics:
        values[dataset.binding] = LocalAnalyticsEngineDataset(pool.analytics(dataset.dataset))
    duplicates = [n for n in config.binding_names() if n in config.vars]
    if duplicates:
        raise ValueError(f"{config.path}: names bound twice (binding and var): {duplicates}")
    return LocalEnv(config.name, values)
