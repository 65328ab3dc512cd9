"""streaming_gc: the collector policy a live UI process runs under, and that it is undone."""

from __future__ import annotations

import gc
import weakref

import pytest

from reactive_aiops.ui import STREAMING_GEN0_THRESHOLD, streaming_gc


class _Node:
    def __init__(self) -> None:
        self.other: _Node | None = None


def _cycle() -> tuple[_Node, weakref.ref[_Node]]:
    a, b = _Node(), _Node()
    a.other, b.other = b, a
    return a, weakref.ref(a)


def test_inside_the_threshold_is_raised_and_the_earlier_heap_is_frozen() -> None:
    before = gc.get_threshold()
    frozen_before = gc.get_freeze_count()
    held = [_cycle()[0]]  # alive when the policy starts: frozen with the rest of the heap
    early = weakref.ref(held[0])
    with streaming_gc():
        assert gc.get_threshold() == (STREAMING_GEN0_THRESHOLD, *before[1:])
        assert gc.get_freeze_count() > frozen_before
        held.clear()
        late_node, late = _cycle()
        del late_node
        gc.collect()
        assert late() is None, "cyclic garbage made inside is still collected"
        assert early() is not None, "the frozen heap is out of the collector's view"
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == frozen_before
    gc.collect()
    assert early() is None, "the frozen heap went back to the collector"


def test_restored_when_the_body_raises() -> None:
    before = gc.get_threshold()
    seen: list[int] = []

    def run() -> None:
        with streaming_gc(gen0_threshold=5_000):
            seen.append(gc.get_threshold()[0])
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        run()
    assert seen == [5_000]
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == 0


@pytest.mark.parametrize("bad", [0, -1])
def test_a_threshold_below_one_is_refused_before_anything_changes(bad: int) -> None:
    before = gc.get_threshold()
    with pytest.raises(ValueError, match="gen0_threshold"), streaming_gc(bad):
        pass
    assert gc.get_threshold() == before
