"""Every Python block of docs/tutorial.md runs, in order, in one namespace."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

TUTORIAL = Path(__file__).resolve().parent.parent / "docs" / "tutorial.md"


def _blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", TUTORIAL.read_text(encoding="utf-8"), re.S)


def test_tutorial_has_blocks() -> None:
    assert len(_blocks()) >= 4


@pytest.mark.timeout(60)
def test_tutorial_runs_in_order() -> None:
    namespace: dict[str, object] = {"__name__": "tutorial"}
    for index, block in enumerate(_blocks()):
        try:
            exec(compile(block, f"tutorial block {index + 1}", "exec"), namespace)
        except Exception as exc:
            raise AssertionError(f"tutorial block {index + 1} failed: {exc!r}") from exc
