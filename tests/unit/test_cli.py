"""The ``edgerag`` CLI run as a user runs it: the installed console script, as a subprocess, from a
directory outside the repository. Errors are one line on stderr with exit status 1 (refused) or 2
(usage, no project), never a traceback. Every run uses its own state directory (never the repo's).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from edgerag_local.runtime.stack import ProjectNotFoundError, find_project_root

REPO = Path(__file__).resolve().parents[2]
EDGERAG = Path(sys.executable).with_name("edgerag")


def run(cwd: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("EDGERAG_")}
    environ.update(env)
    return subprocess.run(
        [str(EDGERAG), *args], cwd=cwd, env=environ, capture_output=True, text=True, timeout=120, check=False
    )


def assert_one_line_error(result: subprocess.CompletedProcess[str], status: int, *words: str) -> None:
    assert result.returncode == status, result
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("edgerag: "), result.stderr
    for word in words:
        assert word in lines[0]


def test_works_from_outside_the_repository(tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    state = str(tmp_path / "state")
    created = run(elsewhere, "tenants", "create", "acme", "--state", state)
    assert created.returncode == 0, created.stderr
    assert created.stdout.startswith("tenant acme id=tnt_")
    tenant_id = created.stdout.split("id=")[1].strip()
    # --root and --state go before or after the command; tenants are named by name or id alike.
    key = run(elsewhere, "--root", str(REPO), "--state", state, "keys", "create", "acme")
    assert key.returncode == 0, key.stderr
    assert key.stdout.splitlines()[1].startswith("er_")
    listed = run(elsewhere, "keys", "list", tenant_id, "--state", state)
    assert listed.returncode == 0, listed.stderr
    assert " cli " in listed.stdout and "active" in listed.stdout
    assert not (elsewhere / ".edgerag").exists()


def test_a_root_that_is_not_a_project_is_one_line_and_exit_2(tmp_path: Path) -> None:
    result = run(tmp_path, "tenants", "create", "x", "--root", str(tmp_path))
    assert_one_line_error(result, 2, "--root", "not an edgerag project")
    result = run(tmp_path, "tenants", "list", EDGERAG_ROOT=str(tmp_path / "missing"))
    assert_one_line_error(result, 2, "EDGERAG_ROOT", "not an edgerag project")


def test_refusals_are_one_line_and_exit_1(tmp_path: Path) -> None:
    state = str(tmp_path / "state")
    assert run(tmp_path, "tenants", "create", "acme", "--state", state).returncode == 0
    assert_one_line_error(run(tmp_path, "tenants", "create", "acme", "--state", state), 1, "already exists")
    assert_one_line_error(run(tmp_path, "keys", "list", "globex", "--state", state), 1, "no tenant")
    bad_scope = run(tmp_path, "keys", "create", "acme", "--scopes", "root", "--state", state)
    assert_one_line_error(bad_scope, 2, "unknown scope")


def _fake_project(path: Path) -> Path:
    (path / "workers" / "gateway").mkdir(parents=True)
    (path / "wrangler.toml").write_text("")
    (path / "workers" / "gateway" / "wrangler.toml").write_text("")
    return path


def test_root_discovery_order(tmp_path: Path) -> None:
    project = _fake_project(tmp_path / "proj")
    other = _fake_project(tmp_path / "other")
    deep = project / "a" / "b"
    deep.mkdir(parents=True)
    nowhere = tmp_path / "nowhere"
    nowhere.mkdir()
    installed = other / "packages" / "x"
    installed.mkdir(parents=True)
    find = find_project_root
    assert find(cwd=deep, environ={}, installed_at=nowhere) == project  # walks up from cwd
    assert find(cwd=nowhere, environ={}, installed_at=installed) == other  # editable install
    assert find(cwd=deep, environ={"EDGERAG_ROOT": str(other)}, installed_at=nowhere) == other
    assert find(other, cwd=deep, environ={"EDGERAG_ROOT": str(project)}) == other  # --root wins
    with pytest.raises(ProjectNotFoundError, match="not an edgerag project"):
        find(deep, cwd=project, environ={})  # an explicit root is not walked up from
    with pytest.raises(ProjectNotFoundError, match=r"pass --root DIR or set EDGERAG_ROOT"):
        find(cwd=nowhere, environ={}, installed_at=nowhere)
