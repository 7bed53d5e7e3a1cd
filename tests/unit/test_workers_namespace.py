"""The repo's ``workers/`` folder can never shadow the Workers SDK's ``workers`` module.

The folder holding the three workers shares its name with the SDK's module. It stays a plain folder (no
``__init__.py``), so with the repo root on ``sys.path`` it is at most a namespace-package portion, and
Python's import system lets any regular package named ``workers`` found anywhere on the path win over a
namespace portion found earlier. These tests pin both facts, the second in a fresh interpreter.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

_PROBE = """
import json, sys
sys.path[:0] = [sys.argv[1]]          # the repo root first, as a script or `python -m` run from it puts it
sys.path.extend(sys.argv[2:])         # the SDK somewhere later
import workers
print(json.dumps({
    "file": getattr(workers, "__file__", None),
    "path": [str(p) for p in workers.__path__],
    "fake": getattr(workers, "IS_FAKE_SDK", False),
}))
"""


def _import_roots() -> list[Path]:
    return [REPO, *sorted(REPO.glob("packages/*/src")), *sorted(REPO.glob("workers/*/src"))]


def _probe(*extra_path: Path) -> dict[str, object]:
    # -I: ignore PYTHON* variables and user site; -S: no site-packages (and no editable .pth files), so
    # the path is exactly the repo root, the stdlib and what the test adds.
    result = subprocess.run(
        [sys.executable, "-I", "-S", "-c", _PROBE, str(REPO), *map(str, extra_path)],
        capture_output=True,
        text=True,
        check=True,
        cwd=REPO,
    )
    decoded: dict[str, object] = json.loads(result.stdout)
    return decoded


def test_workers_folder_has_no_init() -> None:
    assert (REPO / "workers").is_dir()
    assert not (REPO / "workers" / "__init__.py").exists()


def test_no_import_root_defines_a_workers_module() -> None:
    offenders = [
        str(path)
        for root in _import_roots()
        for path in (root / "workers.py", root / "workers" / "__init__.py")
        if path.exists()
    ]
    assert offenders == []


def test_the_sdk_wins_over_the_repo_folder_even_when_later_on_the_path(tmp_path: Path) -> None:
    sdk = tmp_path / "sdk"
    (sdk / "workers").mkdir(parents=True)
    (sdk / "workers" / "__init__.py").write_text("IS_FAKE_SDK = True\n")

    found = _probe(sdk)

    assert found["fake"] is True
    assert found["file"] == str(sdk / "workers" / "__init__.py")


def test_without_the_sdk_the_repo_folder_is_only_a_namespace_portion() -> None:
    found = _probe()

    assert found["fake"] is False
    assert found["file"] is None
    assert found["path"] == [str(REPO / "workers")]
