"""``edgerag``: run the whole stack locally and manage local tenants and keys.

    edgerag dev                       serve gateway on http://127.0.0.1:8787 with the ingest consumer running
    edgerag tenants create NAME       create a tenant in the local D1
    edgerag tenants list
    edgerag keys create TENANT        issue an API key (printed once)
    edgerag migrate                   apply D1 migrations to the local database

Everything runs offline against the emulators in the state directory (``.edgerag/state`` or
``--state``). The stack is the one ``tenants/local.toml`` describes, built from the workers' wrangler
configs; ``workers/<name>/.dev.vars`` overrides vars and supplies secrets, as with ``wrangler dev``.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from edgerag_local.stack import open_stack, project_root_from

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--root", type=Path, default=None, help="project root (default: found from cwd)")
    common.add_argument("--state", type=Path, default=None, help="state directory (default .edgerag/state)")
    parser = argparse.ArgumentParser(prog="edgerag", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)

    dev = sub.add_parser("dev", help="serve the stack locally", parents=[common])
    dev.add_argument("--host", default="127.0.0.1")
    dev.add_argument("--port", type=int, default=8787)
    dev.add_argument("--no-demo", action="store_true", help="do not create/print a demo tenant key")
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
    revoke = keys.add_parser("revoke", parents=[common])
    revoke.add_argument("tenant")
    revoke.add_argument("key_id")

    sub.add_parser("migrate", help="apply D1 migrations to the local database", parents=[common])
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    root = project_root_from(args.root or Path.cwd())
    try:
        if args.command == "dev":
            logging.basicConfig(level=args.log_level.upper(), format="%(levelname)s %(name)s: %(message)s")
            asyncio.run(_dev(root, args))
            return 0
        return asyncio.run(_admin(root, args))
    except KeyboardInterrupt:
        return 130
    except LookupError as exc:
        print(f"edgerag: {exc}", file=sys.stderr)
        return 1


async def _find_tenant(store: Any, ref: str) -> Any:
    for tenant in await store.list_tenants():
        if ref in (tenant.id, tenant.name):
            return tenant
    raise LookupError(f"no tenant named or with id {ref!r}")


async def _admin(root: Path, args: argparse.Namespace) -> int:
    from edgerag.store.tenants import TenantStore

    stack = open_stack(root, state_dir=args.state)
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
            tenant = await _find_tenant(store, args.tenant)
            issued = await store.issue_key(tenant.id, args.name, args.scopes)
            print(f"key id={issued.record.id} scopes={' '.join(issued.record.scopes)}")
            print(issued.plaintext)
        elif args.command == "keys":
            tenant = await _find_tenant(store, args.tenant)
            record = await store.revoke_key(tenant.id, args.key_id)
            print(f"revoked {record.id} at {record.revoked_at}")
        return 0
    finally:
        stack.close()


async def _dev(root: Path, args: argparse.Namespace) -> None:
    import uvicorn
    from edgerag.store.tenants import TenantStore

    stack = open_stack(root, state_dir=args.state)
    await stack.start()
    try:
        if not args.no_demo:
            store = TenantStore(stack.workers["gateway"].env.DB)
            try:
                tenant = await _find_tenant(store, "demo")
            except LookupError:
                tenant = await store.create_tenant("demo")
            issued = await store.issue_key(tenant.id, "demo", "read write admin")
            print(f"demo tenant: {tenant.name} ({tenant.id})")
            print(f"demo API key (shown once): {issued.plaintext}")
        print(f"admin token: see {stack.admin_token_file}")
        print(f"serving http://{args.host}:{args.port}  (state: {stack.state_dir})", flush=True)
        config = uvicorn.Config(stack.asgi("gateway"), host=args.host, port=args.port,
                                log_level=args.log_level, lifespan="off")
        await uvicorn.Server(config).serve()
    finally:
        await stack.stop()
        stack.close()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
