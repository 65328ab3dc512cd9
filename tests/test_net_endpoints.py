"""WebSocketManager endpoints: failover between several URLs, and TLS (wss://) verification."""

from __future__ import annotations

import asyncio
import ssl

import pytest
from client_helpers import ScriptedServer
from reliability_helpers import (
    anomaly_payload,
    envelope,
    fast_config,
    server_config,
    token,
    wait_until,
)
from tls_helpers import Pki, make_pki

from reactive_aiops.aiops.live_store import create_live_store
from reactive_aiops.core.connection import Connecting, ConnectionLost, Status
from reactive_aiops.net import WebSocketManager
from reactive_aiops.net.bridge import AIOPS_CHANNELS, StoreBridge
from reactive_aiops.net.endpoints import Endpoints
from reactive_aiops.server.app import serve_embedded

# -- the endpoint list (pure) -----------------------------------------------------------------


def test_a_failed_attempt_moves_on_at_once_until_every_endpoint_failed_in_the_round() -> None:
    ends = Endpoints(["ws://a", "ws://b", "ws://c"])
    assert ends.current == "ws://a"
    assert ends.failed() is True  # b untried: at once
    assert ends.current == "ws://b"
    assert ends.failed() is True
    assert ends.failed() is False  # back at a, every one failed: back off
    assert ends.current == "ws://a"
    assert ends.failed() is False  # still the same round
    ends.connected()  # a new round
    assert ends.failed() is True


def test_one_endpoint_always_backs_off_and_going_away_moves_on() -> None:
    one = Endpoints("ws://a")
    assert one.failed() is False
    assert one.current == "ws://a"
    two = Endpoints(("ws://a", "ws://b"))
    two.closed(1006)  # a cut: stay, the node may be fine
    assert two.current == "ws://a"
    two.closed(3001)  # "shutdown": the node goes away
    assert two.current == "ws://b"


def test_endpoint_arguments_are_checked() -> None:
    with pytest.raises(ValueError, match="endpoint"):
        Endpoints([])
    with pytest.raises(ValueError, match="endpoint"):
        Endpoints(["ws://a", ""])
    with pytest.raises(TypeError, match="not both"):
        Endpoints("wss://a", ca_file="x.pem", ssl_context=ssl.create_default_context())
    with pytest.raises(FileNotFoundError):
        Endpoints("wss://a", ca_file="/nonexistent/ca.pem")
    ends = Endpoints(["ws://a", "wss://b"])
    assert ends.tls_for("ws://a") is None
    default = ends.tls_for("wss://b")
    assert default is not None
    assert default.verify_mode is ssl.CERT_REQUIRED
    assert default.check_hostname


# -- failover between two real servers --------------------------------------------------------


@pytest.mark.asyncio
async def test_a_dead_first_endpoint_costs_one_failed_attempt_and_no_backoff() -> None:
    async with serve_embedded(server_config()) as server:
        dead = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
        port = dead.sockets[0].getsockname()[1]
        dead.close()
        await dead.wait_closed()  # nothing listens there now: connection refused
        manager = WebSocketManager(
            [f"ws://127.0.0.1:{port}/connection/websocket", server.url],
            token=token(),
            config=fast_config(),
        )
        events: list[object] = []
        manager.events.subscribe(events.append)
        try:
            async with asyncio.timeout(10):
                await manager.connect()
            assert manager.url == server.url
            (lost,) = [e for e in events if isinstance(e, ConnectionLost)]
            assert lost.next_retry_at == lost.at  # failed over at once, no backoff delay
            assert [e.attempt for e in events if isinstance(e, Connecting)] == [0, 1]
        finally:
            await manager.close()


@pytest.mark.asyncio
async def test_the_client_fails_over_when_its_node_shuts_down_and_resyncs_once() -> None:
    # Two memory-engine servers have their own epochs: recovery cannot succeed across them, so
    # each channel resyncs once and reloads from the new node (with a shared engine the same
    # move recovers; the cross-node exactly-once test lives with the Redis engine).
    async with serve_embedded(server_config()) as a, serve_embedded(server_config()) as b:
        manager = WebSocketManager([a.url, b.url], token=token(), config=fast_config())
        bridge = StoreBridge(manager)
        store = create_live_store(middleware=[bridge.middleware])
        await bridge.start()
        try:
            async with asyncio.timeout(10):
                await manager.connect()
                await bridge.wait_loaded()
            assert manager.url == a.url
            a.publish("anomalies", envelope("anomaly.upserted", "ea", anomaly_payload("on-a")))
            await wait_until(lambda: "on-a" in store.state.anomalies)
            b.publish("anomalies", envelope("anomaly.upserted", "eb", anomaly_payload("on-b")))
            await a.stop()  # 3001 shutdown: the client moves to b
            await wait_until(
                lambda: manager.url == b.url and manager.state.status is Status.CONNECTED
            )
            await wait_until(lambda: all(
                store.state.connection.resyncs.get(c) == 1 for c in AIOPS_CHANNELS))
            async with asyncio.timeout(10):
                await bridge.wait_loaded()
            assert "on-b" in store.state.anomalies  # b's state, loaded after the move
            b.publish("anomalies", envelope("anomaly.upserted", "eb2", anomaly_payload("b2")))
            await wait_until(lambda: "b2" in store.state.anomalies)
            await asyncio.sleep(0.05)
            assert dict(store.state.connection.resyncs) == {c: 1 for c in AIOPS_CHANNELS}
            assert bridge.reload_errors == []
        finally:
            await bridge.aclose()
            await manager.close()


# -- TLS ----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    """A private CA and a server certificate for 127.0.0.1, made now with the openssl CLI."""
    return make_pki(tmp_path_factory.mktemp("tls"))


def _server_tls(pki: Pki) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(pki.cert, pki.key)
    return context


@pytest.mark.asyncio
async def test_wss_with_the_private_ca_connects_and_without_it_is_refused(pki: Pki) -> None:
    server = ScriptedServer(tls=_server_tls(pki))
    await server.start()
    try:
        assert server.url.startswith("wss://127.0.0.1:")
        trusted = WebSocketManager(server.url, config=fast_config(), ca_file=str(pki.ca))
        try:
            async with asyncio.timeout(10):
                await trusted.connect()
            assert await trusted.rpc("echo", {"x": 1}) == {"method": "echo", "echo": {"x": 1}}
        finally:
            await trusted.close()

        custom = WebSocketManager(
            server.url, config=fast_config(), ssl_context=pki.client_context()
        )
        try:
            async with asyncio.timeout(10):
                await custom.connect()
        finally:
            await custom.close()

        # default policy: the system CAs do not know this one, so the handshake never completes
        untrusted = WebSocketManager(server.url, config=fast_config())
        task = asyncio.ensure_future(untrusted.connect())
        try:
            await wait_until(lambda: untrusted.state.health.reconnects >= 2, what="2 failures")
            assert untrusted.state.status is not Status.CONNECTED
            assert "certificate verify failed" in untrusted.state.reason.lower()
            assert server.connects == 2  # the two trusting clients only
        finally:
            await untrusted.close()
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
    finally:
        await server.stop()


@pytest.mark.asyncio
async def test_the_real_server_over_wss_loads_and_streams_to_a_client_trusting_its_ca(
    pki: Pki,
) -> None:
    config = server_config(tls_cert=str(pki.cert), tls_key=str(pki.key))
    async with serve_embedded(config) as server:
        assert server.url.startswith("wss://")
        server.publish("anomalies", envelope("anomaly.upserted", "e0", anomaly_payload("a0")))
        manager = WebSocketManager(
            server.url, token=token(), config=fast_config(), ca_file=str(pki.ca)
        )
        bridge = StoreBridge(manager)
        store = create_live_store(middleware=[bridge.middleware])
        await bridge.start()
        try:
            async with asyncio.timeout(10):
                await manager.connect()
                await bridge.wait_loaded()
            assert "a0" in store.state.anomalies
            server.publish("anomalies", envelope("anomaly.upserted", "e1", anomaly_payload("a1")))
            await wait_until(lambda: "a1" in store.state.anomalies)
        finally:
            await bridge.aclose()
            await manager.close()
