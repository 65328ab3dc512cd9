"""The contract models: enum values, severity order, validation, keys and ordering."""

from __future__ import annotations

import attrs
import pytest
from aiops_helpers import anomaly, detector, health

from reactive_aiops.aiops import (
    AnomalyState,
    DetectorStatus,
    HealthStatus,
    Severity,
    anomaly_key,
    anomaly_order,
    detector_key,
    detector_order,
)


def test_enum_values_match_the_contract() -> None:
    assert [s.value for s in DetectorStatus] == ["active", "paused", "training", "error"]
    assert [s.value for s in Severity] == ["low", "medium", "high", "critical"]
    assert [s.value for s in AnomalyState] == ["open", "acknowledged", "resolved"]
    assert [s.value for s in HealthStatus] == ["ok", "degraded", "critical"]
    assert Severity("high") is Severity.HIGH
    assert Severity.HIGH == "high"


def test_severity_orders_by_rank_not_alphabet() -> None:
    assert [s.rank for s in Severity] == [1, 2, 3, 4]
    assert Severity.LOW < Severity.MEDIUM < Severity.HIGH < Severity.CRITICAL
    assert Severity.CRITICAL > Severity.HIGH >= Severity.HIGH
    assert Severity.LOW <= Severity.LOW
    assert max(Severity) is Severity.CRITICAL
    assert sorted([Severity.CRITICAL, Severity.LOW, Severity.HIGH]) == [
        Severity.LOW,
        Severity.HIGH,
        Severity.CRITICAL,
    ]
    with pytest.raises(TypeError):
        assert Severity.LOW < 3  # type: ignore[operator]


def test_models_are_frozen_with_contract_defaults() -> None:
    a = anomaly()
    assert a.state is AnomalyState.OPEN
    assert (a.version, a.updated_at, a.resolved_at, a.acknowledged_by) == (0, 0.0, None, None)
    assert a.is_unresolved
    assert not anomaly(state=AnomalyState.RESOLVED).is_unresolved
    assert anomaly(state=AnomalyState.ACKNOWLEDGED).is_unresolved
    assert detector().version == 0
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        a.score = 1.0  # type: ignore[misc]


def test_bad_enum_fields_raise_a_type_error() -> None:
    with pytest.raises(TypeError, match="severity"):
        anomaly(severity="high")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="status"):
        detector(status="paused")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="status"):
        health(status="ok")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="state"):
        anomaly(state="open")  # type: ignore[arg-type]


def test_keys_and_orders() -> None:
    assert anomaly_key(anomaly("x")) == "x"
    assert detector_key(detector("y")) == "y"
    assert detector_order(detector("y", name="CPU")) == ("CPU", "y")
    crit_late = anomaly(severity=Severity.CRITICAL, started_at=20.0)
    high_early = anomaly(severity=Severity.HIGH, started_at=10.0)
    crit_early = anomaly(severity=Severity.CRITICAL, started_at=10.0)
    ranked = sorted([high_early, crit_late, crit_early], key=anomaly_order)
    assert ranked == [crit_early, crit_late, high_early]
