"""The deployable tree: self-contained per worker, and a fingerprint that only first-party inputs move."""

from __future__ import annotations

import sys
import tomllib
from pathlib import Path

from edgerag_ops.build import build_tree
from edgerag_ops.render import ResourceIds, Templates, render_all
from edgerag_ops.tenants import load_tenant

from .conftest import REPO, snapshot_repo

IDS = ResourceIds("11111111-2222-4333-8444-555555555555", "a" * 32)

# Stands in for `pywrangler sync` (which needs the internet): fills python_modules/ like a sync would.
FAKE_SYNC = (
    sys.executable,
    "-c",
    "import pathlib; p = pathlib.Path('python_modules/fastapi');"
    " p.mkdir(parents=True); (p / '__init__.py').write_text('# vendored by sync')",
)


def _build(repo: Path, out: Path, sync: tuple[str, ...] | None = None) -> dict[str, str]:
    tenant = load_tenant(REPO / "tenants" / "local.toml")
    rendered = render_all(Templates.load(repo), tenant, "dev", IDS)
    return {w: b.content_hash for w, b in build_tree(repo, rendered, out, sync_command=sync).items()}


def test_each_worker_is_self_contained(tmp_path: Path) -> None:
    repo = snapshot_repo(tmp_path / "repo")
    _build(repo, tmp_path / "out")
    for worker in ("ingest", "dedalus", "gateway"):
        folder = tmp_path / "out" / worker
        config = tomllib.loads((folder / "wrangler.toml").read_text())
        assert (folder / config["main"]).is_file()
        assert (folder / "python_modules" / "edgerag" / "__init__.py").is_file()
        for db in config.get("d1_databases", []):
            assert (folder / db["migrations_dir"] / "0001_initial.sql").is_file()


def test_fingerprint_is_stable_ignores_sync_and_follows_first_party_code(tmp_path: Path) -> None:
    repo = snapshot_repo(tmp_path / "repo")
    plain = _build(repo, tmp_path / "a")
    assert _build(repo, tmp_path / "b") == plain
    synced = _build(repo, tmp_path / "c", FAKE_SYNC)
    assert synced == plain  # sync output depends on the package index of the day, not on the repository
    gateway = tmp_path / "c" / "gateway"
    assert (gateway / "python_modules" / "fastapi" / "__init__.py").is_file()
    assert (gateway / "python_modules" / "edgerag" / "__init__.py").is_file()  # vendored after the sync
    deps = tomllib.loads((gateway / "pyproject.toml").read_text())["project"]["dependencies"]
    assert "edgerag" not in deps and any(d.startswith("fastapi") for d in deps)

    (repo / "workers" / "gateway" / "src" / "gateway" / "__init__.py").write_text("# changed\n")
    changed = _build(repo, tmp_path / "d")
    assert changed["gateway"] != plain["gateway"]
    assert (changed["ingest"], changed["dedalus"]) == (plain["ingest"], plain["dedalus"])
    (repo / "packages" / "edgerag" / "src" / "edgerag" / "extra.py").write_text("X = 1\n")
    core_changed = _build(repo, tmp_path / "e")
    assert all(core_changed[w] != changed[w] for w in changed)  # every worker vendors the core
