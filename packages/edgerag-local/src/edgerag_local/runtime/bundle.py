"""What goes into a worker's deployable bundle, and a checker that proves an entry's imports are all in it.

wrangler bundles a Python Worker from two places: every ``*.py`` under the directory of ``main``
(``src/``), and every file under ``python_modules/`` next to the wrangler config (filled by
``pywrangler sync``). The shared core lives outside the worker, so deploy copies it in:
:func:`vendor_core` puts ``packages/edgerag/src/edgerag`` into ``python_modules/edgerag``. It must run
after ``pywrangler sync``, which replaces ``python_modules/`` wholesale, and the sync itself must be given
:func:`pywrangler_dependencies` (the declared dependencies minus the vendored core, which no index has).

:func:`check_bundle` follows an entry's imports transitively through the first-party sources (with
``ast``, never importing them) and reports every first-party module missing from the bundle and every
third-party import whose distribution the worker's ``pyproject.toml`` does not declare.

To extend: when a worker starts importing a new third-party package, add its import name to
:data:`IMPORT_DISTRIBUTIONS`; modules the Workers runtime provides go in :data:`RUNTIME_PROVIDED`.
"""

from __future__ import annotations

import ast
import importlib.util
import re
import shutil
import sys
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "CORE_DISTRIBUTION",
    "CORE_PACKAGE",
    "IMPORT_DISTRIBUTIONS",
    "RUNTIME_PROVIDED",
    "BundleError",
    "BundleReport",
    "bundle_modules",
    "check_bundle",
    "declared_distributions",
    "normalize_distribution",
    "pywrangler_dependencies",
    "stage_worker",
    "vendor_core",
]

CORE_PACKAGE = "edgerag"
CORE_DISTRIBUTION = "edgerag"
VENDOR_DIR = "python_modules"

# Provided by the Python Workers runtime itself, or by the SDK distribution (workers-runtime-sdk) that
# pywrangler adds to every sync on its own: a worker never declares these.
RUNTIME_PROVIDED: frozenset[str] = frozenset({"workers", "asgi", "js", "pyodide", "_pyodide"})

# Import name -> the distributions that may provide it (any one declared is enough). starlette is
# FastAPI's own dependency, so a worker that declares fastapi may import it.
IMPORT_DISTRIBUTIONS: Mapping[str, tuple[str, ...]] = {
    "fastapi": ("fastapi",),
    "fastapi_offline": ("fastapi-offline",),
    "jsonschema": ("jsonschema",),
    "starlette": ("starlette", "fastapi"),
    "pydantic": ("pydantic",),
    "pydantic_core": ("pydantic-core", "pydantic"),
    "multipart": ("python-multipart",),
    "python_multipart": ("python-multipart",),
    "pypdf": ("pypdf",),
    "httpx": ("httpx",),
}

# PEP 594 removed these from the stdlib in Python 3.13, the runtime's Python; the dev venv's 3.11
# still has them, so they count as third-party imports with no distribution.
_GONE_FROM_STDLIB: frozenset[str] = frozenset(
    "aifc audioop cgi cgitb chunk crypt imghdr lib2to3 mailcap msilib nis nntplib ossaudiodev pipes sndhdr"
    " spwd sunau telnetlib uu xdrlib".split()
)

# Copying the core must not carry interpreter caches into the upload.
_COPY_IGNORE = shutil.ignore_patterns("__pycache__", "*.pyc", "*.pyo")
# What a staged worker copy leaves behind: earlier syncs, wrangler's scratch dir, caches.
_STAGE_IGNORE = shutil.ignore_patterns(VENDOR_DIR, ".wrangler", ".venv-workers", "__pycache__", "*.pyc")
_REQUIREMENT_NAME = re.compile(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)")


class BundleError(Exception):
    """A worker directory, pyproject or source file the bundle tooling cannot use."""


def normalize_distribution(name: str) -> str:
    """The PEP 503 normalized form of a distribution name (``Python_Multipart`` -> ``python-multipart``)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def _dependencies(pyproject: Path) -> list[str]:
    try:
        data = tomllib.loads(pyproject.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise BundleError(f"cannot read {pyproject}: {exc}") from exc
    deps = data.get("project", {}).get("dependencies", [])
    if not isinstance(deps, list) or not all(isinstance(d, str) for d in deps):
        raise BundleError(f"{pyproject}: [project].dependencies must be a list of strings")
    return deps


def _requirement_name(requirement: str, pyproject: Path) -> str:
    match = _REQUIREMENT_NAME.match(requirement)
    if match is None:
        raise BundleError(f"{pyproject}: cannot read a distribution name from {requirement!r}")
    return normalize_distribution(match.group(1))


def declared_distributions(pyproject: Path) -> frozenset[str]:
    """The normalized names of the distributions ``pyproject`` declares in ``[project].dependencies``."""
    return frozenset(_requirement_name(req, pyproject) for req in _dependencies(pyproject))


def pywrangler_dependencies(pyproject: Path) -> list[str]:
    """The requirements ``pywrangler sync`` should resolve: the declared ones minus the vendored core."""
    return [req for req in _dependencies(pyproject) if _requirement_name(req, pyproject) != CORE_DISTRIBUTION]


def _installed_core() -> Path:
    spec = importlib.util.find_spec(CORE_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise BundleError(f"the shared core package {CORE_PACKAGE!r} is not importable; run scripts/setup")
    return Path(next(iter(spec.submodule_search_locations)))


def vendor_core(worker_dir: Path, core_src: Path | None = None) -> Path:
    """Copy the shared core into ``worker_dir/python_modules/edgerag``, replacing any older copy.

    ``core_src`` defaults to the ``edgerag`` package the current interpreter imports (in the dev venv,
    the editable ``packages/edgerag/src/edgerag``). Returns the vendored package directory.
    """
    source = core_src if core_src is not None else _installed_core()
    if not (source / "__init__.py").is_file():
        raise BundleError(f"{source} is not the {CORE_PACKAGE} package (no __init__.py)")
    if not (worker_dir / "wrangler.toml").is_file():
        raise BundleError(f"{worker_dir} has no wrangler.toml; python_modules must sit beside it")
    dest = worker_dir / VENDOR_DIR / CORE_PACKAGE
    if dest.exists():
        shutil.rmtree(dest)
    shutil.copytree(source, dest, ignore=_COPY_IGNORE)
    return dest


def stage_worker(worker_dir: Path, dest: Path) -> Path:
    """Copy a worker (config, pyproject, sources) to ``dest`` without earlier vendoring or caches.

    Deploys and bundle checks work on the copy so the repository never holds a half-vendored tree.
    Relative paths in the wrangler config (``migrations_dir``) do not follow the copy; nothing that
    bundles needs them.
    """
    if not (worker_dir / "wrangler.toml").is_file():
        raise BundleError(f"{worker_dir} has no wrangler.toml")
    shutil.copytree(worker_dir, dest, ignore=_STAGE_IGNORE)
    return dest


def bundle_modules(outdir: Path) -> frozenset[str]:
    """Dotted names of the Python modules in a ``wrangler deploy --dry-run --outdir`` output.

    Vendored files sit under ``python_modules/``, which is on the runtime's import path, so the prefix
    is dropped: ``python_modules/edgerag/ports.py`` is ``edgerag.ports``.
    """
    names: set[str] = set()
    for path in outdir.rglob("*.py"):
        parts = list(path.relative_to(outdir).with_suffix("").parts)
        if parts[0] == VENDOR_DIR:
            parts = parts[1:]
        if parts[-1] == "__init__":
            parts = parts[:-1]
        if parts:
            names.add(".".join(parts))
    return frozenset(names)


@dataclass(frozen=True)
class _Source:
    name: str
    path: Path

    @property
    def is_package(self) -> bool:
        return self.path.name == "__init__.py"


def _find_first_party(name: str, roots: Sequence[Path]) -> _Source | None:
    rel = Path(*name.split("."))
    for root in roots:
        for candidate in (root / rel / "__init__.py", root / rel.with_suffix(".py")):
            if candidate.is_file():
                return _Source(name, candidate)
    return None


def _is_type_checking_guard(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _runtime_nodes(tree: ast.AST) -> Iterable[ast.AST]:
    """Every node that can run at import or call time; ``if TYPE_CHECKING:`` bodies never run."""
    stack: list[ast.AST] = [tree]
    while stack:
        node = stack.pop()
        yield node
        if isinstance(node, ast.If) and _is_type_checking_guard(node):
            stack.extend(node.orelse)
            continue
        stack.extend(ast.iter_child_nodes(node))


def _imported_names(source: _Source) -> set[str]:
    """Dotted names a module may import; ``from a import b`` yields ``a`` and ``a.b`` (b may be a module)."""
    try:
        tree = ast.parse(source.path.read_text(encoding="utf-8"), filename=str(source.path))
    except (OSError, SyntaxError, ValueError) as exc:
        raise BundleError(f"cannot parse {source.path}: {exc}") from exc
    package = source.name if source.is_package else source.name.rpartition(".")[0]
    names: set[str] = set()
    for node in _runtime_nodes(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = _resolve_relative(package, node.level, node.module, source.path)
            if base:
                names.add(base)
            names.update(f"{base}.{alias.name}" if base else alias.name for alias in node.names)
    return names


def _resolve_relative(package: str, level: int, module: str | None, path: Path) -> str:
    parts = package.split(".") if package else []
    keep = len(parts) - (level - 1)
    if keep <= 0:
        raise BundleError(f"{path}: relative import goes above the top-level package")
    return ".".join([*parts[:keep], *([module] if module else [])])


def _with_parents(name: str) -> list[str]:
    """Importing ``a.b.c`` runs ``a`` and ``a.b`` first."""
    parts = name.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts) + 1)]


@dataclass(frozen=True)
class BundleReport:
    """What an entry needs: first-party modules (and whether the bundle has them) and third-party imports."""

    first_party: frozenset[str]
    missing_modules: tuple[str, ...]
    undeclared: tuple[tuple[str, str], ...]  # (import name, an acceptable distribution)
    unknown_imports: tuple[str, ...]  # third-party imports with no known distribution

    @property
    def problems(self) -> list[str]:
        found = [f"first-party module {m!r} is imported but not in the bundle" for m in self.missing_modules]
        found += [f"import {i!r} needs {d!r} in the worker's dependencies" for i, d in self.undeclared]
        found += [
            f"import {i!r} maps to no distribution the runtime can install (see IMPORT_DISTRIBUTIONS)"
            for i in self.unknown_imports
        ]
        return found


def check_bundle(
    entry: Path,
    roots: Sequence[Path],
    bundled: Iterable[str],
    declared: Iterable[str],
) -> BundleReport:
    """Follow ``entry``'s imports through the first-party ``roots`` and compare with a bundle.

    ``bundled`` holds the module names from :func:`bundle_modules`; ``declared`` the worker's declared
    distributions (:func:`declared_distributions`). A name found under a root is first-party; a stdlib
    module or one in :data:`RUNTIME_PROVIDED` needs nothing; anything else is third-party.
    """
    bundle = frozenset(bundled)
    deps = frozenset(normalize_distribution(d) for d in declared)
    first_party: set[str] = {entry.stem}
    third_party: set[str] = set()
    pending = [_Source(entry.stem, entry)]
    while pending:
        source = pending.pop()
        for imported in sorted(_imported_names(source)):
            top = imported.partition(".")[0]
            if top in RUNTIME_PROVIDED or (top in sys.stdlib_module_names and top not in _GONE_FROM_STDLIB):
                continue
            if _find_first_party(top, roots) is None:
                third_party.add(top)
                continue
            for name in _with_parents(imported):
                found = _find_first_party(name, roots)
                if found is not None and name not in first_party:
                    first_party.add(name)
                    pending.append(found)
    undeclared: list[tuple[str, str]] = []
    unknown: list[str] = []
    for name in sorted(third_party):
        options = IMPORT_DISTRIBUTIONS.get(name)
        if options is None:
            unknown.append(name)
        elif not deps.intersection(normalize_distribution(o) for o in options):
            undeclared.append((name, options[0]))
    return BundleReport(
        first_party=frozenset(first_party),
        missing_modules=tuple(sorted(first_party - bundle)),
        undeclared=tuple(undeclared),
        unknown_imports=tuple(unknown),
    )
