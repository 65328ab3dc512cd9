"""Commands: validation, authorization, at-most-once by command id, effects published."""

from __future__ import annotations

from typing import Any

import pytest
from server_helpers import anomaly_event, detector_event

from reactive_aiops.server.auth import Claims
from reactive_aiops.server.broker import Broker, Publication
from reactive_aiops.server.commands import CommandService, Confirm, Reject
from reactive_aiops.server.state import AiopsState, AnomalyRecord, DetectorRecord

OPERATOR = Claims(sub="olga", exp=1e12, roles=frozenset({"operator"}))
VIEWER = Claims(sub="vic", exp=1e12)


class Sink:
    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []

    def deliver(self, publication: Publication, epoch: str) -> None:
        self.events.append(publication.data)


def setup() -> tuple[CommandService, Sink, Sink]:
    clock = iter(range(100, 10_000)).__next__
    broker = Broker(clock=lambda: float(clock()))
    state = AiopsState(broker, clock=broker._clock)
    anomalies, detectors = Sink(), Sink()
    broker.subscribe("anomalies", anomalies)
    broker.subscribe("detectors", detectors)
    state.detectors["d1"] = DetectorRecord(**detector_event("d1")["data"])
    state.anomalies["a1"] = AnomalyRecord(**anomaly_event("a1")["data"])
    return CommandService(state, memory=3), anomalies, detectors


def test_acknowledge_applies_once_and_publishes_with_the_command_id() -> None:
    svc, anomalies, _ = setup()
    data = {"command_id": "c1", "anomaly_id": "a1"}
    first = svc.handle("anomaly.acknowledge", data, OPERATOR)
    assert isinstance(first, Confirm)
    entity = first.data["entity"]
    assert (entity["state"], entity["acknowledged_by"], entity["version"]) == (
        "acknowledged", "olga", 2)
    assert len(anomalies.events) == 1
    event = anomalies.events[0]
    assert (event["type"], event["command_id"], event["data"]) == (
        "anomaly.upserted", "c1", entity)
    # A retry returns the first result and publishes nothing.
    assert svc.handle("anomaly.acknowledge", data, OPERATOR) == first
    assert len(anomalies.events) == 1


def test_command_id_reused_for_a_different_command_is_409() -> None:
    svc, _, _ = setup()
    svc.handle("anomaly.acknowledge", {"command_id": "c1", "anomaly_id": "a1"}, OPERATOR)
    out = svc.handle("anomaly.resolve", {"command_id": "c1", "anomaly_id": "a1"}, OPERATOR)
    assert out == Reject(409, "command_id already used for a different command")


def test_state_conflicts_are_409_and_remembered() -> None:
    svc, anomalies, _ = setup()
    assert isinstance(svc.handle("anomaly.resolve", {"command_id": "r1", "anomaly_id": "a1"},
                                 OPERATOR), Confirm)
    again = svc.handle("anomaly.resolve", {"command_id": "r2", "anomaly_id": "a1"}, OPERATOR)
    assert again == Reject(409, "anomaly already resolved")
    ack = svc.handle("anomaly.acknowledge", {"command_id": "r3", "anomaly_id": "a1"}, OPERATOR)
    assert ack == Reject(409, "anomaly already resolved")
    assert [e["data"]["state"] for e in anomalies.events] == ["resolved"]


def test_pause_and_resume_detector() -> None:
    svc, _, detectors = setup()
    paused = svc.handle("detector.pause", {"command_id": "p1", "detector_id": "d1"}, OPERATOR)
    assert isinstance(paused, Confirm)
    assert paused.data["entity"]["status"] == "paused"
    assert svc.handle("detector.pause", {"command_id": "p2", "detector_id": "d1"},
                      OPERATOR) == Reject(409, "detector already paused")
    resumed = svc.handle("detector.resume", {"command_id": "p3", "detector_id": "d1"}, OPERATOR)
    assert isinstance(resumed, Confirm)
    assert resumed.data["entity"]["status"] == "active"
    assert svc.handle("detector.resume", {"command_id": "p4", "detector_id": "d1"},
                      OPERATOR) == Reject(409, "detector is not paused")
    assert [(e["data"]["status"], e["command_id"]) for e in detectors.events] == [
        ("paused", "p1"), ("active", "p3")]


@pytest.mark.parametrize(("method", "data", "code"), [
    ("anomaly.explode", {"command_id": "x", "anomaly_id": "a1"}, 104),
    ("anomaly.acknowledge", None, 400),
    ("anomaly.acknowledge", {"anomaly_id": "a1"}, 400),
    ("anomaly.acknowledge", {"command_id": "", "anomaly_id": "a1"}, 400),
    ("anomaly.acknowledge", {"command_id": "x" * 129, "anomaly_id": "a1"}, 400),
    ("anomaly.acknowledge", {"command_id": "x", "anomaly_id": 7}, 400),
    ("anomaly.acknowledge", {"command_id": "x", "detector_id": "d1"}, 400),
    ("anomaly.acknowledge", {"command_id": "x", "anomaly_id": "zz"}, 404),
    ("detector.pause", {"command_id": "x", "detector_id": "zz"}, 404),
])
def test_rejections(method: str, data: Any, code: int) -> None:
    svc, anomalies, detectors = setup()
    out = svc.handle(method, data, OPERATOR)
    assert isinstance(out, Reject)
    assert out.code == code
    assert anomalies.events == detectors.events == []


def test_unauthorized_is_403_not_remembered() -> None:
    svc, anomalies, _ = setup()
    data = {"command_id": "c1", "anomaly_id": "a1"}
    assert svc.handle("anomaly.acknowledge", data, VIEWER).code == 403  # type: ignore[union-attr]
    assert anomalies.events == []
    # The same id from an operator is then applied: a refusal is not an application.
    assert isinstance(svc.handle("anomaly.acknowledge", data, OPERATOR), Confirm)


def test_memory_is_bounded() -> None:
    svc, _, _ = setup()
    for i in range(5):
        svc.handle("detector.pause", {"command_id": f"m{i}", "detector_id": "zz"}, OPERATOR)
    assert list(svc._done) == ["m2", "m3", "m4"]
