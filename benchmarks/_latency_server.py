"""The event server for the latency benchmark, in its own process so it does not share a core
with the client being measured.

Run as ``python -m benchmarks._latency_server``; the parent sends one JSON command per line on
stdin: ``["burst", rate, seconds]`` publishes ``anomaly.upserted``
events on ``anomalies`` at ``rate`` events/s for ``seconds`` (paced every millisecond, each event
stamped by the server's publish API when it is sent) and answers the line ``["done", sent,
slow_disconnects]`` on stdout; ``["stop"]`` (or end of input) shuts the server down. The first
line the child writes is the server's WebSocket URL.

The server runs on the event loop named by ``REACTIVE_AIOPS_BENCH_SERVER_LOOP`` (``asyncio``, the
default, or ``uvloop``): the same choice as ``serve --loop``, kept apart from the receivers' loop so
each side's effect can be measured on its own.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from typing import Any

from reactive_aiops import _loop
from reactive_aiops.server.app import serve_embedded
from reactive_aiops.server.config import ServerConfig, SimulationConfig

#: Distinct anomalies the burst cycles through (each publish bumps one's version).
ANOMALY_IDS = 200
SECRET = "bench-secret-for-the-latency-benchmark-only"


def _anomaly_event(n: int) -> dict[str, Any]:
    index = n % ANOMALY_IDS
    severity = ("low", "medium", "high", "critical")[index % 4]
    return {
        "type": "anomaly.upserted",
        "v": 1,
        "id": f"ev-{n}",
        "ts": 0.0,  # replaced by the server's send time
        "data": {
            "id": f"an-{index}",
            "detector_id": f"det-{index % 6}",
            "metric": "cpu.utilization",
            "severity": severity,
            "score": 3.0 + (n % 97) / 10,
            "value": float(n),
            "started_at": 1_700_000_000.0 + index,
            "state": "open",
            "version": n // ANOMALY_IDS + 1,
            "updated_at": 1_700_000_000.0 + n,
        },
    }


async def _burst(server: Any, rate: float, seconds: float, start: int) -> int:
    total = int(rate * seconds)
    sent = 0
    begin = time.perf_counter()
    while sent < total:
        due = min(total, int((time.perf_counter() - begin) * rate) + 1)
        while sent < due:
            server.publish("anomalies", _anomaly_event(start + sent))
            sent += 1
        await asyncio.sleep(0.001)
    return sent


async def _serve() -> None:
    config = ServerConfig(
        port=0,
        token_secret=SECRET,
        send_queue_size=1_000_000,
        rate_limit_per_second=1e6,
        rate_limit_burst=1_000_000,
        simulation=SimulationConfig(enabled=False),
    )
    loop = asyncio.get_running_loop()
    async with serve_embedded(config) as server:
        print(server.url, flush=True)
        published = 0
        while True:
            line = await loop.run_in_executor(None, sys.stdin.readline)
            command = json.loads(line) if line.strip() else ["stop"]
            if command[0] == "stop":
                break
            if command[0] == "burst":
                sent = await _burst(server, float(command[1]), float(command[2]), published)
                published += sent
                print(json.dumps(["done", sent, server.stats.slow_disconnects]), flush=True)


class ServerProcess:
    """Start the benchmark server in a child process; ``url`` is where to connect."""

    def __init__(self) -> None:
        self._process = subprocess.Popen(
            [sys.executable, "-m", "benchmarks._latency_server"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self._process.stdin is not None
        assert self._process.stdout is not None
        self._stdin = self._process.stdin
        self._stdout = self._process.stdout
        self.url: str = self._stdout.readline().strip()
        if not self.url.startswith("ws://"):
            self.close()
            raise RuntimeError(f"benchmark server did not start: {self.url!r}")

    def burst(self, rate: float, seconds: float) -> None:
        """Ask for a burst; returns at once (wait for it with :meth:`wait_done`)."""
        self._stdin.write(json.dumps(["burst", rate, seconds]) + "\n")
        self._stdin.flush()

    async def wait_done(self) -> tuple[int, int]:
        """``(events of the burst, slow disconnects so far)`` once the burst finished."""
        line = await asyncio.get_running_loop().run_in_executor(None, self._stdout.readline)
        _, sent, slow = json.loads(line)
        return int(sent), int(slow)

    def close(self) -> None:
        """Stop the server and reap the process."""
        try:
            self._stdin.write(json.dumps(["stop"]) + "\n")
            self._stdin.flush()
            self._stdin.close()
        except (BrokenPipeError, OSError, ValueError):
            pass
        try:
            self._process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self._process.terminate()
            self._process.wait(timeout=5)
        self._stdout.close()


if __name__ == "__main__":
    _loop.run(_serve(), os.environ.get("REACTIVE_AIOPS_BENCH_SERVER_LOOP", _loop.DEFAULT_LOOP))
