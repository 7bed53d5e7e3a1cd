"""Shared pieces of the deploy tests: a local Cloudflare API emulator, tenant files, the operator CLI.

Tests marked ``wrangler`` drive the real wrangler CLI from npm (installed by ``scripts/setup``) against
the emulator through ``CLOUDFLARE_API_BASE_URL``; nothing leaves the machine. The token is a
distinctive string so tests can prove it never appears in any output, record or wrangler log.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from edgerag_local.cfapi import CloudflareApiEmulator
from edgerag_ops.cli import main

REPO = Path(__file__).resolve().parents[2]
WRANGLER = REPO / "node_modules" / ".bin" / "wrangler"
ACCOUNT = "0123456789abcdef0123456789abcdef"
TOKEN = "tok3n-d0-n0t-l3ak-5f0c9e2b7a4d1c8e6b3a"
PROBE_MIGRATION = "9999_drift_probe.sql"


def tenant_text(name: str, token_env: str = "CLOUDFLARE_API_TOKEN") -> str:
    """tenants/local.toml as tenant ``name``: its own resource names and token variable."""
    text = (REPO / "tenants" / "local.toml").read_text(encoding="utf-8")
    text = text.replace('name = "local"', f'name = "{name}"')
    text = text.replace('api_token_env = "CLOUDFLARE_API_TOKEN"', f'api_token_env = "{token_env}"')
    if name != "local":
        text = text.replace('= "edgerag', f'= "{name}-edgerag')
    return text


@dataclass
class World:
    """One emulator, a tenants folder, a work dir and the CLI wired to them."""

    api: CloudflareApiEmulator
    root: Path
    environ: dict[str, str]
    lines: list[str] = field(default_factory=list)

    @property
    def tenants(self) -> Path:
        return self.root / "tenants"

    @property
    def work(self) -> Path:
        return self.root / "work"

    @property
    def migrations(self) -> Path:
        return self.repo / "migrations"

    @property
    def repo(self) -> Path:
        return self.root / "repo"

    def add_tenant(self, name: str, token_env: str = "CLOUDFLARE_API_TOKEN", text: str | None = None) -> Path:
        path = self.tenants / f"{name}.toml"
        path.write_text(text if text is not None else tenant_text(name, token_env), encoding="utf-8")
        return path

    def cli(self, *args: str, environ: dict[str, str] | None = None) -> tuple[int, str]:
        """Run the operator CLI; returns the exit status and what it printed."""
        start = len(self.lines)
        code = main(
            [
                *args,
                "--repo",
                str(self.repo),
                "--tenants-dir",
                str(self.tenants),
                "--work-dir",
                str(self.work),
            ],
            environ=environ if environ is not None else self.environ,
            out=self.lines.append,
        )
        return code, "\n".join(self.lines[start:])

    def all_output(self) -> str:
        return "\n".join(self.lines)


def snapshot_repo(dest: Path) -> Path:
    """Copy what deploy reads from the repository (configs, worker sources, shared core, migrations).

    Tests deploy from the copy, so edits others make to the working tree meanwhile cannot turn into
    code drift halfway through a test.
    """
    ignore = shutil.ignore_patterns("python_modules", ".wrangler", "__pycache__", "*.pyc")
    dest.mkdir(parents=True)
    shutil.copy2(REPO / "wrangler.toml", dest / "wrangler.toml")
    shutil.copytree(REPO / "workers", dest / "workers", ignore=ignore)
    shutil.copytree(
        REPO / "packages" / "edgerag" / "src" / "edgerag",
        dest / "packages" / "edgerag" / "src" / "edgerag",
        ignore=ignore,
    )
    shutil.copytree(REPO / "migrations", dest / "migrations")
    return dest


def make_world(root: Path) -> Iterator[World]:
    root.mkdir(parents=True, exist_ok=True)
    (root / "tenants").mkdir()
    repo = snapshot_repo(root / "repo")
    # A migration the drift tests can drop and undo without touching the real schema.
    (repo / "migrations" / PROBE_MIGRATION).write_text("CREATE TABLE drift_probe (id INTEGER PRIMARY KEY);\n")
    with CloudflareApiEmulator(root / "cfapi") as api:
        api.add_token(TOKEN, ACCOUNT)
        environ = {
            "PATH": os.environ.get("PATH", os.defpath),
            "HOME": str(root / "home"),
            "CLOUDFLARE_API_BASE_URL": api.base_url,
            "CLOUDFLARE_API_TOKEN": TOKEN,
            "EDGERAG_WRANGLER": str(WRANGLER),
        }
        yield World(api, root, environ)


def require_wrangler() -> None:
    if not WRANGLER.exists():
        pytest.fail(f"{WRANGLER} is missing: run scripts/setup to install the pinned wrangler")


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    yield from make_world(tmp_path / "world")


def assert_no_token_leak(world: World) -> None:
    """The token appears in no output line, deployment record, build file or wrangler log."""
    assert TOKEN not in world.all_output()
    for path in world.work.rglob("*"):
        if path.is_file():
            assert TOKEN.encode() not in path.read_bytes(), f"token leaked into {path}"
