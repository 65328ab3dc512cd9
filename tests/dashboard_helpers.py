"""Shared helpers for the dashboard tests: entity factories and a live embedded-server session."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

from textual.pilot import Pilot

from reactive_aiops.aiops.models import Anomaly, AnomalyState, Detector, DetectorStatus, Severity
from reactive_aiops.protocol.backoff import BackoffPolicy
from reactive_aiops.protocol.config import ClientConfig
from reactive_aiops.ui.dashboard.session import Session, open_session

__all__ = [
    "ARTIFACTS_ENV",
    "RenderLog",
    "anomaly",
    "anomaly_event",
    "detector",
    "detector_event",
    "health_event",
    "live_session",
    "wait_until",
]


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


# -- live sessions ---------------------------------------------------------------------------------

#: Set to a directory to keep the tests' SVG screenshots (``scripts``/docs copy them from there).
ARTIFACTS_ENV = "REACTIVE_AIOPS_ARTIFACTS"


def live_session(**overrides: Any) -> AbstractAsyncContextManager[Session]:
    """An embedded server without simulated data, a client that reconnects fast, the live store."""
    options: dict[str, Any] = {
        "simulate": False,
        "client_config": ClientConfig(
            backoff=BackoffPolicy(initial=0.05, maximum=0.2, reset_after=60.0),
            command_timeout=5.0,
        ),
    }
    options.update(overrides)
    return open_session(**options)


async def wait_until(
    pilot: Pilot[Any], predicate: Callable[[], bool], *, within: float = 10.0
) -> None:
    """Let the app run until ``predicate()`` holds; fail after ``within`` seconds."""
    try:
        async with asyncio.timeout(within):
            while not predicate():
                await pilot.pause(0.01)
    except TimeoutError:
        raise AssertionError(f"condition not met within {within} s") from None


class RenderLog:
    """An ``on_render`` hook recording what each panel rendered, in order."""

    def __init__(self) -> None:
        self.values: list[tuple[str, Any]] = []

    def __call__(self, panel: str, value: Any) -> None:
        self.values.append((panel, value))

    def markers(self, anomaly_id: str) -> list[str]:
        """The status column of ``anomaly_id`` in each anomaly render it appeared in."""
        found = []
        for panel, rows in self.values:
            if panel == "anomalies":
                for row in rows:
                    if row.id == anomaly_id:
                        found.append(row.marker)
        return found


def detector_event(detector_id: str, name: str, *, status: str = "active",
                   version: int = 1) -> dict[str, object]:
    """A ``detector.upserted`` envelope for the server's Python publish API."""
    return {
        "type": "detector.upserted",
        "v": 1,
        "id": f"ev-{detector_id}-{version}",
        "ts": 0.0,
        "data": {
            "id": detector_id,
            "name": name,
            "metric": "cpu.utilization",
            "status": status,
            "updated_at": 1_700_000_000.0,
            "version": version,
        },
    }


def health_event(rate: float, *, updated_at: float, status: str = "ok") -> dict[str, object]:
    """A ``health.updated`` envelope for the server's Python publish API."""
    return {
        "type": "health.updated",
        "v": 1,
        "id": f"ev-health-{updated_at}",
        "ts": 0.0,
        "data": {
            "status": status,
            "events_per_second": rate,
            "open_anomalies": 3,
            "detectors_active": 2,
            "detectors_error": 0,
            "updated_at": updated_at,
        },
    }
