"""Interop with the official centrifuge-js SDK under node (installed with npm into tests/js)."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from server_helpers import anomaly_event, config, detector_event, token

from reactive_aiops.server.app import serve_embedded

JS_DIR = Path(__file__).parent / "js"
NODE = shutil.which("node")
pytestmark = pytest.mark.skipif(NODE is None, reason="node is not installed: JS interop skipped")


def _ensure_node_modules() -> None:
    if (JS_DIR / "node_modules" / "centrifuge").is_dir():
        return
    npm = shutil.which("npm")
    if npm is None:
        pytest.fail("node is installed but npm is not: cannot install the centrifuge SDK")
    command = "ci" if (JS_DIR / "package-lock.json").exists() else "install"
    subprocess.run([npm, command, "--no-audit", "--no-fund"], cwd=JS_DIR, check=True,
                   capture_output=True, timeout=240)


class NodeClient:
    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.events: list[dict[str, Any]] = []

    async def wait(self, predicate: Any, within: float = 15.0) -> dict[str, Any]:
        assert self.proc.stdout is not None
        async with asyncio.timeout(within):
            while True:
                for event in self.events:
                    if predicate(event):
                        self.events.remove(event)
                        return event
                line = await self.proc.stdout.readline()
                if not line:
                    raise AssertionError(f"node exited; events: {self.events}")
                self.events.append(json.loads(line))

    async def send(self, obj: dict[str, Any]) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write((json.dumps(obj) + "\n").encode())
        await self.proc.stdin.drain()


@pytest.mark.asyncio
async def test_js_sdk_connects_subscribes_recovers_and_calls_rpc() -> None:
    _ensure_node_modules()
    assert NODE is not None
    async with serve_embedded(config()) as server:
        proc = await asyncio.create_subprocess_exec(
            NODE, str(JS_DIR / "interop.js"), server.url, token(),
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE)
        node = NodeClient(proc)
        try:
            await node.wait(lambda e: e["event"] == "connected")
            first = await node.wait(lambda e: e["event"] == "subscribed")
            assert first["recoverable"]
            assert not first["wasRecovering"]
            server.publish("anomalies", anomaly_event("an-1", event_id="e1"))
            assert (await node.wait(lambda e: e["event"] == "pub"))["offset"] == 1

            await server.stop()
            server.publish("anomalies", anomaly_event("an-2", event_id="e2"))
            server.publish("anomalies", anomaly_event("an-3", event_id="e3"))
            await server.start()
            again = await node.wait(lambda e: e["event"] == "subscribed")
            assert again["wasRecovering"]
            assert again["recovered"]
            second = await node.wait(lambda e: e["event"] == "pub")
            third = await node.wait(lambda e: e["event"] == "pub")
            assert (second["offset"], second["id"]) == (2, "an-2")
            assert (third["offset"], third["id"]) == (3, "an-3")

            server.publish("detectors", detector_event("det-x"))
            await node.send({"op": "rpc", "method": "detector.pause",
                             "data": {"command_id": "js-1", "detector_id": "det-x"}})
            reply = await node.wait(lambda e: e["event"] == "rpc")
            assert reply["data"]["entity"]["status"] == "paused"
            await node.send({"op": "rpc", "method": "detector.pause",
                             "data": {"command_id": "js-2", "detector_id": "det-x"}})
            conflict = await node.wait(lambda e: e["event"] == "rpc")
            assert conflict["error"]["code"] == 409
            await node.send({"op": "exit"})
            assert await asyncio.wait_for(proc.wait(), 10) == 0
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
