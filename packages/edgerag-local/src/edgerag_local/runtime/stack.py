"""Open the project's local stack: the three workers as ``tenants/local.toml`` and their wrangler
configs describe them, with ``.dev.vars`` overrides and a generated operator token.

This is the one wiring function the CLI, the integration tests and the benchmarks share.
:func:`find_project_root` is how the CLI finds the project wherever it is run from.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from edgerag_local.runtime.host import WORKER_ORDER, LocalStack
from edgerag_local.runtime.state import default_state_dir
from edgerag_local.vectorize import VectorizeIndexConfig

__all__ = [
    "ProjectNotFoundError",
    "find_project_root",
    "is_project_root",
    "open_stack",
    "project_root_from",
    "read_dev_vars",
    "vectorize_indexes_from_tenant",
]

ADMIN_TOKEN_FILE = "admin-token"
R2_KEYS_FILE = "r2-keys"
ROOT_VAR = "EDGERAG_ROOT"
_MARKERS = "wrangler.toml + workers/gateway/wrangler.toml"


class ProjectNotFoundError(LookupError):
    """No edgerag project where one was looked for; the message says where and how to point at one."""


def is_project_root(path: Path) -> bool:
    """Whether ``path`` holds the stack manifest and the workers' configs."""
    return (path / "wrangler.toml").is_file() and (path / "workers" / "gateway" / "wrangler.toml").is_file()


def project_root_from(start: Path) -> Path:
    """The nearest directory at or above ``start`` holding the stack manifest and ``workers/``."""
    for candidate in (start.resolve(), *start.resolve().parents):
        if is_project_root(candidate):
            return candidate
    raise ProjectNotFoundError(f"no edgerag project ({_MARKERS}) at or above {start}")


def find_project_root(
    explicit: Path | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    installed_at: Path | None = None,
) -> Path:
    """The project to run: ``explicit`` (``--root``), else ``$EDGERAG_ROOT``, else the nearest project
    at or above ``cwd``, else the one this package is installed from (an editable install, as
    ``scripts/setup`` makes), so ``edgerag`` works from any directory.

    An explicit or ``$EDGERAG_ROOT`` path must itself be a project (no walking up: a typo should not
    silently pick another project). Raises :class:`ProjectNotFoundError` with a one-line message.
    ``installed_at`` (default: this module's folder) is for tests.
    """
    env = os.environ if environ is None else environ
    for source, given in (("--root", explicit), (f"${ROOT_VAR}", env.get(ROOT_VAR) or None)):
        if given is not None:
            path = Path(given).expanduser().resolve()
            if not is_project_root(path):
                raise ProjectNotFoundError(f"{source} {path} is not an edgerag project (no {_MARKERS})")
            return path
    start = (cwd or Path.cwd()).resolve()
    for origin in (start, installed_at or Path(__file__).resolve().parent):
        try:
            return project_root_from(origin)
        except ProjectNotFoundError:
            continue
    raise ProjectNotFoundError(
        f"no edgerag project ({_MARKERS}) at or above {start}, and this edgerag is not installed from "
        f"one: run it inside the repository, pass --root DIR or set {ROOT_VAR}"
    )


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


def _r2_keys(state_dir: Path) -> tuple[str, str]:
    """The local R2 API key pair (access key id, secret), made once per state dir like the admin token."""
    path = state_dir / R2_KEYS_FILE
    if path.is_file():
        key_id, _, secret = path.read_text().strip().partition(" ")
        return key_id, secret
    state_dir.mkdir(parents=True, exist_ok=True)
    key_id, secret = "local" + secrets.token_hex(12), secrets.token_urlsafe(30)
    path.write_text(f"{key_id} {secret}\n")
    path.chmod(0o600)
    return key_id, secret


def open_stack(
    root: Path,
    *,
    state_dir: Path | None = None,
    tenant_file: Path | None = None,
    extra_vars: Mapping[str, Mapping[str, Any]] | None = None,
    clock: Callable[[], float] | None = None,
    r2_endpoint: str | None = None,
) -> LocalStack:
    """``r2_endpoint``: where the presigned R2 endpoint is served (``edgerag_local.r2.presigned``);
    the gateway signs upload URLs for it with the local key pair (``state/r2-keys``)."""
    state = state_dir or default_state_dir(root)
    indexes = vectorize_indexes_from_tenant(tenant_file or root / "tenants" / "local.toml")
    overrides: dict[str, dict[str, Any]] = {}
    for key in WORKER_ORDER:
        overrides[key] = read_dev_vars(root / "workers" / key / ".dev.vars")
        overrides[key].update((extra_vars or {}).get(key, {}))
    overrides["gateway"].setdefault("ADMIN_TOKEN", _admin_token(state))
    key_id, secret = _r2_keys(state)
    overrides["gateway"].setdefault("R2_ACCESS_KEY_ID", key_id)
    overrides["gateway"].setdefault("R2_SECRET_ACCESS_KEY", secret)
    if r2_endpoint is not None:
        overrides["gateway"].setdefault("R2_S3_ENDPOINT", r2_endpoint)
    stack = LocalStack(root, state_dir=state, vectorize_indexes=indexes, var_overrides=overrides, clock=clock)
    stack.admin_token_file = state / ADMIN_TOKEN_FILE
    return stack
