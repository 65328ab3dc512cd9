"""The sans-I/O connection (reactive_aiops.protocol.server): strings and ``now`` in, frames out.

Driven against the real pure core (broker, state, commands) with a manual clock; no sockets.
"""

from __future__ import annotations

import json
from typing import Any

import jwt
import pytest
from server_helpers import SECRET, anomaly_event, config, detector_event, token

from reactive_aiops.protocol.server import ServerConnection, State
from reactive_aiops.server.core import ServerCore, limits_from

T0 = 1_000_000.0


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now


class Harness:
    def __init__(self, **overrides: Any) -> None:
        self.clock = Clock()
        self.core = ServerCore(config(**overrides), clock=self.clock)
        self.conn = ServerConnection(self.core, limits_from(self.core.config), "c1", T0)
        self.next_id = 1

    def feed(self, text: str) -> list[dict[str, Any]]:
        self.conn.receive_text(text, self.clock.now)
        return self.out()

    def out(self) -> list[dict[str, Any]]:
        return [json.loads(line) for frame in self.conn.data_to_send()
                for line in frame.split("\n")]

    def cmd(self, method: str, body: dict[str, Any]) -> list[dict[str, Any]]:
        cmd_id, self.next_id = self.next_id, self.next_id + 1
        return self.feed(json.dumps({"id": cmd_id, method: body}))

    def connect(self, **kw: Any) -> dict[str, Any]:
        (reply,) = self.cmd("connect", {"token": token(now=T0, **kw)})
        return reply

    @property
    def close(self) -> tuple[int | None, str]:
        return self.conn.close_code, self.conn.close_reason


def test_connect_returns_client_ping_pong_and_ttl() -> None:
    h = Harness(ping_interval=25)
    reply = h.connect(ttl=600)
    assert reply == {"id": 1, "connect": {"client": "c1", "version": "reactive-aiops",
                                          "expires": True, "ttl": 600, "ping": 25, "pong": True}}
    assert h.conn.state is State.CONNECTED


@pytest.mark.parametrize("first", [
    '{"id":1,"subscribe":{"channel":"health"}}', "{}", '{"id":1,"rpc":{"method":"x"}}'])
def test_anything_before_connect_closes_3501(first: str) -> None:
    h = Harness()
    assert h.feed(first) == []
    assert h.close[0] == 3501


def test_second_connect_closes_3501() -> None:
    h = Harness()
    h.connect()
    h.cmd("connect", {"token": token(now=T0)})
    assert h.close[0] == 3501


def test_never_authenticating_is_closed_stale_after_the_timeout() -> None:
    h = Harness(auth_timeout=10)
    assert h.conn.next_deadline() == T0 + 10
    h.conn.tick(T0 + 9.9)
    assert h.close[0] is None
    h.conn.tick(T0 + 10)
    assert h.close == (3502, "stale")


@pytest.mark.parametrize("bad", [
    "", "not-a-jwt",
    jwt.encode({"sub": "a", "exp": T0 + 60}, "another-secret-0123456789abcdef-xyz", "HS256"),
    jwt.encode({"sub": "a", "exp": T0 + 60}, None, algorithm="none"),
    jwt.encode({"sub": "a", "exp": T0 + 60}, SECRET, "HS512"),
    jwt.encode({"exp": T0 + 60}, SECRET, "HS256"),  # no sub
    jwt.encode({"sub": "a"}, SECRET, "HS256"),  # no exp
    jwt.encode({"sub": "a", "exp": T0 + 60, "channels": "health"}, SECRET, "HS256"),
])
def test_invalid_tokens_close_3500_terminal(bad: str) -> None:
    h = Harness()
    assert h.cmd("connect", {"token": bad}) == []
    assert h.close == (3500, "invalid token")


def test_expired_token_is_told_109_and_the_socket_refuses_more() -> None:
    h = Harness()
    (reply,) = h.cmd("connect", {"token": token(now=T0 - 7200)})
    assert reply == {"id": 1, "error": {"code": 109, "message": "token expired"}}
    assert h.close[0] is None  # told, not closed: the SDK fetches a token and reconnects
    h.cmd("connect", {"token": token(now=T0)})
    assert h.close[0] == 3501


def test_pings_expect_pongs_and_a_missing_pong_closes_3012() -> None:
    h = Harness(ping_interval=25, pong_timeout=10)
    h.connect()
    assert h.conn.next_deadline() == T0 + 25
    h.conn.tick(T0 + 25)
    assert h.out() == [{}]
    h.feed("{}")  # pong
    h.conn.tick(T0 + 50)
    assert h.out() == [{}]
    h.conn.tick(T0 + 59.9)
    assert h.close[0] is None
    h.conn.tick(T0 + 60)
    assert h.close == (3012, "no pong")


def test_unexpected_pong_closes_3501() -> None:
    h = Harness()
    h.connect()
    h.feed("{}")
    assert h.close[0] == 3501


def test_refresh_extends_the_connection_and_expiry_closes_3005() -> None:
    h = Harness(ping_interval=1000)
    h.connect(ttl=60)
    h.clock.now = T0 + 30
    (reply,) = h.cmd("refresh", {"token": token(now=T0 + 30, ttl=60)})
    assert reply["refresh"] == {"client": "c1", "expires": True, "ttl": 60}
    h.conn.tick(T0 + 90 + 24)
    assert h.close[0] is None
    h.conn.tick(T0 + 90 + 25)
    assert h.close == (3005, "connection expired")


def test_refresh_with_expired_token_is_told_109_and_another_user_closes_3500() -> None:
    h = Harness()
    h.connect()
    (reply,) = h.cmd("refresh", {"token": token(now=T0 - 7200)})
    assert reply["error"]["code"] == 109
    h.cmd("refresh", {"token": token("mallory", now=T0)})
    assert h.close == (3500, "invalid token")


def test_refresh_with_narrower_channels_unsubscribes_what_is_no_longer_allowed() -> None:
    h = Harness()
    h.connect()
    h.cmd("subscribe", {"channel": "health"})
    h.cmd("subscribe", {"channel": "anomalies"})
    out = h.cmd("refresh", {"token": token(now=T0, channels=["health"])})
    assert out[0] == {"push": {"channel": "anomalies",
                               "unsubscribe": {"code": 2000, "reason": "permission denied"}}}
    assert set(h.conn.positions) == {"health"}


def test_subscribe_errors() -> None:
    h = Harness(max_channels_per_connection=2)
    h.connect(channels=["health", "detectors*"])
    assert h.cmd("subscribe", {"channel": "nope"})[0]["error"]["code"] == 102
    assert h.cmd("subscribe", {"channel": "detectors:bad id"})[0]["error"]["code"] == 102
    assert h.cmd("subscribe", {"channel": "anomalies"})[0]["error"]["code"] == 103
    assert "subscribe" in h.cmd("subscribe", {"channel": "health"})[0]
    assert h.cmd("subscribe", {"channel": "health"})[0]["error"]["code"] == 105
    assert "subscribe" in h.cmd("subscribe", {"channel": "detectors:det-1"})[0]
    assert h.cmd("subscribe", {"channel": "detectors"})[0]["error"]["code"] == 106
    h.cmd("subscribe", {"channel": ""})
    assert h.close[0] == 3501


def test_forbidden_channel_never_delivers() -> None:
    h = Harness()
    h.connect(channels=["health"])
    h.cmd("subscribe", {"channel": "anomalies"})
    h.core.publish("anomalies", anomaly_event())
    assert h.out() == []


def test_subscribe_result_is_recoverable_and_positioned() -> None:
    h = Harness()
    h.core.publish("anomalies", anomaly_event())
    h.connect()
    (reply,) = h.cmd("subscribe", {"channel": "anomalies"})
    epoch = h.core.broker.position("anomalies")[1]
    assert reply["subscribe"] == {"recoverable": True, "epoch": epoch, "offset": 1,
                                  "positioned": True}


def test_recovery_then_live_publications_in_order() -> None:
    h = Harness()
    for i in range(4):
        h.core.publish("anomalies", anomaly_event(f"a{i}", event_id=f"e{i}"))
    h.connect()
    epoch = h.core.broker.position("anomalies")[1]
    (reply,) = h.cmd("subscribe", {"channel": "anomalies", "recover": True, "offset": 2,
                                   "epoch": epoch})
    result = reply["subscribe"]
    assert result["recovered"]
    assert result["was_recovering"]
    assert result["offset"] == 2
    assert [p["offset"] for p in result["publications"]] == [3, 4]
    h.core.publish("anomalies", anomaly_event("a5"))
    (push,) = h.out()
    assert push["push"]["pub"]["offset"] == 5
    assert push["push"]["pub"]["data"]["data"]["id"] == "a5"


def test_unrecovered_with_reject_flag_is_error_112() -> None:
    h = Harness()
    h.connect()
    (reply,) = h.cmd("subscribe", {"channel": "anomalies", "recover": True, "offset": 5,
                                   "epoch": "gone", "flag": 2})
    assert reply["error"]["code"] == 112
    assert h.core.broker.subscriber_count("anomalies") == 0


def test_duplicates_are_dropped_and_a_gap_asks_the_client_to_recover() -> None:
    h = Harness()
    h.connect()
    h.cmd("subscribe", {"channel": "anomalies"})
    pub = h.core.publish("anomalies", anomaly_event())
    h.out()
    epoch = h.core.broker.position("anomalies")[1]
    h.conn.deliver(pub, epoch)  # the same publication again
    assert h.out() == []
    pub.offset = 3  # a publication after a gap
    h.conn.deliver(pub, epoch)
    assert h.out() == [{"push": {"channel": "anomalies", "unsubscribe": {
        "code": 2500, "reason": "insufficient state"}}}]
    assert "anomalies" not in h.conn.positions
    assert h.core.broker.subscriber_count("anomalies") == 0


def test_unsubscribe_stops_delivery() -> None:
    h = Harness()
    h.connect()
    h.cmd("subscribe", {"channel": "health"})
    assert h.cmd("unsubscribe", {"channel": "health"}) == [{"id": 3, "unsubscribe": {}}]
    assert h.cmd("unsubscribe", {"channel": "health"}) == [{"id": 4, "unsubscribe": {}}]
    assert h.core.broker.subscriber_count("health") == 0


def test_rpc_confirms_and_rejects() -> None:
    h = Harness()
    h.core.publish("detectors", detector_event("d1"))
    h.connect()
    (ok,) = h.cmd("rpc", {"method": "detector.pause",
                          "data": {"command_id": "k1", "detector_id": "d1"}})
    assert ok["rpc"]["data"]["entity"]["status"] == "paused"
    (missing,) = h.cmd("rpc", {"method": "nope", "data": {}})
    assert missing["error"]["code"] == 104


def test_command_without_operator_role_is_403_and_publishes_nothing() -> None:
    h = Harness()
    h.core.publish("detectors", detector_event("d1"))
    h.connect(roles=())
    h.cmd("subscribe", {"channel": "detectors"})
    (reply,) = h.cmd("rpc", {"method": "detector.pause",
                             "data": {"command_id": "k1", "detector_id": "d1"}})
    assert reply["error"] == {"code": 403, "message": "commands need the 'operator' role"}
    assert h.out() == []
    assert h.core.state.detectors["d1"].status == "active"


def test_rate_limit_rejects_then_closes_a_flooding_client() -> None:
    h = Harness(rate_limit_per_second=1, rate_limit_burst=2)
    h.connect()
    assert "unsubscribe" in h.cmd("unsubscribe", {"channel": "x"})[0]
    assert "unsubscribe" in h.cmd("unsubscribe", {"channel": "x"})[0]
    assert h.cmd("unsubscribe", {"channel": "x"})[0]["error"] == {
        "code": 111, "message": "too many requests", "temporary": True}
    assert h.cmd("rpc", {"method": "x"})[0]["error"]["code"] == 429
    h.clock.now += 1  # one token back
    assert "unsubscribe" in h.cmd("unsubscribe", {"channel": "x"})[0]
    for _ in range(201):
        h.cmd("unsubscribe", {"channel": "x"})
    assert h.close == (3013, "too many requests")


def test_slow_consumer_is_closed_3008_and_its_buffer_dropped() -> None:
    h = Harness(send_queue_size=10)
    h.connect()
    h.cmd("subscribe", {"channel": "health"})
    woken: list[int | None] = []
    h.conn.on_output = lambda: woken.append(h.conn.close_code)
    health = {"type": "health.updated", "v": 1, "id": "h", "ts": 0.0,
              "data": {"status": "ok", "events_per_second": 1.0, "open_anomalies": 0,
                       "detectors_active": 1, "detectors_error": 0, "updated_at": 1.0}}
    for _ in range(11):
        h.core.publish("health", health)
    assert h.close == (3008, "slow")
    assert h.conn.data_to_send() == []
    assert woken[-1] == 3008
    assert h.core.broker.subscriber_count("health") == 0


def test_size_depth_binary_and_bad_json() -> None:
    h = Harness(max_message_size=1000)
    h.connect()
    h.feed("x" * 1001)
    assert h.close[0] == 1009
    h = Harness(max_nesting_depth=5)
    h.connect()
    h.feed('{"id":2,"rpc":{"method":"m","data":' + "[" * 10 + "]" * 10 + "}}")
    assert h.close[0] == 3501
    h = Harness()
    h.conn.receive_binary(b"{}", T0)
    assert h.close[0] == 3501


def test_good_commands_before_a_bad_line_are_answered_then_3501() -> None:
    h = Harness()
    h.connect()
    out = h.feed('{"id":2,"unsubscribe":{"channel":"a"}}\n{oops')
    assert out == [{"id": 2, "unsubscribe": {}}]
    assert h.close[0] == 3501


def test_connect_and_subscribe_in_one_frame_as_centrifuge_js_sends_them() -> None:
    h = Harness()
    frame = "\n".join([json.dumps({"id": 1, "connect": {"token": token(now=T0)}}),
                       json.dumps({"id": 2, "subscribe": {"channel": "health"}})])
    out = h.feed(frame)
    assert [sorted(m) for m in out] == [["connect", "id"], ["id", "subscribe"]]


def test_other_methods() -> None:
    h = Harness()
    for i in range(3):
        h.core.publish("anomalies", anomaly_event(f"a{i}"))
    h.connect()
    assert h.cmd("publish", {"channel": "anomalies", "data": {}})[0]["error"]["code"] == 103
    assert h.cmd("presence", {"channel": "anomalies"})[0]["error"]["code"] == 108
    assert h.feed('{"send":{"data":1}}') == []
    (hist,) = h.cmd("history", {"channel": "anomalies", "limit": -1,
                                "since": {"offset": 1, "epoch": ""}})
    assert [p["offset"] for p in hist["history"]["publications"]] == [2, 3]
    (pos,) = h.cmd("history", {"channel": "anomalies"})
    assert pos["history"]["offset"] == 3
    assert "publications" not in pos["history"]
    (bad,) = h.cmd("history", {"channel": "anomalies", "since": {"offset": 1, "epoch": "x"}})
    assert bad["error"]["code"] == 112
    (rev,) = h.cmd("history", {"channel": "anomalies", "limit": 1, "reverse": True})
    assert [p["offset"] for p in rev["history"]["publications"]] == [3]


def test_outgoing_messages_are_batched_into_frames() -> None:
    h = Harness()
    h.connect()
    h.cmd("subscribe", {"channel": "anomalies"})
    for i in range(3):
        h.core.publish("anomalies", anomaly_event(f"a{i}"))
    frames = h.conn.data_to_send()
    assert len(frames) == 1
    assert frames[0].count("\n") == 2


def test_closing_releases_every_subscription() -> None:
    h = Harness()
    h.connect()
    h.cmd("subscribe", {"channel": "health"})
    h.conn.connection_lost()
    assert h.core.broker.subscriber_count("health") == 0
    assert h.conn.closed


def test_reading_or_leaving_made_up_channels_leaves_no_streams_behind() -> None:
    h = Harness()
    h.connect()
    (hist,) = h.cmd("history", {"channel": "detectors:ghost", "limit": -1})
    assert hist == {"id": 2, "history": {}}
    h.cmd("subscribe", {"channel": "detectors:ghost2"})
    h.cmd("unsubscribe", {"channel": "detectors:ghost2"})
    assert h.core.broker.channel_count == 0
