"""Lay out the deployable tree for one tenant and environment, and fingerprint it.

::

    .edgerag/build/<tenant>-<env>/
        migrations/              copy of the repository's migrations/ (the rendered D1 binding points here)
        ingest/  dedalus/  gateway/
            wrangler.toml        the rendered config (edgerag_ops.render)
            pyproject.toml src/  staged copy of workers/<w>/ (edgerag_local.runtime.bundle.stage_worker)
            python_modules/edgerag/   the vendored shared core (edgerag_local.runtime.bundle.vendor_core)

wrangler bundles ``src/`` (the directory of ``main``) and ``python_modules/`` beside the config, so
each worker directory is self-contained and the repository never holds a half-vendored tree.

A worker's fingerprint is a sha256 over its first-party inputs: the staged worker (rendered config,
its ``pyproject.toml`` — which pins the third-party dependencies — and ``src/``) and the shared core,
each file by relative path and bytes. The same repository and tenant give the same fingerprint on
any machine, whether or not ``pywrangler sync`` ran (its output depends on the day's package index, so
it is deliberately left out). Deploy tags each version with it, which is how a second deploy, and
drift, know the code already running is this code.

Third-party dependencies (fastapi, pydantic, ...) are resolved for Pyodide by ``pywrangler sync``,
which needs the internet; pass ``sync_command`` (for example ``["uv", "run", "pywrangler", "sync"]``) to
run it in each staged worker before the core is vendored (a sync replaces ``python_modules/``).
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import tomli_w
from edgerag_local.runtime.bundle import BundleError, pywrangler_dependencies, stage_worker, vendor_core

from .render import RenderedWorker

__all__ = ["BuildError", "BuiltWorker", "build_tree", "code_tag", "content_hash"]

_SKIP_DIRS = {".wrangler", "__pycache__", ".venv-workers"}


class BuildError(Exception):
    """The deployable tree could not be laid out (missing worker, unreadable core, failed sync)."""


@dataclass(frozen=True)
class BuiltWorker:
    worker: str
    name: str
    directory: Path
    config_path: Path
    content_hash: str

    @property
    def tag(self) -> str:
        return code_tag(self.content_hash)


def code_tag(digest: str) -> str:
    """The version tag deploy attaches (``wrangler deploy --tag``): a short, stable form of the hash."""
    return digest[:16]


def content_hash(directory: Path) -> str:
    """sha256 over every file under ``directory`` (path and bytes), caches and wrangler scratch excluded."""
    digest = hashlib.sha256()
    for path in sorted(p for p in directory.rglob("*") if p.is_file()):
        rel = path.relative_to(directory)
        if _SKIP_DIRS.intersection(rel.parts) or path.suffix == ".pyc":
            continue
        digest.update(rel.as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def _sync(staged: Path, command: Sequence[str]) -> None:
    # pywrangler resolves the pyproject's dependencies; the vendored core is on no index, so the staged
    # copy declares everything except it.
    pyproject = staged / "pyproject.toml"
    data = tomllib.loads(pyproject.read_text(encoding="utf-8"))
    data.setdefault("project", {})["dependencies"] = pywrangler_dependencies(pyproject)
    pyproject.write_text(tomli_w.dumps(data), encoding="utf-8")
    result = subprocess.run(list(command), cwd=staged, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise BuildError(f"{' '.join(command)} failed in {staged}:\n{result.stderr[-2000:]}")


def build_tree(
    repo_root: Path,
    rendered: Mapping[str, RenderedWorker],
    out_dir: Path,
    *,
    migrations_dir: Path | None = None,
    core_src: Path | None = None,
    sync_command: Sequence[str] | None = None,
) -> dict[str, BuiltWorker]:
    """Write the tree for ``rendered`` under ``out_dir`` (replacing it) and return each worker's build."""
    if out_dir.exists():
        shutil.rmtree(out_dir)
    out_dir.mkdir(parents=True)
    migrations = migrations_dir if migrations_dir is not None else repo_root / "migrations"
    if migrations.is_dir():
        shutil.copytree(migrations, out_dir / "migrations")
    else:
        (out_dir / "migrations").mkdir()
    core = core_src if core_src is not None else repo_root / "packages" / "edgerag" / "src" / "edgerag"
    built: dict[str, BuiltWorker] = {}
    for worker, item in rendered.items():
        try:
            staged = stage_worker(repo_root / "workers" / worker, out_dir / worker)
            (staged / "wrangler.toml").write_text(item.text, encoding="utf-8")
            # Fingerprint before sync rewrites the pyproject and fills python_modules/.
            digest = hashlib.sha256(f"{content_hash(staged)}:{content_hash(core)}".encode()).hexdigest()
            if sync_command:
                _sync(staged, sync_command)
            vendor_core(staged, core)
        except (BundleError, OSError) as exc:
            raise BuildError(f"cannot build {worker} for {item.name}: {exc}") from exc
        built[worker] = BuiltWorker(worker, item.name, staged, staged / "wrangler.toml", digest)
    return built
