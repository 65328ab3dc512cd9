"""Every example in docs/adapters.md runs, and does what the page says."""

from __future__ import annotations

import asyncio
import re
import time
from pathlib import Path
from typing import Any

import pytest
from ui_helpers import qapp, xvfb_display

__all__ = ["qapp", "xvfb_display"]  # re-exported fixture

PAGE = Path(__file__).resolve().parent.parent / "docs" / "adapters.md"
EXAMPLE = re.compile(r"<!-- example: (\w+) -->\n```python\n(.*?)```", re.DOTALL)
EXAMPLES = dict(EXAMPLE.findall(PAGE.read_text(encoding="utf-8")))


def load(name: str) -> dict[str, Any]:
    """Execute one example as a module that is not __main__; return its namespace."""
    namespace: dict[str, Any] = {"__name__": f"docs_example_{name}"}
    exec(compile(EXAMPLES[name], f"{PAGE}:{name}", "exec"), namespace)
    return namespace


def test_every_adapter_has_an_example() -> None:
    assert set(EXAMPLES) == {"hooks", "coalesce", "asyncio", "textual", "tk", "qt"}


def test_hooks_example() -> None:
    load("hooks")  # asserts inside


def test_coalesce_example() -> None:
    load("coalesce")  # asserts inside


def test_asyncio_example() -> None:
    seen = asyncio.run(load("asyncio")["main"]())
    assert seen[0] is None
    assert seen[-1] == 3
    assert seen[1:] == sorted(seen[1:])


@pytest.mark.asyncio
async def test_textual_example() -> None:
    pytest.importorskip("textual")
    example = load("textual")
    store = example["create_store"](
        example["make_root_reducer"](connection=example["connection_reducer"])
    )
    app = example["ConnectionApp"](store)
    async with app.run_test() as pilot:
        badge = app.query_one(example["ConnectionBadge"])
        deadline = time.monotonic() + 10
        while str(badge.content) != "link: connected":  # a real cross-thread event
            assert time.monotonic() < deadline, badge.content
            await pilot.pause(0.01)


def test_tk_example(xvfb_display: str) -> None:
    tkinter = pytest.importorskip("tkinter")
    example = load("tk")
    root = tkinter.Tk()
    try:
        label = example["build"](root)
        deadline = time.monotonic() + 10

        def check() -> None:
            if label.cget("text") == "connected" or time.monotonic() > deadline:
                root.quit()
            else:
                root.after(5, check)

        root.after(0, check)
        root.mainloop()
        assert label.cget("text") == "connected"
    finally:
        root.destroy()


def test_qt_example(qapp: Any) -> None:
    qtcore = pytest.importorskip("PySide6.QtCore")
    example = load("qt")
    label = example["build"]()
    deadline = time.monotonic() + 10
    while label.text() != "connected":  # a real cross-thread event
        assert time.monotonic() < deadline, label.text()
        qtcore.QCoreApplication.processEvents(qtcore.QEventLoop.ProcessEventsFlag.AllEvents, 10)
    label.deleteLater()
    qtcore.QCoreApplication.sendPostedEvents(None, qtcore.QEvent.Type.DeferredDelete)
