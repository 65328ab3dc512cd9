"""The floor of the pipeline's receive architecture, for the latency benchmark.

What the full pipeline does around its store, without the store: ``InlineConnection`` hands each
text frame over in the socket's read callback (as ``WebSocketManager`` has it), the frame is
decoded with ``json.loads`` (as the bare loop does), and a value goes through a ``Subject`` and
``aiter_stream``'s hop to a consumer task on the loop (as the pipeline's selector stream does).
No protocol state machine, bridge, middleware, reducer or selector.

Its distance from the bare loop is what the transport and the adapter cost; the full pipeline's
distance from it is what the protocol and the store cost (docs/performance.md, round 4).
"""

from __future__ import annotations

import asyncio
import json
import time
from array import array
from typing import TYPE_CHECKING

from reactivex.subject import Subject
from websockets.asyncio.client import connect

from reactive_aiops.net.inline import InlineConnection
from reactive_aiops.ui.aio import aiter_stream

if TYPE_CHECKING:
    from benchmarks.bench_latency import Run

__all__ = ["floor_receiver"]


async def floor_receiver(
    url: str, ready: asyncio.Event, run: Run, stop: asyncio.Event, token: str
) -> None:
    """Receive inline, decode, hop to a consumer task: the pipeline minus protocol and store."""
    loop = asyncio.get_running_loop()
    rendered: Subject[int] = Subject()
    pending = array("d")  # send ts of events decoded but not yet rendered
    background: set[asyncio.Task[None]] = set()

    async with connect(
        url, max_size=None, compression=None, create_connection=InlineConnection
    ) as ws:
        assert isinstance(ws, InlineConnection)

        def on_text(frame: str) -> None:
            news = False
            for line in frame.split("\n"):
                if not line:
                    continue
                message = json.loads(line)
                if not message:
                    pong = loop.create_task(ws.send("{}"))
                    background.add(pong)
                    pong.add_done_callback(background.discard)
                    continue
                if message.get("id") == 2:
                    ready.set()
                push = message.get("push")
                if push is None or "pub" not in push:
                    continue
                pending.append(push["pub"]["data"]["ts"])
                news = True
            if news:
                rendered.on_next(len(pending))

        await ws.send(json.dumps({"id": 1, "connect": {"token": token, "name": "floor"}}))
        await ws.send(json.dumps({"id": 2, "subscribe": {"channel": "anomalies"}}))
        delivering = loop.create_task(ws.deliver(on_text, lambda _data: None))
        try:
            async with aiter_stream(rendered) as frames:
                while not stop.is_set():
                    try:
                        async with asyncio.timeout(0.05):
                            await anext(frames)
                    except TimeoutError:
                        continue
                    now = time.time()
                    run.frames += 1
                    if not pending:
                        continue
                    run.latencies.extend([now - ts for ts in pending])
                    run.renders += 1
                    run.arrived(now, len(pending))
                    del pending[:]
                    run.progressed()
        finally:
            delivering.cancel()
