"""The manual clock test double."""

from __future__ import annotations

import pytest

from reactive_aiops.testing.clock import ManualClock


def test_advance_set_and_listeners() -> None:
    clock = ManualClock(5.0)
    seen: list[float] = []
    remove = clock.add_listener(lambda: seen.append(clock()))
    assert clock.advance(1.5) == 6.5
    assert clock.set(10.0) == 10.0
    assert seen == [6.5, 10.0]
    remove()
    remove()
    clock.advance(1)
    assert seen == [6.5, 10.0]
    assert clock.now == 11.0


def test_time_never_goes_back() -> None:
    clock = ManualClock()
    with pytest.raises(ValueError, match="backwards"):
        clock.advance(-1)
    with pytest.raises(ValueError, match="cannot set"):
        clock.set(-1)
