"""The server process killed, terminated and frozen with signals while events stream.

- ``sigkill``: 20 SIGKILLs (quick: 4) during a 10,000-event stream (quick: 1,000), 5 of them
  (quick: 1) mid-frame: a relay stops reading so the server's writes stall inside a frame, and the
  client receives a truncated frame when the server dies. Redis engine (the node dies, Redis
  keeps the streams): every accepted event must arrive once, in order, with no resync.
- ``sigterm``: SIGTERM restarts (3001 to the clients) on both engines.
- ``sigstop``: SIGSTOP for longer than the heartbeat bound, with the default heartbeat (server
  ping 25 s + client grace 10 s) and a short one (1 s + 1 s); then SIGCONT.
"""

from __future__ import annotations

import asyncio
import signal
import time
from pathlib import Path

from chaos._harness import (
    LiveClient,
    Publisher,
    RedisProcess,
    Result,
    ScenarioError,
    Secrets,
    ServerProcess,
    client_config,
    record,
    settle,
    workspace,
)
from chaos._relay import Relay, send_queue

CHANNELS = ("anomalies", "detectors", "health")


async def _redis(workdir: Path, engine: str, aof: bool = False) -> RedisProcess | None:
    if engine != "redis":
        return None
    redis = RedisProcess(workdir, aof=aof)
    await redis.start()
    return redis


async def sigkill_storm(quick: bool) -> list[Result]:
    """SIGKILL storm on the Redis engine, some kills mid-frame (module docstring)."""
    events, kills, mid_wanted = (1000, 4, 1) if quick else (10_000, 20, 5)
    result = Result("SIGKILL storm", engine="redis")
    keys = Secrets()
    async with workspace() as workdir:
        redis = await _redis(workdir, "redis")
        assert redis is not None
        server = ServerProcess(keys, redis_url=redis.url, workdir=workdir)
        relay = await Relay(server.port).start()
        client: LiveClient | None = None
        try:
            await server.start()
            client = LiveClient(f"ws://127.0.0.1:{relay.port}/connection/websocket",
                                keys.token())
            await client.start()
            pub = Publisher(keys, lambda: server.port, "k")
            await pub.stream(30, CHANNELS)
            await settle(client, pub.published, 10)
            result.rss_before = server.rss()
            streaming = asyncio.create_task(pub.stream(events - 30))
            mid_tried = 0
            for k in range(kills):
                target = (k + 1) * events // (kills + 1)
                await pub.wait_total(target, streaming)
                mid = relay.cut_mid_frame < mid_wanted and (
                    kills - k <= mid_wanted - relay.cut_mid_frame or k % 4 == 1)
                if mid:
                    mid_tried += 1
                    relay.pause()
                    async with pub.lock:
                        await _fill(pub, server.port, relay)
                killed = time.monotonic()
                await server.kill()
                relay.resume()
                await server.start()
                ready = time.monotonic()
                try:
                    result.reconnect.append(await _back(client, killed, ready))
                except ScenarioError as exc:
                    why = sorted({reason[:50] for t, reason in client.lost if t >= killed})
                    tries = len([t for t, _ in client.lost if t >= killed])
                    raise ScenarioError(
                        f"{exc} after kill {k + 1} (mid-frame: {mid}); the client saw {why} "
                        f"in {tries} attempts, status {client.manager.state.status.name}, "
                        f"server alive {server.alive()}") from None
                if (lost_at := client.lost_after(killed)) is not None:
                    result.detect.append(lost_at)
            await streaming
            await settle(client, pub.published, 30)
            result.rss_after = server.rss()
            record(result, pub, client)
            reasons = sorted({reason[:40] for _, reason in client.lost})
            result.note(f"client saw: {reasons}; links {len(client.connected)}")
            result.note(f"{kills} kills, {relay.cut_mid_frame} mid-frame (verified at the relay"
                        f", {mid_tried} tried); publish retries {pub.retries}")
            result.note("detect = kill to ConnectionLost; reconnect = node listening to Connected")
            _expect_exact(result)
            result.expect("mid-frame kills", relay.cut_mid_frame >= mid_wanted)
            result.expect("no resync", result.resyncs == 0)
        finally:
            if client is not None:
                await client.aclose()
            await relay.aclose()
            await server.stop()
            await redis.stop()
    return [result]


async def _fill(pub: Publisher, port: int, relay: Relay) -> None:
    """Publish 40 KB events while the relay does not read, until the server's socket to it
    stops taking bytes (its writes now stall inside a frame), then 8 more: the backlog the
    killed server leaves undelivered stays small (a recovery reply above the client's 1 MiB
    frame limit is a failure of its own, the ``big-backlog`` scenario)."""
    flat = 0
    queued = send_queue(port, relay.upstream_ports)
    for _ in range(400):
        await pub.publish(pad=40_000)
        await asyncio.sleep(0.005)
        now = send_queue(port, relay.upstream_ports)
        flat = flat + 1 if now <= queued else 0
        queued = max(queued, now)
        if flat >= 3:
            break
    for _ in range(8):
        await pub.publish(pad=40_000)


async def _back(client: LiveClient, down: float, ready: float) -> float:
    """Seconds from the restarted server listening (``ready``, as our poll saw it) to the
    client's first Connected after the fault at ``down``; 0 if the client got there first."""
    since_down = await client.wait_connected_after(down)
    return max(0.0, down + since_down - ready)


def _expect_exact(result: Result) -> None:
    t = result.tally
    result.expect("lost == 0", t.lost == 0)
    result.expect("dup == 0", t.duplicated == 0)
    result.expect("in order", t.out_of_order == 0)


async def sigterm_restarts(quick: bool) -> list[Result]:
    """SIGTERM restarts on the memory engine and on the Redis engine."""
    out = []
    for engine in ("memory", "redis"):
        out.append(await _sigterm(engine, quick))
    return out


async def _sigterm(engine: str, quick: bool) -> Result:
    events, restarts = (600, 2) if quick else (3000, 5)
    result = Result("SIGTERM restarts", engine=engine)
    keys = Secrets()
    async with workspace() as workdir:
        redis = await _redis(workdir, engine)
        server = ServerProcess(keys, redis_url=redis.url if redis else None, workdir=workdir)
        client: LiveClient | None = None
        try:
            await server.start()
            client = LiveClient(server.url, keys.token())
            await client.start()
            pub = Publisher(keys, lambda: server.port, "t")
            await pub.stream(30, CHANNELS)
            await settle(client, pub.published, 10)
            result.rss_before = server.rss()
            streaming = asyncio.create_task(pub.stream(events - 30, CHANNELS))
            for k in range(restarts):
                target = (k + 1) * events // (restarts + 1)
                await pub.wait_total(target, streaming)
                stopped = time.monotonic()
                server.signal(signal.SIGTERM)
                code = await server.wait_exit()
                await server.start()
                ready = time.monotonic()
                result.reconnect.append(await _back(client, stopped, ready))
                if (lost_at := client.lost_after(stopped)) is not None:
                    result.detect.append(lost_at)
                result.expect("exit status 0 on SIGTERM", code == 0 and
                              result.checks.get("exit status 0 on SIGTERM", True))
            await streaming
            await settle(client, pub.published, 30)
            result.rss_after = server.rss()
            record(result, pub, client)
            reasons = sorted({reason for _, reason in client.lost})
            result.note(f"{restarts} restarts; client saw {reasons}")
            _expect_exact(result)
            if engine == "redis":
                result.expect("no resync", result.resyncs == 0)
            else:
                result.note("memory engine: history dies with the process, one resync per "
                            "channel per restart expected")
        finally:
            if client is not None:
                await client.aclose()
            await server.stop()
            if redis is not None:
                await redis.stop()
    return result


async def sigstop_partition(quick: bool) -> list[Result]:
    """SIGSTOP past the heartbeat bound, short heartbeat (and the default one unless quick)."""
    variants = [("short heartbeat (ping 1 s + grace 1 s)", 1.0, 1.0)]
    if not quick:
        variants.append(("default heartbeat (ping 25 s + grace 10 s)", 25.0, 10.0))
    return [await _sigstop(name, ping, grace, quick) for name, ping, grace in variants]


async def _sigstop(name: str, ping: float, grace: float, quick: bool) -> Result:
    events = 300 if quick else 1000
    result = Result(f"SIGSTOP partition, {name}")
    keys = Secrets()
    bound = ping + grace
    async with workspace() as workdir:
        server = ServerProcess(keys, args=["--ping-interval", str(ping)], workdir=workdir)
        client: LiveClient | None = None
        try:
            await server.start()
            client = LiveClient(server.url, keys.token(), config=client_config(ping_grace=grace))
            await client.start()
            pub = Publisher(keys, lambda: server.port, "p")
            await pub.stream(events // 2)
            await settle(client, pub.published, 10)
            result.rss_before = server.rss()
            frozen = time.monotonic()
            server.signal(signal.SIGSTOP)
            detect = await client.wait_lost_after(frozen, bound + 10)
            result.detect.append(detect)
            await asyncio.sleep(0.5)
            thawed = time.monotonic()
            server.signal(signal.SIGCONT)
            result.reconnect.append(await client.wait_connected_after(thawed))
            await pub.stream(events - events // 2)
            await settle(client, pub.published, 20)
            result.rss_after = server.rss()
            record(result, pub, client)
            why = [reason for t, reason in client.dropped if t >= frozen][:1]
            result.note(f"bound {bound:.0f} s; dropped for {why}; reconnect = SIGCONT to "
                        "Connected")
            _expect_exact(result)
            result.expect("detected within bound + 0.5 s", detect <= bound + 0.5)
            result.expect("no resync", result.resyncs == 0)
        finally:
            if client is not None:
                await client.aclose()
            await server.stop()
    return result


SCENARIOS = {"sigkill": sigkill_storm, "sigterm": sigterm_restarts, "sigstop": sigstop_partition}
