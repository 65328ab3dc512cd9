"""Scenario (b) of issue 10: the node a client is on is a real ``serve --redis-url`` process,
SIGKILLed (and then SIGTERMed) mid-stream and started again on the same port while node A keeps
accepting events. The client reconnects and recovers from Redis: every event exactly once, no
resync.

(The failover variant, a ``WebSocketManager`` moving to the other node, needs the multi-URL
client of issue 10 item 8, which is not on main yet.)"""

from __future__ import annotations

import asyncio
import random
import signal

import pytest
from redis_helpers import (
    API_KEY,
    Publisher,
    RedisServer,
    SubscribeLog,
    connect_and_load,
    figure,
    node_config,
    node_process,
    wait_until,
)
from reliability_helpers import SECRET, AppliedLog, anomaly_payload, envelope, live_client

from reactive_aiops.core.connection import ConnectionLost, Status
from reactive_aiops.server.app import serve_embedded


@pytest.mark.asyncio
async def test_the_clients_node_killed_mid_stream_loses_and_duplicates_nothing(
        redis_server: RedisServer) -> None:
    rng = random.Random(11)
    url = redis_server.url
    env = {"REACTIVE_AIOPS_TOKEN_SECRET": SECRET, "REACTIVE_AIOPS_API_KEY": API_KEY}
    # SIGKILL (sockets reset by the kernel), then SIGTERM (the node closes clients with 3001)
    signals = [signal.SIGKILL, signal.SIGTERM]
    events, kills = 1000, len(signals)
    kill_at = sorted(rng.sample(range(100, events - 100), kills))
    lost_codes: list[int] = []
    async with serve_embedded(node_config(url)) as a, node_process(
            url, env, "--no-simulation") as b, live_client(b.url, connect=False) as live:
        applied = AppliedLog(live.store)
        subscribes = SubscribeLog(live.manager)
        await connect_and_load(live)
        losses = live.manager.events.subscribe(
            lambda e: lost_codes.append(e.code) if isinstance(e, ConnectionLost) else None)
        await wait_until(lambda: len(subscribes.entries) == 3, what="subscribed on B")
        publisher = Publisher(API_KEY)
        published: list[str] = []
        down_for: list[int] = []
        for i in range(events):
            if i in kill_at:
                await wait_until(lambda: len(applied.ids("anomalies")) > len(published) - 20,
                                 what="the client streaming from B")
                losses_before = len(lost_codes)
                b.signal(signals.pop(0))
                assert b.process is not None
                await b.process.wait()
                await b.kill()  # reaped
                await wait_until(lambda: live.manager.state.status is not Status.CONNECTED,
                                 what="the client noticing")
                # the stream goes on on node A while B is gone and comes back
                restart = asyncio.create_task(b.start())
                during = len(published)
                while not restart.done():
                    eid = f"e{len(published)}"
                    await publisher.publish(a.port, "anomalies", envelope(
                        "anomaly.upserted", eid, anomaly_payload(f"a{i % 100}")), eid)
                    published.append(eid)
                await restart
                down_for.append(len(published) - during)
            eid = f"e{len(published)}"
            await publisher.publish(a.port, "anomalies", envelope(
                "anomaly.upserted", eid, anomaly_payload(f"a{i % 100}")), eid)
            published.append(eid)
        await wait_until(lambda: len(applied.ids("anomalies")) >= len(published), within=30,
                         what="every event on the client")
        await asyncio.sleep(0.05)
        assert applied.ids("anomalies") == published
        state = live.store.state
        assert dict(state.connection.resyncs) == {}
        assert state.dedupe.duplicates == 0
        assert state.connection.health.reconnects >= kills
        assert len(subscribes.resubscribes) >= kills * 3
        assert all(recovered for _c, _again, recovered in subscribes.resubscribes)
        # SIGTERM: a graceful, reconnectable shutdown (then refused attempts while it is down)
        assert lost_codes[losses_before] == 3001, lost_codes
        losses.dispose()
        figure("node SIGKILL + SIGTERM: events / kills / published while B was down / resyncs",
               (len(published), kills, down_for, 0))
        subscribes.dispose()
        applied.dispose()
