"""deploy-all: every tenant file, in parallel if asked, carrying on past failures, with a summary.

Each tenant is deployed by :func:`edgerag_ops.deploy.deploy_one` with its own credentials; one
tenant's failure (an invalid file, a rejected token, a failed upload) is recorded and the others
continue. Tenants that do not define the requested environment are skipped, not failed. Progress
lines are printed as they happen (prefixed ``[done/total]``) and a summary table closes the run; the
exit status is non-zero when any tenant failed.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from .cloudflare import CloudflareError, CredentialsError
from .deploy import DeployError, DeployOptions, deploy_one
from .table import format_table
from .tenants import Tenant, TenantConfigError, load_each

__all__ = ["TenantOutcome", "deploy_all", "summary_table"]


@dataclass(frozen=True)
class TenantOutcome:
    tenant: str
    env: str
    status: str  # deployed | unchanged | skipped | failed
    detail: str


def _one(tenant: Tenant, options: DeployOptions, say: Callable[[str], None]) -> TenantOutcome:
    if options.env not in tenant.environments:
        return TenantOutcome(
            tenant.name, options.env, "skipped", f"no {options.env!r} environment in {tenant.source}"
        )
    try:
        result = deploy_one(tenant, options, say)
    except (DeployError, CredentialsError, CloudflareError, TenantConfigError) as exc:
        first = f"failed at {exc.stage}" if isinstance(exc, DeployError) else str(exc).splitlines()[0]
        first = first if len(first) <= 100 else first[:97] + "..."
        say(f"{tenant.name}/{options.env}: FAILED\n" + "\n".join("    " + ln for ln in str(exc).splitlines()))
        return TenantOutcome(tenant.name, options.env, "failed", first)
    changes = sum(a.verb in ("create", "migrate", "deploy") for a in result.actions)
    if result.changed:
        return TenantOutcome(tenant.name, options.env, "deployed", f"{changes} change(s)")
    return TenantOutcome(tenant.name, options.env, "unchanged", "already matches the repository")


def deploy_all(
    tenants_dir: Path, options: DeployOptions, *, parallel: int = 1, echo: Callable[[str], None] = print
) -> list[TenantOutcome]:
    """Deploy every tenant under ``tenants_dir``; outcomes in tenant-name order."""
    entries = load_each(tenants_dir)
    total = len(entries)
    lock = threading.Lock()
    done = 0

    def say(line: str) -> None:
        with lock:
            echo(f"[{done}/{total}] {line}")

    def finish(outcome: TenantOutcome) -> TenantOutcome:
        nonlocal done
        with lock:
            done += 1
            echo(f"[{done}/{total}] {outcome.tenant}: {outcome.status} - {outcome.detail}")
        return outcome

    def work(entry: Tenant | TenantConfigError) -> TenantOutcome:
        if isinstance(entry, TenantConfigError):
            name = entry.path.stem
            say(f"{name}: invalid tenant file\n" + "\n".join("    " + ln for ln in str(entry).splitlines()))
            return finish(TenantOutcome(name, options.env, "failed", f"invalid tenant file: {entry.field}"))
        return finish(_one(entry, options, say))

    with ThreadPoolExecutor(max_workers=max(1, parallel), thread_name_prefix="deploy") as pool:
        outcomes = list(pool.map(work, entries))
    return sorted(outcomes, key=lambda o: o.tenant)


def summary_table(outcomes: list[TenantOutcome]) -> str:
    header = ("TENANT", "ENV", "STATUS", "DETAIL")
    rows = [(o.tenant, o.env, o.status, o.detail) for o in outcomes]
    lines = format_table(header, rows)
    failed = sum(o.status == "failed" for o in outcomes)
    lines.append(f"{len(outcomes)} tenant(s): {failed} failed")
    return "\n".join(lines)
