"""The simulated source: reproducible with a seed, scriptable incidents, clean open/resolve."""

from __future__ import annotations

from typing import Any

import attrs
import pytest

from reactive_aiops.server.broker import Broker, Publication
from reactive_aiops.server.config import SimulationConfig
from reactive_aiops.server.simulation import Pacer, Simulator
from reactive_aiops.server.state import AiopsState

QUIET = SimulationConfig(seed=7, detectors=3, incident_probability=0.0)


class Recorder:
    def __init__(self) -> None:
        self.events: list[tuple[str, dict[str, Any]]] = []

    def deliver(self, publication: Publication, epoch: str) -> None:
        self.events.append((publication.channel, publication.data))


def build(config: SimulationConfig) -> tuple[Simulator, Recorder]:
    clock = [0.0]

    def now() -> float:
        clock[0] += 0.001
        return clock[0]

    broker = Broker(clock=now)
    recorder = Recorder()
    for channel in ("detectors", "anomalies", "health"):
        broker.subscribe(channel, recorder)
    sim = Simulator(AiopsState(broker, clock=now), config)
    sim.start()
    return sim, recorder


def strip(events: list[tuple[str, dict[str, Any]]]) -> list[tuple[str, str, dict[str, Any]]]:
    return [(channel, e["type"], e["data"]) for channel, e in events]


def test_same_seed_same_events() -> None:
    config = SimulationConfig(seed=11, detectors=4, incident_probability=0.02)
    a, ra = build(config)
    b, rb = build(config)
    a.run(3000)
    b.run(3000)
    assert strip(ra.events) == strip(rb.events)
    assert any(channel == "anomalies" for channel, _ in ra.events)
    c, rc = build(attrs.evolve(config, seed=12))
    c.run(3000)
    assert strip(rc.events) != strip(ra.events)


def test_detectors_train_then_turn_active() -> None:
    sim, rec = build(QUIET)
    assert [e["data"]["status"] for c, e in rec.events if c == "detectors"] == ["training"] * 3
    sim.run(3 * 25)
    statuses = [(e["data"]["id"], e["data"]["status"], e["data"]["version"])
                for c, e in rec.events if c == "detectors"]
    assert statuses[3:] == [(f"det-{i}", "active", 2) for i in range(3)]


def test_scripted_incident_opens_once_updates_and_resolves_once() -> None:
    sim, rec = build(QUIET)
    sim.run(3 * 60)
    rec.events.clear()
    sim.inject("det-1", samples=15, magnitude=15.0)
    sim.run(3 * 40)
    anomalies = [e["data"] for c, e in rec.events if c == "anomalies"]
    assert anomalies, "the incident must be detected"
    assert {a["id"] for a in anomalies} == {"det-1-a1"}
    assert {a["detector_id"] for a in anomalies} == {"det-1"}
    states = [a["state"] for a in anomalies]
    assert states[0] == "open"
    assert states[-1] == "resolved"
    assert states.count("resolved") == 1
    assert [a["version"] for a in anomalies] == list(range(1, len(anomalies) + 1))
    assert anomalies[-1]["resolved_at"] is not None


def test_paused_detector_sees_nothing_and_operator_resolution_is_respected() -> None:
    sim, rec = build(QUIET)
    sim.run(3 * 60)
    state = sim.state
    state.upsert_detector(attrs.evolve(state.detectors["det-0"], status="paused"))
    rec.events.clear()
    sim.inject("det-0", samples=15, magnitude=15.0)
    sim.run(3 * 40)
    assert [c for c, _ in rec.events if c == "anomalies"] == []
    state.upsert_detector(attrs.evolve(state.detectors["det-0"], status="active"))
    sim.inject("det-2", samples=30, magnitude=15.0)
    sim.run(3 * 5)
    (opened_id,) = {e["data"]["id"] for c, e in rec.events if c == "anomalies"}
    state.upsert_anomaly(attrs.evolve(state.anomalies[opened_id], state="resolved"))
    rec.events.clear()
    sim.run(3 * 60)
    # no updates to an operator-resolved anomaly, and no second anomaly for the same episode
    assert [c for c, _ in rec.events if c == "anomalies"] == []


def test_health_ticks_at_the_interval() -> None:
    sim, rec = build(attrs.evolve(QUIET, health_interval=1.0))
    assert sim.tick(10.0)
    assert not sim.tick(10.5)
    sim.run(30)
    assert sim.tick(11.0)
    health = [e["data"] for c, e in rec.events if c == "health"]
    assert len(health) == 2
    assert health[1]["events_per_second"] > 0
    assert health[0]["status"] == "ok"


def test_pacer() -> None:
    pacer = Pacer(100.0, now=0.0, max_burst=50)
    assert pacer.due(0.0) == 0
    assert pacer.due(0.105) == 10
    assert pacer.due(0.2) == 10
    assert pacer.due(100.0) == 50  # a stall is skipped, not replayed
    assert pacer.due(100.01) == 1
    with pytest.raises(ValueError, match="rate"):
        Pacer(0, now=0.0)


def test_storm_profile_publishes_on_most_samples() -> None:
    sim, rec = build(attrs.evolve(SimulationConfig.storm(1000.0, seed=5), detectors=4))
    sim.run(4 * 30)  # warm-up
    rec.events.clear()
    sim.run(4000)
    assert len([c for c, _ in rec.events if c == "anomalies"]) > 0.5 * 4000
