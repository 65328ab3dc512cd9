"""AIOps actions: registered stable names, immutability, command RPC shape."""

from __future__ import annotations

import attrs
import pytest
from aiops_helpers import anomaly, detector, health

from reactive_aiops.aiops import (
    COMMAND_TYPES,
    AcknowledgeAnomaly,
    AnomaliesLoaded,
    AnomalyRemoved,
    AnomalyUpserted,
    DetectorsLoaded,
    DetectorUpserted,
    HealthUpdated,
    PauseDetector,
    ResolveAnomaly,
    ResumeDetector,
    is_command,
    new_command_id,
)
from reactive_aiops.core.actions import action_class, action_type
from reactive_aiops.core.events import EventMeta, command_id_of, event_meta


@pytest.mark.parametrize(
    ("act", "name"),
    [
        (DetectorUpserted(detector()), "detector.upserted"),
        (DetectorsLoaded(()), "detectors.loaded"),
        (AnomalyUpserted(anomaly()), "anomaly.upserted"),
        (AnomaliesLoaded(()), "anomalies.loaded"),
        (AnomalyRemoved("a1"), "anomaly.removed"),
        (HealthUpdated(health()), "health.updated"),
        (AcknowledgeAnomaly("a1", "c"), "anomaly.acknowledge"),
        (ResolveAnomaly("a1", "c"), "anomaly.resolve"),
        (PauseDetector("d1", "c"), "detector.pause"),
        (ResumeDetector("d1", "c"), "detector.resume"),
    ],
)
def test_actions_are_registered_under_stable_names(act: object, name: str) -> None:
    assert action_type(act) == name
    assert action_class(name) is type(act)
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        act.anything = 1  # type: ignore[attr-defined]


def test_loaded_actions_store_tuples() -> None:
    loaded = AnomaliesLoaded([anomaly("a1"), anomaly("a2")])
    assert isinstance(loaded.anomalies, tuple)
    assert DetectorsLoaded(iter([detector()])).detectors == (detector(),)
    with pytest.raises(TypeError, match="iterable"):
        AnomaliesLoaded(anomaly())  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="iterable"):
        DetectorsLoaded("d1")  # type: ignore[arg-type]


def test_commands_describe_their_rpc() -> None:
    assert AcknowledgeAnomaly("a1", "c1").rpc_data() == {"command_id": "c1", "anomaly_id": "a1"}
    assert ResolveAnomaly("a1", "c2").rpc_data() == {"command_id": "c2", "anomaly_id": "a1"}
    assert PauseDetector("d1", "c3").rpc_data() == {"command_id": "c3", "detector_id": "d1"}
    assert ResumeDetector("d1", "c4").rpc_data() == {"command_id": "c4", "detector_id": "d1"}
    methods = [cls.rpc_method for cls in COMMAND_TYPES]  # type: ignore[attr-defined]
    assert methods == [
        "anomaly.acknowledge",
        "anomaly.resolve",
        "detector.pause",
        "detector.resume",
    ]


def test_command_ids_default_to_fresh_random_ids() -> None:
    a, b = AcknowledgeAnomaly("a1"), AcknowledgeAnomaly("a1")
    assert a.command_id != b.command_id
    assert len(new_command_id()) == 32


def test_is_command_tells_commands_from_facts() -> None:
    assert is_command(PauseDetector("d1"))
    assert not is_command(DetectorUpserted(detector()))
    assert not is_command(object())


def test_server_facts_carry_event_meta_for_dedupe_and_echo_matching() -> None:
    meta = EventMeta("anomalies", "anomaly.upserted", event_id="e1", offset=3, command_id="c1")
    echoed = AnomalyUpserted(anomaly(), meta=meta)
    assert event_meta(echoed) is meta
    assert command_id_of(echoed) == "c1"
    assert command_id_of(DetectorUpserted(detector(), meta=meta)) == "c1"
    assert event_meta(HealthUpdated(health())) is None
    # A command's own command_id is not an echo.
    assert command_id_of(AcknowledgeAnomaly("a1", "c1")) is None
