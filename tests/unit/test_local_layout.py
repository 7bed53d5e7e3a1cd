"""The local runtime is laid out like the platform: one subpackage per binding, no import cycles.

Read statically (``ast``), so every import counts: module level, inside functions and under
``TYPE_CHECKING``. Two graphs are checked: modules (no cycle at all) and subpackages (bindings never
depend on the host that wires them; ``core`` depends on nothing).
"""

from __future__ import annotations

import ast
import graphlib
from pathlib import Path

import edgerag_local
import pytest

PACKAGE = Path(edgerag_local.__file__).parent
BINDINGS = {"d1", "kv", "r2", "vectorize", "queues", "ai", "service", "ratelimit", "analytics"}
# What each subpackage may import from inside edgerag_local (besides itself).
ALLOWED = {
    "core": set(),
    "sdk": {"core"},
    **{name: {"core", "sdk"} for name in BINDINGS},
    "runtime": {"core", "sdk", *BINDINGS},
    "cfapi": {"core", "runtime", *BINDINGS},
    "evaluation": {"core"},
    "fakeprovider": {"core", "sdk"},
}
TOP_LEVEL_MODULES = {"__init__.py", "cli.py"}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {_module_name(path): path for path in PACKAGE.rglob("*.py")}


def _imports(path: Path, name: str | None = None) -> set[str]:
    """The edgerag_local modules ``path`` imports: ``from X import y`` counts ``X.y`` when that is a
    module, else ``X``. A module's own ancestor packages are left out: Python initialises them before
    it, so an edge to them says nothing about what the module needs."""
    name = name or _module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            for alias in node.names:
                found.add(f"{base}.{alias.name}" if f"{base}.{alias.name}" in MODULES else base)
    ancestors = {".".join(name.split(".")[:i]) for i in range(1, name.count(".") + 1)}
    return {module for module in found if module in MODULES and module != name} - ancestors


def test_every_binding_and_the_host_have_their_own_subpackage() -> None:
    subpackages = {path.name for path in PACKAGE.iterdir() if (path / "__init__.py").is_file()}
    assert BINDINGS | {"core", "runtime", "sdk"} <= subpackages
    loose = {path.name for path in PACKAGE.glob("*.py")} - TOP_LEVEL_MODULES
    assert not loose, f"modules outside a subpackage: {sorted(loose)}"
    for binding in BINDINGS:
        assert (PACKAGE / binding / "errors.py").is_file(), f"{binding} keeps its errors beside it"


def test_modules_import_each_other_without_cycles() -> None:
    graph = {name: _imports(path) for name, path in MODULES.items()}
    try:
        tuple(graphlib.TopologicalSorter(graph).static_order())
    except graphlib.CycleError as error:
        pytest.fail(f"import cycle: {' -> '.join(error.args[1])}")


def test_subpackages_depend_only_downwards() -> None:
    wrong = []
    for name, path in MODULES.items():
        parts = name.split(".")
        if len(parts) < 3:
            continue
        home = parts[1]
        for target in _imports(path):
            other = target.split(".")[1] if target.count(".") else ""
            if other and other != home and other not in ALLOWED.get(home, set()):
                wrong.append(f"{name} imports {target}")
    assert not wrong, "\n".join(wrong)


def test_the_reader_sees_real_edges_and_a_planted_cycle(tmp_path: Path) -> None:
    """The graph reader is not vacuous: it finds known edges, and a planted cycle fails the sort."""
    assert "edgerag_local.queues.broker" in _imports(MODULES["edgerag_local.queues.dispatcher"])
    planted = tmp_path / "planted.py"
    planted.write_text("if TYPE_CHECKING:\n    from edgerag_local.queues.dispatcher import QueueDispatcher\n")
    graph = {name: _imports(path) for name, path in MODULES.items()}
    graph["edgerag_local.queues.broker"] = graph["edgerag_local.queues.broker"] | _imports(
        planted, "edgerag_local.queues.broker"
    )
    with pytest.raises(graphlib.CycleError):
        tuple(graphlib.TopologicalSorter(graph).static_order())
