"""Render the three workers' wrangler configs for one tenant and environment (pure, deterministic).

Inputs: the repository's configs (``wrangler.toml`` — the stack manifest naming the canonical shared
resources — and ``workers/<w>/wrangler.toml``), a :class:`~edgerag_ops.tenants.Tenant`, an environment
name, and the :class:`ResourceIds` that only exist once Cloudflare created the resources (D1 uuid, KV
namespace id). Output: one TOML text per worker, byte-identical for the same input (fixed key order,
sorted vars), checked by golden files in ``tests/deploy/golden/``.

What changes per tenant:

- ``name`` becomes ``<tenant>-edgerag-<worker>[-<env>]``; ``account_id`` is the tenant's.
- every resource is recognised by its canonical name in the manifest and replaced by the tenant's
  (``Tenant.resource_names(env)``): D1 name and id, KV id, R2 bucket, Vectorize index, the ingest queue
  and its dead-letter queue, in producers and consumers alike;
- queue consumer settings take the tenant's overrides; service bindings point at the tenant's own
  workers; the rate-limit binding takes the tenant's limit, period and namespace id;
- vars: the worker's vars, then the tenant's models (``EMBEDDING_MODEL``; ``MODELS_CONFIG``, the
  providers, catalog and per-plan routing as canonical JSON) and identity (``EDGERAG_TENANT``, ...),
  then the tenant's ``vars``, then the environment's ``vars``;
- ``workers_dev``/``routes`` come from the environment; ``migrations_dir`` points at the build
  layout's ``../migrations`` (see ``edgerag_ops.build``).

A template key the renderer does not know fails loudly (:class:`RenderError`) instead of being
copied with the canonical resource names in it. To support a new binding kind, add a ``_render_*``
step and its key to ``_BINDING_KEYS``; to pass a new harmless key through, add it to ``_PASSTHROUGH``.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import tomli_w

from .tenants import Tenant

__all__ = [
    "DEPLOY_ORDER",
    "PUBLIC_WORKER",
    "RenderError",
    "RenderedWorker",
    "ResourceIds",
    "Templates",
    "render_all",
    "render_worker",
]

# Service-binding targets first: the gateway binds dedalus, so dedalus (and ingest) deploy before it.
DEPLOY_ORDER: tuple[str, ...] = ("ingest", "dedalus", "gateway")
PUBLIC_WORKER = "gateway"

_ENV_LABEL = {"dev": "development", "staging": "staging", "prod": "production"}
# Manifest producer binding -> which tenant queue it is.
_QUEUE_ROLES = {"INGEST_QUEUE": "ingest", "INGEST_DLQ": "dead_letter"}
_PASSTHROUGH = (
    "main",
    "compatibility_date",
    "compatibility_flags",
    "observability",
    "limits",
    "placement",
    "logpush",
    "upload_source_maps",
    "python_modules",
    "rules",
    "minify",
    "keep_vars",
    "triggers",
)
_BINDING_KEYS = (
    "ai",
    "d1_databases",
    "kv_namespaces",
    "r2_buckets",
    "vectorize",
    "queues",
    "services",
    "ratelimits",
    "analytics_engine_datasets",
)
_HANDLED = {"name", "vars", "workers_dev", "routes", "route", *_PASSTHROUGH, *_BINDING_KEYS}


class RenderError(ValueError):
    """A template the renderer cannot map onto a tenant; the message names the file and the key."""


@dataclass(frozen=True)
class ResourceIds:
    """Ids Cloudflare assigns at creation; discovered (or created) by deploy, recorded, passed in here."""

    d1_database_id: str
    kv_namespace_id: str


@dataclass(frozen=True)
class Templates:
    """The repository's wrangler configs, parsed once."""

    manifest: Mapping[str, Any]
    workers: Mapping[str, Mapping[str, Any]]
    paths: Mapping[str, Path]

    @classmethod
    def load(cls, repo_root: Path | str) -> Templates:
        root = Path(repo_root)
        paths = {"manifest": root / "wrangler.toml"} | {
            w: root / "workers" / w / "wrangler.toml" for w in DEPLOY_ORDER
        }
        parsed: dict[str, Mapping[str, Any]] = {}
        for key, path in paths.items():
            try:
                parsed[key] = tomllib.loads(path.read_text(encoding="utf-8"))
            except (OSError, tomllib.TOMLDecodeError) as exc:
                raise RenderError(f"{path}: cannot read wrangler config: {exc}") from exc
        manifest = parsed.pop("manifest")
        return cls(manifest=manifest, workers=parsed, paths=paths)


@dataclass(frozen=True)
class RenderedWorker:
    worker: str
    name: str
    config: Mapping[str, Any]
    text: str


class _Canon:
    """Canonical resource identities from the manifest, mapped to the tenant's."""

    def __init__(self, templates: Templates, tenant: Tenant, env: str, ids: ResourceIds) -> None:
        m = templates.manifest
        self.where = templates.paths["manifest"]
        names = tenant.resource_names(env)
        self.d1 = {str(d["database_name"]): (names.d1, ids.d1_database_id) for d in m.get("d1_databases", [])}
        self.kv = {str(k["id"]): ids.kv_namespace_id for k in m.get("kv_namespaces", [])}
        self.r2 = {str(b["bucket_name"]): names.r2 for b in m.get("r2_buckets", [])}
        self.vectorize = {str(v["index_name"]): names.vectorize for v in m.get("vectorize", [])}
        datasets = m.get("analytics_engine_datasets", [])
        self.datasets = {str(d["dataset"]): names.metrics_dataset for d in datasets}
        by_role = {"ingest": names.ingest_queue, "dead_letter": names.dead_letter_queue}
        self.queues: dict[str, str] = {}
        self.roles: dict[str, str] = {}
        for producer in m.get("queues", {}).get("producers", []):
            role = _QUEUE_ROLES.get(str(producer.get("binding")))
            if role is None:
                raise RenderError(
                    f"{self.where}: queue binding {producer.get('binding')!r} has no tenant "
                    f"queue role (known: {', '.join(sorted(_QUEUE_ROLES))})"
                )
            self.queues[str(producer["queue"])] = by_role[role]
            self.roles[str(producer["queue"])] = role
        stack = str(m.get("name", "edgerag"))
        self.services = {f"{stack}-{w}": tenant.worker_name(w, env) for w in DEPLOY_ORDER}

    def rename(self, value: str) -> str:
        for table in (self.queues, self.r2, self.vectorize, {k: v[0] for k, v in self.d1.items()}):
            if value in table:
                return str(table[value])
        return value

    def lookup(self, table: Mapping[str, Any], key: str, kind: str, path: Path) -> Any:
        if key not in table:
            raise RenderError(f"{path}: {kind} {key!r} is not declared in the stack manifest {self.where}")
        return table[key]


def _vars(template: Mapping[str, Any], canon: _Canon, tenant: Tenant, env: str) -> dict[str, str]:
    # A var whose value is a canonical resource name (DEAD_LETTER_QUEUE = "edgerag-ingest-dlq") names
    # that resource: it must follow the tenant's name for it like the binding does.
    values: dict[str, str] = {str(k): canon.rename(str(v)) for k, v in template.get("vars", {}).items()}
    if "EMBEDDING_MODEL" in values:
        values["EMBEDDING_MODEL"] = tenant.models.embedding
    if "MODELS_CONFIG" in values:
        # Providers, catalog and per-plan routing as one canonical JSON text: the same tenant file
        # always renders the same bytes, so drift compares it like any other var.
        values["MODELS_CONFIG"] = tenant.models_config().to_json()
    if "ENVIRONMENT" in values:
        values["ENVIRONMENT"] = _ENV_LABEL[env]
    values["EDGERAG_TENANT"] = tenant.name
    values["EDGERAG_PLAN"] = tenant.plan
    values["EDGERAG_SHARED_STACK"] = "true" if tenant.shared_stack else "false"
    values.update(tenant.vars)
    values.update(tenant.environment(env).vars)
    if "RATE_LIMIT_PERIOD" in values:
        # The gateway's Retry-After needs its rate-limit binding's period, which the binding cannot
        # report; it must follow the tenant's [rate_limits] exactly like the binding does.
        values["RATE_LIMIT_PERIOD"] = str(tenant.rate_limits.period)
    return dict(sorted(values.items()))


def _routes(tenant: Tenant, env: str) -> list[Any]:
    environment = tenant.environment(env)
    if environment.custom_domain:
        return [{"pattern": environment.custom_domain, "custom_domain": True}]
    if environment.route:
        # A bare pattern lets wrangler find the zone itself (the host, then each parent domain); a table
        # must name its zone.
        if environment.zone_name:
            return [{"pattern": environment.route, "zone_name": environment.zone_name}]
        return [environment.route]
    return []


def _queues(section: Mapping[str, Any], canon: _Canon, tenant: Tenant, path: Path) -> dict[str, Any]:
    out: dict[str, Any] = {}
    producers = [
        {"binding": str(p["binding"]), "queue": canon.lookup(canon.queues, str(p["queue"]), "queue", path)}
        for p in section.get("producers", [])
    ]
    if producers:
        out["producers"] = producers
    consumers = []
    tenant_settings = tenant.queues.consumer.model_dump(exclude_none=True)
    for c in section.get("consumers", []):
        consumer: dict[str, Any] = {"queue": canon.lookup(canon.queues, str(c["queue"]), "queue", path)}
        # The tenant's consumer settings tune the ingest queue; the dead-letter consumer keeps the repo's.
        overrides = tenant_settings if canon.roles.get(str(c["queue"])) == "ingest" else {}
        for key in ("max_batch_size", "max_batch_timeout", "max_retries", "max_concurrency", "retry_delay"):
            value = overrides.get(key, c.get(key))
            if value is not None:
                consumer[key] = value
        if c.get("dead_letter_queue"):
            consumer["dead_letter_queue"] = canon.lookup(
                canon.queues, str(c["dead_letter_queue"]), "queue", path
            )
        consumers.append(consumer)
    if consumers:
        out["consumers"] = consumers
    unknown = set(section) - {"producers", "consumers"}
    if unknown:
        raise RenderError(f"{path}: unsupported queues keys {sorted(unknown)}")
    return out


def _bindings(
    template: Mapping[str, Any], canon: _Canon, tenant: Tenant, path: Path, migrations_dir: str
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if "ai" in template:
        out["ai"] = {"binding": str(template["ai"]["binding"])}
    if template.get("d1_databases"):
        dbs = []
        for d in template["d1_databases"]:
            name, uuid = canon.lookup(canon.d1, str(d["database_name"]), "D1 database", path)
            db = {"binding": str(d["binding"]), "database_name": name, "database_id": uuid}
            if "migrations_dir" in d:
                db["migrations_dir"] = migrations_dir
            dbs.append(db)
        out["d1_databases"] = dbs
    if template.get("kv_namespaces"):
        out["kv_namespaces"] = [
            {"binding": str(k["binding"]), "id": canon.lookup(canon.kv, str(k["id"]), "KV namespace", path)}
            for k in template["kv_namespaces"]
        ]
    if template.get("r2_buckets"):
        out["r2_buckets"] = [
            {
                "binding": str(b["binding"]),
                "bucket_name": canon.lookup(canon.r2, str(b["bucket_name"]), "R2 bucket", path),
            }
            for b in template["r2_buckets"]
        ]
    if template.get("vectorize"):
        out["vectorize"] = [
            {
                "binding": str(v["binding"]),
                "index_name": canon.lookup(canon.vectorize, str(v["index_name"]), "Vectorize index", path),
            }
            for v in template["vectorize"]
        ]
    if template.get("queues"):
        queues = _queues(template["queues"], canon, tenant, path)
        if queues:
            out["queues"] = queues
    if template.get("services"):
        out["services"] = [
            {
                "binding": str(s["binding"]),
                "service": canon.lookup(canon.services, str(s["service"]), "service", path),
                **({"entrypoint": s["entrypoint"]} if "entrypoint" in s else {}),
            }
            for s in template["services"]
        ]
    if template.get("analytics_engine_datasets"):
        out["analytics_engine_datasets"] = [
            {
                "binding": str(d["binding"]),
                "dataset": canon.lookup(canon.datasets, str(d["dataset"]), "Analytics Engine dataset", path),
            }
            for d in template["analytics_engine_datasets"]
        ]
    if template.get("ratelimits"):
        rl = tenant.rate_limits
        out["ratelimits"] = [
            {
                "name": str(r["name"]),
                "namespace_id": rl.namespace_id,
                "simple": {"limit": rl.requests_per_period, "period": rl.period},
            }
            for r in template["ratelimits"]
        ]
    return out


def render_worker(
    templates: Templates, tenant: Tenant, env: str, ids: ResourceIds, worker: str
) -> RenderedWorker:
    """Render one worker's config. Raises :class:`RenderError` for templates it cannot map."""
    if worker not in templates.workers:
        raise RenderError(f"unknown worker {worker!r}; known: {', '.join(DEPLOY_ORDER)}")
    template = templates.workers[worker]
    path = templates.paths[worker]
    unknown = sorted(set(template) - _HANDLED)
    if unknown:
        raise RenderError(
            f"{path}: the renderer does not know the key(s) {unknown}; teach edgerag_ops.render"
        )
    if template.get("routes") or template.get("route"):
        raise RenderError(
            f"{path}: routes belong in the tenant file's environments, not in the worker config"
        )
    canon = _Canon(templates, tenant, env, ids)
    environment = tenant.environment(env)
    name = tenant.worker_name(worker, env)
    config: dict[str, Any] = {"name": name, "account_id": tenant.account_id}
    for key in _PASSTHROUGH:
        if key in template:
            config[key] = template[key]
    # Only the gateway faces the internet; dedalus and ingest are reached through the service binding
    # and the queue, so they get neither a workers.dev address nor routes.
    public = worker == PUBLIC_WORKER
    config["workers_dev"] = environment.workers_dev if public else False
    routes = _routes(tenant, env) if public else []
    if routes:
        config["routes"] = routes
    config["vars"] = _vars(template, canon, tenant, env)
    config.update(_bindings(template, canon, tenant, path, "../migrations"))
    header = (
        f"# Rendered by edgerag_ops.render for tenant {tenant.name!r}, environment {env!r}.\n"
        f"# Do not edit: change tenants/{tenant.name}.toml or workers/{worker}/wrangler.toml and re-render.\n"
    )
    return RenderedWorker(worker=worker, name=name, config=config, text=header + tomli_w.dumps(config))


def render_all(templates: Templates, tenant: Tenant, env: str, ids: ResourceIds) -> dict[str, RenderedWorker]:
    """All three workers, in :data:`DEPLOY_ORDER`."""
    return {w: render_worker(templates, tenant, env, ids, w) for w in DEPLOY_ORDER}
