"""The sans-I/O client protocol, driven by a manual clock and scripted server text: no sockets."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from reactive_aiops.core.connection import (
    Connected,
    Connecting,
    ConnectionFailed,
    ConnectionLost,
    ConnectionState,
    Disconnected,
    DuplicatesDropped,
    HealthSampled,
    LatencyMeasured,
    ResyncRequired,
    Status,
    connection_reducer,
)
from reactive_aiops.protocol import (
    BackoffPolicy,
    ChannelStatus,
    ClientClosed,
    ClientCode,
    ClientConfig,
    ClientProtocol,
    CloseTransport,
    CommandFailed,
    CommandSucceeded,
    CommandTimeout,
    OutboxFull,
    Phase,
    PublicationReceived,
    RefreshNeeded,
    ReplyError,
    Subscribed,
    SubscriptionFailed,
)
from reactive_aiops.testing.clock import ManualClock
from reactive_aiops.wire import (
    ConnectResult,
    Disconnect,
    Error,
    HistoryRequest,
    Ping,
    Publication,
    Push,
    RefreshResult,
    Reply,
    RPCResult,
    SendRequest,
    StreamPosition,
    SubscribeResult,
    UnsubscribePush,
    encode_replies,
)


class Harness:
    """A ClientProtocol, a manual clock and helpers to script the server side."""

    def __init__(self, config: ClientConfig | None = None, rand: float = 0.5, **kw: Any) -> None:
        self.clock = ManualClock(1000.0)
        self.p = ClientProtocol(config or ClientConfig(), rand=lambda: rand, **kw)
        self.sent: list[dict[str, Any]] = []
        self.events: list[Any] = []
        self.state = connection_reducer(None, object())

    def pump(self) -> list[Any]:
        for frame in self.p.data_to_send():
            self.sent.extend(json.loads(line) for line in frame.split("\n"))
        new = self.p.events_received()
        for event in new:
            self.state = connection_reducer(self.state, event)
        self.events.extend(new)
        return new

    def take_sent(self) -> list[dict[str, Any]]:
        self.pump()
        sent, self.sent = self.sent, []
        return sent

    def server(self, *messages: Any) -> list[Any]:
        self.p.receive_text(encode_replies(messages), self.clock.now)
        return self.pump()

    def open(self) -> dict[str, Any]:
        """Run one connection attempt up to the connect command; returns that command."""
        assert self.p.connect_due(self.clock.now)
        self.p.transport_opening(self.clock.now)
        self.p.transport_opened(self.clock.now)
        sent = self.take_sent()
        assert len(sent) == 1
        assert "connect" in sent[0]
        return sent[0]

    def connect(self, **result: Any) -> int:
        """Start (if needed), open and accept the connect; returns the connect id."""
        if self.p.phase is Phase.IDLE:
            self.p.start(self.clock.now)
        cmd = self.open()
        result.setdefault("client", "c1")
        self.server(Reply(cmd["id"], ConnectResult(**result)))
        return int(cmd["id"])

    def closed(self, code: int = 1006, reason: str = "") -> list[Any]:
        self.p.transport_closed(self.clock.now, code, reason)
        return self.pump()

    def tick_to(self, when: float) -> list[Any]:
        self.clock.set(when)
        self.p.tick(when)
        return self.pump()

    def status(self) -> Status:
        return self.state.status

    def of(self, kind: type) -> list[Any]:
        return [e for e in self.events if isinstance(e, kind)]


def pub(offset: int, data: Any = None) -> Publication:
    return Publication(data={"n": offset} if data is None else data, offset=offset)


# --- connecting ------------------------------------------------------------------------------


def test_connect_sends_token_and_name_and_reaches_connected() -> None:
    h = Harness(token="jwt", connect_data={"app": 1})
    h.p.start(h.clock.now)
    cmd = h.open()
    assert cmd == {
        "id": 1,
        "connect": {
            "token": "jwt",
            "data": {"app": 1},
            "name": "reactive-aiops",
            "version": "0.1.0",
        },
    }
    assert h.status() is Status.CONNECTING
    h.clock.advance(0.02)
    h.server(Reply(1, ConnectResult(client="abc", ping=25, pong=True)))
    assert h.status() is Status.CONNECTED
    assert h.state.client_id == "abc"
    assert h.of(LatencyMeasured)[0].rtt == pytest.approx(0.02)


def test_ids_are_not_reset_on_reconnect() -> None:
    h = Harness()
    h.p.subscribe("a", h.clock.now)
    assert h.connect() == 1
    assert h.take_sent()[0]["id"] == 2  # subscribe a
    h.closed()
    h.tick_to(h.p.next_connect_at or 0)
    cmd = h.open()
    assert cmd["id"] == 3


def test_pong_only_when_connect_result_asked_for_it() -> None:
    h = Harness()
    h.connect(ping=25, pong=False)
    h.server(Ping())
    assert h.take_sent() == []
    h.closed()
    h.tick_to(h.p.next_connect_at or 0)
    cmd = h.open()
    h.server(Reply(cmd["id"], ConnectResult(client="c", ping=25, pong=True)))
    h.server(Ping())
    assert h.take_sent() == [{}]


def test_no_ping_within_window_declares_the_connection_dead() -> None:
    h = Harness()
    h.connect(ping=25, pong=True)
    start = h.clock.now
    assert h.p.next_deadline() == pytest.approx(start + 1.0)  # health sample first
    h.tick_to(start + 20)
    h.server(Ping())  # any message restarts the window
    assert h.p.next_deadline() is not None
    h.tick_to(start + 20 + 34.9)
    assert not h.of(CloseTransport)
    h.tick_to(start + 20 + 35)
    assert h.of(CloseTransport) == [CloseTransport(1000, "no ping", abort=True)]
    h.closed(1000, "")
    lost = h.of(ConnectionLost)[-1]
    assert (lost.code, lost.reason) == (ClientCode.NO_PING, "no ping")
    assert h.status() is Status.RECONNECTING


def test_no_heartbeat_watch_when_server_does_not_ping() -> None:
    h = Harness()
    h.connect(ping=0)
    h.tick_to(h.clock.now + 3600)
    assert not h.of(CloseTransport)


def test_connect_timeout_reconnects() -> None:
    h = Harness()
    h.p.start(h.clock.now)
    h.open()
    h.tick_to(h.clock.now + 5.0)
    assert h.of(CloseTransport)[-1].abort  # an unresponsive peer gets no closing handshake
    h.closed(1000)
    assert h.of(ConnectionLost)[-1].code == ClientCode.CONNECT_TIMEOUT


# --- reconnect, backoff, fatal errors --------------------------------------------------------


def test_backoff_grows_with_full_jitter_and_caps() -> None:
    config = ClientConfig(
        backoff=BackoffPolicy(initial=0.5, maximum=4.0, reset_after=10, flat=1)
    )
    h = Harness(config, rand=0.5)
    h.p.start(h.clock.now)
    retries = []
    for _ in range(6):
        h.open()
        before = h.clock.now
        h.closed(1006)
        lost = h.of(ConnectionLost)[-1]
        retries.append((lost.attempt, round(lost.next_retry_at - before, 6)))
        h.tick_to(lost.next_retry_at)
    assert retries == [(1, 0.25), (2, 0.5), (3, 1.0), (4, 2.0), (5, 2.0), (6, 2.0)]
    assert h.status() is Status.RECONNECTING  # until the driver opens the next socket
    assert h.state.health.reconnects == 6


def test_backoff_resets_only_after_a_healthy_connection() -> None:
    config = ClientConfig(backoff=BackoffPolicy(initial=1.0, maximum=64.0, reset_after=10))
    h = Harness(config, rand=0.99)
    h.connect()
    h.closed()  # dropped right after connecting: keeps growing
    h.tick_to(h.p.next_connect_at or 0)
    h.connect()
    h.clock.advance(2)
    h.closed()
    assert h.of(ConnectionLost)[-1].attempt == 2
    h.tick_to(h.p.next_connect_at or 0)
    h.connect()
    h.clock.advance(10)  # stayed up long enough
    h.closed()
    lost = h.of(ConnectionLost)[-1]
    assert lost.attempt == 1
    assert lost.next_retry_at - h.clock.now == pytest.approx(0.99)


@pytest.mark.parametrize(
    ("code", "retry"),
    [
        (3001, True),
        (3012, True),
        (4000, True),
        (3500, False),
        (3503, False),
        (4500, False),
        (1009, False),
        (1006, True),
    ],
)
def test_close_codes_decide_retry_or_failure(code: int, retry: bool) -> None:
    h = Harness()
    h.connect()
    h.closed(code, "why")
    if retry:
        assert h.status() is Status.RECONNECTING
        assert h.state.code == code
    else:
        assert h.status() is Status.FAILED
        assert (h.state.code, h.state.reason) == (code, "why")
        assert h.p.next_deadline() is None
        assert not h.p.connect_due(h.clock.now + 1e6)


def test_disconnect_push_acts_like_a_close_code() -> None:
    h = Harness()
    h.connect()
    h.server(Push("", Disconnect(code=3503, reason="force disconnect")))
    assert h.status() is Status.FAILED
    assert h.state.reason == "force disconnect"
    assert h.of(CloseTransport)
    h.closed(1000)  # the socket closing afterwards changes nothing
    assert h.status() is Status.FAILED


@pytest.mark.parametrize(
    ("error", "outcome"),
    [
        (Error(101, "unauthorized"), "failed"),
        (Error(103, "permission denied"), "failed"),
        (Error(100, "internal", temporary=True), "retry"),
        (Error(111, "too many", temporary=True), "retry"),
        (Error(109, "token expired"), "failed"),  # no token fetcher configured
    ],
)
def test_connect_errors(error: Error, outcome: str) -> None:
    h = Harness()
    h.p.start(h.clock.now)
    cmd = h.open()
    h.server(Reply(cmd["id"], error))
    assert h.of(CloseTransport)
    h.closed(1000)
    if outcome == "failed":
        assert h.status() is Status.FAILED
        assert (h.state.code, h.state.reason) == (error.code, error.message)
    else:
        assert h.status() is Status.RECONNECTING


def test_token_expired_at_connect_fetches_once_and_retries_at_once() -> None:
    h = Harness(ClientConfig(has_token_fetcher=True), token="old")
    h.p.start(h.clock.now)
    cmd = h.open()
    h.server(Reply(cmd["id"], Error(109, "token expired")))
    h.closed(1000)
    assert h.p.token_needed
    assert h.p.connect_due(h.clock.now)  # no backoff delay
    h.p.set_token("fresh")
    cmd = h.open()
    assert cmd["connect"]["token"] == "fresh"
    h.server(Reply(cmd["id"], Error(109, "token expired")))  # a second time: give up
    h.closed(1000)
    assert h.status() is Status.FAILED
    assert h.state.reason == "token expired"


def test_transport_failures() -> None:
    h = Harness()
    h.p.start(h.clock.now)
    h.p.transport_opening(h.clock.now)
    h.p.transport_failed(h.clock.now, "connection refused")
    h.pump()
    assert h.status() is Status.RECONNECTING
    h.tick_to(h.p.next_connect_at or 0)
    h.p.transport_opening(h.clock.now)
    h.p.transport_failed(h.clock.now, "HTTP 403", code=ClientCode.HANDSHAKE_REJECTED, fatal=True)
    h.pump()
    assert h.status() is Status.FAILED
    assert h.state.reason == "HTTP 403"


def test_stop_fails_pending_commands_and_restart_resubscribes() -> None:
    h = Harness()
    h.p.subscribe("a", h.clock.now)
    h.connect()
    h.take_sent()
    key = h.p.rpc("m", {}, h.clock.now)
    h.p.stop(h.clock.now)
    h.pump()
    assert h.of(CloseTransport)[-1].reason == "disconnect called"
    assert isinstance(h.of(CommandFailed)[0].error, ClientClosed)
    assert h.of(CommandFailed)[0].key == key
    assert h.status() is Status.DISCONNECTED
    h.closed(1000)
    assert h.status() is Status.DISCONNECTED
    h.p.start(h.clock.now)
    h.connect()
    assert next(m for m in h.take_sent() if "subscribe" in m)["subscribe"]["channel"] == "a"


# --- subscriptions and recovery --------------------------------------------------------------


def test_subscriptions_are_reference_counted() -> None:
    h = Harness()
    h.connect()
    assert h.p.subscribe("a", h.clock.now) is True
    assert h.p.subscribe("a", h.clock.now) is False
    sent = h.take_sent()
    assert [m["subscribe"]["channel"] for m in sent] == ["a"]
    assert h.p.unsubscribe("a", h.clock.now) is False
    assert h.take_sent() == []
    assert h.p.unsubscribe("a", h.clock.now) is True
    assert h.take_sent() == [{"id": 3, "unsubscribe": {"channel": "a"}}]
    assert h.p.unsubscribe("a", h.clock.now) is False
    with pytest.raises(ValueError, match="non-empty"):
        h.p.subscribe("", h.clock.now)


def subscribe_ok(h: Harness, channel: str, **result: Any) -> list[Any]:
    sent = [m for m in h.take_sent() if m.get("subscribe", {}).get("channel") == channel]
    assert sent, f"no subscribe for {channel}"
    return h.server(Reply(sent[-1]["id"], SubscribeResult(**result)))


def delivered(h: Harness, channel: str) -> list[int]:
    return [e.publication.offset for e in h.of(PublicationReceived) if e.channel == channel]


def test_restored_after_reconnect_with_recovery_only_if_recoverable() -> None:
    h = Harness()
    h.p.subscribe("rec", h.clock.now)
    h.p.subscribe("plain", h.clock.now)
    h.connect()
    sent = h.take_sent()
    by_channel = {m["subscribe"]["channel"]: m for m in sent}
    assert by_channel["rec"]["subscribe"] == {
        "channel": "rec",
        "positioned": True,
        "recoverable": True,
    }
    h.server(Reply(by_channel["rec"]["id"], SubscribeResult(recoverable=True, epoch="E", offset=5)))
    h.server(Reply(by_channel["plain"]["id"], SubscribeResult()))
    h.server(Push("rec", pub(6)), Push("rec", pub(7)), Push("plain", Publication(data=1)))
    assert h.p.position("rec") == StreamPosition(7, "E")
    assert h.p.position("plain") is None
    h.closed()
    h.tick_to(h.p.next_connect_at or 0)
    h.connect()
    resent = {m["subscribe"]["channel"]: m["subscribe"] for m in h.take_sent()}
    assert resent["rec"] == {
        "channel": "rec",
        "recover": True,
        "epoch": "E",
        "offset": 7,
        "positioned": True,
        "recoverable": True,
    }
    assert "recover" not in resent["plain"]


def test_recovery_applies_each_offset_once_and_in_order() -> None:
    h = Harness()
    h.p.subscribe("a", h.clock.now)
    h.connect()
    subscribe_ok(h, "a", recoverable=True, epoch="E", offset=2)
    h.server(Push("a", pub(3)), Push("a", pub(3)), Push("a", pub(4)))
    h.closed()
    h.tick_to(h.p.next_connect_at or 0)
    h.connect()
    subscribe_ok(
        h,
        "a",
        recoverable=True,
        epoch="E",
        offset=4,
        recovered=True,
        was_recovering=True,
        publications=(pub(4), pub(5), pub(6)),
    )
    h.server(Push("a", pub(6)), Push("a", pub(7)))
    assert delivered(h, "a") == [3, 4, 5, 6, 7]
    assert sum(e.count for e in h.of(DuplicatesDropped)) == 3
    assert h.state.health.duplicates_dropped == 3
    assert not h.of(ResyncRequired)
    assert h.of(Subscribed)[-1].recovered is True


@pytest.mark.parametrize(
    ("result", "reason"),
    [
        ({"recoverable": True, "epoch": "NEW", "offset": 9}, "epoch changed"),
        ({"recoverable": True, "epoch": "E", "offset": 9, "recovered": False}, "not recovered"),
        ({}, "without recovery"),
    ],
)
def test_holes_after_reconnect_emit_resync(result: dict[str, Any], reason: str) -> None:
    h = Harness()
    h.p.subscribe("a", h.clock.now)
    h.connect()
    subscribe_ok(h, "a", recoverable=True, epoch="E", offset=2)
    h.closed()
    h.tick_to(h.p.next_connect_at or 0)
    h.connect()
    subscribe_ok(h, "a", **result)
    resyncs = h.of(ResyncRequired)
    assert len(resyncs) == 1
    assert reason in resyncs[0].reason
    assert h.state.resyncs["a"] == 1
    assert h.state.health.resyncs == 1
    # the stream goes on from the new top
    top = result.get("offset", 0)
    h.server(Push("a", pub(top + 1)))
    assert delivered(h, "a")[-1] == top + 1


def test_gap_in_live_stream_emits_resync_then_continues() -> None:
    h = Harness()
    h.p.subscribe("a", h.clock.now)
    h.connect()
    subscribe_ok(h, "a", recoverable=True, epoch="E", offset=0)
    h.server(Push("a", pub(1)), Push("a", pub(3)), Push("a", pub(4)))
    assert delivered(h, "a") == [1, 3, 4]
    (resync,) = h.of(ResyncRequired)
    assert resync.reason == "gap: expected offset 2, got 3"
    resync_at = h.events.index(resync)
    pub3_at = next(
        i
        for i, e in enumerate(h.events)
        if isinstance(e, PublicationReceived) and e.publication.offset == 3
    )
    assert resync_at < pub3_at  # the app learns of the hole before it sees what follows it


def test_unsubscribe_pushes() -> None:
    h = Harness()
    h.p.subscribe("a", h.clock.now)
    h.p.subscribe("b", h.clock.now)
    h.connect()
    sent = h.take_sent()
    for m in sent:
        h.server(Reply(m["id"], SubscribeResult(recoverable=True, epoch="E", offset=4)))
    h.server(Push("a", UnsubscribePush(code=2500, reason="insufficient state")))
    (resub,) = h.take_sent()
    assert resub["subscribe"]["recover"] is True
    assert resub["subscribe"]["offset"] == 4
    h.server(Push("b", UnsubscribePush(code=2000, reason="server unsubscribe")))
    assert h.of(SubscriptionFailed) == [SubscriptionFailed("b", 2000, "server unsubscribe")]
    assert h.p.channels()["b"] is ChannelStatus.FAILED
    h.p.subscribe("b", h.clock.now)  # a new reference retries
    assert h.take_sent()[0]["subscribe"]["channel"] == "b"


def test_subscribe_errors_retry_or_fail() -> None:
    h = Harness(rand=0.5)
    h.p.subscribe("t", h.clock.now)
    h.p.subscribe("f", h.clock.now)
    h.connect()
    ids = {m["subscribe"]["channel"]: m["id"] for m in h.take_sent()}
    h.server(Reply(ids["t"], Error(100, "internal", temporary=True)))
    h.server(Reply(ids["f"], Error(103, "permission denied")))
    assert h.of(SubscriptionFailed) == [SubscriptionFailed("f", 103, "permission denied")]
    assert h.take_sent() == []
    h.tick_to(h.clock.now + 0.49)  # rand 0.5 x the default first window of 1 s
    assert h.take_sent() == []
    h.tick_to(h.clock.now + 0.01)
    assert h.take_sent()[0]["subscribe"]["channel"] == "t"


def test_subscribe_timeout_reconnects() -> None:
    h = Harness()
    h.p.subscribe("a", h.clock.now)
    h.connect()
    h.take_sent()
    h.tick_to(h.clock.now + 5.0)
    h.closed(1000)
    assert h.of(ConnectionLost)[-1].code == ClientCode.SUBSCRIBE_TIMEOUT


def test_publications_before_subscribe_reply_are_held_then_filtered() -> None:
    h = Harness()
    h.p.subscribe("a", h.clock.now)
    h.connect()
    sub_id = h.take_sent()[0]["id"]
    h.server(Push("a", pub(5)), Push("a", pub(6)), Push("zzz", pub(1)))
    assert delivered(h, "a") == []
    h.server(Reply(sub_id, SubscribeResult(recoverable=True, epoch="E", offset=5)))
    assert delivered(h, "a") == [6]
    assert h.state.health.duplicates_dropped == 1


# --- commands --------------------------------------------------------------------------------


def test_rpc_success_error_and_late_reply() -> None:
    h = Harness()
    h.connect()
    ok = h.p.rpc("anomaly.acknowledge", {"command_id": "c1"}, h.clock.now)
    bad = h.p.rpc("anomaly.resolve", {}, h.clock.now, timeout=1.0)
    sent = h.take_sent()
    assert sent[0] == {
        "id": 2,
        "rpc": {"data": {"command_id": "c1"}, "method": "anomaly.acknowledge"},
    }
    h.server(Reply(2, RPCResult(data={"ok": True})), Reply(3, Error(409, "conflict")))
    assert h.of(CommandSucceeded) == [CommandSucceeded(ok, RPCResult(data={"ok": True}))]
    (failed,) = h.of(CommandFailed)
    assert failed.key == bad
    assert isinstance(failed.error, ReplyError)
    assert (failed.error.code, failed.error.message) == (409, "conflict")


def test_command_timeout_and_late_reply_is_ignored() -> None:
    h = Harness()
    h.connect()
    key = h.p.call(HistoryRequest(channel="a"), h.clock.now, timeout=2.0)
    (cmd,) = h.take_sent()
    assert h.p.next_deadline() == pytest.approx(h.clock.now + 1.0)  # health sample first
    h.tick_to(h.clock.now + 2.0)
    (failed,) = h.of(CommandFailed)
    assert failed.key == key
    assert isinstance(failed.error, CommandTimeout)
    h.server(Reply(cmd["id"], RPCResult()))
    assert not h.of(CommandSucceeded)


def test_outbox_while_disconnected_then_flushed_after_connect() -> None:
    h = Harness(ClientConfig(outbox_size=2, command_timeout=30))
    h.p.start(h.clock.now)
    k1 = h.p.rpc("m", 1, h.clock.now)
    k2 = h.p.rpc("m", 2, h.clock.now)
    k3 = h.p.rpc("m", 3, h.clock.now)
    h.pump()
    (full,) = h.of(CommandFailed)
    assert full.key == k3
    assert isinstance(full.error, OutboxFull)
    h.connect()
    sent = h.take_sent()
    assert [m["rpc"]["data"] for m in sent] == [1, 2]
    h.server(Reply(sent[1]["id"], RPCResult(data="two")), Reply(sent[0]["id"], RPCResult()))
    assert [e.key for e in h.of(CommandSucceeded)] == [k2, k1]


def test_outbox_commands_time_out_while_waiting() -> None:
    h = Harness()
    key = h.p.rpc("m", None, h.clock.now, timeout=3)
    h.tick_to(h.clock.now + 3)
    assert [(e.key, type(e.error)) for e in h.of(CommandFailed)] == [(key, CommandTimeout)]
    h.connect()
    assert h.take_sent() == []


def test_inflight_commands_are_resent_after_reconnect_in_order() -> None:
    h = Harness(ClientConfig(command_timeout=60))
    h.connect()
    k1 = h.p.rpc("m", "first", h.clock.now)
    k2 = h.p.rpc("m", "second", h.clock.now)
    h.take_sent()
    h.closed()
    k3 = h.p.rpc("m", "third", h.clock.now)
    h.tick_to(h.p.next_connect_at or 0)
    h.connect()
    sent = h.take_sent()
    assert [m["rpc"]["data"] for m in sent] == ["first", "second", "third"]
    for m in sent:
        h.server(Reply(m["id"], RPCResult(data=m["rpc"]["data"])))
    assert [e.key for e in h.of(CommandSucceeded)] == [k1, k2, k3]


def test_commands_on_a_failed_client_fail_at_once() -> None:
    h = Harness()
    h.connect()
    h.closed(3500, "invalid token")
    key = h.p.rpc("m", None, h.clock.now)
    h.pump()
    (failed,) = h.of(CommandFailed)
    assert failed.key == key
    assert isinstance(failed.error, ClientClosed)
    with pytest.raises(TypeError):
        h.p.call(SendRequest(), 0.0)


def test_send_is_fire_and_forget() -> None:
    h = Harness()
    assert h.p.send({"x": 1}) is False
    h.connect()
    assert h.p.send({"x": 1}) is True
    assert h.take_sent() == [{"send": {"data": {"x": 1}}}]


# --- token refresh ---------------------------------------------------------------------------


def test_refresh_before_expiry_over_the_live_connection() -> None:
    h = Harness(ClientConfig(has_token_fetcher=True, refresh_margin=10), token="t1")
    h.connect(expires=True, ttl=60)
    t0 = h.clock.now
    h.tick_to(t0 + 49.9)
    assert not h.of(RefreshNeeded)
    h.tick_to(t0 + 50)
    assert h.of(RefreshNeeded) == [RefreshNeeded()]
    h.p.refresh_token("t2", h.clock.now)
    (cmd,) = [m for m in h.take_sent() if "refresh" in m]
    assert cmd["refresh"] == {"token": "t2"}
    h.server(Reply(cmd["id"], RefreshResult(expires=True, ttl=8)))
    h.tick_to(h.clock.now + 4)  # at least half the ttl
    assert len(h.of(RefreshNeeded)) == 2
    h.p.refresh_failed(h.clock.now)
    h.tick_to(h.clock.now + 7.5)  # refresh_retry (5, 10) with rand 0.5
    assert len(h.of(RefreshNeeded)) == 3


def test_refresh_refused_fails_the_connection() -> None:
    h = Harness(ClientConfig(has_token_fetcher=True))
    h.connect(expires=True, ttl=20)
    h.tick_to(h.clock.now + 10)
    h.p.refresh_token("bad", h.clock.now)
    (cmd,) = [m for m in h.take_sent() if "refresh" in m]
    h.server(Reply(cmd["id"], Error(101, "unauthorized")))
    assert h.status() is Status.FAILED


def test_no_refresh_without_a_token_fetcher() -> None:
    h = Harness()
    h.connect(expires=True, ttl=20)
    h.tick_to(h.clock.now + 100)
    assert not h.of(RefreshNeeded)


# --- bad input, health -----------------------------------------------------------------------


def test_malformed_frame_processes_the_good_prefix_then_reconnects() -> None:
    h = Harness()
    h.p.subscribe("a", h.clock.now)
    h.connect()
    sub_id = h.take_sent()[0]["id"]
    h.server(Reply(sub_id, SubscribeResult()))
    h.p.receive_text('{"push":{"channel":"a","pub":{"data":1}}}\n{"id":"x"}', h.clock.now)
    h.pump()
    assert len(h.of(PublicationReceived)) == 1
    assert h.of(CloseTransport)[-1].abort is False  # a live but confused peer: close politely
    h.closed(1000)
    lost = h.of(ConnectionLost)[-1]
    assert lost.code == ClientCode.BAD_PROTOCOL
    assert "uint32" in lost.reason


def test_health_samples_message_rate() -> None:
    h = Harness()
    h.connect()
    for _ in range(10):
        h.server(Ping())
    h.tick_to(h.clock.now + 2.0)
    (sample,) = h.of(HealthSampled)
    assert sample.messages_per_second == pytest.approx(5.0)
    assert h.state.health.messages_per_second == pytest.approx(5.0)


def test_events_fold_into_connection_state() -> None:
    h = Harness()
    h.connect()
    kinds = [type(e) for e in h.events]
    assert kinds[:3] == [Connecting, LatencyMeasured, Connected]
    h.p.stop(h.clock.now)
    h.pump()
    assert isinstance(h.events[-1], Disconnected)
    assert h.status() is Status.DISCONNECTED
    assert isinstance(h.state, ConnectionState)
    assert not h.of(ConnectionFailed)


# --- property: whatever the server sends, the app sees each offset once, in order ------------


@given(
    start=st.integers(0, 5),
    offsets=st.lists(st.integers(1, 30), max_size=40),
)
def test_any_offset_sequence_is_applied_once_in_order(start: int, offsets: list[int]) -> None:
    h = Harness()
    h.p.subscribe("a", h.clock.now)
    h.connect()
    subscribe_ok(h, "a", recoverable=True, epoch="E", offset=start)
    h.server(*[Push("a", pub(o)) for o in offsets])
    got = delivered(h, "a")
    assert got == sorted(set(got))
    assert all(o > start for o in got)
    expected_last = max([start, *offsets])
    assert h.p.position("a") == StreamPosition(expected_last, "E")
    contiguous = all(b == a + 1 for a, b in zip([start, *got], got, strict=False))
    assert bool(h.of(ResyncRequired)) == (not contiguous)
    assert len(got) + sum(e.count for e in h.of(DuplicatesDropped)) == len(offsets)


server_junk = st.one_of(
    st.text(max_size=40),
    st.lists(
        st.sampled_from(
            [
                "{}",
                '{"id":2,"subscribe":{"recoverable":true,"epoch":"E","offset":3}}',
                '{"id":3,"rpc":{"data":1}}',
                '{"id":9,"error":{"code":100,"temporary":true}}',
                '{"push":{"channel":"a","pub":{"offset":4,"data":{}}}}',
                '{"push":{"channel":"a","pub":{"offset":9}}}',
                '{"push":{"channel":"a","unsubscribe":{"code":2500}}}',
                '{"push":{"disconnect":{"code":3001}}}',
                '{"id":1,"connect":{"client":"x"}}',
                '{"id":"1"}',
                "[]",
            ]
        ),
        min_size=1,
        max_size=6,
    ).map("\n".join),
)


@given(st.lists(server_junk, min_size=1, max_size=5))
def test_any_server_text_never_raises(frames: list[str]) -> None:
    h = Harness()
    h.p.subscribe("a", h.clock.now)
    h.connect(ping=25, pong=True)
    for frame in frames:
        h.p.receive_text(frame, h.clock.now)
        h.pump()
        if h.p.phase is Phase.CLOSING:
            h.closed(1000)
            h.tick_to(h.p.next_connect_at or h.clock.now)
            if h.p.connect_due(h.clock.now):
                h.take_sent()
                h.connect()
    got = delivered(h, "a")
    assert got == sorted(set(got))


def test_after_connect_the_next_deadline_is_the_health_window_not_the_connect_timeout() -> None:
    # The driver sleeps until next_deadline(); while connecting that is the connect timeout, so
    # it must look again when Connected arrives (net.client wakes its timers on it): from then
    # on the health samples and the heartbeat are due much sooner.
    config = ClientConfig(connect_timeout=60.0, health_interval=1.0, max_server_ping_delay=1.0)
    h = Harness(config)
    h.p.start(h.clock.now)
    h.open()
    assert h.p.next_deadline() == h.clock.now + 60.0
    h.server(Reply(1, ConnectResult(client="c1", ping=1)))
    assert h.p.next_deadline() == h.clock.now + 1.0
    h.clock.advance(1.0)
    sampled = h.tick_to(h.clock.now)
    assert any(isinstance(e, HealthSampled) for e in sampled)
    h.tick_to(h.clock.now + 1.0)  # silence: ping 1 s + 1 s grace since the connect reply
    assert h.of(CloseTransport)[-1].reason == "no ping"
