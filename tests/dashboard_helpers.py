"""Shared helpers for the dashboard tests: entity factories and a live embedded-server session."""

from __future__ import annotations

from reactive_aiops.aiops.models import Anomaly, AnomalyState, Detector, DetectorStatus, Severity

__all__ = ["anomaly", "anomaly_event", "detector"]


def anomaly(
    anomaly_id: str,
    severity: Severity = Severity.HIGH,
    *,
    detector_id: str = "det-1",
    started: float = 1_700_000_000.0,
    state: AnomalyState = AnomalyState.OPEN,
    version: int = 1,
) -> Anomaly:
    """An anomaly with sensible defaults."""
    return Anomaly(
        id=anomaly_id,
        detector_id=detector_id,
        metric="cpu.utilization",
        severity=severity,
        score=7.5,
        value=97.0,
        started_at=started,
        state=state,
        version=version,
        updated_at=started,
    )


def detector(
    detector_id: str, *, name: str | None = None, status: DetectorStatus = DetectorStatus.ACTIVE
) -> Detector:
    """A detector with sensible defaults."""
    return Detector(
        id=detector_id,
        name=name or detector_id,
        metric="cpu.utilization",
        status=status,
        updated_at=1_700_000_000.0,
        version=1,
    )


def anomaly_event(
    anomaly_id: str,
    severity: str = "high",
    *,
    detector_id: str = "det-1",
    started: float = 1_700_000_000.0,
    state: str = "open",
    version: int = 1,
    event_id: str | None = None,
) -> dict[str, object]:
    """An ``anomaly.upserted`` envelope for the server's Python publish API."""
    return {
        "type": "anomaly.upserted",
        "v": 1,
        "id": event_id or f"ev-{anomaly_id}-{version}",
        "ts": 0.0,
        "data": {
            "id": anomaly_id,
            "detector_id": detector_id,
            "metric": "cpu.utilization",
            "severity": severity,
            "score": 9.0,
            "value": 97.0,
            "started_at": started,
            "state": state,
            "version": version,
            "updated_at": started,
        },
    }
