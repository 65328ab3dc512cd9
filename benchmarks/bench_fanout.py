"""Fan-out: 10, 100 and 1,000 loopback clients on one channel at a fixed publish rate.

The server runs in a child process (so clients and server do not share one GIL); the clients
run in this process as plain ``websockets`` connections. For every client count, two servers
are measured in the same run with the same clients and the same publish rate:

- baseline: a bare ``websockets`` server whose publisher calls ``websockets.broadcast``;
- reactive-aiops: the event server (JWT connect, subscribe, offsets, history, per-connection
  bounded queues), publishing through ``EventServer.publish``.

Reported: delivered messages per second (all clients together) and publish-to-receive latency
(``receive time - ts``, where ``ts`` is stamped when the server publishes); p50/p95 in the
table, p99 in the note.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import statistics
import subprocess
import sys
import time

from benchmarks._harness import Row

CLIENT_COUNTS = (10, 100, 1000)
RATE = 20.0  # publications per second, the same for every client count
SECRET = "bench-secret-" + "0123456789abcdef" * 2
HEALTH = {"status": "ok", "events_per_second": 0.0, "open_anomalies": 0,
          "detectors_active": 0, "detectors_error": 0, "updated_at": 0.0}


# -- child process: the servers ---------------------------------------------------------------


async def _serve_bare(rate: float, duration: float) -> None:
    from websockets.asyncio.server import ServerConnection, broadcast, serve

    clients: set[ServerConnection] = set()

    async def handler(ws: ServerConnection) -> None:
        clients.add(ws)
        try:
            await ws.wait_closed()
        finally:
            clients.discard(ws)

    async with serve(handler, "127.0.0.1", 0, compression=None) as server:
        port = server.sockets[0].getsockname()[1]
        print(port, flush=True)
        # The same push our server sends (envelope and payload), so clients parse equal bytes.
        await _publish_when_told(rate, duration, lambda n: broadcast(
            clients, json.dumps({"push": {"channel": "health", "pub": {"data": {
                "type": "health.updated", "v": 1, "id": f"b{n}", "ts": time.time(),
                "data": HEALTH}, "offset": n}}}, separators=(",", ":"))))


async def _serve_ours(rate: float, duration: float) -> None:
    from reactive_aiops.server.app import serve_embedded
    from reactive_aiops.server.config import ServerConfig, SimulationConfig

    config = ServerConfig(port=0, token_secret=SECRET, rate_limit_burst=10_000,
                          simulation=SimulationConfig(enabled=False))
    async with serve_embedded(config) as server:
        print(server.port, flush=True)
        def publish(n: int) -> None:
            server.publish("health", {"type": "health.updated", "v": 1, "id": f"b{n}",
                                      "ts": 0.0, "data": HEALTH})

        await _publish_when_told(rate, duration, publish)


async def _publish_when_told(rate: float, duration: float, publish: object) -> None:
    assert callable(publish)
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    await reader.readline()  # "go": every client is connected and subscribed
    start = time.perf_counter()
    n = 0
    while time.perf_counter() - start < duration:
        n += 1
        publish(n)
        await asyncio.sleep(max(0.0, n / rate - (time.perf_counter() - start)))
    print(n, flush=True)
    await reader.readline()  # "stop"


# -- parent process: clients and measurement ---------------------------------------------------


async def _client(port: int, ours: bool, ready: asyncio.Event, latencies: list[float],
                  counts: list[int], progress: asyncio.Event) -> None:
    from websockets.asyncio.client import connect

    url = f"ws://127.0.0.1:{port}/connection/websocket" if ours else f"ws://127.0.0.1:{port}/"
    async with connect(url, compression=None, max_queue=None) as ws:
        if ours:
            from reactive_aiops.server.auth import mint_token

            tok = mint_token(SECRET, "bench", exp=time.time() + 3600)
            await ws.send(json.dumps({"id": 1, "connect": {"token": tok}}) + "\n"
                          + json.dumps({"id": 2, "subscribe": {"channel": "health"}}))
            replies = 0
            while replies < 2:
                replies += str(await ws.recv()).count('"id"')
        counts.append(0)
        slot = len(counts) - 1
        ready.set()
        async for frame in ws:
            now = time.time()
            for line in str(frame).split("\n"):
                # Only ``ts`` is needed: a string scan keeps the clients (which share this
                # machine with the server) from becoming the thing measured.
                at = line.find('"ts":')
                if at < 0 or '"pub"' not in line:
                    continue
                end = min(i for i in (line.find(",", at), line.find("}", at)) if i >= 0)
                latencies.append((now - float(line[at + 5:end])) * 1000)
                counts[slot] += 1
            progress.set()


async def _measure(n_clients: int, ours: bool, duration: float) -> tuple[float, list[float]]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "benchmarks.bench_fanout", "--serve", "ours" if ours else "bare",
        "--rate", str(RATE), "--duration", str(duration),
        stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    assert proc.stdout is not None
    assert proc.stdin is not None
    port = int(await proc.stdout.readline())
    latencies: list[float] = []
    counts: list[int] = []
    progress = asyncio.Event()
    tasks = []
    for _ in range(n_clients):
        ready = asyncio.Event()
        tasks.append(asyncio.create_task(_client(port, ours, ready, latencies, counts, progress)))
        await ready.wait()
    start = time.perf_counter()
    proc.stdin.write(b"go\n")
    published = int(await proc.stdout.readline())
    # Let in-flight messages land (bounded wait), then stop.
    deadline = time.perf_counter() + 5
    while sum(counts) < published * n_clients and time.perf_counter() < deadline:
        progress.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(progress.wait(), 0.1)
    elapsed = time.perf_counter() - start
    proc.stdin.write(b"stop\n")
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    await proc.wait()
    delivered = sum(counts)
    if delivered < published * n_clients:
        print(f"  ! {n_clients} clients ({'ours' if ours else 'bare'}): "
              f"{delivered}/{published * n_clients} delivered", file=sys.stderr)
    return delivered / elapsed, latencies


def run(quick: bool) -> list[Row]:
    """Measure both servers for each client count; returns throughput and latency rows."""
    duration = 2.0 if quick else 5.0
    rows: list[Row] = []
    for n_clients in CLIENT_COUNTS:
        results = {}
        for ours in (False, True):
            results[ours] = asyncio.run(_measure(n_clients, ours, duration))
        for ours, variant in ((False, "websockets.broadcast (bare)"),
                              (True, "reactive-aiops server")):
            rate, lat = results[ours]
            rows.append(Row(f"fan-out {n_clients} clients: delivered", variant, "msg/s",
                            (rate,), note=f"{RATE:.0f} pub/s", higher_is_better=True))
        for ours, variant in ((False, "websockets.broadcast (bare)"),
                              (True, "reactive-aiops server")):
            _, lat = results[ours]
            p99 = statistics.quantiles(lat, n=100)[98] if len(lat) > 100 else float("nan")
            rows.append(Row(f"fan-out {n_clients} clients: latency", variant, "ms",
                            tuple(lat) or (float("nan"),), note=f"p99 {p99:.2f} ms"))
    return rows


def _main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--serve", choices=("bare", "ours"), required=True)
    parser.add_argument("--rate", type=float, default=RATE)
    parser.add_argument("--duration", type=float, default=3.0)
    args = parser.parse_args()
    serve = _serve_ours if args.serve == "ours" else _serve_bare
    asyncio.run(serve(args.rate, args.duration))


if __name__ == "__main__":
    _main()
