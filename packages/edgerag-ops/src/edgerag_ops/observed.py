"""Read what is deployed for one tenant through the Cloudflare API and compare it with what should be.

Used by drift (report every difference), by deploy (decide what to create, skip a worker whose
deployment already matches, verify each deployment afterwards) and therefore by ``--fix``.

:func:`observe` reads the tenant's resources by name (D1, KV, R2, Vectorize with its metadata indexes,
queues); :func:`resource_drift` compares them with the tenant file; :func:`worker_drift` compares one
worker's settings, consumers and code tag with its rendered config; :func:`migration_drift` compares
the ``d1_migrations`` bookkeeping table with the repository's migration files.

Every difference is a :class:`DriftItem` with a ``fix``: ``redeploy`` (deploying the worker named in
``worker`` restores it), ``create`` (deploy creates the missing resource), ``migrate`` (deploy applies
pending migrations) or ``manual`` (nothing safe can do it automatically, e.g. a Vectorize index's
dimensions, which cannot change in place).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .cloudflare import CloudflareClient, CloudflareError
from .desired import ExpectedWorker, actual_bindings, actual_consumer
from .render import ResourceIds
from .tenants import Tenant

__all__ = [
    "CODE_TAG_ANNOTATION",
    "MISSING_ID",
    "DriftItem",
    "Observed",
    "applied_migrations",
    "deployed_code_tag",
    "migration_drift",
    "observe",
    "resource_drift",
    "worker_drift",
]

CODE_TAG_ANNOTATION = "workers/tag"
# Stand-in id for a resource that does not exist yet (drift of a never-deployed tenant, dry runs).
MISSING_ID = "<missing>"


@dataclass(frozen=True)
class DriftItem:
    kind: str
    target: str
    field: str
    expected: str | None
    actual: str | None
    fix: str
    worker: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "target": self.target,
            "field": self.field,
            "expected": self.expected,
            "actual": self.actual,
            "fix": self.fix,
            "worker": self.worker,
        }


@dataclass
class Observed:
    """The tenant's resources as Cloudflare reports them (``None``: does not exist)."""

    d1: dict[str, Any] | None = None
    kv: dict[str, Any] | None = None
    r2: dict[str, Any] | None = None
    vectorize: dict[str, Any] | None = None
    metadata_indexes: dict[str, str] = field(default_factory=dict)
    queues: dict[str, dict[str, Any]] = field(default_factory=dict)

    def ids(self) -> ResourceIds:
        return ResourceIds(
            d1_database_id=str(self.d1["uuid"]) if self.d1 else MISSING_ID,
            kv_namespace_id=str(self.kv["id"]) if self.kv else MISSING_ID,
        )


def observe(client: CloudflareClient, tenant: Tenant, env: str) -> Observed:
    names = tenant.resource_names(env)
    seen = Observed()
    seen.d1 = next((d for d in client.d1_databases() if d.get("name") == names.d1), None)
    seen.kv = next((k for k in client.kv_namespaces() if k.get("title") == names.kv), None)
    seen.r2 = client.r2_bucket(names.r2)
    seen.vectorize = client.vectorize_index(names.vectorize)
    if seen.vectorize is not None:
        seen.metadata_indexes = {
            str(m["propertyName"]): str(m["indexType"]) for m in client.metadata_indexes(names.vectorize)
        }
    wanted = {names.ingest_queue, names.dead_letter_queue}
    seen.queues = {str(q["queue_name"]): q for q in client.queues() if q.get("queue_name") in wanted}
    return seen


def resource_drift(tenant: Tenant, env: str, seen: Observed) -> list[DriftItem]:
    names = tenant.resource_names(env)
    items: list[DriftItem] = []

    def missing(kind: str, name: str) -> None:
        items.append(DriftItem("resource", name, kind, "exists", "missing", "create"))

    if seen.d1 is None:
        missing("d1", names.d1)
    if seen.kv is None:
        missing("kv", names.kv)
    if seen.r2 is None:
        missing("r2", names.r2)
    for queue in (names.dead_letter_queue, names.ingest_queue):
        if queue not in seen.queues:
            missing("queue", queue)
    want = tenant.vectorize
    if seen.vectorize is None:
        missing("vectorize", names.vectorize)
        return items
    config = seen.vectorize.get("config") or {}
    for key, expected in (("dimensions", want.dimensions), ("metric", want.metric)):
        if str(config.get(key)) != str(expected):
            items.append(
                DriftItem("vectorize", names.vectorize, key, str(expected), str(config.get(key)), "manual")
            )
    for prop, kind in sorted(want.metadata_indexes.items()):
        have = seen.metadata_indexes.get(prop)
        if have is None:
            items.append(
                DriftItem("vectorize", names.vectorize, f"metadata_index.{prop}", kind, None, "create")
            )
        elif have != kind:
            items.append(
                DriftItem("vectorize", names.vectorize, f"metadata_index.{prop}", kind, have, "manual")
            )
    for prop in sorted(set(seen.metadata_indexes) - set(want.metadata_indexes)):
        items.append(
            DriftItem(
                "vectorize",
                names.vectorize,
                f"metadata_index.{prop}",
                None,
                seen.metadata_indexes[prop],
                "manual",
            )
        )
    return items


def _diff_map(
    kind: str, target: str, worker: str, expected: Mapping[str, str], actual: Mapping[str, str]
) -> list[DriftItem]:
    items = []
    for key in sorted(set(expected) | set(actual)):
        want, have = expected.get(key), actual.get(key)
        if want != have:
            items.append(DriftItem(kind, target, key, want, have, "redeploy", worker))
    return items


def worker_drift(
    client: CloudflareClient,
    expected: ExpectedWorker,
    code_tag: str | None,
    queues: Mapping[str, Mapping[str, Any]],
) -> list[DriftItem]:
    """Differences between one worker's rendered config and its deployment (empty: it matches)."""
    name, worker = expected.name, expected.worker
    settings = client.script_settings(name)
    if settings is None:
        return [DriftItem("worker", name, "exists", "deployed", "missing", "redeploy", worker)]
    items: list[DriftItem] = []
    if str(settings.get("compatibility_date")) != expected.compatibility_date:
        items.append(
            DriftItem(
                "compatibility",
                name,
                "compatibility_date",
                expected.compatibility_date,
                str(settings.get("compatibility_date")),
                "redeploy",
                worker,
            )
        )
    flags = tuple(sorted(settings.get("compatibility_flags") or []))
    if flags != expected.compatibility_flags:
        items.append(
            DriftItem(
                "compatibility",
                name,
                "compatibility_flags",
                ",".join(expected.compatibility_flags),
                ",".join(flags),
                "redeploy",
                worker,
            )
        )
    observability = settings.get("observability") or {}
    if (
        expected.observability_enabled is not None
        and bool(observability.get("enabled")) != expected.observability_enabled
    ):
        items.append(
            DriftItem(
                "observability",
                name,
                "observability.enabled",
                str(expected.observability_enabled),
                str(bool(observability.get("enabled"))),
                "redeploy",
                worker,
            )
        )
    variables, bindings = actual_bindings(settings)
    items += _diff_map("var", name, worker, expected.vars, variables)
    items += _diff_map(
        "binding",
        name,
        worker,
        {k: v.describe() for k, v in expected.bindings.items()},
        {k: v.describe() for k, v in bindings.items()},
    )
    items += _consumer_drift(expected, queues)
    if code_tag is not None:
        tag = deployed_code_tag(client, name)
        if tag != code_tag:
            items.append(DriftItem("code", name, CODE_TAG_ANNOTATION, code_tag, tag, "redeploy", worker))
    return items


def _tag(version: Mapping[str, Any]) -> str | None:
    value = (version.get("annotations") or {}).get(CODE_TAG_ANNOTATION)
    return None if value is None else str(value)


def _etag(version: Mapping[str, Any]) -> str | None:
    value = ((version.get("resources") or {}).get("script") or {}).get("etag")
    return None if value is None else str(value)


def deployed_code_tag(client: CloudflareClient, script: str, lookback: int = 10) -> str | None:
    """The code tag of what runs now: the active version's ``workers/tag``, or — when a settings edit
    (dashboard, API) made a new untagged version of the same code — the tag of the newest tagged version
    with the same script ``etag``. A settings edit is then reported as the setting it changed, not as
    a code change too.
    """
    active = client.active_version(script)
    if active is None:
        return None
    if _tag(active) is not None:
        return _tag(active)
    etag = _etag(active)
    for listed in client.versions(script)[:lookback]:
        if _tag(listed) is None:
            continue
        candidate = client.version(script, str(listed["id"]))
        if etag is not None and _etag(candidate) == etag:
            return _tag(candidate)
    return None


def _consumer_drift(expected: ExpectedWorker, queues: Mapping[str, Mapping[str, Any]]) -> list[DriftItem]:
    items: list[DriftItem] = []
    name, worker = expected.name, expected.worker
    wanted = {c.queue for c in expected.consumers}
    for consumer in expected.consumers:
        queue = queues.get(consumer.queue)
        mine = [
            c
            for c in (queue or {}).get("consumers") or []
            if c.get("script") == name or c.get("service") == name
        ]
        if not mine:
            items.append(
                DriftItem("queue-consumer", consumer.queue, "consumer", name, None, "redeploy", worker)
            )
            continue
        actual = actual_consumer(mine[0], consumer)
        want: dict[str, int | str | None] = {
            **consumer.settings,
            "dead_letter_queue": consumer.dead_letter_queue,
        }
        for key in want:
            if actual.get(key) != want[key]:
                items.append(
                    DriftItem(
                        "queue-consumer",
                        consumer.queue,
                        key,
                        _s(want[key]),
                        _s(actual.get(key)),
                        "redeploy",
                        worker,
                    )
                )
    for queue_name, queue in sorted(queues.items()):
        if queue_name in wanted:
            continue
        for c in queue.get("consumers") or []:
            if c.get("script") == name or c.get("service") == name:
                items.append(
                    DriftItem("queue-consumer", queue_name, "consumer", None, name, "manual", worker)
                )
    return items


def _s(value: object) -> str | None:
    return None if value is None else str(value)


def applied_migrations(client: CloudflareClient, database_id: str) -> list[str]:
    """Names recorded in ``d1_migrations`` (empty when the table does not exist yet)."""
    try:
        result = client.d1_query(database_id, "SELECT name FROM d1_migrations ORDER BY id")
    except CloudflareError as exc:
        if any("no such table" in message for _, message in exc.errors):
            return []
        raise
    rows = result[0].get("results") if result else []
    return [str(r["name"]) for r in rows or []]


def migration_drift(database: str, expected: list[str], applied: list[str]) -> list[DriftItem]:
    items = [
        DriftItem("migration", database, name, "applied", "not applied", "migrate")
        for name in expected
        if name not in applied
    ]
    items += [
        DriftItem("migration", database, name, "not in repository", "applied", "manual")
        for name in applied
        if name not in expected
    ]
    return items
