"""A scripted AIOps incident, replayed through the store (``reactive-aiops demo --scripted``).

The scenario (:func:`scenario`) is deterministic: detectors load and change status, anomalies
open, are acknowledged and resolved (commands applied optimistically, then confirmed by the
server's newer version), a late stale copy is ignored, health degrades and recovers. Each step is
dispatched to a store running the AIOps root reducer; the demo prints what the selector streams
emit, so the timeline shows exactly what a dashboard would be told. Pure: the timeline goes to
an ``out`` callable (the ``demo`` command, :mod:`reactive_aiops.cli.demo`, prints it); other
tools reuse :func:`scenario_actions`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import attrs

from reactive_aiops.aiops import (
    AcknowledgeAnomaly,
    AnomalyRemoved,
    AnomalyState,
    AnomalyUpserted,
    AppState,
    DetectorsLoaded,
    DetectorStatus,
    DetectorUpserted,
    HealthStatus,
    HealthUpdated,
    PauseDetector,
    ResolveAnomaly,
    ResumeDetector,
    Severity,
    SeverityCounts,
    SystemHealth,
    create_aiops_store,
    keyed_anomalies,
    keyed_detectors,
    select_health,
    select_severity_counts,
    select_unresolved_anomalies,
)
from reactive_aiops.aiops.models import Anomaly, Detector
from reactive_aiops.core import create_selector

__all__ = [
    "Step",
    "Summary",
    "run_scenario",
    "scenario",
    "scenario_actions",
]

#: The scenario's clock starts here (float Unix seconds); steps are offsets from it.
T0 = 1_700_000_000.0


@attrs.frozen
class Step:
    """One scenario step: at ``T0 + at`` seconds, ``who`` caused ``action`` (``what`` says why)."""

    at: float
    who: str
    what: str
    action: object


def _detector(id: str, name: str, status: DetectorStatus, at: float, version: int) -> Detector:
    return Detector(id, name, f"{id}.rate", status, T0 + at, version)


def _anomaly(
    id: str,
    detector_id: str,
    severity: Severity,
    score: float,
    *,
    at: float,
    version: int = 0,
    state: AnomalyState = AnomalyState.OPEN,
    started: float | None = None,
    **kw: Any,
) -> Anomaly:
    return Anomaly(
        id=id,
        detector_id=detector_id,
        metric=f"{detector_id}.rate",
        severity=severity,
        score=score,
        value=round(score * 1000, 1),
        started_at=T0 + (at if started is None else started),
        state=state,
        version=version,
        updated_at=T0 + at,
        **kw,
    )


def _health(
    status: HealthStatus, eps: float, open_: int, active: int, error: int, at: float
) -> SystemHealth:
    return SystemHealth(status, eps, open_, active, error, T0 + at)


def scenario() -> tuple[Step, ...]:
    """The built-in incident, step by step (deterministic: fixed ids, times and command ids)."""
    return (
        Step(0, "server", "sends the detector snapshot", DetectorsLoaded((
            _detector("cpu", "CPU saturation", DetectorStatus.ACTIVE, 0, 0),
            _detector("latency", "p99 latency", DetectorStatus.TRAINING, 0, 0),
            _detector("errors", "5xx error rate", DetectorStatus.ACTIVE, 0, 0),
        ))),
        Step(1, "server", "reports health", HealthUpdated(
            _health(HealthStatus.OK, 120, 0, 2, 0, 1))),
        Step(5, "server", "latency detector finished training", DetectorUpserted(
            _detector("latency", "p99 latency", DetectorStatus.ACTIVE, 5, 1))),
        Step(12, "server", "latency anomaly opens", AnomalyUpserted(
            _anomaly("an-1", "latency", Severity.HIGH, 0.91, at=12))),
        Step(14, "server", "error-rate anomaly opens", AnomalyUpserted(
            _anomaly("an-2", "errors", Severity.CRITICAL, 0.98, at=14))),
        Step(15, "server", "reports degraded health", HealthUpdated(
            _health(HealthStatus.DEGRADED, 340, 2, 3, 0, 15))),
        Step(20, "alice", "acknowledges an-2 (applied at once, optimistically)",
             AcknowledgeAnomaly("an-2", "cmd-1", by="alice", at=T0 + 20)),
        Step(21, "server", "confirms the acknowledgement (version 1)", AnomalyUpserted(
            _anomaly("an-2", "errors", Severity.CRITICAL, 0.98, at=21, started=14, version=1,
                     state=AnomalyState.ACKNOWLEDGED, acknowledged_by="alice"))),
        Step(25, "server", "an-1 escalates to critical", AnomalyUpserted(
            _anomaly("an-1", "latency", Severity.CRITICAL, 0.97, at=25, started=12, version=1))),
        Step(26, "server", "a late copy of an-1 (version 0) arrives: ignored", AnomalyUpserted(
            _anomaly("an-1", "latency", Severity.HIGH, 0.91, at=12))),
        Step(30, "bob", "pauses the noisy cpu detector", PauseDetector("cpu", "cmd-2", at=T0 + 30)),
        Step(31, "server", "confirms the pause (version 1)", DetectorUpserted(
            _detector("cpu", "CPU saturation", DetectorStatus.PAUSED, 31, 1))),
        Step(40, "alice", "resolves an-2", ResolveAnomaly("an-2", "cmd-3", at=T0 + 40)),
        Step(41, "server", "confirms the resolution (version 2)", AnomalyUpserted(
            _anomaly("an-2", "errors", Severity.CRITICAL, 0.98, at=41, started=14, version=2,
                     state=AnomalyState.RESOLVED, resolved_at=T0 + 40, acknowledged_by="alice"))),
        Step(45, "server", "the error-rate detector fails", DetectorUpserted(
            _detector("errors", "5xx error rate", DetectorStatus.ERROR, 45, 1))),
        Step(50, "bob", "resumes the cpu detector", ResumeDetector("cpu", "cmd-4", at=T0 + 50)),
        Step(51, "server", "confirms the resume (version 2)", DetectorUpserted(
            _detector("cpu", "CPU saturation", DetectorStatus.ACTIVE, 51, 2))),
        Step(55, "server", "an-1 recovers on its own", AnomalyUpserted(
            _anomaly("an-1", "latency", Severity.CRITICAL, 0.97, at=55, started=12, version=2,
                     state=AnomalyState.RESOLVED, resolved_at=T0 + 55))),
        Step(60, "server", "reports health back to ok", HealthUpdated(
            _health(HealthStatus.OK, 130, 0, 2, 1, 60))),
        Step(65, "server", "an-2 expires from the view", AnomalyRemoved("an-2")),
    )  # fmt: skip


def scenario_actions() -> tuple[object, ...]:
    """The scenario's actions in dispatch order (for replays, benchmarks and the dashboard)."""
    return tuple(step.action for step in scenario())


# -- rendering ---------------------------------------------------------------------------------


def describe_detector(detector: Detector) -> str:
    """One line for a detector: ``detector cpu (CPU saturation): paused  [v1]``."""
    return f"detector {detector.id} ({detector.name}): {detector.status}  [v{detector.version}]"


def describe_anomaly(anomaly: Anomaly) -> str:
    """One line for an anomaly: state, severity, score, metric, who acknowledged, version."""
    who = f" by {anomaly.acknowledged_by}" if anomaly.acknowledged_by else ""
    return (
        f"anomaly {anomaly.id}: {anomaly.state}{who}, {anomaly.severity}, score "
        f"{anomaly.score:.2f} on {anomaly.metric}  [v{anomaly.version}]"
    )


def describe_counts(counts: SeverityCounts) -> str:
    """``unresolved anomalies: 1 critical, 1 high`` (or ``none``)."""
    parts = [f"{counts[s]} {s}" for s in reversed(Severity) if counts[s]]
    return "unresolved anomalies: " + (", ".join(parts) if parts else "none")


def describe_health(health: SystemHealth | None) -> str:
    """One line for the system health (``unknown`` before the first report)."""
    if health is None:
        return "health: unknown"
    return (
        f"health: {health.status}, {health.events_per_second:g} events/s, "
        f"{health.open_anomalies} open anomalies, {health.detectors_active} detectors active, "
        f"{health.detectors_error} in error"
    )


@attrs.frozen
class TopLine:
    """What the head of the list shows; equal lines are not printed twice."""

    anomaly_id: str
    severity: Severity
    state: AnomalyState


def _top(unresolved: tuple[Anomaly, ...]) -> TopLine | None:
    if not unresolved:
        return None
    head = unresolved[0]
    return TopLine(head.id, head.severity, head.state)


_select_top = create_selector(select_unresolved_anomalies, _top)


def describe_top(top: TopLine | None) -> str:
    """The head of the dashboard's list: the most severe, oldest unresolved anomaly."""
    if top is None:
        return "top of the list: nothing unresolved"
    return f"top of the list: {top.anomaly_id} ({top.severity}, {top.state})"


def _plural(n: int, stem: str, one: str = "", many: str = "s") -> str:
    return f"{n} {stem}{one if n == 1 else many}"


@attrs.frozen
class Summary:
    """What a scenario run did: actions dispatched and stream values printed."""

    actions: int
    emissions: int


def run_scenario(
    out: Callable[[str], None],
    steps: Sequence[Step] | None = None,
    *,
    pause: Callable[[], None] | None = None,
) -> Summary:
    """Dispatch ``steps`` (default: :func:`scenario`) to a fresh store, writing a timeline to
    ``out`` line by line; ``pause()`` runs between steps (for a human pace)."""
    steps = scenario() if steps is None else steps
    store = create_aiops_store()
    anomalies = keyed_anomalies(store.states)
    detectors = keyed_detectors(store.states)
    emitted = [0]

    def show(text: str) -> None:
        emitted[0] += 1
        out(f"         {text}")

    def on_detector(value: Detector | None) -> None:
        if value is not None:
            show(describe_detector(value))

    def on_anomaly(anomaly_id: str) -> Callable[[Anomaly | None], None]:
        seen = [False]

        def on_value(value: Anomaly | None) -> None:
            if value is not None:
                seen[0] = True
                show(describe_anomaly(value))
            elif seen[0]:
                show(f"anomaly {anomaly_id}: gone")

        return on_value

    detector_ids: dict[str, None] = {}
    anomaly_ids: dict[str, None] = {}
    for step in steps:
        act = step.action
        if isinstance(act, DetectorsLoaded):
            detector_ids.update(dict.fromkeys(d.id for d in act.detectors))
        elif isinstance(act, DetectorUpserted):
            detector_ids[act.detector.id] = None
        elif isinstance(act, AnomalyUpserted):
            anomaly_ids[act.anomaly.id] = None

    out("reactive-aiops demo: a scripted incident, replayed through the store.")
    out("Each [+Ns] line is one dispatched action; the indented lines under it are what the")
    out("selector streams emitted in response (only what changed). [vN] is an entity's version:")
    out("the server bumps it on every change; a command applied optimistically keeps it.")
    out("")
    out("[start]  the dashboard subscribes")
    subscriptions = [
        *(detectors.select(i).subscribe(on_detector) for i in detector_ids),
        *(anomalies.select(i).subscribe(on_anomaly(i)) for i in anomaly_ids),
        store.select(select_severity_counts).subscribe(lambda c: show(describe_counts(c))),
        store.select(_select_top).subscribe(lambda t: show(describe_top(t))),
        store.select(select_health).subscribe(lambda h: show(describe_health(h))),
    ]
    try:
        for step in steps:
            if pause is not None:
                pause()
            out(f"[+{step.at:02.0f}s]  {step.who}: {step.what}")
            before = emitted[0]
            store.dispatch(step.action)
            if emitted[0] == before:
                out("         (no stream emitted: the state did not change)")
    finally:
        for subscription in subscriptions:
            subscription.dispose()
    state: AppState = store.state
    out("")
    out(
        f"done: {_plural(len(steps), 'action')} dispatched, {_plural(emitted[0], 'stream value')}"
        f" printed; {_plural(len(state.detectors), 'detector')} and "
        f"{_plural(len(state.anomalies), 'anomal', 'y', 'ies')} held."
    )
    return Summary(actions=len(steps), emissions=emitted[0])
