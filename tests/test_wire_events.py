"""The event envelope of contracts.md."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from reactive_aiops.wire import (
    ANOMALY_UPSERTED,
    EventEnvelope,
    EventError,
    ProtocolError,
    decode_event,
    detector_channel,
    encode_event,
)
from reactive_aiops.wire.rpc import DETECTOR_PAUSE, rpc_request_data

envelopes = st.builds(
    EventEnvelope,
    type=st.sampled_from(["detector.upserted", "anomaly.upserted", "health.updated", "x.new"]),
    id=st.text(max_size=8),
    ts=st.floats(0, 2e9),
    data=st.dictionaries(st.text(max_size=5), st.integers() | st.text(max_size=5), max_size=3),
    command_id=st.none() | st.text(max_size=8),
)


@given(envelopes)
def test_round_trip(event: EventEnvelope) -> None:
    assert decode_event(encode_event(event)) == event


def test_exact_shape_and_omitted_command_id() -> None:
    event = EventEnvelope(type=ANOMALY_UPSERTED, id="e1", ts=1.5, data={"id": "a1"})
    assert encode_event(event) == {
        "type": "anomaly.upserted",
        "v": 1,
        "id": "e1",
        "ts": 1.5,
        "data": {"id": "a1"},
    }
    with_cmd = encode_event(EventEnvelope("anomaly.upserted", "e2", 2.0, {}, command_id="c"))
    assert with_cmd["command_id"] == "c"


def test_integer_timestamp_and_unknown_keys_are_accepted() -> None:
    got = decode_event({"type": "health.updated", "v": 1, "id": "e", "ts": 5, "data": {}, "x": 0})
    assert got.ts == 5.0
    assert isinstance(got.ts, float)


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        ([], "JSON object"),
        ({"v": 1, "id": "e", "ts": 1, "data": {}}, "'type'"),
        ({"type": "t", "v": 2, "id": "e", "ts": 1, "data": {}}, "version"),
        ({"type": "t", "v": True, "id": "e", "ts": 1, "data": {}}, "'v'"),
        ({"type": "t", "v": 1, "id": 3, "ts": 1, "data": {}}, "'id'"),
        ({"type": "t", "v": 1, "id": "e", "ts": "1", "data": {}}, "'ts'"),
        ({"type": "t", "v": 1, "id": "e", "ts": 1, "data": []}, "'data'"),
        ({"type": "t", "v": 1, "id": "e", "ts": 1, "data": {}, "command_id": 4}, "command_id"),
    ],
)
def test_bad_envelopes(value: Any, fragment: str) -> None:
    with pytest.raises(EventError, match=fragment) as info:
        decode_event(value)
    assert isinstance(info.value, ProtocolError)


def test_known_types_only() -> None:
    value = {"type": "x.new", "v": 1, "id": "e", "ts": 1, "data": {}}
    assert decode_event(value).type == "x.new"
    with pytest.raises(EventError, match="unknown event type"):
        decode_event(value, known_types_only=True)


def test_channels_and_rpc_helpers() -> None:
    assert detector_channel("d1") == "detectors:d1"
    assert rpc_request_data(DETECTOR_PAUSE, "c1", "d1") == {"command_id": "c1", "detector_id": "d1"}
    with pytest.raises(KeyError):
        rpc_request_data("nope", "c", "x")
