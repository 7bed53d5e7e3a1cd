"""Fetch from PyPI the Pyodide wheels each worker would deploy with (run by scripts/setup).

For every worker the set is what a deploy resolves: the worker's declared dependencies minus the vendored
shared core (``pywrangler_dependencies``, the list the deploy hands to ``pywrangler sync``), plus the
Workers Python SDK, which pywrangler adds to every sync. pip resolves them for the interpreter of the npm
``pyodide`` package (CPython 3.14, ABI tag ``pyemscripten_2026_0_wasm32``), binary wheels only: a
dependency with neither a pure-Python wheel nor a wasm wheel fails here, with pip's message, as it would
fail the deploy. Each worker gets its own folder (``<dest>/<worker>/``), so the run installs exactly that
worker's set; ``<dest>/manifest.json`` names the files and the SDK version.

Usage: ``python tests/pyodide/fetch_wheels.py DEST``. Needs the dev venv (it imports edgerag_local) and
the network (PyPI); the test itself never does.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from edgerag_local.runtime.bundle import pywrangler_dependencies

REPO = Path(__file__).resolve().parents[2]
WORKERS = ("gateway", "dedalus", "ingest")
# The Workers Python SDK pywrangler adds to every sync (its MANAGED_SDK_PACKAGE). Pinned so the run is
# reproducible; raise it deliberately (scripts/setup refetches when this file changes).
SDK_REQUIREMENT = "workers-runtime-sdk==1.9.5"
# The interpreter of the pinned npm pyodide package (node_modules/pyodide/pyodide-lock.json "info").
PLATFORM = "pyemscripten_2026_0_wasm32"
PYTHON_VERSION = "3.14"
ABI = "cp314"


def requirements(worker: str) -> list[str]:
    return [*pywrangler_dependencies(REPO / "workers" / worker / "pyproject.toml"), SDK_REQUIREMENT]


def download(reqs: list[str], dest: Path) -> None:
    command = [
        sys.executable, "-m", "pip", "download", "--quiet", "--disable-pip-version-check",
        "--dest", str(dest), "--only-binary=:all:", "--platform", PLATFORM,
        "--python-version", PYTHON_VERSION, "--implementation", "cp", "--abi", ABI, *reqs,
    ]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise SystemExit(
            f"fetch_wheels: pip could not fetch Pyodide ({PLATFORM}, Python {PYTHON_VERSION}) wheels for "
            f"{' '.join(reqs)}:\n{result.stdout}{result.stderr}"
        )


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        raise SystemExit("usage: fetch_wheels.py DEST")
    dest = Path(argv[0]).resolve()
    dest.mkdir(parents=True, exist_ok=True)
    manifest: dict[str, object] = {"platform": PLATFORM, "python": PYTHON_VERSION, "sdk": SDK_REQUIREMENT}
    workers: dict[str, dict[str, object]] = {}
    # Everything lands in a scratch folder first, so a failed fetch leaves the previous cache intact.
    with tempfile.TemporaryDirectory(dir=dest, prefix=".fetch-") as scratch:
        for worker in WORKERS:
            reqs = requirements(worker)
            folder = Path(scratch) / worker
            download(reqs, folder)
            wheels = sorted(p.name for p in folder.glob("*.whl"))
            workers[worker] = {"requirements": reqs, "wheels": wheels}
        for worker in WORKERS:
            shutil.rmtree(dest / worker, ignore_errors=True)
            shutil.move(str(Path(scratch) / worker), dest / worker)
    manifest["workers"] = workers
    (dest / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
