"""Scenario (a) of issue 10: two nodes share one real Redis; a client on node B, a publisher on
node A's HTTP API with idempotency keys, random connection cuts on both paths. Every accepted
event reaches the client exactly once, in order, and every resubscribe recovers."""

from __future__ import annotations

import asyncio
import random

import pytest
from redis_helpers import (
    API_KEY,
    Publisher,
    RedisServer,
    SubscribeLog,
    connect_and_load,
    figure,
    local_subscribers,
    node_config,
    two_nodes,
    wait_until,
)
from reliability_helpers import (
    AppliedLog,
    anomaly_payload,
    envelope,
    health_payload,
    live_client,
    proxied_url,
)

from reactive_aiops.net.bridge import AIOPS_CHANNELS
from reactive_aiops.server.app import serve_embedded
from reactive_aiops.server.engine import ENGINE_OK
from reactive_aiops.testing import FaultProxy


async def _stream_under_cuts(redis_url: str, events: int, client_cuts: int, lost_answers: int,
                             seed: int) -> None:
    rng = random.Random(seed)
    async with two_nodes(redis_url) as (a, b):
        to_b = await FaultProxy("127.0.0.1", b.port).start()
        to_a = await FaultProxy("127.0.0.1", a.port).start()
        try:
            async with live_client(proxied_url(b, to_b), connect=False) as live:
                applied = AppliedLog(live.store)
                subscribes = SubscribeLog(live.manager)
                await connect_and_load(live)
                await wait_until(lambda: local_subscribers(b, AIOPS_CHANNELS), what="subscribed")
                cut_at = set(rng.sample(range(1, events), client_cuts))
                # the answer of these publishes is lost after Redis accepted them: the
                # publisher's retry with the same key must not publish them twice
                lose_at = set(rng.sample(sorted(set(range(1, events)) - cut_at), lost_answers))
                publisher = Publisher(API_KEY)
                published: list[str] = []
                cuts = 0
                for i in range(events):
                    eid = f"e{i}"
                    data = envelope("anomaly.upserted", eid,
                                    anomaly_payload(f"a{i % 100}", version=i // 100 + 1))
                    if i in cut_at:
                        await wait_until(lambda: to_b.active > 0, what="a link to cut")
                        await asyncio.sleep(rng.uniform(0.0, 0.01))
                        cuts += to_b.cut() > 0
                    if i in lose_at:
                        await _publish_losing_the_answer(publisher, a, to_a, data, eid)
                    else:
                        await publisher.publish(to_a.port, "anomalies", data, eid)
                    published.append(eid)
                await wait_until(lambda: len(applied.ids("anomalies")) >= events, within=30,
                                 what="every event on the client")
                await asyncio.sleep(0.05)  # a duplicate would arrive now
                assert applied.ids("anomalies") == published  # once each, in order
                assert publisher.offsets == list(range(1, events + 1))  # no offset twice
                state = live.store.state
                assert dict(state.connection.resyncs) == {}
                assert state.dedupe.duplicates == 0
                assert cuts == client_cuts
                # a cut can land mid-subscribe (some channels not yet resubscribed)
                assert len(subscribes.resubscribes) >= client_cuts
                assert all(recovered for _c, _again, recovered in subscribes.resubscribes)
                figure("cluster stream: events / client cuts / lost answers",
                       (events, cuts, lost_answers))
                figure("cluster stream: publish attempts / failed attempts",
                       (publisher.attempts, publisher.failures))
                figure("cluster stream: resubscribes (all recovered)",
                       len(subscribes.resubscribes))
                figure("cluster stream: duplicates dropped by the client",
                       state.connection.health.duplicates_dropped)
                subscribes.dispose()
                applied.dispose()
        finally:
            await to_a.aclose()
            await to_b.aclose()


async def _publish_losing_the_answer(publisher: Publisher, node: object, proxy: FaultProxy,
                                     data: dict[str, object], key: str) -> None:
    """Publish ``data`` while the proxy holds the answer, cut the link once Redis accepted it,
    then let the publisher's retry (same key) finish."""
    engine = node.core.engine  # type: ignore[attr-defined]
    before = engine.published
    proxy.delay(30.0, "down")
    task = asyncio.create_task(publisher.publish(proxy.port, "anomalies", data, key))
    await wait_until(lambda: engine.published > before, what="publish accepted")
    proxy.cut()
    proxy.delay(0)
    await task


@pytest.mark.asyncio
async def test_1000_events_on_node_a_reach_a_client_on_node_b_exactly_once_under_cuts(
        redis_server: RedisServer) -> None:
    await _stream_under_cuts(redis_server.url, events=1000, client_cuts=10, lost_answers=10,
                             seed=20261204)


@pytest.mark.slow
@pytest.mark.asyncio
async def test_5000_events_under_30_cuts_exactly_once(redis_server: RedisServer) -> None:
    await _stream_under_cuts(redis_server.url, events=5000, client_cuts=30, lost_answers=30,
                             seed=5000)


@pytest.mark.asyncio
async def test_nodes_losing_their_pubsub_link_repair_from_history(
        redis_server: RedisServer) -> None:
    # Redis stays up but drops every PUB/SUB connection (CLIENT KILL TYPE pubsub): the nodes
    # reconnect and deliver what their clients missed meanwhile from the streams
    rng = random.Random(7)
    events, kills = 1000, 5
    # one kill at a random point of each fifth of the stream (apart, so that each finds the
    # links back up: a kill during the nodes' reconnect backoff would find nothing to kill)
    kill_at = {rng.randrange(k * 200 + 20, k * 200 + 180) for k in range(kills)}
    async with two_nodes(redis_server.url) as (a, b), live_client(b.url, connect=False) as live:
        applied = AppliedLog(live.store)
        subscribes = SubscribeLog(live.manager)
        await connect_and_load(live)
        await wait_until(lambda: local_subscribers(b, AIOPS_CHANNELS), what="subscribed")
        publisher = Publisher(API_KEY)
        published: list[str] = []
        killed = 0
        for i in range(events):
            if i in kill_at:
                await wait_until(lambda: a.core.engine.state == b.core.engine.state == ENGINE_OK,
                                 what="both nodes' PUB/SUB links up")
                killed += int(await redis_server.command("CLIENT", "KILL", "TYPE", "pubsub"))
            eid = f"p{i}"
            await publisher.publish(a.port, "anomalies", envelope(
                "anomaly.upserted", eid, anomaly_payload(f"a{i % 100}")), eid)
            published.append(eid)
        await wait_until(lambda: len(applied.ids("anomalies")) >= events, within=30,
                         what="every event on the client")
        await asyncio.sleep(0.05)
        assert applied.ids("anomalies") == published
        assert dict(live.store.state.connection.resyncs) == {}
        assert live.store.state.dedupe.duplicates == 0
        assert all(recovered for _c, _again, recovered in subscribes.resubscribes)
        assert killed >= kills * 2  # both nodes' links, each time
        figure("pubsub links killed: events / links killed / client resubscribes",
               (events, killed, len(subscribes.resubscribes)))
        subscribes.dispose()
        applied.dispose()


@pytest.mark.asyncio
async def test_a_quiet_channels_first_publication_missed_by_pubsub_is_repaired(
        redis_server: RedisServer) -> None:
    # B never saw a publication on "health" before its PUB/SUB link drops; the one published
    # meanwhile must reach B's client when the link is back, not only with the next one
    async with two_nodes(redis_server.url) as (a, b), live_client(b.url) as live:
        applied = AppliedLog(live.store)
        await wait_until(lambda: local_subscribers(b, AIOPS_CHANNELS), what="subscribed")
        assert int(await redis_server.command("CLIENT", "KILL", "TYPE", "pubsub")) == 2
        await a.apublish("health", envelope("health.updated", "h1", health_payload()))
        await wait_until(lambda: applied.ids("health") == ["h1"], what="the missed publication")
        assert dict(live.store.state.connection.resyncs) == {}
        applied.dispose()


@pytest.mark.asyncio
async def test_a_client_behind_a_balancer_moves_to_the_other_node_and_recovers(
        redis_server: RedisServer) -> None:
    # the balancer (a FaultProxy) sent the client to B; B stops (3001) and the balancer sends
    # the reconnect to A: the client recovers its channels on A from the position B gave it
    async with two_nodes(redis_server.url) as (a, b):
        balancer = await FaultProxy("127.0.0.1", b.port).start()
        try:
            async with live_client(proxied_url(b, balancer), connect=False) as live:
                applied = AppliedLog(live.store)
                subscribes = SubscribeLog(live.manager)
                await connect_and_load(live)
                await wait_until(lambda: local_subscribers(b, AIOPS_CHANNELS), what="on B")
                publisher = Publisher(API_KEY)
                published = []
                for i in range(300):
                    if i == 100:
                        balancer.retarget(a.port)
                        await b.stop()  # clients get 3001 and reconnect through the balancer
                    eid = f"f{i}"
                    await publisher.publish(a.port, "anomalies", envelope(
                        "anomaly.upserted", eid, anomaly_payload(f"a{i % 100}")), eid)
                    published.append(eid)
                await wait_until(lambda: len(applied.ids("anomalies")) >= 300, what="all on A")
                await asyncio.sleep(0.05)
                assert applied.ids("anomalies") == published
                assert local_subscribers(a, AIOPS_CHANNELS)
                assert dict(live.store.state.connection.resyncs) == {}
                assert len(subscribes.resubscribes) == 3
                assert all(recovered for _c, _again, recovered in subscribes.resubscribes)
                subscribes.dispose()
                applied.dispose()
        finally:
            await balancer.aclose()


@pytest.mark.asyncio
async def test_one_idempotency_key_sent_to_both_nodes_at_once_publishes_once(
        redis_server: RedisServer) -> None:
    async with two_nodes(redis_server.url) as (a, b):
        publisher = Publisher(API_KEY)

        async def both(i: int) -> tuple[dict[str, object], dict[str, object]]:
            data = envelope("anomaly.upserted", f"k{i}", anomaly_payload(f"a{i}"))
            first, second = await asyncio.gather(
                publisher.publish(a.port, "anomalies", data, f"k{i}"),
                publisher.publish(b.port, "anomalies", data, f"k{i}"))
            return first, second

        answers = await asyncio.gather(*(both(i) for i in range(100)))
        assert all(x == y for x, y in answers)  # the loser answers the winner's offset
        assert sorted(int(str(x["offset"])) for x, _ in answers) == list(range(1, 101))
        top, _epoch = await b.core.engine.position("anomalies")
        assert top == 100


@pytest.mark.asyncio
async def test_a_partition_between_a_node_and_redis_heals_without_loss(
        redis_server: RedisServer) -> None:
    # node B reaches Redis through a proxy that blackholes both ways for a while (bytes lost,
    # sockets kept): B's clients get what they missed once it heals, each event once
    to_redis = await FaultProxy("127.0.0.1", redis_server.port).start()
    try:
        async with serve_embedded(node_config(redis_server.url)) as a, serve_embedded(
                node_config(f"redis://127.0.0.1:{to_redis.port}/0")) as b, live_client(
                b.url) as live:
            applied = AppliedLog(live.store)
            await wait_until(lambda: local_subscribers(b, AIOPS_CHANNELS), what="subscribed")
            publisher = Publisher(API_KEY)
            published: list[str] = []

            async def publish(first: int, count: int) -> None:
                for i in range(first, first + count):
                    await publisher.publish(a.port, "anomalies", envelope(
                        "anomaly.upserted", f"q{i}", anomaly_payload(f"a{i % 100}")), f"q{i}")
                    published.append(f"q{i}")

            await publish(0, 100)
            await wait_until(lambda: len(applied.ids("anomalies")) == 100, what="first part")
            to_redis.blackhole()
            await publish(100, 100)
            await asyncio.sleep(0.5)
            to_redis.restore()
            await publish(200, 100)
            await wait_until(lambda: len(applied.ids("anomalies")) >= 300, within=30,
                             what="every event after the partition")
            await asyncio.sleep(0.05)
            assert applied.ids("anomalies") == published
            assert dict(live.store.state.connection.resyncs) == {}
            assert live.store.state.dedupe.duplicates == 0
            applied.dispose()
    finally:
        await to_redis.aclose()
