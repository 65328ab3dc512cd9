"""The rolling robust z-score detector with hysteresis."""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from reactive_aiops.server.detection import RobustZScoreDetector, severity_for


def warm(det: RobustZScoreDetector, rng: random.Random, n: int = 60) -> None:
    for _ in range(n):
        det.update(100 + rng.gauss(0, 1))


def test_warm_up_then_scores() -> None:
    det = RobustZScoreDetector(window=30, min_samples=20)
    rng = random.Random(1)
    for _ in range(19):
        assert not det.update(100 + rng.gauss(0, 1)).warmed_up
    assert det.update(100.0).warmed_up is False  # the 20th sample completes the baseline
    assert det.warmed_up
    assert abs(det.score(100.0)) < 1
    assert det.score(110.0) > 5


def test_opens_after_consecutive_outliers_and_closes_after_consecutive_normals() -> None:
    det = RobustZScoreDetector(open_after=2, close_after=3)
    rng = random.Random(2)
    warm(det, rng)
    one_spike = det.update(130)
    assert not one_spike.opened
    assert not one_spike.anomalous
    assert not det.update(100).anomalous
    assert not det.update(130).opened
    opened = det.update(130)
    assert opened.opened
    assert opened.anomalous
    assert det.update(131).anomalous
    # inside the hysteresis band (|z| between close and open) it stays open
    assert det.update(103.5).anomalous
    steps = [det.update(100 + rng.gauss(0, 0.3)) for _ in range(3)]
    assert [s.closed for s in steps] == [False, False, True]
    assert not det.anomalous


def test_long_incident_does_not_become_the_baseline() -> None:
    det = RobustZScoreDetector(window=30, min_samples=20)
    rng = random.Random(3)
    warm(det, rng, 30)
    steps = [det.update(150 + rng.gauss(0, 1)) for _ in range(200)]
    assert sum(s.opened for s in steps) == 1
    assert all(s.anomalous for s in steps[1:])


@given(st.lists(st.floats(min_value=-1e6, max_value=1e6), min_size=0, max_size=200))
def test_never_raises_and_open_close_alternate(values: list[float]) -> None:
    det = RobustZScoreDetector(window=20, min_samples=5)
    state = False
    for value in values:
        step = det.update(value)
        if step.opened:
            assert not state
            state = True
        if step.closed:
            assert state
            state = False
        assert step.anomalous == state == det.anomalous


def test_severity_and_validation() -> None:
    assert [severity_for(s) for s in (4, -6, 9, 14)] == ["low", "medium", "high", "critical"]
    with pytest.raises(ValueError, match="close_threshold"):
        RobustZScoreDetector(open_threshold=2, close_threshold=3)
    with pytest.raises(ValueError, match="min_samples"):
        RobustZScoreDetector(window=5, min_samples=10)
    det = RobustZScoreDetector()
    warm(det, random.Random(4))
    det.reset()
    assert not det.warmed_up
