"""The pure core: channel names, and the publish API's validation against the wire schema."""

from __future__ import annotations

from typing import Any

import pytest
from server_helpers import anomaly_event, config, detector_event

from reactive_aiops.server.core import PublishError, ServerCore
from reactive_aiops.wire.events import EventEnvelope


def test_channels() -> None:
    core = ServerCore(config())
    for ok in ("detectors", "anomalies", "health", "detectors:det-1", "detectors:a.b_c"):
        assert core.channel_exists(ok)
    for bad in ("", "detectors:", "detectors:a b", "metrics", "anomalies:x",
                "detectors:" + "x" * 65):
        assert not core.channel_exists(bad)


def test_publish_records_entities_and_stamps_send_time() -> None:
    core = ServerCore(config(), clock=lambda: 123.0)
    pub = core.publish("detectors:det-x", detector_event("det-x", version=4))
    assert pub.data["ts"] == 123.0
    assert pub.offset == 1
    assert core.state.detectors["det-x"].version == 4
    core.publish("anomalies", anomaly_event("a9"))
    assert core.state.anomalies["a9"].state == "open"
    envelope = EventEnvelope(type="health.updated", id="h", ts=0.0, data={
        "status": "ok", "events_per_second": 0, "open_anomalies": 0, "detectors_active": 0,
        "detectors_error": 0, "updated_at": 0})
    assert core.publish("health", envelope).data["data"]["status"] == "ok"


def _with(event: dict[str, Any], **data: Any) -> dict[str, Any]:
    return {**event, "data": {**event["data"], **data}}


@pytest.mark.parametrize(("channel", "event", "code"), [
    ("nope", anomaly_event(), 404),
    ("anomalies", {"type": "anomaly.upserted"}, 400),
    ("anomalies", {**anomaly_event(), "type": "anomaly.exploded"}, 400),
    ("anomalies", {**anomaly_event(), "v": 2}, 400),
    ("anomalies", _with(anomaly_event(), severity="apocalyptic"), 400),
    ("anomalies", _with(anomaly_event(), score="high"), 400),
    ("anomalies", _with(anomaly_event(), score=True), 400),
    ("anomalies", {**anomaly_event(), "data": {"id": "x"}}, 400),
    ("health", anomaly_event(), 400),
    ("detectors:other", detector_event("det-x"), 400),
    ("anomalies", "not an object", 400),
    ("anomalies", _with(anomaly_event(), score=float("nan")), 400),
    ("anomalies", _with(anomaly_event(), value=float("-inf")), 400),
    ("anomalies", EventEnvelope("anomaly.upserted", "e", 0.0, anomaly_event()["data"], v=2), 400),
])
def test_publish_rejections(channel: str, event: Any, code: int) -> None:
    core = ServerCore(config())
    with pytest.raises(PublishError) as info:
        core.publish(channel, event)
    assert info.value.code == code
    assert core.broker.published == 0
    assert not core.state.anomalies  # nothing recorded either


def test_snapshot_rpc_reads_entities_at_the_channels_positions() -> None:
    from reactive_aiops.server.auth import Claims
    from reactive_aiops.wire.messages import RPCResult

    core = ServerCore(config(), clock=lambda: 5.0)
    core.publish("detectors", detector_event("det-x", version=2))
    core.publish("anomalies", anomaly_event("a1"))
    core.publish("anomalies", anomaly_event("a2"))
    replies: list[object] = []
    reader = Claims(sub="u", exp=100.0, channels=("anomalies",))
    core.rpc("aiops.snapshot", {}, reader, replies.append)
    (reply,) = replies
    assert isinstance(reply, RPCResult)
    data = reply.data
    assert sorted(a["id"] for a in data["anomalies"]) == ["a1", "a2"]
    assert data["detectors"] == []  # not allowed: left out
    assert data["health"] is None
    assert data["positions"] == {"anomalies": {"offset": 2,
                                               "epoch": core.broker.position("anomalies")[1]}}
