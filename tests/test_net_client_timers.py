"""The client's timers wake when the connection comes up (issue 11 item 3).

The timers task sleeps until the protocol's next deadline; while connecting that is the connect
timeout. These tests make that timeout 60 s, far beyond the bounds they check, so a timers task
that is not woken by ``Connected`` fails them instead of passing late."""

from __future__ import annotations

import asyncio

import pytest
from reliability_helpers import fast_config, proxied_url, server_behind_proxy, token, wait_until

from reactive_aiops.core.connection import Connected, HealthSampled
from reactive_aiops.net.client import WebSocketManager
from reactive_aiops.protocol import CloseTransport

SLOW_CONNECT_TIMEOUT = 60.0


@pytest.mark.asyncio
async def test_health_samples_start_right_after_each_connect() -> None:
    config = fast_config(connect_timeout=SLOW_CONNECT_TIMEOUT, health_interval=0.05)
    async with server_behind_proxy() as (server, proxy):
        manager = WebSocketManager(proxied_url(server, proxy), token=token(), config=config)
        events: list[object] = []
        manager.events.subscribe(events.append)
        try:
            await manager.connect()
            for round_ in range(2):
                connected = max(i for i, e in enumerate(events) if isinstance(e, Connected))
                # The first sample after Connected comes one health_interval later: far inside
                # the 5 s wait, and 60 s away if the timers task slept on the connect timeout.
                await wait_until(
                    lambda c=connected: any(  # type: ignore[misc]
                        isinstance(e, HealthSampled) for e in events[c:]
                    ),
                    what=f"a health sample after connect #{round_ + 1}",
                )
                sample = next(e for e in events[connected:] if isinstance(e, HealthSampled))
                assert sample.last_message_at is not None
                assert manager.state.health.last_message_at == sample.last_message_at
                if round_ == 0:
                    before = sum(isinstance(e, Connected) for e in events)
                    proxy.cut()
                    await wait_until(lambda b=before: sum(  # type: ignore[misc]
                        isinstance(e, Connected) for e in events) > b, what="reconnect")
        finally:
            await manager.close()


@pytest.mark.asyncio
async def test_a_link_dying_right_after_connect_is_declared_dead_by_the_heartbeat() -> None:
    # server pings every 1 s, the client allows 1 s more: the dead-link bound is 2 s
    config = fast_config(connect_timeout=SLOW_CONNECT_TIMEOUT)
    async with server_behind_proxy() as (server, proxy):
        manager = WebSocketManager(proxied_url(server, proxy), token=token(), config=config)
        loop = asyncio.get_running_loop()
        marks: dict[str, float] = {}
        reasons: list[str] = []

        def on_event(event: object) -> None:
            if isinstance(event, Connected) and "connected" not in marks:
                proxy.blackhole()  # the link dies the moment it is up
                marks["connected"] = loop.time()
            elif isinstance(event, CloseTransport) and "dropped" not in marks:
                reasons.append(event.reason)
                marks["dropped"] = loop.time()

        manager.events.subscribe(on_event)
        try:
            await manager.connect()
            # generous for a busy machine, yet far below the 60 s connect timeout
            await wait_until(lambda: "dropped" in marks, within=15.0, what="the dead link")
            assert reasons == ["no ping"]
            print(f"FIGURE dead right after connect: declared after "
                  f"{marks['dropped'] - marks['connected']:.3f} s (bound 2.0 s)")
        finally:
            proxy.restore()
            await manager.close()
