"""Open the project's local stack: the three workers as ``tenants/local.toml`` and their wrangler
configs describe them, with ``.dev.vars`` overrides and a generated operator token.

This is the one wiring function the CLI, the integration tests and the benchmarks share.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from edgerag_local.host import WORKER_ORDER, LocalStack
from edgerag_local.state import default_state_dir
from edgerag_local.vectorize import VectorizeIndexConfig

__all__ = ["open_stack", "project_root_from", "read_dev_vars", "vectorize_indexes_from_tenant"]

ADMIN_TOKEN_FILE = "admin-token"


def project_root_from(start: Path) -> Path:
    """The nearest directory at or above ``start`` holding the stack manifest and ``workers/``."""
    for candidate in (start.resolve(), *start.resolve().parents):
        if (candidate / "wrangler.toml").is_file() and (candidate / "workers").is_dir():
            return candidate
    raise LookupError(f"no edgerag project (wrangler.toml + workers/) at or above {start}")


def vectorize_indexes_from_tenant(tenant_file: Path) -> dict[str, VectorizeIndexConfig]:
    from edgerag_ops.tenants import load_tenant

    vec = load_tenant(tenant_file).resources.vectorize
    config = VectorizeIndexConfig(vec.index_name, vec.dimensions, vec.metric, dict(vec.metadata_indexes))
    return {vec.index_name: config}


def read_dev_vars(path: Path) -> dict[str, str]:
    """``KEY=value`` lines (``#`` comments, optional quotes), as wrangler reads ``.dev.vars``."""
    values: dict[str, str] = {}
    if not path.is_file():
        return values
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"{path}:{number}: expected KEY=value")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        values[key.strip()] = value
    return values


def _admin_token(state_dir: Path) -> str:
    path = state_dir / ADMIN_TOKEN_FILE
    if path.is_file():
        return path.read_text().strip()
    state_dir.mkdir(parents=True, exist_ok=True)
    token = "adm_" + secrets.token_urlsafe(32)
    path.write_text(token + "\n")
    path.chmod(0o600)
    return token


def open_stack(
    root: Path,
    *,
    state_dir: Path | None = None,
    tenant_file: Path | None = None,
    extra_vars: Mapping[str, Mapping[str, Any]] | None = None,
    clock: Callable[[], float] | None = None,
) -> LocalStack:
    state = state_dir or default_state_dir(root)
    indexes = vectorize_indexes_from_tenant(tenant_file or root / "tenants" / "local.toml")
    overrides: dict[str, dict[str, Any]] = {}
    for key in WORKER_ORDER:
        overrides[key] = read_dev_vars(root / "workers" / key / ".dev.vars")
        overrides[key].update((extra_vars or {}).get(key, {}))
    overrides["gateway"].setdefault("ADMIN_TOKEN", _admin_token(state))
    stack = LocalStack(root, state_dir=state, vectorize_indexes=indexes, var_overrides=overrides, clock=clock)
    stack.admin_token_file = state / ADMIN_TOKEN_FILE
    return stack
