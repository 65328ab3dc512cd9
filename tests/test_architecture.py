"""Dependencies point inward: the pure core never imports I/O, UI toolkits or outer layers.

Parses every module's imports (including ones inside functions) so a violation fails here, not
in a user's environment that lacks a toolkit.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "reactive_aiops"

PURE = ("core", "aiops", "wire", "protocol")
IO_MODULES = ("websockets", "asyncio", "socket", "textual", "tkinter", "PySide6", "PyQt5", "PyQt6",
              "nicegui", "fastapi", "uvicorn")
# layer -> internal layers it must not import
FORBIDDEN_LAYERS: dict[str, tuple[str, ...]] = {
    "core": ("aiops", "wire", "protocol", "net", "server", "ui"),
    "aiops": ("wire", "protocol", "net", "server", "ui"),
    "wire": ("aiops", "protocol", "net", "server", "ui"),
    "protocol": ("aiops", "net", "server", "ui"),
    "net": ("server", "ui"),
    "server": ("net", "ui"),
}


def _imports(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module))
    return found


def _modules(layer: str) -> list[Path]:
    return sorted((PACKAGE / layer).rglob("*.py"))


@pytest.mark.parametrize("layer", sorted(FORBIDDEN_LAYERS))
def test_layer_imports_point_inward(layer: str) -> None:
    violations = []
    for path in _modules(layer):
        for lineno, name in _imports(path):
            top = name.split(".")[0]
            if layer in PURE and top in IO_MODULES:
                violations.append(f"{path.relative_to(PACKAGE)}:{lineno} imports {name}")
            parts = name.split(".")
            inner = parts[0] == "reactive_aiops" and len(parts) > 1
            if inner and parts[1] in FORBIDDEN_LAYERS[layer]:
                violations.append(f"{path.relative_to(PACKAGE)}:{lineno} imports {name}")
    assert violations == []


def test_import_reactive_aiops_needs_no_toolkit_or_network_stack() -> None:
    code = (
        "import sys, reactive_aiops, reactive_aiops.core;"
        "bad = [m for m in ('websockets', 'textual', 'tkinter', 'PySide6', 'nicegui', 'fastapi')"
        " if m in sys.modules];"
        "print(','.join(bad))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert out == ""
