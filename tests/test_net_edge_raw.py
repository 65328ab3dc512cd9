"""The raw receive path: ``EdgeDecoder.decode_raw`` answers what the edge answers from the decoded
data (which answers what the slow path gives), the manager's streams hand every other consumer
the decoded publication, and the bridge dispatches the same actions with and without it."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from reactive_aiops.aiops.actions import AnomalyUpserted, DetectorUpserted
from reactive_aiops.aiops.event_table import (
    ANOMALY_UPSERTED,
    DETECTOR_UPSERTED,
    aiops_converter,
    aiops_event_table,
)
from reactive_aiops.aiops.live_store import create_live_store
from reactive_aiops.aiops.models import Anomaly, Detector
from reactive_aiops.core.events import EventRoute, EventTable
from reactive_aiops.net.bridge import StoreBridge, publication_action
from reactive_aiops.net.client import WebSocketManager
from reactive_aiops.net.client_streams import ClientStreams
from reactive_aiops.net.edge import EdgeDecoder
from reactive_aiops.protocol import PublicationReceived, RawPublicationReceived
from reactive_aiops.testing.clock import ManualClock
from reactive_aiops.wire import Publication, decode_publications, decode_publications_raw

TABLE = aiops_event_table()

_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-3, 3),
    st.integers(2**63 - 2, 2**64 + 1),
    st.floats(-10, 10),
    st.floats(1e300, 1e308),
    st.text(max_size=4),
)


def _anomaly(n: int = 1, **changes: Any) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "id": f"an-{n}",
        "detector_id": "det-1",
        "metric": "cpu",
        "severity": "high",
        "score": 4.5,
        "value": 97.0,
        "started_at": 1_700_000_000.0,
        "version": n,
    }
    payload.update(changes)
    return payload


def _detector(n: int = 1, **changes: Any) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "id": f"det-{n}",
        "name": "d",
        "metric": "cpu",
        "status": "active",
        "updated_at": 1.0,
        "version": n,
    }
    payload.update(changes)
    return payload


@st.composite
def _envelope(draw: st.DrawFn) -> Any:
    kind = draw(st.sampled_from(["anomaly", "detector", "other", "odd"]))
    if kind == "odd":
        return draw(
            st.sampled_from([None, [1], "x", 3, {}, {"type": 1}, {"type": "anomaly.upserted"}])
        )
    etype = {"anomaly": ANOMALY_UPSERTED, "detector": DETECTOR_UPSERTED}.get(kind, "thing.moved")
    n = draw(st.integers(1, 4))
    payload = _detector(n) if kind == "detector" else _anomaly(n)
    if draw(st.booleans()):
        payload[draw(st.sampled_from([*payload, "extra"]))] = draw(_scalars)
    env: dict[str, Any] = {"type": etype, "v": 1, "id": f"ev-{n}", "ts": 5.0, "data": payload}
    if draw(st.booleans()):
        env["command_id"] = "cmd-1"
    if draw(st.booleans()):
        env[draw(st.sampled_from(["v", "id", "ts", "command_id", "type", "data"]))] = draw(_scalars)
    return env


def _line(channel: str, data: Any, offset: int) -> str:
    pub: dict[str, Any] = {"offset": offset}
    if data is not None:
        pub["data"] = data
    return json.dumps({"push": {"channel": channel, "pub": pub}})


# A table with two event types on one channel: decode_raw's per-channel guess must switch.
MIXED = EventTable(
    [
        *TABLE.routes,
        EventRoute("mixed", ANOMALY_UPSERTED, Anomaly, lambda p, m: AnomalyUpserted(p, meta=m)),
        EventRoute("mixed", DETECTOR_UPSERTED, Detector, lambda p, m: DetectorUpserted(p, meta=m)),
    ],
    converter=aiops_converter(),
)


@settings(max_examples=400, deadline=None)
@given(
    events=st.lists(
        st.tuples(st.sampled_from(["anomalies", "detectors", "mixed", "health"]), _envelope()),
        min_size=1,
        max_size=8,
    ),
    epoch=st.sampled_from(["", "ep"]),
)
def test_decode_raw_answers_what_the_edge_answers_from_the_decoded_data(
    events: list[tuple[str, Any]], epoch: str
) -> None:
    raw_edge, edge = EdgeDecoder(MIXED), EdgeDecoder(MIXED)  # one each: caches carry over
    for offset, (channel, data) in enumerate(events):
        line = _line(channel, data, offset)
        decoded, raws = decode_publications(line), decode_publications_raw(line)
        assert decoded is not None
        assert raws is not None
        ((_, pub),), ((_, raw_offset, raw),) = decoded, raws
        fast = raw_edge.decode_raw(channel, raw_offset, raw, epoch)
        assert fast == edge(channel, pub, epoch)
        if fast is None:  # the slow path answers, from the publication the event stands for
            event = RawPublicationReceived(channel, raw_offset, raw)
            assert publication_action(channel, event.to_publication(), epoch) == (
                publication_action(channel, pub, epoch)
            )


def test_decode_raw_follows_a_channel_whose_event_type_changes() -> None:
    edge = EdgeDecoder(MIXED)
    for n, (data, cls) in enumerate(
        [
            (
                {"type": ANOMALY_UPSERTED, "v": 1, "id": "1", "ts": 1, "data": _anomaly()},
                AnomalyUpserted,
            ),
            (
                {"type": DETECTOR_UPSERTED, "v": 1, "id": "2", "ts": 1, "data": _detector()},
                DetectorUpserted,
            ),
            (
                {"type": ANOMALY_UPSERTED, "v": 1, "id": "3", "ts": 1, "data": _anomaly()},
                AnomalyUpserted,
            ),
        ],
        start=1,
    ):
        raws = decode_publications_raw(_line("mixed", data, n))
        assert raws is not None
        act = edge.decode_raw("mixed", n, raws[0][2], "e")
        assert type(act) is cls
        assert act.meta is not None
        assert (act.meta.event_id, act.meta.offset) == (str(n), n)


# -- the manager's streams --------------------------------------------------------------------


def test_only_a_raw_listener_sees_raw_events_every_other_consumer_the_decoded_ones() -> None:
    told: list[bool] = []
    streams = ClientStreams(raw_changed=told.append)
    raw_batches: list[list[Any]] = []
    batches: list[list[Any]] = []
    observed: list[Any] = []
    events_seen: list[Any] = []
    raw_sub = streams.listen_batches(raw_batches.append, raw=True)
    streams.listen_batches(batches.append)
    streams.events.subscribe(events_seen.append)
    streams.channel("a", lambda: None, lambda: None).subscribe(observed.append)
    raws = decode_publications_raw(_line("a", {"n": 1}, 4))
    assert raws is not None
    event = RawPublicationReceived("a", 4, raws[0][2])
    streams.deliver([event], lambda e: None)
    pub = Publication(data={"n": 1}, offset=4)
    assert raw_batches == [[event]]
    assert batches == [[PublicationReceived("a", pub)]]
    assert observed == [pub]
    assert events_seen == [PublicationReceived("a", pub)]
    assert told == [True, True]
    raw_sub.dispose()
    assert told == [True, True, False]


def test_the_manager_asks_its_protocol_for_raw_publications_while_a_raw_listener_listens() -> None:
    manager = WebSocketManager("ws://127.0.0.1:9/unused", token="t")
    assert manager._protocol.raw_publications is False
    sub = manager.listen_batches(lambda events: None, raw=True)
    assert manager._protocol.raw_publications is True
    sub.dispose()
    assert manager._protocol.raw_publications is False


# -- the bridge ---------------------------------------------------------------------------------


async def _dispatched(frames: list[str], raw: bool) -> tuple[list[Any], Any]:
    """The actions a bridge dispatches for ``frames`` (after its load of ``anomalies``), with
    the protocol's raw publications on or off."""
    manager = WebSocketManager("ws://127.0.0.1:9/unused", token="t", clock=lambda: 1000.0)
    bridge = StoreBridge(manager, channels=("anomalies", "health"))
    seen: list[Any] = []

    def record(api: Any) -> Any:
        return lambda next_: lambda act: (seen.append(act), next_(act))[1]

    store = create_live_store(middleware=[bridge.middleware, record], clock=ManualClock())
    await bridge.start()
    protocol, process = manager._protocol, manager._process
    protocol.raw_publications = raw  # the bridge asked for raw: the classic form is the reference
    now = 1000.0
    protocol.start(now)
    protocol.transport_opening(now)
    protocol.transport_opened(now)
    process()
    protocol.receive_text('{"id":1,"connect":{"client":"t","version":"0"}}', now)
    process()
    protocol.receive_text(
        '{"id":2,"subscribe":{"recoverable":true,"epoch":"e","offset":0,"positioned":true}}\n'
        '{"id":3,"subscribe":{"recoverable":true,"epoch":"h","offset":0,"positioned":true}}',
        now,
    )
    process()
    for _ in range(5):  # the loader's task sends its snapshot RPC within its first turns
        await asyncio.sleep(0)
    # publications while the load is in flight are held, then applied after it
    for text in frames[:2]:
        protocol.receive_text(text, now)
        process()
    protocol.receive_text(
        '{"id":4,"rpc":{"data":{"detectors":[],"anomalies":[],"health":null,'
        '"positions":{"anomalies":{"offset":0,"epoch":"e"},"health":{"offset":0,"epoch":"h"}}}}}',
        now,
    )
    process()
    for _ in range(5):  # the load is applied (a gap in what it held asks for another)
        await asyncio.sleep(0)
    for text in frames[2:]:
        protocol.receive_text(text, now)
        process()
    await bridge.aclose()
    return seen, store.state


@settings(max_examples=25, deadline=None)
@given(
    events=st.lists(
        st.tuples(
            st.sampled_from(["anomalies", "anomalies", "health"]), _envelope(), st.integers(1, 3)
        ),
        min_size=1,
        max_size=10,
    ),
    per_frame=st.integers(1, 3),
)
def test_the_bridge_dispatches_the_same_actions_with_raw_publications(
    events: list[tuple[str, Any, int]], per_frame: int
) -> None:
    offsets = {"anomalies": 0, "health": 0}
    lines = []
    for channel, data, step in events:  # mostly in order; a step of 2 or 3 is a gap
        offsets[channel] += step if step == 3 else 1
        lines.append(_line(channel, data, offsets[channel]))
    frames = ["\n".join(lines[i : i + per_frame]) for i in range(0, len(lines), per_frame)]
    raw_actions, raw_state = asyncio.run(_dispatched(frames, True))
    actions, state = asyncio.run(_dispatched(frames, False))
    assert raw_actions == actions
    assert dict(raw_state.anomalies.items()) == dict(state.anomalies.items())
    assert raw_state.dedupe == state.dedupe
