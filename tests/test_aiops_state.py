"""The root state: defaults, the combined reducer, and a store built on it."""

from __future__ import annotations

import attrs
import pytest
from aiops_helpers import anomaly, detector

from reactive_aiops.aiops import (
    AnomalyUpserted,
    AppState,
    DetectorUpserted,
    create_aiops_store,
    empty_anomalies,
    empty_detectors,
    make_root_reducer,
    root_reducer,
)
from reactive_aiops.core import Init


def test_defaults_are_the_empty_slices() -> None:
    state = AppState()
    assert state.detectors is empty_detectors()
    assert state.anomalies is empty_anomalies()
    assert state.health is None
    assert root_reducer(None, Init()) == state


def test_root_reducer_returns_the_same_state_when_nothing_changed() -> None:
    state = root_reducer(None, Init())
    assert root_reducer(state, object()) is state
    changed = root_reducer(state, DetectorUpserted(detector()))
    assert changed is not state
    assert changed.anomalies is state.anomalies  # untouched slices are shared
    assert root_reducer(changed, DetectorUpserted(detector())) is changed


def test_extra_slices_must_be_fields() -> None:
    with pytest.raises(TypeError, match="no field"):
        make_root_reducer(no_such_slice=lambda s, a: s)


def test_extra_slice_reducers_replace_the_defaults() -> None:
    calls: list[object] = []

    def health(state: object, action: object) -> object:
        calls.append(action)
        return state

    reducer = make_root_reducer(health=health)
    reducer(None, Init())
    assert len(calls) == 1


def test_store_runs_the_domain() -> None:
    store = create_aiops_store()
    store.dispatch(AnomalyUpserted(anomaly("a1")))
    assert store.state.anomalies["a1"] == anomaly("a1")
    assert attrs.has(type(store.state))
