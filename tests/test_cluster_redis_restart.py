"""Scenario (c) of issue 10: redis-server restarts under two live nodes.

With AOF (``appendfsync always``) everything accepted survives: the client recovers and sees
every event exactly once. Without persistence Redis comes back empty: one resync per channel,
nothing of the dead epoch applied. While Redis is down the publish API answers 503, the nodes
keep running and the client's connection stays up."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest
from redis_helpers import (
    API_KEY,
    Publisher,
    RedisServer,
    SubscribeLog,
    connect_and_load,
    figure,
    http_publish,
    local_subscribers,
    node_config,
    two_nodes,
    wait_until,
)
from reliability_helpers import (
    AppliedLog,
    anomaly_payload,
    detector_payload,
    envelope,
    health_payload,
    live_client,
    proxied_url,
)

from reactive_aiops.core.connection import Status
from reactive_aiops.net.bridge import AIOPS_CHANNELS
from reactive_aiops.protocol.errors import ReplyError
from reactive_aiops.server.app import serve_embedded
from reactive_aiops.server.engine import ENGINE_OK, ENGINE_UNAVAILABLE
from reactive_aiops.testing import FaultProxy


def _event(i: int, tag: str) -> dict[str, object]:
    return envelope("anomaly.upserted", f"{tag}{i}",
                    anomaly_payload(f"a{i % 50}", version=i // 50 + 1))


async def _publish(publisher: Publisher, port: int, first: int, count: int, tag: str
                   ) -> list[str]:
    ids = []
    for i in range(first, first + count):
        await publisher.publish(port, "anomalies", _event(i, tag), f"{tag}{i}")
        ids.append(f"{tag}{i}")
    return ids


@pytest.mark.asyncio
async def test_redis_restarted_with_aof_loses_nothing_and_the_client_recovers(
        redis_aof: RedisServer, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, "reactive_aiops.server.redis")
    async with two_nodes(redis_aof.url) as (a, b), live_client(b.url, connect=False) as live:
        applied = AppliedLog(live.store)
        subscribes = SubscribeLog(live.manager)
        await connect_and_load(live)
        await wait_until(lambda: local_subscribers(b, AIOPS_CHANNELS), what="subscribed")
        publisher = Publisher(API_KEY)
        published = await _publish(publisher, a.port, 0, 300, "x")
        await wait_until(lambda: len(applied.ids("anomalies")) == 300, what="first part")
        connects = live.store.state.connection.health.reconnects
        early = {"command_id": "c-early", "anomaly_id": "a2"}
        early_result = await live.manager.rpc("anomaly.acknowledge", early)

        await redis_aof.astop("term")  # SIGTERM: Redis writes the AOF and exits
        status, answer = await http_publish(a.port, API_KEY, {
            "channel": "anomalies", "data": _event(300, "x"), "idempotency_key": "x300"})
        assert (status, answer["error"]["code"]) == (503, 503)
        # keep retrying the same event (same key) while Redis is away
        retry = asyncio.create_task(publisher.publish(a.port, "anomalies", _event(300, "x"),
                                                      "x300"))
        await wait_until(lambda: publisher.unavailable >= 3, what="503s while Redis is down")
        await wait_until(lambda: b.core.engine.state == ENGINE_UNAVAILABLE, what="B notices")
        assert live.manager.state.status is Status.CONNECTED  # the client stays connected
        assert (a.connection_count, b.connection_count) == (0, 1)
        # a command gets a temporary error; its retry after the restart is applied once
        ack = {"command_id": "c-down", "anomaly_id": "a1"}
        with pytest.raises(ReplyError) as refused:
            await live.manager.rpc("anomaly.acknowledge", ack)
        assert (refused.value.code, refused.value.temporary) == (100, True)
        down_503 = publisher.unavailable

        await redis_aof.astart()
        await retry
        published.append("x300")
        # idempotency keys and command ids survived in the AOF: retries publish nothing
        status, answer = await http_publish(a.port, API_KEY, {
            "channel": "anomalies", "data": _event(299, "x"), "idempotency_key": "x299"})
        assert (status, answer["result"]["offset"]) == (200, 300)
        assert await live.manager.rpc("anomaly.acknowledge", early) == early_result
        published += await _publish(publisher, a.port, 301, 299, "x")
        acked = await live.manager.rpc("anomaly.acknowledge", ack)
        assert acked == await live.manager.rpc("anomaly.acknowledge", ack)
        assert isinstance(acked, dict)
        assert acked["entity"]["state"] == "acknowledged"
        await wait_until(lambda: len(applied.ids("anomalies")) >= 602, within=15,
                         what="every event after the restart")
        await asyncio.sleep(0.05)
        assert [i for i in applied.ids("anomalies") if i and i.startswith("x")] == published
        commands = [m.command_id for m in applied.metas if m.command_id]
        assert commands == ["c-early", "c-down"]  # one publication each, retries none
        # offset 301 is c-early's publication
        assert publisher.offsets == [*range(1, 301), *range(302, 602)]
        assert dict(live.store.state.connection.resyncs) == {}
        assert live.store.state.dedupe.duplicates == 0
        assert all(recovered for _c, _again, recovered in subscribes.resubscribes)
        assert live.store.state.connection.health.reconnects == connects  # never disconnected
        assert a.core.engine.state == b.core.engine.state == ENGINE_OK
        # logged once per state change and node, never per failed request
        outages = [r for r in caplog.records if "unavailable" in r.getMessage()]
        assert len(outages) == 2, [r.getMessage() for r in outages]
        figure("redis AOF restart: events / 503 answers while down / resyncs",
               (len(published), down_503 + 1, 0))
        subscribes.dispose()
        applied.dispose()


@pytest.mark.asyncio
async def test_redis_restarted_empty_resyncs_once_per_channel_and_applies_nothing_dead(
        redis_server: RedisServer) -> None:
    async with two_nodes(redis_server.url) as (a, b):
        to_b = await FaultProxy("127.0.0.1", b.port).start()
        try:
            async with live_client(proxied_url(b, to_b)) as live:
                applied = AppliedLog(live.store)
                await wait_until(lambda: local_subscribers(b, AIOPS_CHANNELS), what="subscribed")
                publisher = Publisher(API_KEY)
                await a.apublish("detectors", envelope("detector.upserted", "d-old",
                                                       detector_payload("d1")))
                await a.apublish("health", envelope("health.updated", "h-old",
                                                    health_payload()))
                before = await _publish(publisher, a.port, 0, 200, "old")
                await wait_until(lambda: len(applied.ids("anomalies")) == 200, what="old part")
                old_epoch = applied.metas[-1].epoch
                # the client goes away; these are accepted by Redis, then Redis dies empty
                to_b.refuse()
                to_b.cut()
                dead = await _publish(publisher, a.port, 200, 100, "old")
                await redis_server.restart("kill")
                to_b.accept_again()
                await wait_until(lambda: local_subscribers(b, AIOPS_CHANNELS), within=15,
                                 what="resubscribed after Redis came back")
                await wait_until(
                    lambda: sum(live.store.state.connection.resyncs.values()) == 3, within=15,
                    what="a resync per channel")
                # The reloads the resyncs started must have read their snapshots before the new
                # part is published: what a snapshot holds is not applied again as an event.
                async with asyncio.timeout(10):
                    await live.bridge.wait_loaded()
                await a.apublish("detectors", envelope("detector.upserted", "d-new",
                                                       detector_payload("d1", version=2)))
                await a.apublish("health", envelope("health.updated", "h-new",
                                                    health_payload()))
                after = await _publish(publisher, a.port, 0, 200, "new")
                await wait_until(lambda: len(applied.ids("anomalies")) == 400, what="new part")
                await asyncio.sleep(0.05)
                ids = applied.ids("anomalies")
                assert ids == before + after
                assert not set(dead) & set(ids)
                new_epochs = {m.epoch for m in applied.metas if m.event_id in set(after)}
                assert len(new_epochs) == 1
                assert old_epoch not in new_epochs
                assert applied.ids("detectors")[-1] == "d-new"
                assert dict(live.store.state.connection.resyncs) == {c: 1 for c in AIOPS_CHANNELS}
                assert live.bridge.reload_errors == []
                figure("redis empty restart: events before / dead / after / resyncs",
                       (len(before), len(dead), len(after),
                        dict(live.store.state.connection.resyncs)))
                applied.dispose()
        finally:
            await to_b.aclose()


@pytest.mark.asyncio
async def test_redis_refusing_writes_gets_503_and_temporary_errors_not_silence(
        redis_server: RedisServer, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, "reactive_aiops.server.redis")
    # Redis answers but refuses (here: maxmemory reached; READONLY after a failover is alike):
    # the publish API must answer 503 and a command a temporary error, not leave them hanging
    async with two_nodes(redis_server.url) as (a, b), live_client(b.url) as live:
        applied = AppliedLog(live.store)
        await wait_until(lambda: local_subscribers(b, AIOPS_CHANNELS), what="subscribed")
        publisher = Publisher(API_KEY)
        published = await _publish(publisher, a.port, 0, 10, "m")
        await redis_server.command("CONFIG", "SET", "maxmemory", "1")
        status, answer = await http_publish(a.port, API_KEY, {
            "channel": "anomalies", "data": _event(10, "m"), "idempotency_key": "m10"})
        assert (status, answer["error"]["code"]) == (503, 503)
        ack = {"command_id": "c-oom", "anomaly_id": "a1"}
        with pytest.raises(ReplyError) as refused:
            await live.manager.rpc("anomaly.acknowledge", ack)
        assert (refused.value.code, refused.value.temporary) == (100, True)
        for i in range(5):  # refused again and again: logged once
            status, _ = await http_publish(a.port, API_KEY, {
                "channel": "anomalies", "data": _event(10, "m"), "idempotency_key": "m10"})
            assert status == 503, i
        refusals = [r for r in caplog.records if "refuses" in r.getMessage()]
        assert len(refusals) == 1
        await redis_server.command("CONFIG", "SET", "maxmemory", "0")
        published += await _publish(publisher, a.port, 10, 10, "m")
        acked = await live.manager.rpc("anomaly.acknowledge", ack)
        assert isinstance(acked, dict)
        await wait_until(lambda: len(applied.ids("anomalies")) == 21, what="all events")
        assert applied.ids("anomalies")[:20] == published
        assert live.store.state.connection.health.reconnects == 0
        applied.dispose()


@pytest.mark.asyncio
async def test_a_node_started_while_redis_is_down_serves_once_it_is_up(
        redis_server: RedisServer) -> None:
    await redis_server.astop()
    async with serve_embedded(node_config(redis_server.url)) as node:
        assert node.core.engine.state == ENGINE_UNAVAILABLE
        status, _ = await http_publish(node.port, API_KEY, {
            "channel": "anomalies", "data": _event(0, "s"), "idempotency_key": "s0"})
        assert status == 503
        async with live_client(node.url, connect=False) as live:
            applied = AppliedLog(live.store)
            async with asyncio.timeout(5):
                await live.manager.connect()  # connected; subscribes and the load wait for Redis
            await redis_server.astart()
            # Wait for the client's load, not only the node's subscriptions: a publication
            # made between the last subscribe and the snapshot read is in the snapshot, so its
            # live copy is dropped as a duplicate and never applied as an event. The node's
            # reconnect backoff (at most 3 s) and the client's subscribe retries come first.
            async with asyncio.timeout(15):
                await live.bridge.wait_loaded()
            await wait_until(lambda: local_subscribers(node, AIOPS_CHANNELS),
                             what="subscribed once Redis is up")
            published = await _publish(Publisher(API_KEY), node.port, 0, 20, "s")
            await wait_until(lambda: applied.ids("anomalies") == published, what="events")
            assert node.core.engine.state == ENGINE_OK
            applied.dispose()


@pytest.mark.asyncio
async def test_redis_restarted_empty_under_a_connected_client_resyncs_each_channel_once(
        redis_server: RedisServer) -> None:
    # the client's connection stays up: its node, reconnecting to Redis, finds every stream
    # gone and tells it (2500 -> resubscribe -> resync), also for the quiet channels
    async with two_nodes(redis_server.url) as (a, b), live_client(b.url) as live:
        applied = AppliedLog(live.store)
        await wait_until(lambda: local_subscribers(b, AIOPS_CHANNELS), what="subscribed")
        publisher = Publisher(API_KEY)
        await a.apublish("detectors", envelope("detector.upserted", "d-old",
                                               detector_payload("d1")))
        await a.apublish("health", envelope("health.updated", "h-old", health_payload()))
        before = await _publish(publisher, a.port, 0, 100, "old")
        await wait_until(lambda: len(applied.ids("anomalies")) == 100, what="old part")
        await redis_server.restart("kill")
        await wait_until(lambda: sum(live.store.state.connection.resyncs.values()) == 3,
                         within=15, what="a resync per channel")
        # as above: the reloads read their snapshots before the new part is published
        async with asyncio.timeout(10):
            await live.bridge.wait_loaded()
        await wait_until(lambda: local_subscribers(b, AIOPS_CHANNELS), what="resubscribed")
        after = await _publish(publisher, a.port, 0, 100, "new")
        await a.apublish("detectors", envelope("detector.upserted", "d-new",
                                               detector_payload("d1", version=2)))
        await a.apublish("health", envelope("health.updated", "h-new", health_payload()))
        await wait_until(lambda: len(applied.ids("anomalies")) == 200, what="new part")
        await wait_until(lambda: applied.ids("health")[-1:] == ["h-new"], what="health")
        await asyncio.sleep(0.05)
        assert applied.ids("anomalies") == before + after
        assert applied.ids("detectors") == ["d-old", "d-new"]
        assert dict(live.store.state.connection.resyncs) == {c: 1 for c in AIOPS_CHANNELS}
        assert live.store.state.connection.health.reconnects == 0
        applied.dispose()


@pytest.mark.asyncio
async def _cut_off_while_redis_restarts_empty(redis_server: RedisServer,
                                              check: Any) -> None:
    # B's link to Redis is down while Redis restarts empty and A publishes fewer events than
    # the old epoch had (the new top is below the client's old offset)
    b_link = await FaultProxy("127.0.0.1", redis_server.port).start()
    try:
        async with serve_embedded(node_config(redis_server.url)) as a, serve_embedded(
                node_config(f"redis://127.0.0.1:{b_link.port}/0")) as b, live_client(
                b.url) as live:
            applied = AppliedLog(live.store)
            await wait_until(lambda: local_subscribers(b, AIOPS_CHANNELS), what="subscribed")
            publisher = Publisher(API_KEY)
            await _publish(publisher, a.port, 0, 300, "old")  # a0..a49, up to version 6
            await wait_until(lambda: len(applied.ids("anomalies")) == 300, what="old part")
            b_link.refuse()
            b_link.cut()
            await redis_server.restart("kill")
            await _publish(publisher, a.port, 0, 100, "new")  # a0..a49 at version 2
            b_link.accept_again()
            await check(live, applied)
            applied.dispose()
    finally:
        await b_link.aclose()


@pytest.mark.asyncio
async def test_a_node_cut_off_while_redis_restarted_empty_tells_its_clients(
        redis_server: RedisServer) -> None:
    async def told(live: Any, applied: AppliedLog) -> None:
        await wait_until(lambda: live.store.state.connection.resyncs.get("anomalies") == 1,
                         within=15, what="the client told of the new epoch")
        assert len(applied.ids("anomalies")) == 300  # nothing of the new epoch as events
        assert live.store.state.connection.health.reconnects == 0

    await _cut_off_while_redis_restarts_empty(redis_server, told)


@pytest.mark.asyncio
async def test_after_redis_restarted_empty_the_clients_state_is_the_new_epochs(
        redis_server: RedisServer) -> None:
    async def new_state(live: Any, applied: AppliedLog) -> None:
        await wait_until(lambda: live.store.state.connection.resyncs.get("anomalies") == 1,
                         within=15, what="the client told of the new epoch")
        await wait_until(lambda: {x.id: x.version for x in live.store.state.anomalies.values()}
                         == {f"a{i}": 2 for i in range(50)}, within=3,
                         what="the new epoch's state in the store")

    await _cut_off_while_redis_restarts_empty(redis_server, new_state)
