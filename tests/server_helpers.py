"""Shared helpers for the server tests: tokens, configs, a raw JSON-protocol client, events."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import time
from typing import Any

from websockets.asyncio.client import ClientConnection, connect

from reactive_aiops.server.auth import mint_token
from reactive_aiops.server.config import ServerConfig, SimulationConfig

SECRET = "test-secret-" + "0123456789abcdef" * 4
API_KEY = "test-api-key"


def token(sub: str = "alice", *, ttl: float = 3600, channels: list[str] | None = None,
          roles: tuple[str, ...] = ("operator",), now: float | None = None) -> str:
    """A valid HS256 connection token."""
    base = time.time() if now is None else now
    return mint_token(SECRET, sub, exp=base + ttl, channels=channels, roles=roles)


def config(**overrides: Any) -> ServerConfig:
    """A loopback config with no simulated source (tests publish what they need)."""
    base = ServerConfig(port=0, token_secret=SECRET, api_key=API_KEY,
                        simulation=SimulationConfig(enabled=False))
    import attrs

    return attrs.evolve(base, **overrides)


def detector_event(detector_id: str = "det-x", *, version: int = 1,
                   status: str = "active", event_id: str = "e1") -> dict[str, Any]:
    """A valid ``detector.upserted`` envelope."""
    return {"type": "detector.upserted", "v": 1, "id": event_id, "ts": 0.0,
            "data": {"id": detector_id, "name": "cpu", "metric": "cpu", "status": status,
                     "updated_at": 1.0, "version": version}}


def anomaly_event(anomaly_id: str = "an-1", *, event_id: str = "e2",
                  state: str = "open") -> dict[str, Any]:
    """A valid ``anomaly.upserted`` envelope."""
    return {"type": "anomaly.upserted", "v": 1, "id": event_id, "ts": 0.0,
            "data": {"id": anomaly_id, "detector_id": "det-x", "metric": "cpu",
                     "severity": "high", "score": 9.5, "value": 97.0, "started_at": 1.0,
                     "state": state, "version": 1, "updated_at": 1.0, "resolved_at": None,
                     "acknowledged_by": None}}


class RawClient:
    """A hand-driven Centrifuge JSON client over a real socket, for exact assertions."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.next_id = 1
        self.pushes: list[dict[str, Any]] = []

    @classmethod
    async def open(cls, url: str, **kwargs: Any) -> RawClient:
        return cls(await connect(url, **kwargs))

    async def send(self, method: str, body: dict[str, Any]) -> int:
        cmd_id = self.next_id
        self.next_id += 1
        await self.ws.send(json.dumps({"id": cmd_id, method: body}))
        return cmd_id

    async def recv_messages(self, within: float = 5.0) -> list[dict[str, Any]]:
        frame = await asyncio.wait_for(self.ws.recv(), within)
        assert isinstance(frame, str)
        return [json.loads(line) for line in frame.split("\n")]

    async def call(self, method: str, body: dict[str, Any], within: float = 5.0
                   ) -> dict[str, Any]:
        """Send a command and return its reply; pushes seen meanwhile go to ``pushes``."""
        cmd_id = await self.send(method, body)
        reply: dict[str, Any] | None = None
        while reply is None:
            # Read the whole frame: pushes batched after the reply must not be dropped.
            for msg in await self.recv_messages(within):
                if msg.get("id") == cmd_id:
                    reply = msg
                elif "push" in msg:
                    self.pushes.append(msg["push"])
        return reply

    async def next_push(self, within: float = 5.0) -> dict[str, Any]:
        while not self.pushes:
            for msg in await self.recv_messages(within):
                if "push" in msg:
                    self.pushes.append(msg["push"])
        return self.pushes.pop(0)

    async def connect(self, tok: str) -> dict[str, Any]:
        return await self.call("connect", {"token": tok, "name": "raw"})

    async def close(self) -> None:
        await self.ws.close()

    async def closed_code(self, within: float = 5.0) -> int | None:
        """Read until the server closes; return the close code."""
        try:
            async with asyncio.timeout(within):
                while True:
                    await self.ws.recv()
        except Exception:
            pass
        return self.ws.close_code


async def serve_until_sigterm(*args: str) -> None:
    """Run ``reactive-aiops serve --port 0`` (plus ``args``) as a process, connect a client,
    SIGTERM the server: the client must be closed with 3001 and the process exit with 0."""
    env = {**os.environ, "REACTIVE_AIOPS_TOKEN_SECRET": SECRET}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "reactive_aiops", "serve", "--port", "0", "--log-level", "WARNING",
        *args, env=env, stdout=asyncio.subprocess.PIPE)
    try:
        assert proc.stdout is not None
        line = (await asyncio.wait_for(proc.stdout.readline(), 20)).decode()
        url = line.strip().rsplit(" ", 1)[-1]
        assert url.startswith("ws://127.0.0.1:")
        client = await RawClient.open(url)
        assert "connect" in await client.connect(token())
        proc.send_signal(signal.SIGTERM)
        assert await client.closed_code() == 3001
        assert await asyncio.wait_for(proc.wait(), 20) == 0
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
