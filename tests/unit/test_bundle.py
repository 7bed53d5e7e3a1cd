"""edgerag_local.runtime.bundle on small synthetic workers: import following, bundle listing, vendoring.

The real workers and the real wrangler are exercised in tests/e2e/test_bundles.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from edgerag_local.runtime.bundle import (
    BundleError,
    bundle_modules,
    check_bundle,
    declared_distributions,
    normalize_distribution,
    pywrangler_dependencies,
    stage_worker,
    vendor_core,
)


def write(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


@pytest.fixture
def tree(tmp_path: Path) -> tuple[Path, Path]:
    """A worker src dir (package ``svc``) and a core src dir (package ``edgerag``)."""
    src, core = tmp_path / "worker" / "src", tmp_path / "core"
    write(
        src,
        {
            "entry.py": "import asgi\nfrom workers import Response\nimport json\nfrom svc.app import run\n",
            "svc/__init__.py": "",
            "svc/app.py": "from . import util\nfrom .models import Thing\n",
            "svc/util.py": "from edgerag.contracts import dedalus\n",
            "svc/models.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import numpy\n",
            "svc/unused.py": "import numpy\n",
        },
    )
    write(
        core,
        {
            "edgerag/__init__.py": "",
            "edgerag/contracts/__init__.py": "",
            "edgerag/contracts/dedalus.py": "from pydantic import BaseModel\nfrom ..httpreply import x\n",
            "edgerag/httpreply.py": "import dataclasses\n",
        },
    )
    return src, core


FOLLOWED = {
    "entry",
    "svc",
    "svc.app",
    "svc.util",
    "svc.models",
    "edgerag",
    "edgerag.contracts",
    "edgerag.contracts.dedalus",
    "edgerag.httpreply",
}


def test_follows_imports_transitively_through_every_root(tree: tuple[Path, Path]) -> None:
    src, core = tree
    report = check_bundle(src / "entry.py", [src, core], FOLLOWED, ["pydantic"])

    assert report.first_party == FOLLOWED  # svc.unused is never imported; TYPE_CHECKING never runs
    assert report.problems == []


def test_reports_first_party_modules_missing_from_the_bundle(tree: tuple[Path, Path]) -> None:
    src, core = tree
    without_core = {name for name in FOLLOWED if not name.startswith("edgerag")}

    report = check_bundle(src / "entry.py", [src, core], without_core, ["pydantic"])

    assert report.missing_modules == (
        "edgerag",
        "edgerag.contracts",
        "edgerag.contracts.dedalus",
        "edgerag.httpreply",
    )


def test_reports_undeclared_third_party_distributions(tree: tuple[Path, Path]) -> None:
    src, core = tree
    report = check_bundle(src / "entry.py", [src, core], FOLLOWED, ["fastapi"])

    assert report.undeclared == (("pydantic", "pydantic"),)
    assert len(report.problems) == 1


def test_import_names_map_to_their_distributions(tmp_path: Path) -> None:
    write(tmp_path, {"entry.py": "import starlette.responses\nimport multipart\n"})

    declared = check_bundle(tmp_path / "entry.py", [tmp_path], {"entry"}, ["FastAPI", "Python_Multipart"])
    undeclared = check_bundle(tmp_path / "entry.py", [tmp_path], {"entry"}, ["fastapi"])

    assert declared.problems == []
    assert undeclared.undeclared == (("multipart", "python-multipart"),)


def test_unknown_and_removed_stdlib_imports_are_reported(tmp_path: Path) -> None:
    write(tmp_path, {"entry.py": "import cgi\nimport numpy\nimport threading\n"})

    report = check_bundle(tmp_path / "entry.py", [tmp_path], {"entry"}, ["numpy"])

    assert report.unknown_imports == ("cgi", "numpy")


def test_the_entry_itself_must_be_bundled(tmp_path: Path) -> None:
    write(tmp_path, {"entry.py": "import json\n"})

    assert check_bundle(tmp_path / "entry.py", [tmp_path], set(), []).missing_modules == ("entry",)


def test_relative_import_above_the_top_level_is_an_error(tmp_path: Path) -> None:
    write(tmp_path, {"entry.py": "import pkg\n", "pkg/__init__.py": "from .. import elsewhere\n"})

    with pytest.raises(BundleError, match="above the top-level package"):
        check_bundle(tmp_path / "entry.py", [tmp_path], set(), [])


def test_bundle_modules_lists_wrangler_output_as_import_names(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            "entry.py": "",
            "README.md": "",
            "svc/__init__.py": "",
            "svc/app.py": "",
            "python_modules/edgerag/__init__.py": "",
            "python_modules/edgerag/ports.py": "",
            "python_modules/edgerag/py.typed": "",
        },
    )

    assert bundle_modules(tmp_path) == {"entry", "svc", "svc.app", "edgerag", "edgerag.ports"}


def test_declared_distributions_are_normalized_names(tmp_path: Path) -> None:
    pyproject = tmp_path / "pyproject.toml"
    pyproject.write_text(
        '[project]\nname = "w"\ndependencies = ["edgerag", "Python_Multipart>=0.0.9", '
        "\"pydantic[email] >=2.7; python_version >= '3.11'\"]\n"
    )

    assert declared_distributions(pyproject) == {"edgerag", "python-multipart", "pydantic"}
    assert pywrangler_dependencies(pyproject) == [
        "Python_Multipart>=0.0.9",
        "pydantic[email] >=2.7; python_version >= '3.11'",
    ]
    assert normalize_distribution("Typing.Extensions") == "typing-extensions"


def test_unreadable_pyproject_is_a_bundle_error(tmp_path: Path) -> None:
    pyproject = tmp_path / "pyproject.toml"
    pyproject.write_text("[project\n")

    with pytest.raises(BundleError, match="cannot read"):
        declared_distributions(pyproject)


def test_vendor_core_replaces_an_older_copy_without_caches(tmp_path: Path) -> None:
    core = tmp_path / "core" / "edgerag"
    write(core, {"__init__.py": "", "ports.py": "", "__pycache__/ports.cpython-311.pyc": ""})
    worker = tmp_path / "worker"
    write(worker, {"wrangler.toml": "", "python_modules/edgerag/stale.py": ""})

    dest = vendor_core(worker, core)

    assert dest == worker / "python_modules" / "edgerag"
    assert sorted(p.name for p in dest.iterdir()) == ["__init__.py", "ports.py"]


def test_vendor_core_needs_a_worker_and_a_package(tmp_path: Path) -> None:
    core = tmp_path / "core" / "edgerag"
    write(core, {"__init__.py": ""})

    with pytest.raises(BundleError, match=r"no wrangler\.toml"):
        vendor_core(tmp_path, core)
    write(tmp_path, {"wrangler.toml": ""})
    with pytest.raises(BundleError, match=r"no __init__\.py"):
        vendor_core(tmp_path, tmp_path / "core")


def test_vendor_core_defaults_to_the_installed_core(tmp_path: Path) -> None:
    import edgerag

    write(tmp_path, {"wrangler.toml": ""})

    dest = vendor_core(tmp_path)

    assert (dest / "__init__.py").read_text() == Path(edgerag.__file__).read_text()


def test_stage_worker_leaves_earlier_vendoring_and_caches_behind(tmp_path: Path) -> None:
    worker = tmp_path / "worker"
    write(
        worker,
        {
            "wrangler.toml": "",
            "pyproject.toml": "",
            "src/entry.py": "",
            "src/svc/__pycache__/x.pyc": "",
            "python_modules/old/__init__.py": "",
            ".wrangler/tmp/x": "",
        },
    )

    staged = stage_worker(worker, tmp_path / "staged")

    files = sorted(str(p.relative_to(staged)) for p in staged.rglob("*") if p.is_file())
    assert files == ["pyproject.toml", "src/entry.py", "wrangler.toml"]
