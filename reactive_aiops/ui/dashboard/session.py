"""One live client session: (optionally) the embedded server, the client, the bridge, the store.

:func:`open_session` is what the dashboard, the headless run, the tests and the latency
benchmark share: with no URL it starts the embedded server with the simulated source on the
running loop and mints an operator token for it; then it builds the live store, connects the
``WebSocketManager`` through the bridge, waits until the bridge loaded the server's state
(detectors, open anomalies, the last health) and yields a :class:`Session`. Leaving the block closes
the client and stops the server.
"""

from __future__ import annotations

import contextlib
import secrets
import time
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Any

import attrs

from reactive_aiops.aiops.state import AppState
from reactive_aiops.core.store import Store

if TYPE_CHECKING:
    # Only for annotations: the network stack and the server load when a session opens.
    from reactive_aiops.net.bridge import StoreBridge
    from reactive_aiops.net.client import WebSocketManager
    from reactive_aiops.protocol.config import ClientConfig
    from reactive_aiops.server.app import EventServer
    from reactive_aiops.server.config import ServerConfig

__all__ = ["DEFAULT_CHANNELS", "Session", "open_session"]

#: The channels the dashboard shows.
DEFAULT_CHANNELS = ("detectors", "anomalies", "health")


@attrs.define
class Session:
    """A running session. ``server`` is the embedded ``EventServer`` (None with an external URL)."""

    store: Store[AppState]
    client: WebSocketManager
    bridge: StoreBridge
    url: str
    server: EventServer | None = None


def _embedded_config(rate: float, seed: int, simulate: bool) -> ServerConfig:
    from reactive_aiops.server.config import ServerConfig, SimulationConfig

    return ServerConfig(
        port=0,
        # A fresh secret per run: the token minted below is the only one that will ever work.
        token_secret=secrets.token_hex(32),
        simulation=SimulationConfig(enabled=simulate, seed=seed, samples_per_second=rate),
    )


def operator_token(secret: str, *, user: str = "operator", ttl: float = 86_400.0) -> str:
    """A connection token with the ``operator`` role (commands allowed) for ``user``."""
    from reactive_aiops.server.auth import mint_token

    return mint_token(secret, user, exp=time.time() + ttl, roles=("operator",))


@contextlib.asynccontextmanager
async def open_session(
    url: str | None = None,
    *,
    token: str | None = None,
    rate: float = 20.0,
    seed: int = 0,
    simulate: bool = True,
    channels: tuple[str, ...] = DEFAULT_CHANNELS,
    user: str = "operator",
    clock: Callable[[], float] = time.monotonic,
    connect_timeout: float = 10.0,
    server_config: ServerConfig | None = None,
    client_config: ClientConfig | None = None,
    command_ttl: float | None = None,
) -> AsyncIterator[Session]:
    """Run a live session for the duration of the block.

    ``url=None`` starts the embedded server (``simulate``: with the simulated source at ``rate``
    samples/s from ``seed``; ``server_config`` overrides the whole config) and connects to it with
    a fresh operator token. With a ``url``, ``token`` is the connection token to use. ``clock`` is
    the optimistic journal's clock and ``command_ttl`` its time-to-live for an unconfirmed
    command (default: the live store's); ``client_config`` is the ``ClientConfig`` for the
    ``WebSocketManager`` (backoff, command timeout). Raises ``ConnectionError`` when the client
    cannot connect (bad token, refused) and ``TimeoutError`` after ``connect_timeout`` seconds.
    """
    async with contextlib.AsyncExitStack() as stack:
        server = None
        if url is None:
            from reactive_aiops.server.app import serve_embedded

            config = server_config or _embedded_config(rate, seed, simulate)
            server = await stack.enter_async_context(serve_embedded(config))
            url = server.url
            token = operator_token(config.token_secret, user=user)
        session = await stack.enter_async_context(
            _connect(
                url,
                token or "",
                channels=channels,
                clock=clock,
                within=connect_timeout,
                client_config=client_config,
                command_ttl=command_ttl,
            )
        )
        session.server = server
        yield session


@contextlib.asynccontextmanager
async def _connect(
    url: str,
    token: str,
    *,
    channels: tuple[str, ...],
    clock: Callable[[], float],
    within: float,
    client_config: ClientConfig | None,
    command_ttl: float | None,
) -> AsyncIterator[Session]:
    import asyncio

    from reactive_aiops.aiops.live_store import create_live_store
    from reactive_aiops.net.bridge import StoreBridge
    from reactive_aiops.net.client import WebSocketManager

    client = WebSocketManager(url, token=token, config=client_config)
    bridge = StoreBridge(client, channels=channels)
    extra: dict[str, Any] = {} if command_ttl is None else {"command_ttl": command_ttl}
    store = create_live_store(clock=clock, middleware=[bridge.middleware], **extra)
    await bridge.start()
    try:
        async with asyncio.timeout(within):
            await client.connect()
            await bridge.wait_loaded()  # the bridge loads the server's state (aiops.snapshot)
        yield Session(store=store, client=client, bridge=bridge, url=url)
    finally:
        await bridge.aclose()
        await client.close()
