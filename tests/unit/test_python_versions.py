"""Each worker declares the Pythons it supports at the edge, and the declaration matches its config.

``[tool.edgerag.python].workers`` must be the Python that Cloudflare runs for the worker's
``wrangler.toml``, by the rule pywrangler applies when it resolves the deploy's packages
(cloudflare/workers-py ``pywrangler/metadata.py`` ``PYTHON_COMPAT_VERSIONS``): 3.14 only with the
experimental flags, 3.13 from compatibility_date 2025-09-29 (or flag ``python_workers_20250116``),
else 3.12. ``pyodide-run`` must be the Python of the pinned npm pyodide package, which the Pyodide run
(tests/pyodide) uses. Both appear as classifiers.
"""

from __future__ import annotations

import json
import tomllib
from datetime import date
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
WORKERS = ("gateway", "dedalus", "ingest")


def workers_python(wrangler: dict[str, object]) -> str:
    flags = wrangler.get("compatibility_flags", [])
    assert isinstance(flags, list) and "python_workers" in flags
    when = date.fromisoformat(str(wrangler["compatibility_date"]))
    if "experimental" in flags and "pythonWorkers20260610" in flags:
        return "3.14"
    if "python_workers_20250116" in flags or when >= date(2025, 9, 29):
        return "3.13"
    return "3.12"


def declared(worker: str) -> dict[str, object]:
    project = tomllib.loads((REPO / "workers" / worker / "pyproject.toml").read_text(encoding="utf-8"))
    return project


@pytest.mark.parametrize("worker", WORKERS)
def test_the_declared_edge_python_is_the_one_workers_runs(worker: str) -> None:
    wrangler = tomllib.loads((REPO / "workers" / worker / "wrangler.toml").read_text(encoding="utf-8"))
    pythons = declared(worker)["tool"]["edgerag"]["python"]  # type: ignore[index]
    assert pythons["workers"] == workers_python(wrangler)


@pytest.mark.parametrize("worker", WORKERS)
def test_the_pyodide_run_python_is_the_pinned_pyodide_packages(worker: str) -> None:
    lock = REPO / "node_modules" / "pyodide" / "pyodide-lock.json"
    if not lock.is_file():
        pytest.fail(f"{lock} is missing: run scripts/setup")
    python = json.loads(lock.read_text(encoding="utf-8"))["info"]["python"]
    pythons = declared(worker)["tool"]["edgerag"]["python"]  # type: ignore[index]
    assert python.rsplit(".", 1)[0] == pythons["pyodide-run"]


@pytest.mark.parametrize("worker", WORKERS)
def test_every_supported_python_is_a_classifier(worker: str) -> None:
    project = declared(worker)
    pythons = project["tool"]["edgerag"]["python"]  # type: ignore[index]
    classifiers = project["project"]["classifiers"]  # type: ignore[index]
    minimum = project["project"]["requires-python"]  # type: ignore[index]
    assert minimum == ">=3.11"
    for version in ("3.11", pythons["workers"], pythons["pyodide-run"]):
        assert f"Programming Language :: Python :: {version}" in classifiers
