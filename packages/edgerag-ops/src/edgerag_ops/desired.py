"""What should be deployed, in the API's terms, and how an API answer is normalised for comparison.

The rendered wrangler configs say what each worker should look like; Cloudflare describes what it
runs through ``GET .../settings`` (bindings, compatibility), the queues list (consumers) and the
version annotations (the code tag). Both sides are turned into the same normal form here:

- a binding is ``(type, {identity fields})`` keyed by binding name — only the fields that say *which*
  resource it is (``id`` for D1, ``namespace_id`` for KV, ``service`` for a service binding...);
- vars are a plain ``{name: text}`` mapping; secrets are not compared (they are set out of band);
- a queue consumer is its queue plus only the settings the config sets, and its dead-letter queue.

Fields Cloudflare fills in by itself are dropped by construction, which is what keeps drift free of
false diffs: ``observability.head_sampling_rate``, ``placement``, ``tags`` (wrangler adds service tags),
``tail_consumers``, ``usage_model``, ``logpush``, a service binding's ``environment: "production"``,
binding order, consumer settings the config leaves unset (filled with platform defaults),
``consumer_id``/``created_on``, and every timestamp.

To compare a new binding kind: add its identity fields to ``_IDENTITY`` and its config section to
:func:`expected_bindings`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .render import RenderedWorker

__all__ = [
    "Binding",
    "ExpectedConsumer",
    "ExpectedWorker",
    "actual_bindings",
    "actual_consumer",
    "expected_worker",
    "migration_names",
]

# Binding type -> the fields that identify the bound resource.
_IDENTITY: Mapping[str, tuple[str, ...]] = {
    "ai": (),
    "d1": ("id",),
    "kv_namespace": ("namespace_id",),
    "r2_bucket": ("bucket_name",),
    "vectorize": ("index_name",),
    "queue": ("queue_name",),
    "service": ("service", "entrypoint"),
    "ratelimit": ("namespace_id", "simple"),
    "analytics_engine": ("dataset",),
}
# Config consumer key -> API consumer setting (and the unit conversion).
_CONSUMER_SETTINGS: Mapping[str, tuple[str, int]] = {
    "max_batch_size": ("batch_size", 1),
    "max_retries": ("max_retries", 1),
    "max_batch_timeout": ("max_wait_time_ms", 1000),
    "max_concurrency": ("max_concurrency", 1),
    "retry_delay": ("retry_delay", 1),
}


@dataclass(frozen=True)
class Binding:
    type: str
    identity: tuple[tuple[str, str], ...]

    def describe(self) -> str:
        fields = ", ".join(f"{k}={v}" for k, v in self.identity)
        return f"{self.type}({fields})" if fields else self.type


def _binding(kind: str, values: Mapping[str, Any]) -> Binding:
    keys = _IDENTITY.get(kind)
    if keys is None:  # an unknown kind: compare everything Cloudflare does not obviously own
        keys = tuple(sorted(k for k in values if k not in ("name", "type")))
    identity = []
    for key in keys:
        value = values.get(key)
        if value is None:
            continue
        if key == "simple" and isinstance(value, Mapping):
            value = f"{value.get('limit')}/{value.get('period')}s"
        identity.append((key, str(value)))
    return Binding(kind, tuple(identity))


@dataclass(frozen=True)
class ExpectedConsumer:
    queue: str
    settings: Mapping[str, int]
    dead_letter_queue: str | None


@dataclass(frozen=True)
class ExpectedWorker:
    worker: str
    name: str
    compatibility_date: str
    compatibility_flags: tuple[str, ...]
    observability_enabled: bool | None
    vars: Mapping[str, str]
    bindings: Mapping[str, Binding]
    consumers: tuple[ExpectedConsumer, ...] = field(default=())


def expected_bindings(config: Mapping[str, Any]) -> dict[str, Binding]:
    out: dict[str, Binding] = {}
    if "ai" in config:
        out[str(config["ai"]["binding"])] = _binding("ai", {})
    for d in config.get("d1_databases", []):
        out[str(d["binding"])] = _binding("d1", {"id": d["database_id"]})
    for k in config.get("kv_namespaces", []):
        out[str(k["binding"])] = _binding("kv_namespace", {"namespace_id": k["id"]})
    for b in config.get("r2_buckets", []):
        out[str(b["binding"])] = _binding("r2_bucket", {"bucket_name": b["bucket_name"]})
    for v in config.get("vectorize", []):
        out[str(v["binding"])] = _binding("vectorize", {"index_name": v["index_name"]})
    for p in config.get("queues", {}).get("producers", []):
        out[str(p["binding"])] = _binding("queue", {"queue_name": p["queue"]})
    for s in config.get("services", []):
        out[str(s["binding"])] = _binding(
            "service", {"service": s["service"], "entrypoint": s.get("entrypoint")}
        )
    for d in config.get("analytics_engine_datasets", []):
        out[str(d["binding"])] = _binding("analytics_engine", {"dataset": d["dataset"]})
    for r in config.get("ratelimits", []):
        out[str(r["name"])] = _binding(
            "ratelimit", {"namespace_id": r["namespace_id"], "simple": r["simple"]}
        )
    return out


def expected_worker(rendered: RenderedWorker) -> ExpectedWorker:
    config = rendered.config
    consumers = []
    for c in config.get("queues", {}).get("consumers", []):
        settings = {
            api: int(c[key]) * factor for key, (api, factor) in _CONSUMER_SETTINGS.items() if key in c
        }
        consumers.append(ExpectedConsumer(str(c["queue"]), settings, c.get("dead_letter_queue")))
    observability = config.get("observability")
    return ExpectedWorker(
        worker=rendered.worker,
        name=rendered.name,
        compatibility_date=str(config.get("compatibility_date", "")),
        compatibility_flags=tuple(sorted(config.get("compatibility_flags", []))),
        observability_enabled=bool(observability.get("enabled"))
        if isinstance(observability, Mapping)
        else None,
        vars={str(k): str(v) for k, v in config.get("vars", {}).items()},
        bindings=expected_bindings(config),
        consumers=tuple(consumers),
    )


def actual_bindings(settings: Mapping[str, Any]) -> tuple[dict[str, str], dict[str, Binding]]:
    """Split a settings answer's bindings into vars and normalised resource bindings."""
    variables: dict[str, str] = {}
    bindings: dict[str, Binding] = {}
    for b in settings.get("bindings") or []:
        kind, name = str(b.get("type")), str(b.get("name"))
        if kind == "plain_text":
            variables[name] = str(b.get("text", ""))
        elif kind == "json":
            variables[name] = str(b.get("json"))
        elif kind in ("secret_text", "secret_key", "inherit"):
            continue  # secrets are set out of band and never compared (their values are not readable)
        else:
            values = dict(b)
            if kind == "d1" and "id" not in values:
                values["id"] = values.get("database_id")
            bindings[name] = _binding(kind, values)
    return variables, bindings


def actual_consumer(consumer: Mapping[str, Any], expected: ExpectedConsumer) -> dict[str, int | str | None]:
    """The consumer's values for exactly the settings ``expected`` sets, plus its dead-letter queue."""
    settings = consumer.get("settings") or {}
    values: dict[str, int | str | None] = {k: settings.get(k) for k in expected.settings}
    values["dead_letter_queue"] = consumer.get("dead_letter_queue") or None
    return values


def migration_names(migrations_dir: Path) -> list[str]:
    """The migration files wrangler applies, in order (``NNNN_name.sql``)."""
    if not migrations_dir.is_dir():
        return []
    return sorted(p.name for p in migrations_dir.glob("*.sql"))
