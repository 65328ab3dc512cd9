"""Factories and hypothesis strategies for the AIOps domain tests."""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

from reactive_aiops.aiops import (
    AcknowledgeAnomaly,
    AnomaliesLoaded,
    Anomaly,
    AnomalyRemoved,
    AnomalyState,
    AnomalyUpserted,
    Detector,
    DetectorsLoaded,
    DetectorStatus,
    DetectorUpserted,
    HealthStatus,
    HealthUpdated,
    PauseDetector,
    ResolveAnomaly,
    ResumeDetector,
    Severity,
    SystemHealth,
)

T0 = 1_700_000_000.0


def detector(
    id: str = "d1", status: DetectorStatus = DetectorStatus.ACTIVE, version: int = 0, **kw: Any
) -> Detector:
    fields: dict[str, Any] = {"name": f"Detector {id}", "metric": f"{id}.metric", "updated_at": T0}
    fields.update(kw)
    return Detector(id=id, status=status, version=version, **fields)


def anomaly(
    id: str = "a1",
    severity: Severity = Severity.HIGH,
    state: AnomalyState = AnomalyState.OPEN,
    version: int = 0,
    **kw: Any,
) -> Anomaly:
    fields: dict[str, Any] = {
        "detector_id": "d1",
        "metric": "d1.metric",
        "score": 0.9,
        "value": 42.0,
        "started_at": T0,
    }
    fields.update(kw)
    return Anomaly(id=id, severity=severity, state=state, version=version, **fields)


def health(
    status: HealthStatus = HealthStatus.OK, updated_at: float = T0, **kw: Any
) -> SystemHealth:
    fields: dict[str, Any] = {
        "events_per_second": 10.0,
        "open_anomalies": 0,
        "detectors_active": 1,
        "detectors_error": 0,
    }
    fields.update(kw)
    return SystemHealth(status=status, updated_at=updated_at, **fields)


IDS = st.sampled_from(["a1", "a2", "a3", "a4"])
DETECTOR_IDS = st.sampled_from(["d1", "d2", "d3"])
VERSIONS = st.integers(0, 4)

detectors = st.builds(detector, DETECTOR_IDS, st.sampled_from(list(DetectorStatus)), VERSIONS)
anomalies = st.builds(
    anomaly,
    IDS,
    st.sampled_from(list(Severity)),
    st.sampled_from(list(AnomalyState)),
    VERSIONS,
    detector_id=DETECTOR_IDS,
    started_at=st.sampled_from([T0, T0 + 1, T0 + 2]),
)
healths = st.builds(
    health, st.sampled_from(list(HealthStatus)), st.sampled_from([T0, T0 + 1, T0 + 2])
)

domain_actions = st.one_of(
    st.builds(DetectorUpserted, detectors),
    st.builds(DetectorsLoaded, st.lists(detectors, max_size=4)),
    st.builds(AnomalyUpserted, anomalies),
    st.builds(AnomaliesLoaded, st.lists(anomalies, max_size=5)),
    st.builds(AnomalyRemoved, IDS),
    st.builds(HealthUpdated, healths),
    st.builds(AcknowledgeAnomaly, IDS, st.just("cmd"), st.sampled_from([None, "alice"])),
    st.builds(ResolveAnomaly, IDS, st.just("cmd"), st.sampled_from([None, T0 + 5])),
    st.builds(PauseDetector, DETECTOR_IDS, st.just("cmd")),
    st.builds(ResumeDetector, DETECTOR_IDS, st.just("cmd")),
)
