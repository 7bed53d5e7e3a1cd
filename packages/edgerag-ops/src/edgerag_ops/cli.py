"""Command line for operators: ``deploy-one``, ``deploy-all`` and ``drift`` (``scripts/<name>`` call these).

::

    scripts/deploy-one TENANT [--env ENV] [--dry-run]
    scripts/deploy-all [--env ENV] [--parallel N]
    scripts/drift [TENANT | --all] [--env ENV] [--json] [--fix]

``TENANT`` is a name under ``tenants/`` or a path to a tenant file. Common options: ``--repo`` (the
repository root; found from the current directory by default), ``--tenants-dir``, ``--work-dir`` (build
trees, deployment records and wrangler logs; default ``<repo>/.edgerag``), ``--migrations-dir``, and
``--sync COMMAND`` (``pywrangler sync`` or similar, run in each staged worker: a real deploy needs it
for the workers' third-party packages; the local emulator does not).

The process environment is read once here and handed down explicitly; the tenant's token is taken
from the variable its file names and never printed.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from .cloudflare import CloudflareError, CredentialsError
from .deploy import DeployError, DeployOptions, deploy_one
from .drift import DriftReport, detect, exit_code, fix, render_json, render_table
from .fleet import deploy_all, summary_table
from .render import RenderError
from .tenants import ENVIRONMENTS, Tenant, TenantConfigError, load_each, load_tenant

__all__ = ["main"]


def find_repo(start: Path) -> Path:
    for folder in [start, *start.parents]:
        if (folder / "wrangler.toml").is_file() and (folder / "tenants").is_dir():
            return folder
    raise SystemExit(f"cannot find the edgerag repository above {start} (pass --repo)")


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--env", default="dev", choices=ENVIRONMENTS, help="environment to act on (default dev)"
    )
    parser.add_argument(
        "--repo", type=Path, help="repository root (default: found from the current directory)"
    )
    parser.add_argument("--tenants-dir", type=Path, help="tenant files (default <repo>/tenants)")
    parser.add_argument(
        "--work-dir", type=Path, help="build trees, records and logs (default <repo>/.edgerag)"
    )
    parser.add_argument("--migrations-dir", type=Path, help="D1 migrations (default <repo>/migrations)")
    parser.add_argument(
        "--sync",
        metavar="COMMAND",
        help="vendor third-party packages in each staged worker before deploying, e.g. "
        "'uv run pywrangler sync' (needs the internet; see edgerag_ops.build)",
    )


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="edgerag-ops", description="Per-tenant deploy and drift for edgerag."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    one = sub.add_parser("deploy-one", help="deploy one tenant")
    one.add_argument("tenant", help="tenant name (tenants/<name>.toml) or a path to a tenant file")
    one.add_argument("--dry-run", action="store_true", help="show what would change; change nothing")
    _common(one)
    every = sub.add_parser("deploy-all", help="deploy every tenant, continuing past failures")
    every.add_argument("--parallel", type=int, default=1, metavar="N", help="tenants deployed at once")
    _common(every)
    drift = sub.add_parser("drift", help="compare what is deployed with the repository")
    target = drift.add_mutually_exclusive_group(required=True)
    target.add_argument("tenant", nargs="?", help="tenant name or path to a tenant file")
    target.add_argument("--all", action="store_true", help="every tenant that defines --env")
    drift.add_argument("--json", action="store_true", help="machine-readable output")
    drift.add_argument("--fix", action="store_true", help="redeploy what drifted, then check again")
    _common(drift)
    return parser


def _options(
    args: argparse.Namespace, environ: Mapping[str, str], repo: Path, dry_run: bool = False
) -> DeployOptions:
    return DeployOptions(
        repo_root=repo,
        env=args.env,
        dry_run=dry_run,
        environ=dict(environ),
        work_dir=args.work_dir,
        migrations_dir=args.migrations_dir,
        sync_command=tuple(shlex.split(args.sync)) if args.sync else None,
    )


def _tenant(spec: str, tenants_dir: Path) -> Tenant:
    path = Path(spec) if spec.endswith(".toml") else tenants_dir / f"{spec}.toml"
    return load_tenant(path)


def _deploy_one(
    args: argparse.Namespace, options: DeployOptions, tenants_dir: Path, out: Callable[[str], None]
) -> int:
    try:
        tenant = _tenant(args.tenant, tenants_dir)
        result = deploy_one(tenant, options, out)
    except (TenantConfigError, CredentialsError, DeployError, CloudflareError, RenderError) as exc:
        out(f"error: {exc}")
        return 1
    if options.dry_run:
        planned = [a for a in result.actions if a.verb.startswith("would-")]
        out(f"dry run: {len(planned)} change(s) would be made; nothing was changed")
    elif result.changed:
        out(f"deployed {result.tenant} ({result.env}); record: {result.record_path}")
    else:
        out(f"{result.tenant} ({result.env}) already matches the repository; nothing changed")
    return 0


def _drift(
    args: argparse.Namespace, options: DeployOptions, tenants_dir: Path, out: Callable[[str], None]
) -> int:
    reports: list[DriftReport] = []
    progress = (lambda _line: None) if args.json else out
    if args.all:
        for entry in load_each(tenants_dir):
            if isinstance(entry, TenantConfigError):
                reports.append(DriftReport(entry.path.stem, options.env, error=str(entry)))
            elif options.env in entry.environments:
                reports.append(fix(entry, options, progress) if args.fix else detect(entry, options))
    else:
        try:
            tenant = _tenant(args.tenant, tenants_dir)
        except TenantConfigError as exc:
            reports.append(DriftReport(Path(args.tenant).stem, options.env, error=str(exc)))
        else:
            reports.append(fix(tenant, options, progress) if args.fix else detect(tenant, options))
    out(render_json(reports) if args.json else render_table(reports))
    return exit_code(reports)


def main(
    argv: Sequence[str] | None = None,
    environ: Mapping[str, str] | None = None,
    out: Callable[[str], None] | None = None,
) -> int:
    args = _parser().parse_args(argv)
    env = dict(os.environ) if environ is None else dict(environ)
    echo = out or (lambda line: print(line, flush=True))
    repo = (args.repo or find_repo(Path.cwd())).resolve()
    tenants_dir = args.tenants_dir or repo / "tenants"
    if args.command == "deploy-one":
        return _deploy_one(args, _options(args, env, repo, args.dry_run), tenants_dir, echo)
    if args.command == "deploy-all":
        outcomes = deploy_all(tenants_dir, _options(args, env, repo), parallel=args.parallel, echo=echo)
        echo(summary_table(outcomes))
        return 1 if any(o.status == "failed" for o in outcomes) else 0
    return _drift(args, _options(args, env, repo), tenants_dir, echo)


if __name__ == "__main__":
    sys.exit(main())
