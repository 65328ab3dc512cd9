"""The Redis engine: two ``serve`` nodes sharing one ``redis-server``; nodes and Redis die.

- ``node-kill``: (a) the client on node B, the publisher on node A; A is SIGKILLed and restarted
  mid-stream (the publisher retries with the same idempotency key): the client on B must see
  nothing but the stream. (b) the node the client is on is SIGKILLed; a ``FaultProxy`` in front
  (a load balancer) sends the reconnect to the other node, the client recovers its position from
  Redis there; the killed node is restarted and becomes the next victim.
- ``redis-restart``: redis-server SIGKILLed mid-stream and restarted (a) with AOF
  (``appendfsync always``): history, epochs and state survive, nothing lost, no resync; (b)
  without persistence: one resync per channel, nothing applied from the dead epoch after it.
  detect = kill to the first refused publish (503); reconnect = Redis back to the first 200.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from chaos._harness import (
    WS_PATH,
    LiveClient,
    Publisher,
    RedisProcess,
    Result,
    Secrets,
    ServerProcess,
    record,
    settle,
    wait_until,
    workspace,
)
from reactive_aiops.testing import FaultProxy

CHANNELS = ("anomalies", "detectors", "health")


def _expect_exact(result: Result, *, resyncs: int = 0) -> None:
    t = result.tally
    result.expect("lost == 0", t.lost == 0)
    result.expect("dup == 0", t.duplicated == 0)
    result.expect("in order", t.out_of_order == 0)
    result.expect(f"resyncs == {resyncs}", result.resyncs == resyncs)


async def _nodes(keys: Secrets, redis: RedisProcess, workdir: Path
                 ) -> tuple[ServerProcess, ServerProcess]:
    a = ServerProcess(keys, redis_url=redis.url, workdir=workdir)
    b = ServerProcess(keys, redis_url=redis.url, workdir=workdir)
    await a.start()
    await b.start()
    return a, b


async def node_kill(quick: bool) -> list[Result]:
    """Both node-kill variants (module docstring)."""
    return [await _publisher_node_killed(quick), await _client_node_killed(quick)]


async def _publisher_node_killed(quick: bool) -> Result:
    events, kills = (800, 1) if quick else (3000, 3)
    result = Result("node kill: A (publisher's node) killed + restarted, client on B",
                    engine="redis")
    keys = Secrets()
    async with workspace() as workdir:
        redis = RedisProcess(workdir, aof=False)
        await redis.start()
        a, b = await _nodes(keys, redis, workdir)
        client: LiveClient | None = None
        try:
            client = LiveClient(b.url, keys.token())
            await client.start()
            pub = Publisher(keys, lambda: a.port, "na")
            await pub.stream(30, CHANNELS)
            await settle(client, pub.published, 10)
            result.rss_before = b.rss()
            streaming = asyncio.create_task(pub.stream(events - 30, CHANNELS))
            for k in range(kills):
                target = (k + 1) * events // (kills + 1)
                await pub.wait_total(target, streaming)
                killed = time.monotonic()
                await a.kill()
                await a.start()
                # the first refused attempt, then the first 200 after it (a request answered
                # just before the kill is logged after it)
                refused = await pub.wait_first_after(killed, ok=False)
                back = refused + await pub.wait_first_after(killed + refused, ok=True)
                result.reconnect.append(back)
            await streaming
            await settle(client, pub.published, 20)
            result.rss_after = b.rss()
            record(result, pub, client)
            result.note(f"{kills} kills of A; client link lost {len(client.lost)} times; "
                        f"publish retries {pub.retries}; reconnect = kill to the next 200 "
                        "(publisher's view, A's restart included)")
            _expect_exact(result)
            result.expect("client on B never disconnected", not client.lost)
        finally:
            if client is not None:
                await client.aclose()
            await a.stop()
            await b.stop()
            await redis.stop()
    return result


async def _client_node_killed(quick: bool) -> Result:
    events, kills = (800, 1) if quick else (3000, 4)
    result = Result("node kill: the client's node killed, failover to the other",
                    engine="redis")
    keys = Secrets()
    async with workspace() as workdir:
        redis = RedisProcess(workdir, aof=False)
        await redis.start()
        nodes = list(await _nodes(keys, redis, workdir))
        proxy = await FaultProxy("127.0.0.1", nodes[1].port).start()
        client: LiveClient | None = None
        on = 1  # the node the client is on
        try:
            client = LiveClient(f"ws://127.0.0.1:{proxy.port}{WS_PATH}", keys.token())
            await client.start()
            pub = Publisher(keys, lambda: nodes[1 - on].port, "nb")
            await pub.stream(30, CHANNELS)
            await settle(client, pub.published, 10)
            result.rss_before = nodes[0].rss()
            streaming = asyncio.create_task(pub.stream(events - 30, CHANNELS))
            for k in range(kills):
                target = (k + 1) * events // (kills + 1)
                await pub.wait_total(target, streaming)
                victim = nodes[on]
                proxy.retarget(nodes[1 - on].port)  # the balancer's next pick
                killed = time.monotonic()
                await victim.kill()
                result.reconnect.append(await client.wait_connected_after(killed))
                if (lost := client.lost_after(killed)) is not None:
                    result.detect.append(lost)
                on = 1 - on  # the client is on the survivor; the victim restarts
                await victim.start()
            await streaming
            await settle(client, pub.published, 20)
            result.rss_after = nodes[0].rss()
            record(result, pub, client)
            result.note(f"{kills} kills, each of the node the client was on; reconnect = kill "
                        "to Connected on the other node; RSS of node A")
            _expect_exact(result)
        finally:
            if client is not None:
                await client.aclose()
            await proxy.aclose()
            for node in nodes:
                await node.stop()
            await redis.stop()
    return result


async def redis_restart(quick: bool) -> list[Result]:
    """Redis killed and restarted, with and without persistence (module docstring)."""
    return [await _redis_restart(quick, aof=True), await _redis_restart(quick, aof=False),
            await _redis_restart(quick, aof=False, quiet_after=True)]


async def _redis_restart(quick: bool, *, aof: bool, quiet_after: bool = False) -> Result:
    """``quiet_after``: node B reaches Redis through a ``FaultProxy`` that keeps B's link down
    until the stream has ended, so B's pub/sub misses every publication of the new epoch and
    only B's repair on reconnect can tell its client about the new epoch."""
    events = 600 if quick else 2000
    name = "with AOF" if aof else "without persistence"
    if quiet_after:
        name += "; B's Redis link back only after the stream ended"
    result = Result(f"Redis SIGKILL + restart {name}, client on B, publish on A",
                    engine="redis")
    keys = Secrets()
    async with workspace() as workdir:
        redis = RedisProcess(workdir, aof=aof)
        await redis.start()
        link = await FaultProxy("127.0.0.1", redis.port).start()
        a = ServerProcess(keys, redis_url=redis.url, workdir=workdir)
        b_url = f"redis://127.0.0.1:{link.port}/0" if quiet_after else redis.url
        b = ServerProcess(keys, redis_url=b_url, workdir=workdir)
        client: LiveClient | None = None
        try:
            await a.start()
            await b.start()
            client = LiveClient(b.url, keys.token())
            await client.start()
            pub = Publisher(keys, lambda: a.port, "rr")
            await pub.stream(30, CHANNELS)
            await settle(client, pub.published, 10)
            result.rss_before = b.rss()
            # paced (about 3 s of stream after the restart) unless the channels go quiet
            rate = None if quiet_after else events / 6
            streaming = asyncio.create_task(pub.stream(events - 30, CHANNELS, rate=rate))
            await wait_until(lambda: pub.total() >= events // 2, 60, "publisher progress")
            killed = time.monotonic()
            before_kill = {c: len(ids) for c, ids in pub.published.items()}
            if quiet_after:
                link.refuse()
                link.cut()
            await redis.kill()
            await asyncio.sleep(1.0)  # an outage: the publish API answers 503 meanwhile
            restarted = time.monotonic()
            await redis.start()
            await streaming
            published_all = time.monotonic()
            link.accept_again()
            await settle(client, pub.published, 20, quiet=8)
            if (refused := pub.first_after(killed, ok=False)) is not None:
                result.detect.append(refused)
            if (back := pub.first_after(restarted, ok=True)) is not None:
                result.reconnect.append(back)
            result.rss_after = b.rss()
            record(result, pub, client, before_kill)
            statuses = {k: v for k, v in sorted(pub.statuses.items()) if k != 200}
            result.note(f"publish answers other than 200: {statuses}; client link lost "
                        f"{len(client.lost)} times; nodes alive {a.alive() and b.alive()}")
            result.expect("nodes alive", a.alive() and b.alive())
            result.expect("no traceback", a.tracebacks() + b.tracebacks() == 0)
            if aof:
                _expect_exact(result)
            else:
                dead = _dead_epoch_after_resync(client)
                result.note(f"events of a dead epoch applied after the resync: {dead}; "
                            "resyncs at " + ", ".join(f"{t - restarted:.1f}"
                                                      for t in client.resync_at)
                            + f" s after the restart (last publish at "
                            f"{published_all - restarted:.1f} s)")
                result.expect("dup == 0", result.tally.duplicated == 0)
                result.expect("in order", result.tally.out_of_order == 0)
                result.expect("one resync per channel", result.resyncs == len(CHANNELS) and
                              all(v == 1 for v in client.store.state.connection.resyncs
                                  .values()))
                result.expect("nothing from a dead epoch", dead == 0)
        finally:
            if client is not None:
                await client.aclose()
            await a.stop()
            await b.stop()
            await link.aclose()
            await redis.stop()
    return result


def _dead_epoch_after_resync(client: LiveClient) -> int:
    """Events applied in an epoch after a newer epoch of their channel was already applied."""
    dead = 0
    for epochs in client.epochs.values():
        seen: list[str] = []
        for epoch in epochs:
            if epoch in seen and epoch != seen[-1]:
                dead += 1
            elif epoch not in seen:
                seen.append(epoch)
    return dead


SCENARIOS = {"node-kill": node_kill, "redis-restart": redis_restart}
