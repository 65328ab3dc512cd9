"""WebSocketManager through the FaultProxy: a silent (blackholed) link is declared dead by the
heartbeat long before TCP notices, and the stream recovers losslessly afterwards."""

from __future__ import annotations

import pytest
from client_helpers import ScriptedServer, until

from reactive_aiops.core.connection import Status
from reactive_aiops.net import WebSocketManager
from reactive_aiops.protocol import BackoffPolicy, ClientCode, ClientConfig
from reactive_aiops.testing.clock import ManualClock
from reactive_aiops.testing.proxy import FaultProxy
from reactive_aiops.wire import Publication


@pytest.mark.asyncio
async def test_blackholed_link_is_declared_dead_and_recovered() -> None:
    server = ScriptedServer(ping=25)
    server.pinging = False  # the manual clock stands in for the server's ping schedule
    await server.start()
    clock = ManualClock(1000.0)
    try:
        async with FaultProxy("127.0.0.1", server.port) as proxy:
            url = f"ws://127.0.0.1:{proxy.port}/connection/websocket"
            config = ClientConfig(backoff=BackoffPolicy(initial=0.05, maximum=0.1))
            manager = WebSocketManager(
                url,
                config=config,
                clock=clock,
                rand=lambda: 0.0,
                open_timeout=0.5,
                close_timeout=30.0,  # a polite close on the dead link would hang the test
            )
            clock.add_listener(manager.poke)
            await manager.connect()
            got: list[Publication] = []
            manager.publications("anomalies").subscribe(got.append)
            await until(lambda: server.subscribed("anomalies"), "subscribed")
            await server.publish("anomalies", 1)
            await until(lambda: len(got) == 1, "live")

            proxy.blackhole()
            await server.publish("anomalies", 2)  # lost in the hole
            await server.publish("anomalies", 3)
            clock.advance(35.0)  # ping 25 + 10 s grace: dead, while TCP still looks fine
            await until(lambda: manager.state.code == ClientCode.NO_PING, "declared dead", wait=1.0)
            assert manager.state.status in (Status.RECONNECTING, Status.CONNECTING)
            proxy.restore()
            await until(lambda: manager.state.status is Status.CONNECTED, "reconnected")
            await until(lambda: len(got) == 3, "recovered")
            assert [p.offset for p in got] == [1, 2, 3]
            assert manager.state.health.resyncs == 0
            await manager.close()
    finally:
        await server.stop()
