"""The output pump: one frame per connection per loop callback; backpressure falls back to the
writer task; moved deadlines re-arm the writer."""

from __future__ import annotations

import asyncio

import pytest
from server_helpers import RawClient, anomaly_event, config, token

from reactive_aiops.server.app import serve_embedded


@pytest.mark.asyncio
async def test_publications_of_one_callback_share_one_frame() -> None:
    async with serve_embedded(config()) as server:
        client = await RawClient.open(server.url)
        await client.connect(token())
        await client.call("subscribe", {"channel": "anomalies"})
        for i in range(3):
            server.publish("anomalies", anomaly_event(f"a{i}"))
        frame = await asyncio.wait_for(client.ws.recv(), 5)
        assert str(frame).count('"pub"') == 3
        server.publish("anomalies", anomaly_event("a3"))
        await asyncio.sleep(0)  # a new callback: a new frame
        server.publish("anomalies", anomaly_event("a4"))
        frames = [await asyncio.wait_for(client.ws.recv(), 5) for _ in range(2)]
        assert [str(f).count('"pub"') for f in frames] == [1, 1]
        await client.close()


@pytest.mark.asyncio
async def test_connect_rearms_the_writer_so_pings_start() -> None:
    async with serve_embedded(config(ping_interval=1, auth_timeout=30)) as server:
        client = await RawClient.open(server.url)
        await client.connect(token())  # written by the fast path, deadline moved 30 s -> 1 s
        messages = await client.recv_messages(within=5)
        assert messages == [{}]  # the ping, after about a second rather than 30
        await client.ws.send("{}")
        await client.close()
