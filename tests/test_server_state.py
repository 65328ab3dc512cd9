"""Server state: versioned upserts, envelope shape, and conformance with the domain models."""

from __future__ import annotations

from typing import Any

import attrs
from hypothesis import given, settings
from hypothesis import strategies as st

from reactive_aiops.aiops.event_table import aiops_converter
from reactive_aiops.aiops.models import Anomaly, Detector, SystemHealth
from reactive_aiops.server.broker import Broker, Publication
from reactive_aiops.server.config import SimulationConfig
from reactive_aiops.server.simulation import Simulator
from reactive_aiops.server.state import AiopsState, AnomalyRecord, DetectorRecord, HealthRecord
from reactive_aiops.wire.events import decode_event


class Recorder:
    def __init__(self) -> None:
        self.pubs: list[Publication] = []

    def deliver(self, publication: Publication, epoch: str) -> None:
        self.pubs.append(publication)


def test_upserts_bump_versions_and_publish_envelopes_on_both_detector_channels() -> None:
    broker = Broker(clock=lambda: 5.0)
    rec = Recorder()
    for channel in ("detectors", "detectors:d1"):
        broker.subscribe(channel, rec)
    ids = iter(range(100))
    state = AiopsState(broker, clock=lambda: 5.0, new_event_id=lambda: f"e{next(ids)}")
    det = DetectorRecord("d1", "n", "m", "training", 1.0)
    assert state.upsert_detector(det).version == 1
    assert state.upsert_detector(det, command_id="c9").version == 2
    assert [(p.channel, p.data["id"], p.data["data"]["version"], p.data.get("command_id"))
            for p in rec.pubs] == [("detectors", "e0", 1, None), ("detectors:d1", "e1", 1, None),
                                   ("detectors", "e2", 2, "c9"), ("detectors:d1", "e3", 2, "c9")]
    assert rec.pubs[0].data == {"type": "detector.upserted", "v": 1, "id": "e0", "ts": 5.0,
                                "data": {"id": "d1", "name": "n", "metric": "m",
                                         "status": "training", "updated_at": 1.0, "version": 1}}


def test_everything_the_simulation_publishes_structures_into_the_domain_models() -> None:
    broker = Broker()
    rec = Recorder()
    for channel in ("detectors", "anomalies", "health"):
        broker.subscribe(channel, rec)
    state = AiopsState(broker)
    sim = Simulator(state, SimulationConfig.storm(1000.0, seed=2))
    sim.start()
    for step in range(20):
        sim.run(200)
        sim.tick(float(step))
    converter = aiops_converter()
    models: dict[str, type[Any]] = {"detector.upserted": Detector,
                                    "anomaly.upserted": Anomaly, "health.updated": SystemHealth}
    seen = set()
    for pub in rec.pubs:
        event = decode_event(pub.data, known_types_only=True)
        converter.structure(event.data, models[event.type])
        seen.add(event.type)
    assert seen == set(models)


@settings(max_examples=60, deadline=None)
@given(st.data())
def test_each_record_payload_is_attrs_asdict_in_field_order(data: st.DataObject) -> None:
    """The hand-written payloads stay in step with the fields (a new field must appear)."""
    by_type: dict[str, st.SearchStrategy[Any]] = {
        "str": st.text(max_size=5), "float": st.floats(allow_nan=False), "int": st.integers(),
    }
    by_type["str | None"] = st.none() | by_type["str"]
    by_type["float | None"] = st.none() | by_type["float"]
    for cls in (DetectorRecord, AnomalyRecord, HealthRecord):
        fields = attrs.fields(cls)
        record = cls(*(data.draw(by_type[str(field.type)]) for field in fields))
        payload = record.payload()
        assert payload == attrs.asdict(record)
        assert list(payload) == [field.name for field in attrs.fields(cls)]
