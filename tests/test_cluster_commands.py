"""Scenario (d) of issue 10: operator commands across two nodes sharing one real Redis.

A command applied on one node is remembered by its ``command_id`` in Redis: the same command
sent to the other node answers the first result and publishes nothing; 404 and 409 as with the
memory engine; many commands at once over both nodes are each applied exactly once."""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

import pytest
from redis_helpers import RedisServer, figure, two_nodes
from reliability_helpers import anomaly_payload, detector_payload, envelope, fast_config, token
from server_helpers import RawClient

from reactive_aiops.net.client import WebSocketManager
from reactive_aiops.protocol.errors import CommandTimeout, ReplyError
from reactive_aiops.server.app import EventServer
from reactive_aiops.testing import FaultProxy
from reactive_aiops.wire.messages import HistoryRequest, HistoryResult


@contextlib.asynccontextmanager
async def _managers(*servers: EventServer) -> AsyncIterator[list[WebSocketManager]]:
    managers = [WebSocketManager(s.url, token=token(), config=fast_config(command_timeout=20.0),
                                 open_timeout=2.0) for s in servers]
    try:
        async with asyncio.timeout(5):
            await asyncio.gather(*(m.connect() for m in managers))
        yield managers
    finally:
        await asyncio.gather(*(m.close() for m in managers))


async def _rpc(manager: WebSocketManager, method: str, data: dict[str, Any]) -> Any:
    """The reply data, or ``("error", code)``."""
    try:
        return await manager.rpc(method, data)
    except ReplyError as exc:
        return ("error", exc.code)


async def _command_ids(manager: WebSocketManager, channel: str) -> Counter[str]:
    """How many publications of ``channel``'s history carry each command_id."""
    result = await manager.call(HistoryRequest(channel=channel, limit=-1))
    assert isinstance(result, HistoryResult)
    return Counter(p.data["command_id"] for p in result.publications  # type: ignore[index]
                   if isinstance(p.data, dict) and p.data.get("command_id"))


async def _seed(node: EventServer, anomalies: list[str], detectors: list[str]) -> None:
    for aid in anomalies:
        await node.apublish("anomalies", envelope("anomaly.upserted", f"s-{aid}",
                                                  anomaly_payload(aid)))
    for did in detectors:
        await node.apublish("detectors", envelope("detector.upserted", f"s-{did}",
                                                  detector_payload(did)))


@pytest.mark.asyncio
async def test_a_command_retried_on_the_other_node_answers_the_first_result(
        redis_server: RedisServer) -> None:
    async with two_nodes(redis_server.url) as (a, b), _managers(a, b) as (on_a, on_b):
        await _seed(a, ["a1"], ["d1"])
        ack = {"command_id": "c-ack", "anomaly_id": "a1"}
        first = await _rpc(on_a, "anomaly.acknowledge", ack)
        assert first["entity"]["state"] == "acknowledged"
        assert first["entity"]["version"] == 2
        assert await _rpc(on_b, "anomaly.acknowledge", ack) == first  # retry on B
        assert await _rpc(on_a, "anomaly.acknowledge", ack) == first  # and on A again
        # 404 (unknown entity) is remembered too, on either node
        missing = {"command_id": "c-404", "anomaly_id": "nope"}
        assert await _rpc(on_a, "anomaly.acknowledge", missing) == ("error", 404)
        assert await _rpc(on_b, "anomaly.acknowledge", missing) == ("error", 404)
        # 409: a new command that conflicts with the state; an id reused for another command
        assert await _rpc(on_b, "anomaly.acknowledge",
                          {"command_id": "c-again", "anomaly_id": "a1"}) == ("error", 409)
        assert await _rpc(on_b, "anomaly.resolve", ack) == ("error", 409)
        pause = {"command_id": "c-pause", "detector_id": "d1"}
        paused = await _rpc(on_b, "detector.pause", pause)
        assert paused["entity"]["status"] == "paused"
        assert await _rpc(on_a, "detector.pause", pause) == paused
        assert await _rpc(on_a, "detector.pause",
                          {"command_id": "c-pause-2", "detector_id": "d1"}) == ("error", 409)
        resumed = await _rpc(on_a, "detector.resume", {"command_id": "c-res", "detector_id": "d1"})
        assert resumed["entity"]["version"] == 3
        resolved = await _rpc(on_b, "anomaly.resolve", {"command_id": "c-rsv", "anomaly_id": "a1"})
        assert resolved["entity"]["state"] == "resolved"
        assert await _rpc(on_a, "anomaly.acknowledge",
                          {"command_id": "c-late", "anomaly_id": "a1"}) == ("error", 409)
        # one publication per applied command, none for retries and rejections
        assert await _command_ids(on_a, "anomalies") == Counter({"c-ack": 1, "c-rsv": 1})
        assert await _command_ids(on_b, "detectors") == Counter({"c-pause": 1, "c-res": 1})
        assert await _command_ids(on_b, "detectors:d1") == Counter({"c-pause": 1, "c-res": 1})
        snapshot = await on_b.rpc("aiops.snapshot", {})
        assert isinstance(snapshot, dict)
        assert snapshot["anomalies"][0]["version"] == 3
        assert snapshot["detectors"][0]["status"] == "active"


@pytest.mark.asyncio
async def test_200_commands_at_once_over_both_nodes_are_each_applied_once(
        redis_server: RedisServer) -> None:
    ids = [f"b{i}" for i in range(100)]
    async with two_nodes(redis_server.url) as (a, b), _managers(a, b) as (on_a, on_b):
        await _seed(b, [*ids, "hot"], [])
        # every command sent to both nodes at once: 200 RPCs, 100 command ids
        calls = []
        for i, aid in enumerate(ids):
            data = {"command_id": f"c{i}", "anomaly_id": aid}
            calls += [_rpc(on_a, "anomaly.acknowledge", data),
                      _rpc(on_b, "anomaly.acknowledge", data)]
        replies = await asyncio.gather(*calls)
        for i in range(len(ids)):
            from_a, from_b = replies[2 * i], replies[2 * i + 1]
            assert from_a == from_b
            assert isinstance(from_a, dict), (i, from_a, Counter(map(str, replies)))
            assert from_a["entity"]["version"] == 2
        assert await _command_ids(on_a, "anomalies") == Counter(
            {f"c{i}": 1 for i in range(len(ids))})
        # contention: 100 different commands on one anomaly over both nodes: one wins
        hot = await asyncio.gather(*(
            _rpc(on_a if i % 2 else on_b, "anomaly.acknowledge",
                 {"command_id": f"h{i}", "anomaly_id": "hot"}) for i in range(100)))
        winners = [r for r in hot if isinstance(r, dict)]
        assert len(winners) == 1
        assert Counter(r for r in hot if not isinstance(r, dict)) == Counter({("error", 409): 99})
        counts = await _command_ids(on_b, "anomalies")
        assert sum(1 for cid in counts if cid.startswith("h")) == 1
        assert winners[0]["entity"]["version"] == 2
        figure("cluster commands: RPCs / command ids / publications",
               (200 + 100, 100 + 100, sum(counts.values())))


async def _commands_under_cuts(redis_url: str, count: int, cuts: int, seed: int) -> None:
    rng = random.Random(seed)
    ids = [f"n{i}" for i in range(count)]
    async with two_nodes(redis_url, rate_limit_per_second=1e6, rate_limit_burst=100_000) as (
            a, b):
        proxies = [await FaultProxy("127.0.0.1", s.port).start() for s in (a, b)]
        urls = [f"ws://127.0.0.1:{p.port}{a.config.path}" for p in proxies]
        managers = [WebSocketManager(u, token=token(), config=fast_config(command_timeout=5.0),
                                     open_timeout=2.0) for u in urls]
        try:
            async with asyncio.timeout(5):
                await asyncio.gather(*(m.connect() for m in managers))
            await _seed(a, ids, [])
            window = asyncio.Semaphore(32)
            retried_elsewhere = 0
            resent = 0

            async def until_answered(manager: WebSocketManager, data: dict[str, Any]) -> Any:
                nonlocal resent
                while True:
                    try:
                        return await manager.rpc("anomaly.acknowledge", data)
                    except (CommandTimeout, ReplyError) as exc:
                        if isinstance(exc, ReplyError) and not exc.temporary:
                            return ("error", exc.code)
                        resent += 1  # same command_id again

            async def command(i: int) -> list[Any]:
                nonlocal retried_elsewhere
                data = {"command_id": f"k{i}", "anomaly_id": ids[i]}
                first = rng.randrange(2)
                async with window:
                    calls = [until_answered(managers[first], data)]
                    if rng.random() < 0.5:  # a retry on the other node, at the same time
                        retried_elsewhere += 1
                        calls.append(until_answered(managers[1 - first], data))
                    return list(await asyncio.gather(*calls))

            async def cutter() -> int:
                done = 0
                while done < cuts:
                    await asyncio.sleep(rng.uniform(0.01, 0.08))
                    done += proxies[rng.randrange(2)].cut() > 0
                return done

            cutting = asyncio.create_task(cutter())
            replies = await asyncio.gather(*(command(i) for i in range(count)))
            cut = await cutting
            for i, answers in enumerate(replies):
                assert all(r == answers[0] for r in answers), (i, answers)
                assert isinstance(answers[0], dict), (i, answers)
                assert answers[0]["entity"]["version"] == 2
            published = await _command_ids(managers[0], "anomalies")
            assert published == Counter({f"k{i}": 1 for i in range(count)})
            figure("commands under cuts: commands / RPCs / cuts / re-sent after a failure",
                   (count, count + retried_elsewhere, cut, resent))
        finally:
            await asyncio.gather(*(m.close() for m in managers))
            for proxy in proxies:
                await proxy.aclose()


@pytest.mark.asyncio
async def test_200_commands_with_retries_over_both_nodes_under_cuts_apply_once(
        redis_server: RedisServer) -> None:
    await _commands_under_cuts(redis_server.url, 200, 5, seed=1)


@pytest.mark.slow
@pytest.mark.asyncio
async def test_1000_commands_with_retries_over_both_nodes_under_30_cuts_apply_once(
        redis_server: RedisServer) -> None:
    await _commands_under_cuts(redis_server.url, 1000, 30, seed=2)


@pytest.mark.asyncio
async def test_a_snapshot_on_one_node_is_the_state_at_its_position_while_another_publishes(
        redis_server: RedisServer) -> None:
    async with two_nodes(redis_server.url) as (a, b):
        count = 400

        async def publish() -> None:
            for i in range(count):
                await a.apublish("anomalies", envelope(
                    "anomaly.upserted", f"s{i}", anomaly_payload(f"a{i % 20}", version=i + 1)))
                if i % 10 == 9:
                    await asyncio.sleep(0)

        raw = await RawClient.open(b.url)
        try:
            await raw.connect(token())
            publishing = asyncio.create_task(publish())
            await asyncio.sleep(0.05)  # mid-stream
            reply = await raw.call("rpc", {"method": "aiops.snapshot", "data": {}})
            snapshot = reply["rpc"]["data"]
            position = snapshot["positions"]["anomalies"]
            subscribed = await raw.call("subscribe", {
                "channel": "anomalies", "recover": True, "offset": position["offset"],
                "epoch": position["epoch"]})
            await publishing
            assert subscribed["subscribe"]["recovered"] is True
            assert 0 < position["offset"] < count  # taken mid-stream
            # the snapshot is exactly the history replayed up to its position
            history = await raw.call("history", {"channel": "anomalies", "limit": -1})
            pubs = history["history"]["publications"]
            upto: dict[str, int] = {}
            for pub in pubs:
                if pub.get("offset", 0) <= position["offset"]:
                    upto[pub["data"]["data"]["id"]] = pub["data"]["data"]["version"]
            assert {x["id"]: x["version"] for x in snapshot["anomalies"]} == upto
            # and the subscription continues from there with no gap and no duplicate
            received = [p["offset"] for p in subscribed["subscribe"].get("publications", [])]
            while len(received) < count - position["offset"]:
                received.append((await raw.next_push())["pub"]["offset"])
            with pytest.raises(TimeoutError):  # nothing more: no duplicate
                await raw.next_push(within=0.2)
            assert received == list(range(position["offset"] + 1, count + 1))
        finally:
            await raw.close()
