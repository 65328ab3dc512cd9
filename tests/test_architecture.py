"""The layering contract (docs/architecture.md), checked on every import in the package.

Every module's imports are parsed -- including ones inside functions and under
``TYPE_CHECKING`` -- so a violation fails here, not in a user's environment that lacks a toolkit.
The contract, innermost first:

* ``core`` and ``wire`` import no other layer; ``aiops`` only ``core``; ``protocol`` only
  ``core`` and ``wire``: together the pure layers, which import no I/O (no sockets, event
  loops, TLS, processes, HTTP, Redis, UI toolkits, command-line parsing);
* ``net`` (client) and ``server`` are the network edges: the only places ``websockets`` is
  imported, beside the test proxy in ``testing``; the Redis client only in the Redis engine;
* ``ui`` may use everything but ``cli``; UI toolkits are imported only in ``ui``;
* ``cli`` is the outermost layer: one module per command, imported by nothing but
  ``__main__``; command-line parsing (``argparse``) lives only there.

Beyond the direction of imports: no import circle anywhere in the package, no empty package, and
no module over ``MAX_LINES`` unless it is listed (with the reason) in ``LONG_MODULES``.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "reactive_aiops"

#: layer (a subpackage, or a top-level module by its stem) -> the layers it may import.
LAYERS: dict[str, frozenset[str]] = {
    "core": frozenset(),
    "wire": frozenset(),
    "aiops": frozenset({"core"}),
    "protocol": frozenset({"core", "wire"}),
    "net": frozenset({"core", "wire", "aiops", "protocol"}),
    "server": frozenset({"core", "wire", "aiops", "protocol"}),
    "testing": frozenset({"core", "wire", "protocol"}),
    "ui": frozenset({"core", "wire", "aiops", "protocol", "net", "server", "testing"}),
    "cli": frozenset({"core", "wire", "aiops", "protocol", "net", "server", "testing", "ui",
                      "_loop"}),
    # top-level modules
    "__init__": frozenset({"core"}),  # `import reactive_aiops`: the store core only
    "__main__": frozenset({"cli"}),
    "_loop": frozenset(),  # the event loop a command runs on (asyncio or uvloop)
    "app": frozenset({"aiops"}),  # deprecated alias of aiops.live_store
    "demo": frozenset({"aiops"}),  # deprecated alias of aiops.scenario
}

PURE = ("core", "wire", "aiops", "protocol", "__init__", "app", "demo")
UI_TOOLKITS = ("textual", "rich", "tkinter", "PySide6", "PyQt5", "PyQt6", "nicegui", "fastapi",
               "uvicorn", "selenium")
#: Modules the pure layers never import: network, event loops, TLS, processes, HTTP, Redis,
#: metrics exposition, command lines and every UI toolkit.
IO_MODULES = ("websockets", "asyncio", "socket", "ssl", "selectors", "subprocess", "http",
              "urllib", "redis", "prometheus_client", "uvloop", "argparse", *UI_TOOLKITS)
#: external top-level module -> the only places (a layer directory, or one file) that import it.
ONLY_IN: dict[str, tuple[str, ...]] = {
    "websockets": ("net/", "server/", "testing/proxy.py"),
    "redis": ("server/redis_engine.py", "server/cluster.py"),
    "argparse": ("cli/",),
    "uvloop": ("_loop.py",),
    **{toolkit: ("ui/",) for toolkit in UI_TOOLKITS},
}

MAX_LINES = 500
#: Modules allowed past MAX_LINES, and why.
LONG_MODULES: dict[str, str] = {}


def _modules() -> Iterator[tuple[str, Path]]:
    """(dotted module name, path) for every module of the package."""
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        yield ".".join(parts), path


MODULES = dict(_modules())


def _layer(path: Path) -> str:
    rel = path.relative_to(PACKAGE)
    return rel.parts[0] if len(rel.parts) > 1 else rel.stem


def _imports(module: str, path: Path) -> list[tuple[int, str]]:
    """(line, absolute module name) of every import in ``path``, relative ones resolved."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            # `from pkg import submodule` depends on the submodule; `from pkg import name`
            # on pkg itself
            submodules = [f"{base}.{a.name}" for a in node.names if f"{base}.{a.name}" in MODULES]
            if len(submodules) < len(node.names):
                found.append((node.lineno, base))
            found.extend((node.lineno, name) for name in submodules)
    return found


def _internal(name: str) -> str | None:
    """The package module ``name`` refers to (its longest known prefix), or None if external."""
    while name:
        if name in MODULES:
            return name
        name = name.rpartition(".")[0]
    return None


def _where(path: Path, lineno: int) -> str:
    return f"{path.relative_to(PACKAGE)}:{lineno}"


def test_every_top_level_module_and_package_has_a_place_in_the_contract() -> None:
    found = {_layer(path) for path in MODULES.values()}
    assert found - set(LAYERS) == set(), "add the new layer to LAYERS (and docs/architecture.md)"


@pytest.mark.parametrize("layer", sorted(LAYERS))
def test_layer_imports_point_inward(layer: str) -> None:
    violations = []
    for module, path in MODULES.items():
        if _layer(path) != layer:
            continue
        for lineno, name in _imports(module, path):
            target = _internal(name)
            if target is None:
                continue
            target_layer = _layer(MODULES[target])
            if target_layer not in (layer, "__init__") and target_layer not in LAYERS[layer]:
                violations.append(f"{_where(path, lineno)} imports {name}")
    assert violations == []


@pytest.mark.parametrize("layer", PURE)
def test_pure_layers_import_no_io(layer: str) -> None:
    violations = [
        f"{_where(path, lineno)} imports {name}"
        for module, path in MODULES.items()
        if _layer(path) == layer
        for lineno, name in _imports(module, path)
        if name.split(".")[0] in IO_MODULES
    ]
    assert violations == []


@pytest.mark.parametrize("external", sorted(ONLY_IN))
def test_external_packages_only_where_the_contract_puts_them(external: str) -> None:
    allowed = ONLY_IN[external]
    violations = []
    for module, path in MODULES.items():
        rel = path.relative_to(PACKAGE).as_posix()
        if rel.startswith(allowed) or rel in allowed:
            continue
        violations.extend(
            f"{_where(path, lineno)} imports {name}"
            for lineno, name in _imports(module, path)
            if name.split(".")[0] == external
        )
    assert violations == []


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def test_no_import_circle_in_the_package() -> None:
    graph: dict[str, set[str]] = {}
    for module, path in MODULES.items():
        targets = {_internal(name) for _, name in _imports(module, path)}
        graph[module] = {t for t in targets if t is not None and t != module}
    assert _cycles(graph) == []


def test_the_circle_finder_finds_a_circle() -> None:
    # The check above is only as good as this: a -> b -> c -> a is one circle, d is not in it.
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a", "d"}, "d": set()}
    assert _cycles(graph) == [["a", "b", "c"]]


def test_no_empty_package() -> None:
    empty = []
    for init in PACKAGE.rglob("__init__.py"):
        siblings = [p for p in init.parent.iterdir() if p.name != "__init__.py"
                    and (p.suffix == ".py" or (p / "__init__.py").exists())]
        body = ast.parse(init.read_text(encoding="utf-8")).body
        code = [node for node in body
                if not (isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant))]
        if not siblings and not code:
            empty.append(str(init.parent.relative_to(PACKAGE.parent)))
    assert empty == []


def test_modules_stay_short_enough_to_read() -> None:
    long = {
        path.relative_to(PACKAGE).as_posix(): n
        for path in MODULES.values()
        if (n := len(path.read_text(encoding="utf-8").splitlines())) > MAX_LINES
    }
    assert {name: n for name, n in long.items() if name not in LONG_MODULES} == {}


def test_import_reactive_aiops_needs_no_toolkit_or_network_stack() -> None:
    code = (
        "import sys, reactive_aiops, reactive_aiops.core, reactive_aiops.aiops.live_store;"
        "bad = [m for m in ('websockets', 'textual', 'tkinter', 'PySide6', 'nicegui', 'fastapi',"
        " 'redis') if m in sys.modules];"
        "print(','.join(bad))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert out == ""


def test_docs_architecture_lists_every_layer_of_the_contract() -> None:
    # The page and the contract are one: a new layer is added to both.
    table = (PACKAGE.parent / "docs" / "architecture.md").read_text(encoding="utf-8")
    rows = {line.split("|")[1].strip(" `") for line in table.splitlines()
            if line.startswith("| `")}
    packages = {name for name in LAYERS if (PACKAGE / name).is_dir()}
    assert rows == packages
