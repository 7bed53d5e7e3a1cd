"""Read a worker's wrangler config into the typed description the local runtime builds an env from.

The local runtime reads the same ``wrangler.toml`` files that ``wrangler deploy`` reads, so a binding
that is not in the config does not exist locally either. Environments follow wrangler's rules: under
``[env.NAME]`` the worker is named ``<name>-NAME``, top-level keys such as ``compatibility_date`` are
inherited, but ``vars`` and every binding are *not* inherited (an environment that wants them must
declare them again).

To support a new binding kind: add a dataclass here, parse it in :func:`_parse_bindings`, and open it
in :mod:`edgerag_local.runtime.env`.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "AiBinding",
    "ConfigError",
    "D1Binding",
    "KVBinding",
    "QueueConsumer",
    "QueueProducer",
    "R2Binding",
    "RateLimitBinding",
    "ServiceBinding",
    "VectorizeBinding",
    "WorkerConfig",
    "load_worker_config",
    "parse_worker_config",
]

# Keys that [env.X] inherits from the top level (wrangler's "inheritable" keys we use).
_INHERITABLE = ("compatibility_date", "compatibility_flags", "main", "observability", "triggers")
# Everything else (vars and every binding) is not inherited: [env.X] must declare it again.


class ConfigError(ValueError):
    """A wrangler config the local runtime cannot use; the message names the file and the key."""


@dataclass(frozen=True)
class D1Binding:
    binding: str
    database_name: str
    database_id: str
    migrations_dir: Path | None


@dataclass(frozen=True)
class KVBinding:
    binding: str
    id: str


@dataclass(frozen=True)
class R2Binding:
    binding: str
    bucket_name: str


@dataclass(frozen=True)
class VectorizeBinding:
    binding: str
    index_name: str


@dataclass(frozen=True)
class AiBinding:
    binding: str


@dataclass(frozen=True)
class QueueProducer:
    binding: str
    queue: str
    delivery_delay: int = 0


@dataclass(frozen=True)
class QueueConsumer:
    queue: str
    settings: Mapping[str, Any]


@dataclass(frozen=True)
class ServiceBinding:
    binding: str
    service: str
    entrypoint: str | None = None


@dataclass(frozen=True)
class RateLimitBinding:
    name: str
    namespace_id: str
    limit: int
    period: int


@dataclass(frozen=True)
class AnalyticsBinding:
    """``[[analytics_engine_datasets]]``: ``dataset`` defaults to the binding's name, as wrangler's."""

    binding: str
    dataset: str


@dataclass(frozen=True)
class WorkerConfig:
    """One worker as its wrangler config (and optional environment) describes it."""

    path: Path
    name: str
    main: Path
    compatibility_date: str
    compatibility_flags: tuple[str, ...]
    vars: Mapping[str, Any] = field(default_factory=dict)
    d1: tuple[D1Binding, ...] = ()
    kv: tuple[KVBinding, ...] = ()
    r2: tuple[R2Binding, ...] = ()
    vectorize: tuple[VectorizeBinding, ...] = ()
    ai: AiBinding | None = None
    producers: tuple[QueueProducer, ...] = ()
    consumers: tuple[QueueConsumer, ...] = ()
    services: tuple[ServiceBinding, ...] = ()
    ratelimits: tuple[RateLimitBinding, ...] = ()
    analytics: tuple[AnalyticsBinding, ...] = ()
    crons: tuple[str, ...] = ()  # [triggers] crons, validated (edgerag_local.runtime.cron)

    @property
    def directory(self) -> Path:
        return self.path.parent

    def binding_names(self) -> list[str]:
        names = [b.binding for b in self.d1] + [b.binding for b in self.kv] + [b.binding for b in self.r2]
        names += [b.binding for b in self.vectorize] + [p.binding for p in self.producers]
        names += [s.binding for s in self.services]
        names += [r.name for r in self.ratelimits]
        names += [a.binding for a in self.analytics]
        if self.ai is not None:
            names.append(self.ai.binding)
        return names


def load_worker_config(path: Path | str, environment: str | None = None) -> WorkerConfig:
    path = Path(path).resolve()
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read wrangler config: {exc}") from exc
    return parse_worker_config(raw, path, environment)


def parse_worker_config(raw: Mapping[str, Any], path: Path, environment: str | None = None) -> WorkerConfig:
    name = _require(raw, "name", str, path)
    section: Mapping[str, Any] = raw
    if environment is not None:
        envs = raw.get("env", {})
        if environment not in envs:
            raise ConfigError(f"{path}: no [env.{environment}] section (have: {sorted(envs)})")
        section = {k: raw[k] for k in _INHERITABLE if k in raw}
        section.update(envs[environment])
        name = envs[environment].get("name", f"{name}-{environment}")
    main = _require(section, "main", str, path)
    flags = section.get("compatibility_flags", [])
    if not isinstance(flags, list) or not all(isinstance(f, str) for f in flags):
        raise ConfigError(f"{path}: compatibility_flags must be a list of strings")
    vars_ = section.get("vars", {})
    if not isinstance(vars_, Mapping):
        raise ConfigError(f"{path}: [vars] must be a table")
    return WorkerConfig(
        path=path,
        name=name,
        crons=_crons(section, path),
        main=(path.parent / main).resolve(),
        compatibility_date=_require(section, "compatibility_date", str, path),
        compatibility_flags=tuple(flags),
        vars=dict(vars_),
        **_parse_bindings(section, path),
    )


def _crons(section: Mapping[str, Any], path: Path) -> tuple[str, ...]:
    from edgerag_local.runtime.cron import CronError, parse_cron

    triggers = section.get("triggers", {})
    crons = triggers.get("crons", []) if isinstance(triggers, Mapping) else None
    if not isinstance(crons, list) or not all(isinstance(c, str) for c in crons):
        raise ConfigError(f"{path}: [triggers] crons must be a list of strings")
    for cron in crons:
        try:
            parse_cron(cron)
        except CronError as exc:
            raise ConfigError(f"{path}: [triggers] crons: {exc}") from exc
    return tuple(crons)


def _parse_bindings(section: Mapping[str, Any], path: Path) -> dict[str, Any]:
    def tables(key: str) -> list[Mapping[str, Any]]:
        value = section.get(key, [])
        if not isinstance(value, list) or not all(isinstance(t, Mapping) for t in value):
            raise ConfigError(f"{path}: [[{key}]] must be an array of tables")
        return value

    def req(table: Mapping[str, Any], key: str, where: str) -> str:
        value: str = _require(table, key, str, path, where)
        return value

    d1 = tuple(
        D1Binding(
            binding=req(t, "binding", "d1_databases"),
            database_name=req(t, "database_name", "d1_databases"),
            database_id=req(t, "database_id", "d1_databases"),
            migrations_dir=(path.parent / t["migrations_dir"]).resolve() if "migrations_dir" in t else None,
        )
        for t in tables("d1_databases")
    )
    kv = tuple(
        KVBinding(req(t, "binding", "kv_namespaces"), req(t, "id", "kv_namespaces"))
        for t in tables("kv_namespaces")
    )
    r2 = tuple(
        R2Binding(req(t, "binding", "r2_buckets"), req(t, "bucket_name", "r2_buckets"))
        for t in tables("r2_buckets")
    )
    vectorize = tuple(
        VectorizeBinding(req(t, "binding", "vectorize"), req(t, "index_name", "vectorize"))
        for t in tables("vectorize")
    )
    ai_table = section.get("ai")
    ai = AiBinding(req(ai_table, "binding", "ai")) if isinstance(ai_table, Mapping) else None
    queues = section.get("queues", {})
    if not isinstance(queues, Mapping):
        raise ConfigError(f"{path}: [queues] must be a table")
    producers = tuple(
        QueueProducer(
            req(t, "binding", "queues.producers"),
            req(t, "queue", "queues.producers"),
            int(t.get("delivery_delay", 0)),
        )
        for t in queues.get("producers", [])
    )
    consumers = tuple(
        QueueConsumer(req(t, "queue", "queues.consumers"), {k: v for k, v in t.items() if k != "queue"})
        for t in queues.get("consumers", [])
    )
    services = tuple(
        ServiceBinding(req(t, "binding", "services"), req(t, "service", "services"), t.get("entrypoint"))
        for t in tables("services")
    )
    ratelimits = []
    for t in tables("ratelimits"):
        simple = t.get("simple")
        if not isinstance(simple, Mapping):
            raise ConfigError(f"{path}: [[ratelimits]] {t.get('name')!r} needs simple = {{limit, period}}")
        ratelimits.append(
            RateLimitBinding(
                name=req(t, "name", "ratelimits"),
                namespace_id=str(t.get("namespace_id", "")),
                limit=_require(simple, "limit", int, path, "ratelimits.simple"),
                period=_require(simple, "period", int, path, "ratelimits.simple"),
            )
        )
    analytics = tuple(
        AnalyticsBinding(
            binding=req(t, "binding", "analytics_engine_datasets"),
            dataset=str(t.get("dataset") or t["binding"]),
        )
        for t in tables("analytics_engine_datasets")
    )
    return {
        "analytics": analytics,
        "d1": d1,
        "kv": kv,
        "r2": r2,
        "vectorize": vectorize,
        "ai": ai,
        "producers": producers,
        "consumers": consumers,
        "services": services,
        "ratelimits": tuple(ratelimits),
    }


def _require(table: Mapping[str, Any], key: str, kind: type, path: Path, where: str = "") -> Any:
    label = f"{where}.{key}" if where else key
    if key not in table:
        raise ConfigError(f"{path}: missing required key {label!r}")
    value = table[key]
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise ConfigError(f"{path}: {label!r} must be {kind.__name__}, got {type(value).__name__}")
    return value
