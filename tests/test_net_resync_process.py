"""In-order resync against a real ``reactive-aiops serve`` process, SIGKILLed and started again
on the same port while events stream in through the HTTP publish API (issue 11 item 1)."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import signal
import sys
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

import pytest
from reliability_helpers import (
    SECRET,
    AppliedLog,
    anomaly_payload,
    envelope,
    fast_config,
    live_client,
    wait_until,
)

API_KEY = "resync-process-test-key"
EVENTS = 900
KILL_AT = (300, 600)
RATE = 300.0  # events per second, as in issue 11's run


class ServerProcess:
    """``python -m reactive_aiops serve`` on 127.0.0.1; ``port`` stays the same across restarts."""

    def __init__(self) -> None:
        self.port = 0
        self.proc: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        env = {
            **os.environ,
            "REACTIVE_AIOPS_TOKEN_SECRET": SECRET,
            "REACTIVE_AIOPS_API_KEY": API_KEY,
        }
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "reactive_aiops", "serve", "--host", "127.0.0.1",
            "--port", str(self.port), "--no-simulation", "--ping-interval", "1",
            "--history-size", "20000", "--log-level", "WARNING",
            env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL,
        )
        assert self.proc.stdout is not None
        async with asyncio.timeout(30):
            while True:
                line = (await self.proc.stdout.readline()).decode()
                if not line:
                    raise AssertionError("serve exited before printing its URL")
                if "ws://127.0.0.1:" in line:
                    break
        url = next(word for word in line.split() if word.startswith("ws://"))
        self.port = int(url.split(":")[2].split("/")[0])

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/connection/websocket"

    async def kill(self) -> None:
        """SIGKILL: no close frames, no goodbye; memory (history, epochs) is gone."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        await self.proc.wait()

    async def stop(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            await self.kill()


@contextlib.asynccontextmanager
async def server_process() -> AsyncIterator[ServerProcess]:
    server = ServerProcess()
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


async def http_publish(port: int, channel: str, data: dict[str, Any]) -> bool:
    """POST /api/publish; True when the server answered 200."""
    body = json.dumps({"channel": channel, "data": data}).encode()
    head = (
        f"POST /api/publish HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        f"Authorization: apikey {API_KEY}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    ).encode()
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
    except OSError:
        return False
    try:
        writer.write(head + body)
        status = await reader.readline()
        await reader.read()
    except OSError:
        return False
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
    return b" 200 " in status


@pytest.mark.asyncio
async def test_sigkill_mid_stream_every_epoch_reaches_the_store_contiguous_and_in_order() -> None:
    async with server_process() as server, live_client(
        server.url, config=fast_config()
    ) as live:
        applied = AppliedLog(live.store)
        accepted: list[int] = []
        since_last_start: list[int] = []
        loop = asyncio.get_running_loop()
        start = loop.time()
        for i in range(EVENTS):
            if i in KILL_AT:
                kills = KILL_AT.index(i)
                # each kill hits a client that is back on the previous process (a busy machine
                # may need longer than the 1 s between kills to start it and reconnect)
                await wait_until(
                    lambda k=kills: live.store.state.connection.resyncs.get("anomalies", 0) == k,
                    within=15, what="the client back on the restarted server",
                )
                await server.kill()
                await server.start()  # same port: the client reconnects, resyncs, reloads
                since_last_start = []
            event = envelope("anomaly.upserted", f"s-{i}", anomaly_payload(f"a{i}"))
            if await http_publish(server.port, "anomalies", event):
                accepted.append(i)
                since_last_start.append(i)
            # paced like a detection service: the stream goes on while the client reloads
            await asyncio.sleep(max(0.0, start + (i + 1) / RATE - loop.time()))
        await wait_until(
            lambda: all(f"a{i}" in live.store.state.anomalies for i in since_last_start),
            within=15, what="every event published since the last restart",
        )
        async with asyncio.timeout(10):
            await live.bridge.wait_loaded()
        anomalies = live.store.state.anomalies

        by_stream: dict[tuple[str, str | None], list[int]] = {}
        for meta in applied.metas:
            if meta.offset is not None:
                by_stream.setdefault((meta.channel, meta.epoch), []).append(meta.offset)
        pairs = [pair for offsets in by_stream.values() for pair in itertools.pairwise(offsets)]
        inversions = sum(1 for a, b in pairs if b <= a)
        gaps = sum(1 for a, b in pairs if b > a + 1)
        repeated = [eid for eid, n in Counter(m.event_id for m in applied.metas).items() if n > 1]
        print(f"FIGURE SIGKILL x{len(KILL_AT)} at {RATE:.0f} ev/s: accepted {len(accepted)} of "
              f"{EVENTS}, applied as events {len(applied.metas)}, streams {len(by_stream)}, "
              f"inversions {inversions}, gaps {gaps}, repeated ids {len(repeated)}, "
              f"loads {live.bridge.loads}")
        assert inversions == 0  # one ordered sequence per channel and epoch
        assert gaps == 0  # and contiguous
        assert repeated == []
        resyncs = live.store.state.connection.resyncs
        assert resyncs.get("anomalies") == len(KILL_AT)
        # the store holds everything the last server process accepted
        assert all(f"a{i}" in anomalies for i in since_last_start)
        assert live.bridge.reload_errors == []
        assert live.bridge.loading == frozenset()
