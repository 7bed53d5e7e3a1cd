"""``edgerag``: run the whole stack locally and manage local tenants and keys.

    edgerag dev                       serve gateway on http://127.0.0.1:8787 with the ingest consumer, the
                                      cron triggers and presigned R2 URLs (under /r2) running
    edgerag tenants create NAME       create a tenant in the local D1
    edgerag tenants list
    edgerag keys create TENANT        issue an API key (printed once); TENANT is a name or an id
    edgerag keys list TENANT
    edgerag keys revoke TENANT KEY_ID (the operator may revoke a tenant's last admin key)
    edgerag migrate                   apply D1 migrations to the local database

Everything runs offline against the emulators in the state directory (``.edgerag/state`` or
``--state``). The stack is the one ``tenants/local.toml`` describes, built from the workers' wrangler
configs; ``workers/<name>/.dev.vars`` overrides vars and supplies secrets, as with ``wrangler dev``.
The project is ``--root``, else ``$EDGERAG_ROOT``, else found from the current directory or from
where this package is installed (:func:`edgerag_local.runtime.stack.find_project_root`); both options go
before or after the command.

Exit status: 0 done, 1 the request was refused (e.g. a tenant that exists, an unknown key), 2 usage
(bad arguments, no project found). Errors are one line on stderr, never a traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from edgerag.problems import Problem

from edgerag_local.runtime.stack import ProjectNotFoundError, find_project_root, open_stack

__all__ = ["main"]


def _common() -> argparse.ArgumentParser:
    # Defaults are SUPPRESS on both levels, so "--root X" works before or after the command and
    # neither level's default overwrites the other's value (read them with getattr).
    common = argparse.ArgumentParser(add_help=False, argument_default=argparse.SUPPRESS)
    common.add_argument("--root", type=Path, help="project root (default: $EDGERAG_ROOT, or found from cwd)")
    common.add_argument("--state", type=Path, help="state directory (default .edgerag/state)")
    return common


def _parser() -> argparse.ArgumentParser:
    common = _common()
    parser = argparse.ArgumentParser(
        prog="edgerag", description=__doc__.split("\n\n")[0], parents=[common]
    )
    sub = parser.add_subparsers(dest="command", required=True)

    dev = sub.add_parser("dev", help="serve the stack locally", parents=[common])
    dev.add_argument("--host", default="127.0.0.1")
    dev.add_argument("--port", type=int, default=8787)
    dev.add_argument("--no-demo", action="store_true", help="do not create/print the demo tenant key")
    dev.add_argument("--log-level", default="info")

    tenants = sub.add_parser("tenants", help="manage tenants").add_subparsers(dest="action", required=True)
    create_tenant = tenants.add_parser("create", parents=[common])
    create_tenant.add_argument("name")
    create_tenant.add_argument("--plan", default="free", choices=["free", "standard", "enterprise"])
    tenants.add_parser("list", parents=[common])

    keys = sub.add_parser("keys", help="manage API keys").add_subparsers(dest="action", required=True)
    create_key = keys.add_parser("create", parents=[common])
    create_key.add_argument("tenant", help="tenant name or id")
    create_key.add_argument("--name", default="cli")
    create_key.add_argument("--scopes", default="read write", help='space-separated, e.g. "read write admin"')
    list_keys = keys.add_parser("list", parents=[common])
    list_keys.add_argument("tenant", help="tenant name or id")
    revoke = keys.add_parser("revoke", parents=[common])
    revoke.add_argument("tenant", help="tenant name or id")
    revoke.add_argument("key_id")

    sub.add_parser("migrate", help="apply D1 migrations to the local database", parents=[common])
    return parser


def _fail(message: str, status: int) -> int:
    print(f"edgerag: {message}", file=sys.stderr)
    return status


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        root = find_project_root(getattr(args, "root", None))
    except ProjectNotFoundError as exc:
        return _fail(str(exc), 2)
    state = getattr(args, "state", None)
    try:
        if args.command == "dev":
            logging.basicConfig(level=args.log_level.upper(), format="%(levelname)s %(name)s: %(message)s")
            asyncio.run(_dev(root, state, args))
            return 0
        return asyncio.run(_admin(root, state, args))
    except KeyboardInterrupt:
        return 130
    except Problem as exc:
        return _fail(exc.detail or exc.title, 2 if exc.status == 422 else 1)
    except ValueError as exc:  # e.g. an unknown scope name
        return _fail(str(exc), 2)


async def _admin(root: Path, state: Path | None, args: argparse.Namespace) -> int:
    from edgerag.store.tenants import TenantStore

    stack = open_stack(root, state_dir=state)
    try:
        store = TenantStore(stack.workers["gateway"].env.DB)
        if args.command == "migrate":
            print("migrations applied")
        elif args.command == "tenants" and args.action == "create":
            tenant = await store.create_tenant(args.name, args.plan)
            print(f"tenant {tenant.name} id={tenant.id}")
        elif args.command == "tenants":
            for tenant in await store.list_tenants():
                print(f"{tenant.id}  {tenant.name}  {tenant.plan}  {tenant.status}")
        elif args.command == "keys" and args.action == "create":
            tenant = await store.find_tenant(args.tenant)
            issued = await store.issue_key(tenant.id, args.name, args.scopes)
            print(f"key id={issued.record.id} scopes={' '.join(issued.record.scopes)}")
            print(issued.plaintext)
        elif args.command == "keys" and args.action == "list":
            tenant = await store.find_tenant(args.tenant)
            for key in await store.list_keys(tenant.id):
                state_text = f"revoked {key.revoked_at}" if key.revoked_at else "active"
                used = key.last_used_at or "never"
                print(f"{key.id}  {key.name}  {' '.join(key.scopes)}  {state_text}  last used {used}")
        elif args.command == "keys":
            tenant = await store.find_tenant(args.tenant)
            # The CLI is the operator: it may revoke a tenant's last admin key (the HTTP API refuses
            # tenants that), e.g. to shut off a leaked key; `keys create` rescues the tenant.
            record = await store.revoke_key(tenant.id, args.key_id, allow_lockout=True)
            print(f"revoked {record.id} at {record.revoked_at}")
        return 0
    finally:
        stack.close()


async def _dev(root: Path, state: Path | None, args: argparse.Namespace) -> None:
    import uvicorn
    from edgerag.store.tenants import TenantStore

    from edgerag_local.runtime.demo import ensure_demo_key
    from edgerag_local.runtime.serving import R2_PREFIX, serve_app

    # Presigned R2 URLs are served by this same server under /r2 (edgerag_local.runtime.serving).
    public_host = "127.0.0.1" if args.host in ("0.0.0.0", "::", "") else args.host
    endpoint = f"http://{public_host}:{args.port}{R2_PREFIX}"
    stack = open_stack(root, state_dir=state, r2_endpoint=endpoint)
    await stack.start()
    try:
        if not args.no_demo:
            demo = await ensure_demo_key(TenantStore(stack.workers["gateway"].env.DB), stack.state_dir)
            print(f"demo tenant: {demo.tenant.name} ({demo.tenant.id})")
            kept = "new" if demo.minted else "kept"
            print(f"demo API key ({kept}; also in {demo.path}): {demo.plaintext}")
            if demo.revoked:
                print(f"revoked the previous demo key(s): {', '.join(demo.revoked)}")
        print(f"admin token: see {stack.admin_token_file}")
        print(f"serving http://{args.host}:{args.port}  (state: {stack.state_dir})", flush=True)
        print(f"presigned R2 uploads/downloads: {endpoint}/<bucket>/<key>")
        config = uvicorn.Config(serve_app(stack), host=args.host, port=args.port,
                                log_level=args.log_level, lifespan="off")
        await uvicorn.Server(config).serve()
    finally:
        await stack.stop()
        stack.close()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
