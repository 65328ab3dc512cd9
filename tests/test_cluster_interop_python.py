"""Scenario (f) of issue 10: the official centrifuge-python SDK on node B receives what is
published on node A (one real Redis between them), recovers after its connection was cut, and
after a balancer in front moved it from the stopped node B to node A."""

from __future__ import annotations

import pytest
from redis_helpers import API_KEY, Publisher, RedisServer, figure, two_nodes
from reliability_helpers import anomaly_payload, envelope, token
from test_server_interop_python import subscribe_recorded

from reactive_aiops.testing import FaultProxy


@pytest.mark.asyncio
async def test_sdk_on_node_b_receives_node_a_publications_and_recovers_after_a_cut(
        redis_server: RedisServer) -> None:
    from centrifuge import Client

    async with two_nodes(redis_server.url) as (a, b):
        proxy = await FaultProxy("127.0.0.1", b.port).start()
        client = Client(f"ws://127.0.0.1:{proxy.port}{b.config.path}", token=token(),
                        proxy=None, max_reconnect_delay=0.5)
        try:
            rec = await subscribe_recorded(client)
            assert rec.subscribed[0].recoverable
            publisher = Publisher(API_KEY)

            async def publish(first: int, count: int) -> None:
                for i in range(first, first + count):
                    await publisher.publish(a.port, "anomalies", envelope(
                        "anomaly.upserted", f"e{i}", anomaly_payload(f"a{i}")), f"e{i}")

            await publish(0, 50)
            await rec.wait_for(lambda: len(rec.pubs) == 50)
            # cut; 50 more are published on A while the SDK cannot reach B
            proxy.refuse()
            proxy.cut()
            await publish(50, 50)
            proxy.accept_again()
            await rec.wait_for(lambda: len(rec.subscribed) == 2 and len(rec.pubs) == 100)
            assert rec.subscribed[1].was_recovering
            assert rec.subscribed[1].recovered
            await publish(100, 10)
            await rec.wait_for(lambda: len(rec.pubs) == 110)
            # behind a balancer: B stops (3001), the proxy sends the reconnect to A
            proxy.retarget(a.port)
            await b.stop()
            await publish(110, 20)
            await rec.wait_for(lambda: len(rec.subscribed) == 3 and len(rec.pubs) == 130)
            assert rec.subscribed[2].recovered
            assert [offset for offset, _ in rec.pubs] == list(range(1, 131))
            assert [data["id"] for _, data in rec.pubs] == [f"e{i}" for i in range(130)]
            figure("centrifuge-python on B, then A: publications / recovered after cut, move",
                   (len(rec.pubs), rec.subscribed[1].recovered, rec.subscribed[2].recovered))
        finally:
            await client.disconnect()
            await proxy.aclose()
