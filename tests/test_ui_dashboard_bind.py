"""Per-frame selector streams: the selector runs once per frame on the newest state."""

from __future__ import annotations

from typing import Any

import pytest
from dashboard_helpers import anomaly, detector
from reactivex.testing import TestScheduler

from reactive_aiops.aiops import AnomalyUpserted, DetectorsLoaded, Severity, create_aiops_store
from reactive_aiops.aiops.state import AppState
from reactive_aiops.core.store import Store
from reactive_aiops.ui.dashboard.bind import select_per_frame


class CountingSelector:
    """Counts its runs; selects the number of anomalies."""

    def __init__(self) -> None:
        self.runs = 0

    def __call__(self, state: AppState) -> int:
        self.runs += 1
        return len(state.anomalies)


def _collect(store: Store[Any], selector: Any, fps: float | None, scheduler: Any) -> list[Any]:
    seen: list[Any] = []
    select_per_frame(store, selector, fps=fps, scheduler=scheduler).subscribe(seen.append)
    return seen


def test_a_burst_costs_one_selector_run_per_frame_and_the_newest_value_lands() -> None:
    scheduler = TestScheduler()
    store = create_aiops_store()
    selector = CountingSelector()
    seen = _collect(store, selector, 10.0, scheduler)
    assert seen == [0]  # the current value, at once (leading edge)
    for n in range(1000):
        store.dispatch(AnomalyUpserted(anomaly(f"a{n}", Severity.LOW)))
    assert seen == [0]
    assert selector.runs == 1
    scheduler.advance_by(0.1)
    assert seen == [0, 1000]
    assert selector.runs == 2


def test_unchanged_values_are_not_delivered_again() -> None:
    scheduler = TestScheduler()
    store = create_aiops_store()
    seen = _collect(store, CountingSelector(), 10.0, scheduler)
    store.dispatch(DetectorsLoaded([detector("d1")]))  # a new state, the same selected value
    scheduler.advance_by(0.1)
    assert seen == [0]


def test_without_fps_every_change_is_delivered_synchronously() -> None:
    store = create_aiops_store()
    selector = CountingSelector()
    seen = _collect(store, selector, None, None)
    store.dispatch(AnomalyUpserted(anomaly("a1", Severity.LOW)))
    store.dispatch(AnomalyUpserted(anomaly("a2", Severity.LOW)))
    assert seen == [0, 1, 2]


@pytest.mark.parametrize("fps", [0.0, -1.0, float("nan")])
def test_bad_fps_is_refused(fps: float) -> None:
    with pytest.raises(ValueError, match="fps"):
        select_per_frame(create_aiops_store(), CountingSelector(), fps=fps)
