"""Interop with the official centrifuge-python SDK (written by others, not by us)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from centrifuge import (
    Client,
    PublicationContext,
    SubscribedContext,
    SubscriptionEventHandler,
)
from server_helpers import anomaly_event, config, detector_event, token

from reactive_aiops.server.app import serve_embedded


class Recorder(SubscriptionEventHandler):  # type: ignore[misc]
    def __init__(self) -> None:
        self.pubs: list[tuple[int, Any]] = []
        self.subscribed: list[SubscribedContext] = []
        self.changed = asyncio.Event()

    async def on_publication(self, ctx: PublicationContext) -> None:
        self.pubs.append((ctx.pub.offset, ctx.pub.data))
        self.changed.set()

    async def on_subscribed(self, ctx: SubscribedContext) -> None:
        self.subscribed.append(ctx)
        self.changed.set()

    async def wait_for(self, predicate: Any, within: float = 10.0) -> None:
        async with asyncio.timeout(within):
            while not predicate():
                self.changed.clear()
                await self.changed.wait()


async def subscribe_recorded(client: Client, channel: str = "anomalies") -> Recorder:
    """Connect the official SDK's ``client`` and subscribe it to ``channel``; the recorder of
    that subscription, once the server confirmed it."""
    rec = Recorder()
    sub = client.new_subscription(channel, events=rec)
    await client.connect()
    await sub.subscribe()
    await rec.wait_for(lambda: len(rec.subscribed) == 1)
    return rec


@pytest.mark.asyncio
async def test_sdk_connects_subscribes_recovers_and_calls_rpc() -> None:
    async with serve_embedded(config()) as server:
        client = Client(server.url, token=token(), proxy=None, max_reconnect_delay=0.5)
        rec = await subscribe_recorded(client)
        assert rec.subscribed[0].recoverable
        server.publish("anomalies", anomaly_event("an-1", event_id="e1"))
        await rec.wait_for(lambda: len(rec.pubs) == 1)
        assert rec.pubs[0][0] == 1
        assert rec.pubs[0][1]["data"]["id"] == "an-1"

        # Server restarts keeping history; two publications happen while the client is away.
        await server.stop()
        server.publish("anomalies", anomaly_event("an-2", event_id="e2"))
        server.publish("anomalies", anomaly_event("an-3", event_id="e3"))
        await server.start()
        await rec.wait_for(lambda: len(rec.subscribed) == 2 and len(rec.pubs) == 3)
        assert rec.subscribed[1].was_recovering
        assert rec.subscribed[1].recovered
        assert [offset for offset, _ in rec.pubs] == [1, 2, 3]

        server.publish("detectors", detector_event("det-x"))
        result = await client.rpc("detector.pause",
                                  {"command_id": "c-1", "detector_id": "det-x"})
        assert result.data["command_id"] == "c-1"
        assert result.data["entity"]["status"] == "paused"
        assert result.data["entity"]["version"] == 2  # one server-side change
        await client.disconnect()


@pytest.mark.asyncio
async def test_sdk_answers_pings_and_refreshes_its_token() -> None:
    async with serve_embedded(config(ping_interval=1, pong_timeout=5)) as server:
        fetched: list[int] = []

        async def get_token() -> str:
            fetched.append(1)
            return token(ttl=1.5 if len(fetched) == 1 else 3600)

        client = Client(server.url, get_token=get_token, proxy=None)
        await client.connect()
        await client.ready(timeout=5)
        (conn,) = server.connections
        for _ in range(200):  # up to 10 s; the server's counters have no event to await
            if conn.pongs_received and conn.refreshes:
                break
            await asyncio.sleep(0.05)
        assert conn.pongs_received >= 1
        assert conn.refreshes >= 1
        assert not conn.closed
        await client.disconnect()


@pytest.mark.asyncio
async def test_sdk_is_told_unrecovered_after_a_restart_that_lost_history() -> None:
    async with serve_embedded(config()) as server:
        client = Client(server.url, token=token(), proxy=None, max_reconnect_delay=0.5)
        rec = await subscribe_recorded(client)
        server.publish("anomalies", anomaly_event("an-1"))
        await rec.wait_for(lambda: len(rec.pubs) == 1)
        await server.restart(keep_history=False)
        await rec.wait_for(lambda: len(rec.subscribed) == 2)
        again = rec.subscribed[1]
        assert again.was_recovering
        assert not again.recovered  # new epoch: the app must reload its state
        server.publish("anomalies", anomaly_event("an-2"))
        await rec.wait_for(lambda: len(rec.pubs) == 2)
        assert rec.pubs[1][0] == 1  # offsets start again in the new epoch
        await client.disconnect()
