"""Edges of a server's life that lost accepted events (found by ``make chaos``).

- A publish request that arrives while the server shuts down is answered 503 (retry), not 200:
  the clients are being closed, so a publication accepted then could reach none of them.
- A recovery backlog too big for one reply is answered "not recovered" (the client resyncs)
  instead of a reply larger than clients accept (which made them reconnect forever).
- An engine that lost a channel's stream tells its subscribers (2500) even when the new stream
  has no publication yet.
"""

from __future__ import annotations

import asyncio
import json

import attrs
import pytest
from reliability_helpers import wait_until
from server_helpers import API_KEY, anomaly_event, config, token

from reactive_aiops.protocol.server import ServerConnection
from reactive_aiops.server import serve_embedded
from reactive_aiops.server.core import ServerCore, limits_from
from reactive_aiops.server.health import Phase

T0 = 1_000_000.0
HANDSHAKE = (b"GET /connection/websocket HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
             b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
             b"Sec-WebSocket-Version: 13\r\n\r\n")


@pytest.mark.asyncio
async def test_a_publish_that_arrives_during_shutdown_is_answered_503() -> None:
    async with serve_embedded(config(close_timeout=2.0)) as server:
        # A WebSocket client that never answers the closing handshake keeps the server in its
        # shutdown for close_timeout: the window in which the publish below arrives.
        ws_reader, ws_writer = await asyncio.open_connection("127.0.0.1", server.port)
        ws_writer.write(HANDSHAKE)
        assert b"101" in await ws_reader.readline()
        body = json.dumps({"channel": "anomalies", "data": anomaly_event("late")}).encode()
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(b"POST /api/publish HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     + f"X-API-Key: {API_KEY}\r\nContent-Length: {len(body)}\r\n\r\n".encode())
        await writer.drain()
        stopping = asyncio.create_task(server.stop())
        await wait_until(lambda: server.phase is Phase.STOPPING, what="shutdown under way")
        writer.write(body)
        status = await asyncio.wait_for(reader.readline(), 5)
        assert status.startswith(b"HTTP/1.1 503")
        assert "late" not in {a for a in server.core.state.anomalies}
        await stopping
        writer.close()
        ws_writer.close()


def _connected(core: ServerCore, **limits: int) -> ServerConnection:
    conn = ServerConnection(core, attrs.evolve(limits_from(core.config), **limits), "c1", T0)
    conn.receive_text(json.dumps({"id": 1, "connect": {"token": token(now=T0)}}), T0)
    conn.data_to_send()
    return conn


def test_a_backlog_too_big_for_one_reply_is_not_recovered_but_resynced() -> None:
    core = ServerCore(config(), clock=lambda: T0)
    core.publish("anomalies", anomaly_event("a0"))
    epoch = core.broker.position("anomalies")[1]
    for i in range(1, 40):
        core.publish("anomalies", anomaly_event(f"a{i}"))
    small = _connected(core, max_recovery_size=4096)
    small.receive_text(json.dumps({"id": 2, "subscribe": {
        "channel": "anomalies", "recover": True, "offset": 1, "epoch": epoch}}), T0)
    (reply,) = [json.loads(f) for f in small.data_to_send()]
    result = reply["subscribe"]
    assert result.get("recovered", False) is False
    assert result["offset"] == 40
    assert "publications" not in result
    # within the limit the same subscribe recovers every missed publication
    roomy = _connected(core)
    roomy.receive_text(json.dumps({"id": 2, "subscribe": {
        "channel": "anomalies", "recover": True, "offset": 1, "epoch": epoch}}), T0)
    (reply,) = [json.loads(f) for f in roomy.data_to_send()]
    assert reply["subscribe"]["recovered"] is True
    assert [p["offset"] for p in reply["subscribe"]["publications"]] == list(range(2, 41))


def test_a_lost_stream_unsubscribes_with_2500() -> None:
    core = ServerCore(config(), clock=lambda: T0)
    conn = _connected(core)
    conn.receive_text(json.dumps({"id": 2, "subscribe": {"channel": "anomalies"}}), T0)
    conn.data_to_send()
    conn.position_lost("health")  # not subscribed: nothing
    assert conn.data_to_send() == []
    conn.position_lost("anomalies")
    (push,) = [json.loads(f) for f in conn.data_to_send()]
    assert push["push"]["channel"] == "anomalies"
    assert push["push"]["unsubscribe"]["code"] == 2500
    assert "anomalies" not in conn.positions
    assert core.broker.subscriber_count("anomalies") == 0
