"""deploy-one: bring one tenant's environment to what the repository and its tenant file say.

Order, and why:

1. **Validate and authenticate** — tenant file (already loaded), repository templates, the token from
   the named variable, ``verify()`` against the API, and the immutable Vectorize settings. Nothing has
   changed yet when any of these fails.
2. **Create missing resources** through the API: queues (dead-letter queue first, since the ingest
   consumer names it), D1, KV, R2, Vectorize and its metadata indexes (which must exist before vectors).
3. **Render and build** the three configs with the resources' real ids (``edgerag_ops.render`` and
   ``edgerag_ops.build``).
4. **Apply pending D1 migrations** with ``wrangler d1 migrations apply <db> --remote``.
5. **Deploy ingest, dedalus, gateway** in that order (service-binding targets first) with
   ``wrangler deploy --tag <content tag>``, skipping a worker whose deployment already matches (same
   settings, consumers and code tag) — that is what makes a second run change nothing.
6. **Verify** each deployment by reading it back and comparing (``edgerag_ops.observed``).
7. **Record** the result in ``<work_dir>/deployments/<tenant>-<env>.json`` (rewritten only when
   something changed or no record exists).

A failure raises :class:`DeployError`, whose message says what failed and exactly how to roll back
the workers this run had already changed (``wrangler rollback <previous version> --name <worker>``).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .build import BuildError, BuiltWorker, build_tree
from .cloudflare import CloudflareClient, CloudflareError, Credentials, base_url_from
from .desired import expected_worker, migration_names
from .observed import Observed, applied_migrations, observe, resource_drift, worker_drift
from .render import DEPLOY_ORDER, RenderedWorker, RenderError, Templates, render_all
from .tenants import Tenant
from .wrangler import Wrangler, WranglerError, find_wrangler

__all__ = ["Action", "DeployError", "DeployOptions", "DeployResult", "deploy_one"]

Reporter = Callable[[str], None]


def _utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class DeployOptions:
    repo_root: Path
    env: str = "dev"
    dry_run: bool = False
    environ: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))
    work_dir: Path | None = None  # default <repo>/.edgerag
    migrations_dir: Path | None = None  # default <repo>/migrations
    wrangler_command: tuple[str, ...] | None = None
    sync_command: tuple[str, ...] | None = None
    clock: Callable[[], datetime] = _utc_now

    @property
    def work(self) -> Path:
        return self.work_dir if self.work_dir is not None else self.repo_root / ".edgerag"

    def build_dir(self, tenant: Tenant) -> Path:
        return self.work / "build" / f"{tenant.name}-{self.env}"

    def record_path(self, tenant: Tenant) -> Path:
        return self.work / "deployments" / f"{tenant.name}-{self.env}.json"


@dataclass(frozen=True)
class Action:
    """One thing deploy did (or, in a dry run, would do)."""

    verb: str  # create | migrate | deploy | unchanged | would-create | would-migrate | would-deploy
    target: str
    detail: str = ""

    def __str__(self) -> str:
        return f"{self.verb:<13} {self.target}" + (f"  ({self.detail})" if self.detail else "")


@dataclass
class DeployResult:
    tenant: str
    env: str
    actions: list[Action]
    record_path: Path | None = None
    versions: dict[str, str] = field(default_factory=dict)

    @property
    def changed(self) -> bool:
        return any(a.verb in ("create", "migrate", "deploy") for a in self.actions)


class DeployError(Exception):
    """A deploy stopped. ``str()`` says where, why, and how to roll back what this run changed."""

    def __init__(
        self, tenant: str, env: str, stage: str, reason: str, rollback: list[str] | None = None
    ) -> None:
        self.tenant, self.env, self.stage, self.reason = tenant, env, stage, reason
        self.rollback = list(rollback or [])
        lines = [f"deploy of {tenant} ({env}) failed at {stage}: {reason}"]
        if self.rollback:
            lines.append("To roll back what this run changed (see docs/runbooks/rollback.md):")
            lines += [f"  {step}" for step in self.rollback]
        else:
            lines.append("Nothing was deployed by this run; no rollback is needed.")
        super().__init__("\n".join(lines))


@dataclass
class _Run:
    """Mutable bookkeeping of one deploy (what changed so far, for rollback advice)."""

    tenant: Tenant
    options: DeployOptions
    report: Reporter
    actions: list[Action] = field(default_factory=list)
    deployed: list[tuple[str, str | None]] = field(default_factory=list)  # (worker name, previous version)
    migrated_at: str | None = None

    def act(self, verb: str, target: str, detail: str = "") -> None:
        action = Action(verb, target, detail)
        self.actions.append(action)
        self.report(f"{self.tenant.name}/{self.options.env}: {action}")

    def changed(self) -> bool:
        return any(a.verb in ("create", "migrate", "deploy") for a in self.actions)

    def rollback_steps(self) -> list[str]:
        account, token_env = self.tenant.account_id, self.tenant.api_token_env
        env = f'CLOUDFLARE_ACCOUNT_ID={account} CLOUDFLARE_API_TOKEN="${token_env}"'
        steps = []
        for name, previous in reversed(self.deployed):
            if previous:
                steps.append(
                    f"{env} npx wrangler rollback {previous} --name {name} "
                    f"-m 'roll back failed edgerag deploy' -y"
                )
            else:
                steps.append(f"{env} npx wrangler delete {name}   # it did not exist before this run")
        if self.migrated_at:
            names = self.tenant.resource_names(self.options.env)
            steps.append(
                f"{env} npx wrangler d1 time-travel restore {names.d1} --timestamp {self.migrated_at}"
                "   # only if the new migrations must be undone"
            )
        return steps

    def fail(self, stage: str, reason: str) -> DeployError:
        return DeployError(self.tenant.name, self.options.env, stage, reason, self.rollback_steps())


def _ensure_resources(run: _Run, client: CloudflareClient, seen: Observed) -> None:
    tenant, env = run.tenant, run.options.env
    names = tenant.resource_names(env)
    dry = run.options.dry_run
    verb = "would-create" if dry else "create"
    for queue in (names.dead_letter_queue, names.ingest_queue):
        if queue not in seen.queues:
            run.act(verb, f"queue {queue}")
            if not dry:
                seen.queues[queue] = {**client.queue_create(queue), "consumers": []}
    if seen.d1 is None:
        run.act(verb, f"d1 {names.d1}")
        if not dry:
            seen.d1 = client.d1_create(names.d1)
    if seen.kv is None:
        run.act(verb, f"kv {names.kv}")
        if not dry:
            seen.kv = client.kv_create(names.kv)
    if seen.r2 is None:
        run.act(verb, f"r2 {names.r2}")
        if not dry:
            seen.r2 = client.r2_create(names.r2)
    want = tenant.vectorize
    if seen.vectorize is None:
        run.act(verb, f"vectorize {names.vectorize}", f"{want.dimensions} dims, {want.metric}")
        if not dry:
            seen.vectorize = client.vectorize_create(names.vectorize, want.dimensions, want.metric)
    for prop, kind in sorted(want.metadata_indexes.items()):
        if prop not in seen.metadata_indexes:
            run.act(verb, f"vectorize {names.vectorize} metadata index {prop}", kind)
            if not dry:
                client.metadata_index_create(names.vectorize, prop, kind)
                seen.metadata_indexes[prop] = kind


def _migrate(
    run: _Run,
    client: CloudflareClient,
    wrangler: Wrangler,
    seen: Observed,
    built: Mapping[str, BuiltWorker],
    migrations: list[str],
) -> list[str]:
    names = run.tenant.resource_names(run.options.env)
    applied = applied_migrations(client, str(seen.d1["uuid"])) if seen.d1 else []
    pending = [m for m in migrations if m not in applied]
    if not pending:
        return applied
    if run.options.dry_run:
        for name in pending:
            run.act("would-migrate", f"d1 {names.d1}", name)
        return applied
    run.migrated_at = run.options.clock().strftime("%Y-%m-%dT%H:%M:%SZ")
    try:
        wrangler.run(["d1", "migrations", "apply", names.d1, "--remote"], cwd=built["gateway"].directory)
    except WranglerError as exc:
        if seen.d1 is None or applied_migrations(client, str(seen.d1["uuid"])) == applied:
            run.migrated_at = None  # nothing was applied: there is nothing to restore
        raise run.fail("d1 migrations", f"wrangler could not apply {', '.join(pending)}: {exc}") from exc
    applied = applied_migrations(client, str(seen.d1["uuid"])) if seen.d1 else []
    still = [m for m in pending if m not in applied]
    if still:
        raise run.fail(
            "d1 migrations", f"after applying, {', '.join(still)} still missing from d1_migrations"
        )
    for name in pending:
        run.act("migrate", f"d1 {names.d1}", name)
    return applied


def _deploy_workers(
    run: _Run,
    client: CloudflareClient,
    wrangler: Wrangler,
    rendered: Mapping[str, RenderedWorker],
    built: Mapping[str, BuiltWorker],
) -> dict[str, str]:
    versions: dict[str, str] = {}
    message = f"edgerag deploy-one {run.tenant.name} --env {run.options.env}"
    for worker in DEPLOY_ORDER:
        expected, build = expected_worker(rendered[worker]), built[worker]
        queues = {str(q["queue_name"]): q for q in client.queues()}
        drift = worker_drift(client, expected, build.tag, queues)
        current = client.active_version(build.name)
        if not drift:
            run.act("unchanged", build.name, f"version {current['id']}" if current else "")
            if current:
                versions[worker] = str(current["id"])
            continue
        if any(d.kind == "worker" for d in drift):
            reasons = "new worker"
        else:
            reasons = "drift: " + ", ".join(sorted({f"{d.kind} {d.field}" for d in drift}))[:200]
        if run.options.dry_run:
            result = wrangler.run(
                ["deploy", "--dry-run", "--outdir", str(build.directory / ".dry-run")],
                cwd=build.directory,
                check=False,
            )
            if result.returncode != 0:
                raise run.fail(f"bundle {worker}", result.stderr[-1500:] or result.stdout[-1500:])
            run.act("would-deploy", build.name, reasons)
            continue
        previous = str(current["id"]) if current else None
        try:
            wrangler.run(["deploy", "--tag", build.tag, "--message", message], cwd=build.directory)
        except WranglerError as exc:
            # wrangler can fail after the upload (consumers, triggers): then this worker changed too.
            now = client.active_version(build.name)
            if now is not None and str(now["id"]) != previous:
                run.deployed.append((build.name, previous))
            raise run.fail(f"deploy {build.name}", str(exc)) from exc
        run.deployed.append((build.name, previous))
        queues = {str(q["queue_name"]): q for q in client.queues()}
        after = worker_drift(client, expected, build.tag, queues)
        if after:
            detail = "; ".join(
                f"{d.kind} {d.target} {d.field}: expected {d.expected}, found {d.actual}" for d in after
            )
            raise run.fail(f"verify {build.name}", f"the deployment does not match its config: {detail}")
        now = client.active_version(build.name)
        versions[worker] = str(now["id"]) if now else ""
        run.act("deploy", build.name, f"version {versions[worker]}; {reasons}")
    return versions


def _record(
    run: _Run,
    seen: Observed,
    migrations: list[str],
    built: Mapping[str, BuiltWorker],
    versions: Mapping[str, str],
) -> Path:
    tenant, env = run.tenant, run.options.env
    names = tenant.resource_names(env)
    path = run.options.record_path(tenant)
    body: dict[str, Any] = {
        "tenant": tenant.name,
        "environment": env,
        "account_id": tenant.account_id,
        "resources": {
            "d1": {"name": names.d1, "id": (seen.d1 or {}).get("uuid")},
            "kv": {"title": names.kv, "id": (seen.kv or {}).get("id")},
            "r2": {"bucket_name": names.r2},
            "vectorize": {
                "index_name": names.vectorize,
                "dimensions": tenant.vectorize.dimensions,
                "metric": tenant.vectorize.metric,
                "metadata_indexes": dict(sorted(seen.metadata_indexes.items())),
            },
            "queues": {"ingest": names.ingest_queue, "dead_letter": names.dead_letter_queue},
        },
        "migrations_applied": migrations,
        "workers": {
            w: {"name": built[w].name, "version_id": versions.get(w), "code_tag": built[w].tag}
            for w in DEPLOY_ORDER
        },
    }
    previous: dict[str, Any] = {}
    if path.exists():
        try:
            previous = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            previous = {}
    if (
        not run.changed()
        and {k: v for k, v in previous.items() if k not in ("recorded_at", "actions")} == body
    ):
        return path
    body["recorded_at"] = run.options.clock().strftime("%Y-%m-%dT%H:%M:%SZ")
    body["actions"] = [str(a) for a in run.actions]
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(body, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    tmp.replace(path)
    run.report(f"{tenant.name}/{env}: recorded {path}")
    return path


def deploy_one(tenant: Tenant, options: DeployOptions, report: Reporter | None = None) -> DeployResult:
    """Deploy ``tenant`` to ``options.env``; raise :class:`DeployError` (or a config/credential error)."""
    run = _Run(tenant, options, report or (lambda _line: None))
    env = options.env
    tenant.environment(env)  # an undefined environment is a config error, before anything else
    try:
        templates = Templates.load(options.repo_root)
    except RenderError as exc:
        raise run.fail("render", str(exc)) from exc
    credentials = Credentials.from_env(tenant, options.environ)
    wrangler = Wrangler(
        options.wrangler_command or find_wrangler(options.repo_root, options.environ),
        credentials,
        environ=options.environ,
        log_dir=options.work / "logs",
    )
    with CloudflareClient(credentials, base_url=base_url_from(options.environ)) as client:
        client.verify()
        try:
            return _deploy(run, client, wrangler, templates)
        except CloudflareError as exc:
            raise run.fail("Cloudflare API", str(exc)) from exc


def _deploy(run: _Run, client: CloudflareClient, wrangler: Wrangler, templates: Templates) -> DeployResult:
    tenant, options = run.tenant, run.options
    seen = observe(client, tenant, options.env)
    immutable = [d for d in resource_drift(tenant, options.env, seen) if d.fix == "manual"]
    if immutable:
        detail = "; ".join(
            f"{d.target} {d.field}: tenant file says {d.expected}, Cloudflare has {d.actual}"
            for d in immutable
        )
        raise run.fail("plan", f"cannot be changed in place: {detail} (see docs/runbooks/drift.md)")
    _ensure_resources(run, client, seen)
    try:
        rendered = render_all(templates, tenant, options.env, seen.ids())
        built = build_tree(
            options.repo_root,
            rendered,
            options.build_dir(tenant),
            migrations_dir=options.migrations_dir,
            sync_command=options.sync_command,
        )
    except (RenderError, BuildError) as exc:
        raise run.fail("render", str(exc)) from exc
    migrations = migration_names(options.build_dir(tenant) / "migrations")
    applied = _migrate(run, client, wrangler, seen, built, migrations)
    versions = _deploy_workers(run, client, wrangler, rendered, built)
    result = DeployResult(tenant.name, options.env, run.actions, versions=versions)
    if not options.dry_run:
        result.record_path = _record(run, seen, applied, built, versions)
    return result
