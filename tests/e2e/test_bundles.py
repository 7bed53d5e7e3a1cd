"""Each worker's deployable bundle, built offline by the real wrangler, holds everything its entry imports.

For every worker: stage a copy of it (the repository is never written to), vendor the shared core into
the copy's ``python_modules/`` as a deploy does, run ``wrangler deploy --dry-run --outdir``, then follow
the entry's imports through the first-party sources and require every first-party module to be in the
output and every third-party import to be declared in the worker's pyproject. Third-party packages
themselves are not in the output here: ``pywrangler sync`` fetches them for Pyodide, which needs a network.

Needs wrangler from ``scripts/setup``; no account, no network (the update check wrangler prints is
best-effort and does not affect the result).
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from edgerag_local.runtime.bundle import (
    BundleReport,
    bundle_modules,
    check_bundle,
    declared_distributions,
    stage_worker,
    vendor_core,
)

pytestmark = pytest.mark.wrangler

REPO = Path(__file__).resolve().parents[2]
WRANGLER = REPO / "node_modules" / ".bin" / "wrangler"
CORE_SRC = REPO / "packages" / "edgerag" / "src"
WORKERS = ("gateway", "dedalus", "ingest")
# Generous: a hung wrangler should fail the test, not stall the run. Not a performance threshold.
WRANGLER_TIMEOUT_S = 180

# Anything that could point wrangler at an account is dropped, so a dry-run can never become a deploy.
_ACCOUNT_VARIABLES = (
    "CLOUDFLARE_API_TOKEN",
    "CLOUDFLARE_API_KEY",
    "CLOUDFLARE_EMAIL",
    "CLOUDFLARE_ACCOUNT_ID",
)


def dry_run(worker_dir: Path, outdir: Path, scratch: Path) -> str:
    if not WRANGLER.exists():
        pytest.fail(f"{WRANGLER} is missing: run scripts/setup to install the pinned wrangler")
    env = {key: value for key, value in os.environ.items() if key not in _ACCOUNT_VARIABLES}
    env |= {
        "CLOUDFLARE_CF_FETCH_ENABLED": "false",
        "WRANGLER_SEND_METRICS": "false",
        "WRANGLER_LOG_PATH": str(scratch / "wrangler-logs"),
        "NO_COLOR": "1",
    }
    result = subprocess.run(
        [str(WRANGLER), "deploy", "--dry-run", "--outdir", str(outdir)],
        cwd=worker_dir,
        env=env,
        capture_output=True,
        text=True,
        timeout=WRANGLER_TIMEOUT_S,
        check=False,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    return output


def check(worker_dir: Path, outdir: Path) -> BundleReport:
    return check_bundle(
        entry=worker_dir / "src" / "entry.py",
        roots=[worker_dir / "src", CORE_SRC],
        bundled=bundle_modules(outdir),
        declared=declared_distributions(worker_dir / "pyproject.toml"),
    )


class Bundle:
    def __init__(self, worker: str, outdir: Path, output: str) -> None:
        self.worker = worker
        self.outdir = outdir
        self.output = output


@pytest.fixture(scope="module", params=WORKERS)
def bundle(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Bundle:
    """One dry-run per worker, shared by the tests that read its output."""
    worker: str = request.param
    scratch = tmp_path_factory.mktemp(f"bundle-{worker}")
    staged = stage_worker(REPO / "workers" / worker, scratch / worker)
    vendor_core(staged, CORE_SRC / "edgerag")
    outdir = scratch / "out"
    return Bundle(worker, outdir, dry_run(staged, outdir, scratch))


def test_dry_run_is_free_of_warnings(bundle: Bundle) -> None:
    assert "[WARNING]" not in bundle.output, bundle.output


def test_bundle_holds_every_module_the_entry_imports(bundle: Bundle) -> None:
    report = check(REPO / "workers" / bundle.worker, bundle.outdir)

    assert report.problems == []
    assert {"entry", bundle.worker} <= report.first_party


def test_bundle_carries_the_whole_vendored_core(bundle: Bundle) -> None:
    core = {name for name in bundle_modules(CORE_SRC) if name.split(".")[0] == "edgerag"}

    assert "edgerag" in core
    assert core <= bundle_modules(bundle.outdir)


def test_checker_catches_a_core_that_was_not_vendored(tmp_path: Path) -> None:
    # dedalus imports the core (edgerag.sse, edgerag.contracts.dedalus); skip the vendoring step.
    staged = stage_worker(REPO / "workers" / "dedalus", tmp_path / "dedalus")
    outdir = tmp_path / "out"

    dry_run(staged, outdir, tmp_path)

    report = check(REPO / "workers" / "dedalus", outdir)
    assert "edgerag.sse" in report.missing_modules
    assert "edgerag.contracts.dedalus" in report.missing_modules
    assert not any(name.startswith("dedalus") for name in report.missing_modules)


def test_staging_and_vendoring_leave_the_repository_untouched(tmp_path: Path) -> None:
    worker_dir = REPO / "workers" / "ingest"
    had_vendor_dir = (worker_dir / "python_modules").exists()

    staged = stage_worker(worker_dir, tmp_path / "ingest")
    vendor_core(staged, CORE_SRC / "edgerag")

    assert (staged / "python_modules" / "edgerag" / "__init__.py").is_file()
    assert (worker_dir / "python_modules").exists() == had_vendor_dir
