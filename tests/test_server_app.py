"""The asyncio edge on real sockets: security cases, limits, shutdown, restart, HTTP publish."""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import jwt
import pytest
from centrifuge import Client, SubscriptionEventHandler
from server_helpers import (
    API_KEY,
    SECRET,
    RawClient,
    anomaly_event,
    config,
    detector_event,
    token,
)
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from reactive_aiops.server.app import EventServer, serve_embedded
from reactive_aiops.server.config import SimulationConfig


async def http_post(server: EventServer, body: bytes, headers: dict[str, str] | None = None,
                    method: str = "POST", path: str = "/api/publish") -> tuple[int, Any]:
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    head = [f"{method} {path} HTTP/1.1", "Host: x", f"Content-Length: {len(body)}"]
    head += [f"{k}: {v}" for k, v in (headers or {}).items()]
    writer.write(("\r\n".join(head) + "\r\n\r\n").encode() + body)
    await writer.drain()
    raw = await asyncio.wait_for(reader.read(), 5)
    writer.close()
    status_line, _, rest = raw.partition(b"\r\n")
    payload = rest.partition(b"\r\n\r\n")[2]
    return int(status_line.split()[1]), json.loads(payload)


@pytest.fixture
def no_error_logs(caplog: pytest.LogCaptureFixture) -> Any:
    caplog.set_level(logging.INFO)
    yield caplog
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert errors == [], [r.getMessage() for r in errors]


@pytest.mark.asyncio
@pytest.mark.usefixtures("no_error_logs")
async def test_wrong_origin_is_refused_at_the_handshake() -> None:
    async with serve_embedded(config(allowed_origins=frozenset({"https://ops.example"}),
                                     allow_missing_origin=False)) as server:
        with pytest.raises(InvalidStatus) as info:
            await connect(server.url, origin="https://evil.example")  # type: ignore[arg-type]
        assert info.value.response.status_code == 403
        with pytest.raises(InvalidStatus):
            await connect(server.url)  # no Origin and missing ones are not allowed here
        client = await RawClient.open(server.url, origin="https://ops.example")
        assert "connect" in await client.connect(token())
        await client.close()


@pytest.mark.asyncio
@pytest.mark.usefixtures("no_error_logs")
@pytest.mark.parametrize("bad", [
    "",
    jwt.encode({"sub": "a", "exp": 4e9}, "forged-secret-0123456789abcdef-0123", "HS256"),
    jwt.encode({"sub": "a", "exp": 4e9}, None, algorithm="none"),
])
async def test_bad_tokens_are_closed_3500(bad: str) -> None:
    async with serve_embedded(config()) as server:
        client = await RawClient.open(server.url)
        await client.send("connect", {"token": bad})
        assert await client.closed_code() == 3500
        assert client.ws.close_reason == "invalid token"


@pytest.mark.asyncio
async def test_expired_token_is_told_and_the_sdk_refreshes_it() -> None:
    async with serve_embedded(config()) as server:
        raw = await RawClient.open(server.url)
        reply = await raw.connect(token(ttl=-10))
        assert reply["error"] == {"code": 109, "message": "token expired"}
        await raw.close()

        tokens = iter([token(ttl=-10), token()])
        fetched: list[str] = []

        async def get_token() -> str:
            fetched.append("x")
            return next(tokens)

        client = Client(server.url, get_token=get_token, proxy=None, min_reconnect_delay=0.01,
                        max_reconnect_delay=0.05)
        await client.connect()
        await client.ready(timeout=5)
        assert len(fetched) == 2
        await client.disconnect()


@pytest.mark.asyncio
@pytest.mark.usefixtures("no_error_logs")
async def test_no_event_from_a_forbidden_channel_reaches_the_client() -> None:
    async with serve_embedded(config()) as server:
        client = await RawClient.open(server.url)
        await client.connect(token(channels=["health", "detectors:*"], roles=()))
        denied = await client.call("subscribe", {"channel": "anomalies"})
        assert denied["error"] == {"code": 103, "message": "permission denied"}
        assert "subscribe" in await client.call("subscribe", {"channel": "detectors:det-x"})
        server.publish("anomalies", anomaly_event())
        server.publish("detectors:det-x", detector_event("det-x"))
        push = await client.next_push()
        assert push["channel"] == "detectors:det-x"
        rejected = await client.call("rpc", {"method": "detector.pause", "data": {
            "command_id": "c1", "detector_id": "det-x"}})
        assert rejected["error"]["code"] == 403
        assert client.pushes == []
        assert server.core.state.detectors["det-x"].status == "active"
        await client.close()


@pytest.mark.asyncio
@pytest.mark.usefixtures("no_error_logs")
async def test_never_authenticating_is_closed_stale() -> None:
    async with serve_embedded(config(auth_timeout=0.2)) as server:
        client = await RawClient.open(server.url)
        assert await client.closed_code(within=5) == 3502


@pytest.mark.asyncio
@pytest.mark.usefixtures("no_error_logs")
async def test_oversized_message_is_closed_1009() -> None:
    async with serve_embedded(config(max_message_size=4096)) as server:
        client = await RawClient.open(server.url)
        await client.connect(token())
        await client.ws.send("x" * 5000)
        assert await client.closed_code() == 1009


@pytest.mark.asyncio
@pytest.mark.usefixtures("no_error_logs")
async def test_slow_consumer_is_disconnected_with_a_reconnectable_code() -> None:
    async with serve_embedded(config(send_queue_size=50, close_timeout=10)) as server:
        slow = await RawClient.open(server.url, max_queue=1)
        fast = await RawClient.open(server.url)
        for c in (slow, fast):
            await c.connect(token())
            await c.call("subscribe", {"channel": "anomalies"})
        big = anomaly_event()
        big["data"]["metric"] = "m" * 2000
        got = 0
        for i in range(5000):
            server.publish("anomalies", big)
            if i % 20 == 0:
                await asyncio.sleep(0)  # let the fast client read
                while fast.pushes or got < i - 100:
                    await fast.next_push()
                    got += 1
            if server.stats.slow_disconnects:
                break
        assert server.stats.slow_disconnects == 1
        assert await slow.closed_code(within=20) == 3008
        assert slow.ws.close_reason == "slow"
        assert server.core.broker.subscriber_count("anomalies") == 1  # the fast one stays
        await fast.close()


@pytest.mark.asyncio
@pytest.mark.usefixtures("no_error_logs")
async def test_shutdown_closes_clients_with_3001() -> None:
    server = EventServer(config())
    await server.start()
    client = await RawClient.open(server.url)
    await client.connect(token())
    await server.stop()
    assert await client.closed_code() == 3001
    assert client.ws.close_reason == "shutdown"


@pytest.mark.asyncio
async def test_restart_with_or_without_history() -> None:
    async with serve_embedded(config()) as server:
        server.publish("anomalies", anomaly_event("a1"))
        top, epoch = server.core.broker.position("anomalies")
        server.publish("anomalies", anomaly_event("a2"))
        await server.restart(keep_history=True)
        client = await RawClient.open(server.url)
        await client.connect(token())
        reply = await client.call("subscribe", {"channel": "anomalies", "recover": True,
                                                "offset": top, "epoch": epoch})
        assert reply["subscribe"]["recovered"]
        assert [p["offset"] for p in reply["subscribe"]["publications"]] == [2]
        await client.close()

        await server.restart(keep_history=False)
        client = await RawClient.open(server.url)
        await client.connect(token())
        reply = await client.call("subscribe", {"channel": "anomalies", "recover": True,
                                                "offset": 2, "epoch": epoch})
        result = reply["subscribe"]
        assert not result.get("recovered")
        assert result["epoch"] != epoch
        assert "publications" not in result
        await client.close()


@pytest.mark.asyncio
@pytest.mark.usefixtures("no_error_logs")
async def test_http_publish_api() -> None:
    async with serve_embedded(config()) as server:
        client = await RawClient.open(server.url)
        await client.connect(token())
        await client.call("subscribe", {"channel": "anomalies"})
        body = json.dumps({"channel": "anomalies", "data": anomaly_event("h1")}).encode()
        auth = {"Authorization": f"apikey {API_KEY}"}
        assert (await http_post(server, body))[0] == 401
        assert (await http_post(server, body, {"X-API-Key": "wrong"}))[0] == 401
        status, reply = await http_post(server, body, auth)
        assert status == 200
        assert reply["result"]["offset"] == 1
        push = await client.next_push()
        assert push["pub"]["data"]["data"]["id"] == "h1"
        assert server.core.state.anomalies["h1"].severity == "high"

        bad_event = json.dumps({"channel": "anomalies", "data": {"type": "anomaly.upserted"}})
        assert (await http_post(server, bad_event.encode(), auth))[0] == 400
        wrong_channel = json.dumps({"channel": "health", "data": anomaly_event()}).encode()
        assert (await http_post(server, wrong_channel, auth))[0] == 400
        unknown = json.dumps({"channel": "nope", "data": anomaly_event()}).encode()
        assert (await http_post(server, unknown, auth))[0] == 404
        assert (await http_post(server, b"{not json", {"X-API-Key": API_KEY}))[0] == 400
        assert (await http_post(server, b"x" * 70_000, auth))[0] == 413
        assert (await http_post(server, b"{}", auth, path="/other"))[0] == 404
        assert (await http_post(server, b"{}", auth, method="PUT"))[0] == 405
        assert client.pushes == []
        await client.close()


@pytest.mark.asyncio
async def test_embedded_simulation_publishes_live_events() -> None:
    sim = SimulationConfig(seed=3, samples_per_second=2000, detectors=3,
                           incident_probability=0.05, health_interval=0.05)
    async with serve_embedded(config(simulation=sim)) as server:
        seen: list[str] = []
        done = asyncio.Event()

        class Handler(SubscriptionEventHandler):  # type: ignore[misc]
            async def on_publication(self, ctx: Any) -> None:
                seen.append(ctx.pub.data["type"])
                if {"anomaly.upserted", "health.updated"} <= set(seen):
                    done.set()

        client = Client(server.url, token=token(), proxy=None)
        for channel in ("anomalies", "health"):
            await client.new_subscription(channel, events=Handler()).subscribe()
        await client.connect()
        await asyncio.wait_for(done.wait(), 10)
        assert server.core.state.detectors["det-0"].status == "active"
        await client.disconnect()


def test_config_refuses_a_short_secret() -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        config(token_secret="short")
    assert len(SECRET) >= 32


@pytest.mark.asyncio
async def test_recovery_races_live_publications_without_loss_or_duplicates() -> None:
    live = 200
    async with serve_embedded(config(history_size=10_000)) as server:
        for i in range(20):
            server.publish("anomalies", anomaly_event(f"a{i}"))
        epoch = server.core.broker.position("anomalies")[1]

        async def publisher() -> None:
            for n in range(live):
                server.publish("anomalies", anomaly_event(f"live{n}"))
                await asyncio.sleep(0)  # let subscribes interleave with publications

        async def subscriber(start: int) -> list[int]:
            client = await RawClient.open(server.url)
            await client.connect(token())
            reply = await client.call("subscribe", {"channel": "anomalies", "recover": True,
                                                    "offset": start, "epoch": epoch})
            result = reply["subscribe"]
            assert result["recovered"]
            offsets = [p["offset"] for p in result.get("publications", [])]
            offsets += [p["pub"]["offset"] for p in client.pushes]
            client.pushes.clear()
            while not offsets or offsets[-1] < 20 + live:
                offsets.append((await client.next_push())["pub"]["offset"])
            await client.close()
            return offsets

        starts = (0, 5, 19, 20)
        results = await asyncio.gather(publisher(), *(subscriber(s) for s in starts))
        for start, offsets in zip(starts, results[1:], strict=True):
            assert offsets == list(range(start + 1, 20 + live + 1))


@pytest.mark.asyncio
@pytest.mark.usefixtures("no_error_logs")
@pytest.mark.parametrize("garbage", [
    b"GARBAGE\r\n\r\n",
    b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + bytes(40),  # a TLS ClientHello
    b"GET /connection/websocket HTTP/1.1\r\nHost: x\r\n\r\n",  # not an Upgrade
    b"GET /elsewhere HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n\r\n",
    b"POST /api/publish HTTP/1.1\r\nContent-Length: 999999999\r\n\r\n",
])
async def test_non_websocket_garbage_on_the_port_is_refused_quietly(garbage: bytes) -> None:
    # open_timeout bounds a request that never completes (the TLS hello has no line end)
    async with serve_embedded(config(open_timeout=0.5)) as server:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(garbage)
        await writer.drain()
        answer = await asyncio.wait_for(reader.read(), 15)
        writer.close()
        assert answer == b"" or answer.startswith(b"HTTP/1.1 4")
        assert server.stats.internal_errors == 0
