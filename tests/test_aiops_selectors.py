"""Domain selectors: contents, order, memoization, incremental severity counts, keyed streams."""

from __future__ import annotations

from typing import Any

import pytest
from aiops_helpers import T0, anomaly, detector, domain_actions, health
from hypothesis import given, settings
from hypothesis import strategies as st

from reactive_aiops.aiops import (
    AcknowledgeAnomaly,
    AnomaliesLoaded,
    AnomalyState,
    AnomalyUpserted,
    AppState,
    DetectorsLoaded,
    DetectorStatus,
    DetectorUpserted,
    HealthUpdated,
    ResolveAnomaly,
    Severity,
    SeverityCounts,
    create_aiops_store,
    keyed_anomalies,
    keyed_detectors,
    root_reducer,
    select_anomalies,
    select_anomalies_by_severity,
    select_anomalies_of,
    select_anomaly,
    select_detector,
    select_detectors,
    select_detectors_by_name,
    select_health,
    select_open_anomalies,
    select_severity_counts,
    select_unresolved_anomalies,
)
from reactive_aiops.aiops.selectors import _count_unresolved
from reactive_aiops.core import Init, create_selector
from reactive_aiops.core.entities import EntityCollection

A_CRIT = anomaly("c", Severity.CRITICAL, started_at=T0 + 5, detector_id="d2")
A_HIGH_OLD = anomaly("h1", Severity.HIGH, started_at=T0)
A_HIGH_NEW = anomaly("h2", Severity.HIGH, AnomalyState.ACKNOWLEDGED, started_at=T0 + 1)
A_LOW = anomaly("l", Severity.LOW, AnomalyState.RESOLVED, started_at=T0 - 9)


def loaded() -> AppState:
    state = root_reducer(None, Init())
    state = root_reducer(state, AnomaliesLoaded([A_LOW, A_HIGH_NEW, A_CRIT, A_HIGH_OLD]))
    return root_reducer(
        state, DetectorsLoaded([detector("d2", name="Zeta"), detector("d1", name="Alpha")])
    )


def test_slice_selectors() -> None:
    state = loaded()
    assert select_anomalies(state) is state.anomalies
    assert select_detectors(state) is state.detectors
    assert select_health(state) is None
    with_health = root_reducer(state, HealthUpdated(health()))
    assert select_health(with_health) == health()


def test_anomalies_by_severity_then_age() -> None:
    assert list(select_anomalies_by_severity(loaded())) == [A_CRIT, A_HIGH_OLD, A_HIGH_NEW, A_LOW]


def test_open_and_unresolved_anomalies() -> None:
    state = loaded()
    assert select_open_anomalies(state) == (A_CRIT, A_HIGH_OLD)
    assert select_unresolved_anomalies(state) == (A_CRIT, A_HIGH_OLD, A_HIGH_NEW)


def test_detectors_by_name_and_by_id() -> None:
    state = loaded()
    assert [d.name for d in select_detectors_by_name(state)] == ["Alpha", "Zeta"]
    d2 = select_detector("d2")
    assert d2(state) == detector("d2", name="Zeta")
    assert select_detector("nope")(state) is None


def test_anomaly_by_id_and_anomalies_of_a_detector() -> None:
    state = loaded()
    assert select_anomaly("c")(state) == A_CRIT
    assert select_anomaly("zz")(state) is None
    assert select_anomalies_of("d1")(state) == (A_HIGH_OLD, A_HIGH_NEW, A_LOW)
    assert select_anomalies_of("d2")(state) == (A_CRIT,)
    assert select_anomalies_of("none")(state) == ()


def test_selectors_recompute_only_when_their_slice_changed() -> None:
    state = loaded()
    of_d1 = select_anomalies_of("d1")
    first = of_d1(state)
    other = root_reducer(state, DetectorUpserted(detector("d9")))
    assert of_d1(other) is first
    assert of_d1.recomputations == 1
    changed = root_reducer(other, AcknowledgeAnomaly("h1", "c1"))
    assert of_d1(changed)[0].state is AnomalyState.ACKNOWLEDGED
    assert of_d1.recomputations == 2


def test_severity_counts() -> None:
    counts = select_severity_counts(loaded())
    assert counts == SeverityCounts(low=0, medium=0, high=2, critical=1)
    assert counts.total == 3
    assert counts[Severity.HIGH] == 2
    assert counts[Severity.LOW] == 0


def full_count(state: AppState) -> SeverityCounts:
    tally = {s.value: 0 for s in Severity}
    for a in state.anomalies.values():
        if a.is_unresolved:
            tally[a.severity.value] += 1
    return SeverityCounts(**tally)


@settings(max_examples=200, deadline=None)
@given(st.lists(domain_actions, max_size=30))
def test_incremental_counts_equal_a_full_count(history: list[Any]) -> None:
    select = create_selector(select_anomalies, _count_unresolved())
    state = root_reducer(None, Init())
    for act in history:
        state = root_reducer(state, act)
        assert select(state) == full_count(state)


def test_counts_adjust_by_changed_keys_only(monkeypatch: pytest.MonkeyPatch) -> None:
    select = create_selector(select_anomalies, _count_unresolved())
    state = loaded()
    select(state)

    def no_full_scan(self: object) -> None:
        raise AssertionError("the counts walked the whole collection")

    monkeypatch.setattr(EntityCollection, "values", no_full_scan)
    after = root_reducer(state, ResolveAnomaly("c", "cmd"))
    assert select(after) == SeverityCounts(high=2)


def test_keyed_streams_over_a_store() -> None:
    store = create_aiops_store()
    anomalies = keyed_anomalies(store.states)
    detectors = keyed_detectors(store.states)
    seen_a: list[Any] = []
    seen_d: list[Any] = []
    anomalies.select("a1").subscribe(seen_a.append)
    detectors.select("d1").subscribe(seen_d.append)
    store.dispatch(AnomalyUpserted(anomaly("a1")))
    store.dispatch(DetectorUpserted(detector("d1", DetectorStatus.PAUSED)))
    store.dispatch(AcknowledgeAnomaly("a1", "c1", by="bob"))
    assert [a if a is None else a.state for a in seen_a] == [
        None,
        AnomalyState.OPEN,
        AnomalyState.ACKNOWLEDGED,
    ]
    assert [d if d is None else d.status for d in seen_d] == [None, DetectorStatus.PAUSED]
