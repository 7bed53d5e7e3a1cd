"""drift: compare what should be deployed for a tenant with what Cloudflare runs, and optionally fix it.

"Should": the rendered configs (worker existence, bindings, vars, compatibility date and flags,
observability, queue consumer settings and dead-letter queue, code tag), the repository's D1
migrations, and the tenant's Vectorize settings (dimensions, metric, metadata indexes) and resources.
"Is": read through the Cloudflare API only (``edgerag_ops.observed``); nothing remote changes unless
``fix`` is asked for, which runs deploy-one (it redeploys drifted workers, recreates missing
resources and metadata indexes and applies missing migrations) and then checks again.

Exit status (:func:`exit_code`): 0 clean, 1 drift found (or left after ``--fix``), 2 an error stopped
the check (bad token, unreadable tenant, API failure).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from .build import BuildError, build_tree
from .cloudflare import CloudflareClient, CloudflareError, Credentials, CredentialsError, base_url_from
from .deploy import DeployError, DeployOptions, Reporter, deploy_one
from .desired import expected_worker, migration_names
from .observed import (
    MISSING_ID,
    DriftItem,
    applied_migrations,
    migration_drift,
    observe,
    resource_drift,
    worker_drift,
)
from .render import DEPLOY_ORDER, RenderError, Templates, render_all
from .table import format_table
from .tenants import Tenant, TenantConfigError

__all__ = ["DriftReport", "detect", "exit_code", "fix", "render_json", "render_table"]


@dataclass
class DriftReport:
    tenant: str
    env: str
    items: list[DriftItem] = field(default_factory=list)
    error: str | None = None
    fixed: list[str] = field(default_factory=list)

    @property
    def status(self) -> str:
        if self.error:
            return "error"
        return "drift" if self.items else "clean"

    def as_dict(self) -> dict[str, Any]:
        return {
            "tenant": self.tenant,
            "environment": self.env,
            "status": self.status,
            "error": self.error,
            "items": [i.as_dict() for i in self.items],
            "fixed": self.fixed,
        }


def detect(tenant: Tenant, options: DeployOptions) -> DriftReport:
    """Read the tenant's deployment and list every difference; errors go in ``report.error``."""
    report = DriftReport(tenant.name, options.env)
    try:
        tenant.environment(options.env)
        templates = Templates.load(options.repo_root)
        credentials = Credentials.from_env(tenant, options.environ)
        with CloudflareClient(credentials, base_url=base_url_from(options.environ)) as client:
            client.verify()
            report.items = _compare(tenant, options, templates, client)
    except (TenantConfigError, CredentialsError, CloudflareError, RenderError, BuildError) as exc:
        report.error = str(exc)
    return report


def _compare(
    tenant: Tenant, options: DeployOptions, templates: Templates, client: CloudflareClient
) -> list[DriftItem]:
    env = options.env
    seen = observe(client, tenant, env)
    items = resource_drift(tenant, env, seen)
    rendered = render_all(templates, tenant, env, seen.ids())
    built = build_tree(
        options.repo_root,
        rendered,
        options.build_dir(tenant),
        migrations_dir=options.migrations_dir,
        sync_command=options.sync_command,
    )
    queues = {str(q["queue_name"]): q for q in client.queues()}
    for worker in DEPLOY_ORDER:
        found = worker_drift(client, expected_worker(rendered[worker]), built[worker].tag, queues)
        # A binding to a resource that does not exist yet is already reported as the missing resource.
        items += [i for i in found if not (i.kind == "binding" and MISSING_ID in (i.expected or ""))]
    if seen.d1 is not None:
        expected = migration_names(options.build_dir(tenant) / "migrations")
        applied = applied_migrations(client, str(seen.d1["uuid"]))
        items += migration_drift(tenant.resource_names(env).d1, expected, applied)
    return items


def fix(tenant: Tenant, options: DeployOptions, report: Reporter | None = None) -> DriftReport:
    """Detect, repair what can be repaired by deploying, then detect again (the returned report)."""
    before = detect(tenant, options)
    if before.error or not before.items:
        return before
    fixable = [i for i in before.items if i.fix != "manual"]
    fixed: list[str] = []
    if fixable:
        try:
            result = deploy_one(tenant, options, report)
        except (DeployError, CredentialsError, CloudflareError, TenantConfigError) as exc:
            before.error = f"--fix failed: {exc}"
            return before
        fixed = [str(a) for a in result.actions if a.verb in ("create", "migrate", "deploy")]
    after = detect(tenant, options)
    after.fixed = fixed
    return after


def exit_code(reports: Sequence[DriftReport]) -> int:
    if any(r.error for r in reports):
        return 2
    return 1 if any(r.items for r in reports) else 0


def render_json(reports: Sequence[DriftReport]) -> str:
    return json.dumps({"reports": [r.as_dict() for r in reports], "exit_code": exit_code(reports)}, indent=2)


def render_table(reports: Sequence[DriftReport]) -> str:
    lines: list[str] = []
    for r in reports:
        title = f"{r.tenant} ({r.env}): {r.status}"
        if r.error:
            lines += [title, f"  error: {r.error}"]
            continue
        if r.fixed:
            lines.append(f"{r.tenant} ({r.env}): fixed by redeploying:")
            lines += [f"  {f}" for f in r.fixed]
        if not r.items:
            lines.append(title + " - deployment matches the repository")
            continue
        lines.append(title + f" - {len(r.items)} difference(s)")
        rows = [[i.kind, i.target, i.field, _cell(i.expected), _cell(i.actual), i.fix] for i in r.items]
        lines += [
            "  " + row for row in format_table(["KIND", "TARGET", "FIELD", "EXPECTED", "ACTUAL", "FIX"], rows)
        ]
    return "\n".join(lines)


def _cell(value: str | None) -> str:
    if value is None:
        return "-"
    return value if len(value) <= 48 else value[:45] + "..."
