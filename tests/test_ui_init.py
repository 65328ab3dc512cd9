"""The ui facade: its names, their docstrings, and no toolkit imported at import time."""

from __future__ import annotations

import inspect
import subprocess
import sys

import reactive_aiops.ui

TOOLKITS = ("tkinter", "_tkinter", "PySide6", "PyQt5", "PyQt6", "textual")


def test_all_names_exist_and_public_objects_are_documented() -> None:
    for name in reactive_aiops.ui.__all__:
        obj = getattr(reactive_aiops.ui, name)
        if inspect.isclass(obj) or inspect.isfunction(obj):
            assert inspect.getdoc(obj), name


def test_importing_the_package_and_the_ui_imports_no_toolkit() -> None:
    code = (
        "import sys, reactive_aiops, reactive_aiops.ui, reactive_aiops.ui.hooks;"
        f"print(sorted(m for m in {TOOLKITS!r} if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-W", "error", "-c", code],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    assert out.stdout.strip() == "[]"


def test_ui_works_when_the_toolkits_cannot_be_imported() -> None:
    # A None entry in sys.modules makes `import X` raise ImportError, as if X were absent.
    blockers = "; ".join(f"sys.modules[{name!r}] = None" for name in TOOLKITS)
    code = (
        f"import sys; {blockers}; import reactive_aiops.ui as ui; "
        "import reactivex; print(ui.coalesce_frames()(reactivex.of(1, 2)).run())"
    )
    out = subprocess.run(
        [sys.executable, "-W", "error", "-c", code],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    assert out.stdout.strip() == "2"
