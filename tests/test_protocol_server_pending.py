"""A hub that answers a subscribe later (as the Redis engine does): no loss, no duplicate.

The connection is registered for live publications when it subscribes; the hub reads the
stream's position some time later and reports it later still. Publications made before the
subscribe, while the read is in flight, after the read and after the report must each reach the
client exactly once and in offset order, with or without recovery.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from server_helpers import anomaly_event, config, token

from reactive_aiops.protocol.server import ServerConnection, SubscribeOutcome
from reactive_aiops.server.broker import recover_position
from reactive_aiops.server.core import ServerCore, limits_from
from reactive_aiops.wire.messages import Error

T0 = 1_000_000.0


class DeferredHub(ServerCore):
    """The memory engine, but the subscribe's read and report happen when the test says."""

    def __init__(self) -> None:
        super().__init__(config(), clock=lambda: T0)
        self.reads: list[Callable[[], Callable[[], None]]] = []

    def subscribe(self, channel: str, subscriber: Any, recover: bool, offset: int, epoch: str,
                  done: Callable[[SubscribeOutcome | Error], None]) -> None:
        self.broker.subscribe(channel, subscriber)  # registered for live publications now

        def read() -> Callable[[], None]:
            top, stream_epoch = self.broker.position(channel)
            result = recover_position(stream_epoch, top, self.broker.history(channel),
                                      recover=recover, offset=offset, epoch=epoch)
            outcome = (result.epoch, result.offset, result.recovered, result.publications)
            return lambda: done(outcome)

        self.reads.append(read)


def offsets_sent(conn: ServerConnection) -> list[int]:
    sent = []
    for frame in conn.data_to_send():
        for line in frame.split("\n"):
            message = json.loads(line)
            if "push" in message:
                sent.append(message["push"]["pub"]["offset"])
            elif "subscribe" in message:
                sent += [p["offset"] for p in message["subscribe"].get("publications", [])]
    return sent


@settings(max_examples=60, deadline=None)
@given(before=st.integers(0, 5), during=st.integers(0, 5), after_read=st.integers(0, 5),
       after=st.integers(0, 5), recover_from=st.none() | st.integers(0, 5))
def test_publications_around_a_late_subscribe_reach_the_client_once_in_order(
        before: int, during: int, after_read: int, after: int,
        recover_from: int | None) -> None:
    hub = DeferredHub()
    conn = ServerConnection(hub, limits_from(hub.config), "c1", T0)
    conn.receive_text(json.dumps({"id": 1, "connect": {"token": token(now=T0)}}), T0)
    conn.data_to_send()
    publish = lambda: hub.publish("anomalies", anomaly_event())  # noqa: E731
    for _ in range(before):
        publish()
    epoch = hub.broker.position("anomalies")[1]
    request: dict[str, Any] = {"channel": "anomalies"}
    recovering = recover_from is not None and recover_from <= before
    if recovering:
        request.update(recover=True, offset=recover_from, epoch=epoch)
    conn.receive_text(json.dumps({"id": 2, "subscribe": request}), T0)
    for _ in range(during):
        publish()
    report = hub.reads.pop()()
    for _ in range(after_read):
        publish()
    report()
    for _ in range(after):
        publish()
    # Without recovery a subscriber starts at the position the read saw (what was published
    # before the read is not its to receive); with recovery, right after its offset.
    first = (recover_from if recovering else before + during) + 1
    assert recover_from is None or recovering or recover_from > before
    assert offsets_sent(conn) == list(range(first, before + during + after_read + after + 1))
    assert conn.positions["anomalies"] == (epoch, before + during + after_read + after)


def test_unsubscribe_while_the_read_is_in_flight_answers_nothing_and_unregisters() -> None:
    hub = DeferredHub()
    conn = ServerConnection(hub, limits_from(hub.config), "c1", T0)
    conn.receive_text(json.dumps({"id": 1, "connect": {"token": token(now=T0)}}), T0)
    conn.receive_text(json.dumps({"id": 2, "subscribe": {"channel": "anomalies"}}), T0)
    conn.receive_text(json.dumps({"id": 3, "unsubscribe": {"channel": "anomalies"}}), T0)
    conn.data_to_send()
    hub.reads.pop()()()
    hub.publish("anomalies", anomaly_event())
    assert conn.data_to_send() == []
    assert hub.broker.subscriber_count("anomalies") == 0
    assert "anomalies" not in conn.positions


def test_a_second_subscribe_while_the_first_is_pending_is_refused() -> None:
    hub = DeferredHub()
    conn = ServerConnection(hub, limits_from(hub.config), "c1", T0)
    conn.receive_text(json.dumps({"id": 1, "connect": {"token": token(now=T0)}}), T0)
    conn.data_to_send()
    conn.receive_text(json.dumps({"id": 2, "subscribe": {"channel": "anomalies"}}), T0)
    conn.receive_text(json.dumps({"id": 3, "subscribe": {"channel": "anomalies"}}), T0)
    (reply,) = [json.loads(f) for f in conn.data_to_send()]
    assert reply["id"] == 3
    assert reply["error"]["code"] == 105  # already subscribed
