"""The Redis engine against the memory engine, and fan-out over one node vs two nodes.

Every server node runs in its own child process; a ``redis-server`` (no persistence) is started
for the run. Two comparisons, each measured in the same run:

1. publish-to-deliver at 1,000 publications/s on one channel, one client: the memory engine
   (publisher and client on one node) vs the Redis engine (published on node A, delivered by
   node B: the cluster's real path). Also publish throughput: sequential ``apublish`` calls
   per second on each engine.
2. fan-out: 2,000 clients subscribed to one channel at 10 publications/s (20,000 deliveries/s),
   all on one node vs split over two nodes (both on the Redis engine), then the two nodes pinned
   to separate cores. Reported: delivered messages/s, latency p50/p95 (p99 in the note) and the
   server CPU time per delivered message (user + system time of the node processes, from the OS).

The clients run in this process (the fan-out benchmark's plain ``websockets`` clients).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import shutil
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable

from benchmarks._harness import Row
from benchmarks.bench_fanout import HEALTH, SECRET, _client

FANOUT_CLIENTS = 2000
FANOUT_RATE = 10.0
LATENCY_RATE = 1000.0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


# -- child process: one node -----------------------------------------------------------------


async def _node(redis_url: str | None, publish: bool, rate: float, duration: float) -> None:
    from reactive_aiops.server.app import serve_embedded
    from reactive_aiops.server.config import ServerConfig, SimulationConfig

    config = ServerConfig(port=0, token_secret=SECRET, rate_limit_burst=10_000,
                          send_queue_size=100_000, redis_url=redis_url,
                          simulation=SimulationConfig(enabled=False))
    async with serve_embedded(config) as server:
        print(server.port, flush=True)
        event = {"type": "health.updated", "v": 1, "id": "b", "ts": 0.0, "data": HEALTH}

        async def one(n: int) -> None:
            await server.apublish("health", {**event, "id": f"b{n}"})

        await _publish_when_told(rate if publish else 0.0, duration, one)


async def _publish_when_told(rate: float, duration: float,
                             publish: Callable[[int], Awaitable[None]]) -> None:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while True:
        command = (await reader.readline()).strip()
        n = 0
        start = time.perf_counter()
        if command.startswith(b"flood"):  # publish N back to back, report the time taken
            for n in range(1, int(command.split()[1]) + 1):
                await publish(n)
            print(f"{n} {time.perf_counter() - start}", flush=True)
        elif command == b"go":  # publish at ``rate`` for ``duration``
            while time.perf_counter() - start < duration:
                n += 1
                await publish(n)
                await asyncio.sleep(max(0.0, n / rate - (time.perf_counter() - start)))
            print(n, flush=True)
        elif command == b"cpu":  # this process's CPU time so far
            cpu = os.times()
            print(cpu.user + cpu.system, flush=True)
        elif command in (b"stop", b""):
            return


# -- parent: processes and clients ------------------------------------------------------------


class _Node:
    def __init__(self, proc: asyncio.subprocess.Process, port: int) -> None:
        self.proc = proc
        self.port = port

    @classmethod
    async def start(cls, redis_url: str | None, *, publish: bool, rate: float,
                    duration: float, core: int | None = None) -> _Node:
        args = [sys.executable, "-m", "benchmarks.bench_cluster", "--node",
                "--rate", str(rate), "--duration", str(duration)]
        if redis_url:
            args += ["--redis-url", redis_url]
        if publish:
            args.append("--publish")
        proc = await asyncio.create_subprocess_exec(*args, stdin=subprocess.PIPE,
                                                    stdout=subprocess.PIPE)
        if core is not None:
            os.sched_setaffinity(proc.pid, {core})
        assert proc.stdout is not None
        return cls(proc, int(await proc.stdout.readline()))

    def tell(self, line: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(line.encode() + b"\n")

    async def line(self) -> str:
        assert self.proc.stdout is not None
        return (await self.proc.stdout.readline()).decode().strip()

    async def stop(self) -> None:
        self.tell("stop")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.proc.wait(), 10)
        if self.proc.returncode is None:
            self.proc.kill()
            await self.proc.wait()


async def _deliver(nodes: list[_Node], publisher: _Node, clients_per_node: list[int],
                   rate: float, duration: float) -> tuple[float, list[float], float, int]:
    """Connect clients, publish at ``rate`` from ``publisher``; return delivered/s, latencies,
    server CPU seconds (all nodes) and messages delivered."""
    latencies: list[float] = []
    counts: list[int] = []
    progress = asyncio.Event()
    tasks = []
    for node, count in zip(nodes, clients_per_node, strict=True):
        for _ in range(count):
            ready = asyncio.Event()
            tasks.append(asyncio.create_task(
                _client(node.port, True, ready, latencies, counts, progress)))
            await ready.wait()
    for node in nodes:
        node.tell("cpu")
    cpu_before = sum([float(await node.line()) for node in nodes])
    publisher.tell("go")
    start = time.perf_counter()
    published = int(await publisher.line())
    expected = published * sum(clients_per_node)
    deadline = time.perf_counter() + 5
    while sum(counts) < expected and time.perf_counter() < deadline:
        progress.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(progress.wait(), 0.1)
    elapsed = time.perf_counter() - start
    for node in nodes:
        node.tell("cpu")
    cpu = sum([float(await node.line()) for node in nodes]) - cpu_before
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    delivered = sum(counts)
    if delivered < expected:
        print(f"  ! {delivered}/{expected} delivered", file=sys.stderr)
    return delivered / elapsed, latencies, cpu, delivered


async def _latency(redis_url: str, duration: float) -> dict[str, tuple[list[float], float]]:
    out: dict[str, tuple[list[float], float]] = {}
    node = await _Node.start(None, publish=True, rate=LATENCY_RATE, duration=duration)
    _rate, lat, _cpu, _n = await _deliver([node], node, [1], LATENCY_RATE, duration)
    await node.stop()
    node = await _Node.start(None, publish=True, rate=LATENCY_RATE, duration=duration)
    node.tell("flood 3000")
    count, seconds = (await node.line()).split()
    await node.stop()
    out["memory"] = (lat, int(count) / float(seconds))
    a = await _Node.start(redis_url, publish=True, rate=LATENCY_RATE, duration=duration)
    b = await _Node.start(redis_url, publish=False, rate=LATENCY_RATE, duration=duration)
    _rate, lat, _cpu, _n = await _deliver([a, b], a, [0, 1], LATENCY_RATE, duration)
    await a.stop()
    await b.stop()
    a = await _Node.start(redis_url, publish=True, rate=LATENCY_RATE, duration=duration)
    a.tell("flood 3000")
    count, seconds = (await a.line()).split()
    await a.stop()
    out["redis"] = (lat, int(count) / float(seconds))
    return out


async def _fanout(redis_url: str, duration: float, clients: int
                  ) -> dict[str, tuple[float, list[float], float]]:
    out: dict[str, tuple[float, list[float], float]] = {}
    layouts: list[tuple[str, int, tuple[int | None, ...]]] = [
        ("one node", 1, (None,)), ("two nodes", 2, (None, None))]
    if len(os.sched_getaffinity(0)) >= 2:
        layouts.append(("two nodes, pinned to cores 0 and 1", 2, (0, 1)))
    for name, count, cores in layouts:
        nodes = [await _Node.start(redis_url, publish=i == 0, rate=FANOUT_RATE,
                                   duration=duration, core=cores[i]) for i in range(count)]
        split = [clients // count + (1 if i < clients % count else 0) for i in range(count)]
        rate, lat, cpu, delivered = await _deliver(nodes, nodes[0], split, FANOUT_RATE, duration)
        for node in nodes:
            await node.stop()
        out[name] = (rate, lat, cpu / max(delivered, 1) * 1e6)
    return out


def _p99(samples: list[float]) -> float:
    return statistics.quantiles(samples, n=100)[98] if len(samples) > 100 else float("nan")


def run(quick: bool) -> list[Row]:
    """Both comparisons against a redis-server started for the run."""
    server = shutil.which("redis-server")
    if server is None:
        print("  (bench_cluster skipped: redis-server not installed)", file=sys.stderr)
        return []
    port = _free_port()
    redis = subprocess.Popen([server, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                              "--appendonly", "no"], stdout=subprocess.DEVNULL)
    try:
        time.sleep(0.3)
        url = f"redis://127.0.0.1:{port}/0"
        duration = 2.0 if quick else 5.0
        clients = 500 if quick else FANOUT_CLIENTS
        latency = asyncio.run(_latency(url, duration))
        fanout = asyncio.run(_fanout(url, duration, clients))
    finally:
        redis.terminate()
        redis.wait()
    rows: list[Row] = []
    for engine, label in (("memory", "memory engine, one node"),
                          ("redis", "Redis engine, published on A, delivered by B")):
        lat, _ = latency[engine]
        rows.append(Row(f"publish-to-deliver @ {LATENCY_RATE:.0f}/s", label, "ms", tuple(lat),
                        note=f"p99 {_p99(lat):.2f} ms"))
    for engine, label in (("memory", "memory engine"), ("redis", "Redis engine")):
        rows.append(Row("publish throughput (sequential apublish)", label, "pub/s",
                        (latency[engine][1],), higher_is_better=True))
    for name, (rate, _lat, _cpu) in fanout.items():
        rows.append(Row(f"fan-out {clients} clients @ {FANOUT_RATE:.0f}/s: delivered", name,
                        "msg/s", (rate,), higher_is_better=True))
    for name, (_rate, lat, _cpu) in fanout.items():
        rows.append(Row(f"fan-out {clients} clients: latency", name, "ms", tuple(lat) or
                        (float("nan"),), note=f"p99 {_p99(lat):.2f} ms"))
    for name, (_rate, _lat, cpu) in fanout.items():
        rows.append(Row(f"fan-out {clients} clients: server CPU per delivered message", name,
                        "us", (cpu,)))
    return rows


def _main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--node", action="store_true", required=True)
    parser.add_argument("--redis-url", default=None)
    parser.add_argument("--publish", action="store_true")
    parser.add_argument("--rate", type=float, default=LATENCY_RATE)
    parser.add_argument("--duration", type=float, default=3.0)
    args = parser.parse_args()
    asyncio.run(_node(args.redis_url, args.publish, args.rate, args.duration))


if __name__ == "__main__":
    _main()
