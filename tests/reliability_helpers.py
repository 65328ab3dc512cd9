"""Shared helpers for the network and reliability tests (proxy, bridge, app, reliability)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import attrs

from reactive_aiops.aiops.live_store import create_live_store
from reactive_aiops.aiops.state import AppState
from reactive_aiops.core import Store
from reactive_aiops.core.events import EventMeta, event_meta
from reactive_aiops.net.bridge import StoreBridge
from reactive_aiops.net.client import WebSocketManager
from reactive_aiops.protocol.backoff import BackoffPolicy
from reactive_aiops.protocol.config import ClientConfig
from reactive_aiops.server.app import EventServer, serve_embedded
from reactive_aiops.server.auth import mint_token
from reactive_aiops.server.config import ServerConfig, SimulationConfig
from reactive_aiops.testing import FaultProxy

#: bound for something that must happen over loopback; absence checks use short windows instead
WAIT = 5.0


async def wait_until(
    predicate: Callable[[], bool], within: float = WAIT, what: str = "condition"
) -> None:
    """Poll ``predicate`` (a network side effect, not a timer) until true; fail after ``within``."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError(f"timed out after {within} s waiting for {what}")
        await asyncio.sleep(0.005)


def open_fds() -> int:
    """Open file descriptors of this process (sockets included)."""
    return len(os.listdir("/proc/self/fd"))


# -- the real server behind a FaultProxy ------------------------------------------------------

SECRET = "reliability-secret-0123456789abcdef-0123456789"


def server_config(**overrides: Any) -> ServerConfig:
    """Loopback server with no simulated source and short heartbeats (ping every second)."""
    base = ServerConfig(
        port=0,
        token_secret=SECRET,
        simulation=SimulationConfig(enabled=False),
        ping_interval=1.0,
        pong_timeout=1.0,
        close_timeout=1.0,
        history_size=20_000,
        send_queue_size=20_000,
        rate_limit_per_second=1000.0,
        rate_limit_burst=1000,
    )
    return attrs.evolve(base, **overrides)


def token(sub: str = "alice", *, ttl: float = 3600.0, secret: str = SECRET,
          roles: tuple[str, ...] = ("operator",)) -> str:
    """A valid HS256 connection token (``secret`` lets a test forge a bad one)."""
    return mint_token(secret, sub, exp=time.time() + ttl, roles=roles)


@contextlib.asynccontextmanager
async def server_behind_proxy(
    **overrides: Any,
) -> AsyncIterator[tuple[EventServer, FaultProxy]]:
    """An embedded server on port 0 and a FaultProxy in front of it; both closed on exit."""
    async with serve_embedded(server_config(**overrides)) as server:
        proxy = await FaultProxy("127.0.0.1", server.port).start()
        try:
            yield server, proxy
        finally:
            await proxy.aclose()


def proxied_url(server: EventServer, proxy: FaultProxy) -> str:
    """The server's WebSocket URL, through the proxy."""
    return f"ws://127.0.0.1:{proxy.port}{server.config.path}"


def anomaly_payload(anomaly_id: str, version: int = 1, state: str = "open") -> dict[str, Any]:
    """A contract ``Anomaly`` payload."""
    return {
        "id": anomaly_id, "detector_id": "det-1", "metric": "cpu", "severity": "high",
        "score": 9.5, "value": 97.0, "started_at": 1.0, "state": state, "version": version,
        "updated_at": 1.0, "resolved_at": None, "acknowledged_by": None,
    }


def detector_payload(detector_id: str, version: int = 1, status: str = "active") -> dict[str, Any]:
    """A contract ``Detector`` payload."""
    return {"id": detector_id, "name": detector_id, "metric": "cpu", "status": status,
            "updated_at": 1.0, "version": version}


def envelope(event_type: str, event_id: str, data: dict[str, Any]) -> dict[str, Any]:
    """An event envelope ready for ``EventServer.publish``."""
    return {"type": event_type, "v": 1, "id": event_id, "ts": 0.0, "data": data}


# -- a live client: manager + bridge + store --------------------------------------------------


def fast_config(**overrides: Any) -> ClientConfig:
    """Client settings for tests: quick backoff, a dead link noticed 1 s after a missed ping."""
    base = ClientConfig(
        backoff=BackoffPolicy(initial=0.05, maximum=0.25, reset_after=1.0),
        command_timeout=5.0,
        connect_timeout=2.0,
        max_server_ping_delay=1.0,
        health_interval=0.5,
    )
    return attrs.evolve(base, **overrides)


@attrs.define
class LiveClient:
    """What ``live_client`` yields."""

    manager: WebSocketManager
    bridge: StoreBridge
    store: Store[AppState]


@contextlib.asynccontextmanager
async def live_client(
    url: str,
    *,
    tok: str | None = None,
    config: ClientConfig | None = None,
    connect: bool = True,
    manager_kwargs: dict[str, Any] | None = None,
    **bridge_kwargs: Any,
) -> AsyncIterator[LiveClient]:
    """A WebSocketManager bridged to a live store, connected and loaded (unless
    ``connect=False``)."""
    manager = WebSocketManager(
        url,
        token=token() if tok is None else tok,
        config=config or fast_config(),
        open_timeout=2.0,
        **(manager_kwargs or {}),
    )
    bridge = StoreBridge(manager, **bridge_kwargs)
    store = create_live_store(middleware=[bridge.middleware])
    await bridge.start()
    try:
        if connect:
            async with asyncio.timeout(WAIT):
                await manager.connect()
                await bridge.wait_loaded()  # the store holds the server's state now
        yield LiveClient(manager, bridge, store)
    finally:
        await bridge.aclose()
        await manager.close()


def health_payload() -> dict[str, Any]:
    """A contract ``SystemHealth`` payload."""
    return {"status": "ok", "events_per_second": 1.0, "open_anomalies": 0,
            "detectors_active": 1, "detectors_error": 0, "updated_at": 1.0}


def seed_channels(server: EventServer, tag: str) -> None:
    """One event on each AIOps channel, so each stream has a position worth recovering."""
    server.publish("detectors", envelope("detector.upserted", f"{tag}-d", detector_payload("d1")))
    server.publish("health", envelope("health.updated", f"{tag}-h", health_payload()))


class AppliedLog:
    """Every server event the store's reducer applied, in order (its ``EventMeta``)."""

    def __init__(self, store: Store[AppState]) -> None:
        self.metas: list[EventMeta] = []
        self._sub = store.actions.subscribe(self._on_action)

    def _on_action(self, act: object) -> None:
        meta = event_meta(act)
        if meta is not None:
            self.metas.append(meta)

    def ids(self, channel: str) -> list[str | None]:
        """Event ids applied on ``channel``, in order."""
        return [m.event_id for m in self.metas if m.channel == channel]

    def dispose(self) -> None:
        """Stop recording."""
        self._sub.dispose()
