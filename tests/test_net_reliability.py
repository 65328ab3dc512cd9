"""Reliability scenarios: the real embedded server, the real client and store, faults injected
by a FaultProxy in between. Figures measured here are quoted in docs/reliability.md (run with
``-s`` to print them)."""

from __future__ import annotations

import asyncio
import gc
import random
from collections.abc import Callable
from typing import Any

import pytest
from reactivex import abc
from reliability_helpers import (
    SECRET,
    WAIT,
    AppliedLog,
    anomaly_payload,
    envelope,
    fast_config,
    live_client,
    open_fds,
    proxied_url,
    seed_channels,
    server_behind_proxy,
    token,
    wait_until,
)

from reactive_aiops.aiops import AcknowledgeAnomaly
from reactive_aiops.aiops.live_store import create_live_store
from reactive_aiops.core.connection import (
    Connected,
    ConnectionLost,
    Status,
)
from reactive_aiops.net.bridge import AIOPS_CHANNELS, StoreBridge
from reactive_aiops.net.client import WebSocketManager
from reactive_aiops.protocol import CloseTransport, Subscribed
from reactive_aiops.protocol.backoff import BackoffPolicy
from reactive_aiops.server.app import EventServer
from reactive_aiops.testing.clock import ManualClock

STREAM = 10_000


def _figure(name: str, value: object) -> None:
    print(f"FIGURE {name}: {value}")


def _all_subscribed(server: EventServer, channels: tuple[str, ...] = AIOPS_CHANNELS) -> bool:
    return all(server.core.broker.subscriber_count(c) == 1 for c in channels)


async def _publish_stream(server: EventServer, first: int, count: int, tag: str) -> list[str]:
    """Publish ``count`` anomaly events (ids ``tag-i``) in small bursts; returns their ids."""
    ids = []
    for i in range(first, first + count):
        eid = f"{tag}-{i}"
        payload = anomaly_payload(f"a{i % 100}", version=i // 100 + 1)
        server.publish("anomalies", envelope("anomaly.upserted", eid, payload))
        ids.append(eid)
        if i % 100 == 99:
            await asyncio.sleep(0)  # let the server's writers and the client run
    return ids


class Timeline:
    """Loop-time stamps of the client's connection facts."""

    def __init__(self, manager: WebSocketManager) -> None:
        self.loop = asyncio.get_running_loop()
        self.connected: list[float] = []
        self.lost: list[tuple[float, ConnectionLost]] = []
        #: the client's own decisions to drop the socket (e.g. "no ping"), before it closes
        self.dropped: list[tuple[float, str]] = []
        self._sub: abc.DisposableBase = manager.events.subscribe(self._on)

    def connected_more_than(self, count: int) -> Callable[[], bool]:
        """A predicate: connected more than ``count`` times so far."""
        return lambda: len(self.connected) > count

    def _on(self, act: object) -> None:
        if isinstance(act, CloseTransport):
            self.dropped.append((self.loop.time(), act.reason))
        elif isinstance(act, Connected):
            self.connected.append(self.loop.time())
        elif isinstance(act, ConnectionLost):
            self.lost.append((self.loop.time(), act))


@pytest.mark.asyncio
async def test_server_killed_and_restarted_during_10000_events_loses_and_duplicates_none() -> None:
    async with server_behind_proxy() as (server, proxy), live_client(
        proxied_url(server, proxy)
    ) as live:
        applied = AppliedLog(live.store)
        timeline = Timeline(live.manager)
        seed_channels(server, "seed")
        await wait_until(lambda: _all_subscribed(server))
        published: list[str] = []
        recoveries: list[float] = []
        chunk = STREAM // 5
        for part in range(5):
            published += await _publish_stream(server, part * chunk, chunk, "s")
            if part == 4:
                break
            # kill: every client socket reset at once, then the process restarts (history kept,
            # as with a persistent broker); the stream goes on while it is down
            killed_at = timeline.loop.time()
            connects = len(timeline.connected)
            proxy.cut()
            await server.restart()
            published += await _publish_stream(server, STREAM + part * 50, 50, "r")
            await wait_until(timeline.connected_more_than(connects), what="reconnect")
            recoveries.append(timeline.connected[-1] - killed_at)
        await wait_until(
            lambda: len(applied.ids("anomalies")) >= len(published), within=30, what="all events"
        )
        await asyncio.sleep(0.05)  # anything extra (a duplicate) would arrive now
        assert applied.ids("anomalies") == published  # every event, once, in order
        state = live.store.state
        assert dict(state.connection.resyncs) == {}
        assert state.dedupe.duplicates == 0
        assert state.connection.health.reconnects >= 4
        _figure("kill/restart: events", len(published))
        _figure("kill/restart: reconnect after kill (s)", [round(r, 3) for r in recoveries])
        _figure("kill/restart: duplicates dropped by the client", state.connection.health
                .duplicates_dropped)


@pytest.mark.asyncio
async def test_history_lost_on_restart_resyncs_once_per_channel_and_drops_the_old_epoch() -> None:
    async with server_behind_proxy() as (server, proxy), live_client(
        proxied_url(server, proxy)
    ) as live:
        applied = AppliedLog(live.store)
        seed_channels(server, "old")
        await wait_until(lambda: _all_subscribed(server))
        before = await _publish_stream(server, 0, 1000, "old")
        await wait_until(lambda: len(applied.ids("anomalies")) == 1000)
        old_epoch = applied.metas[-1].epoch
        proxy.refuse()
        proxy.cut()
        lost = await _publish_stream(server, 1000, 300, "old")  # the client never sees these
        await server.restart(keep_history=False)  # the history dies with the process
        proxy.accept_again()
        await wait_until(lambda: sum(live.store.state.connection.resyncs.values()) == 3)
        # published after the reload: each arrives as an event (one published during the
        # reload may come inside the snapshot instead, which is right but not countable here)
        async with asyncio.timeout(WAIT):
            await live.bridge.wait_loaded()
        after = await _publish_stream(server, 0, 1000, "new")
        await wait_until(lambda: len(applied.ids("anomalies")) == 2000, what="new events")
        await asyncio.sleep(0.05)
        ids = applied.ids("anomalies")
        assert ids == before + after
        assert not set(lost) & set(ids)
        resynced = [m for m in applied.metas if m.channel == "anomalies"][len(before) :]
        assert {m.epoch for m in resynced} == {server.core.broker.position("anomalies")[1]}
        assert old_epoch not in {m.epoch for m in resynced}
        assert dict(live.store.state.connection.resyncs) == {c: 1 for c in AIOPS_CHANNELS}
        assert live.bridge.reload_errors == []


@pytest.mark.asyncio
async def test_random_cuts_even_mid_subscribe_keep_requested_channels_and_leak_nothing() -> None:
    rng = random.Random(20261129)
    fds_before = open_fds()
    tasks_before = asyncio.all_tasks()
    loop = asyncio.get_running_loop()
    async with server_behind_proxy() as (server, proxy):
        seed_channels(server, "seed")
        for i in range(4):
            server.publish(f"detectors:d{i}", envelope("detector.upserted", f"dd{i}",
                                                       {**_detector(f"d{i}")}))
        manager = WebSocketManager(
            proxied_url(server, proxy), token=token(), config=fast_config(), open_timeout=2.0
        )
        wanted: dict[str, abc.DisposableBase] = {}

        def want(channel: str) -> None:
            if channel not in wanted:  # one reference per wanted channel
                wanted[channel] = manager.publications(channel).subscribe(
                    on_error=lambda _e: None
                )

        for channel in AIOPS_CHANNELS:
            want(channel)
        # cut right after the connect reply: the subscribe replies are then still in flight
        mid_subscribe_cuts = 0
        subscribed_since_connect = 0
        cuts_left = 3

        def on_event(event: object) -> None:
            nonlocal cuts_left, mid_subscribe_cuts, subscribed_since_connect
            if isinstance(event, Subscribed):
                subscribed_since_connect += 1
            elif isinstance(event, Connected):
                subscribed_since_connect = 0
                if cuts_left:
                    cuts_left -= 1
                    loop.call_soon(cut_mid_subscribe)

        def cut_mid_subscribe() -> None:
            nonlocal mid_subscribe_cuts
            if subscribed_since_connect < len(wanted):
                mid_subscribe_cuts += 1
            proxy.cut()

        events = manager.events.subscribe(on_event)
        proxy.delay(0.03, "down")
        manager_task = loop.create_task(manager.connect())
        await wait_until(lambda: cuts_left == 0, what="three cuts on connect")
        proxy.delay(0)
        await asyncio.wait_for(manager_task, 10)
        # then cuts at random moments while the application changes its channel set
        for _ in range(12):
            # a random moment in a connection's life: handshake, connect, subscribe or live
            await wait_until(lambda: proxy.active > 0, what="a connection to cut")
            await asyncio.sleep(rng.uniform(0.0, 0.04))
            if rng.random() < 0.5 and len(wanted) > 1:
                wanted.pop(rng.choice(sorted(wanted))).dispose()
            else:
                want(rng.choice([*AIOPS_CHANNELS, "detectors:d0", "detectors:d1", "detectors:d2"]))
            proxy.cut()
        every = {*AIOPS_CHANNELS, "detectors:d0", "detectors:d1", "detectors:d2", "detectors:d3"}
        await wait_until(
            lambda: all(
                server.core.broker.subscriber_count(c) == (1 if c in wanted else 0) for c in every
            ),
            what="server-side subscriptions == requested",
        )
        assert manager.state.status is Status.CONNECTED
        assert set(manager._protocol.channels()) == set(wanted)  # the client agrees
        assert mid_subscribe_cuts >= 1
        assert proxy.accepted >= 16  # every cut above hit a live connection
        _figure("random cuts: connections cut", proxy.accepted - 1)
        for sub in wanted.values():
            sub.dispose()
        events.dispose()
        await manager.close()
    await asyncio.sleep(0)
    assert asyncio.all_tasks() - tasks_before == set()
    await wait_until(lambda: open_fds() <= fds_before, what="sockets closed")


def _detector(detector_id: str) -> dict[str, Any]:
    return {"id": detector_id, "name": detector_id, "metric": "cpu", "status": "active",
            "updated_at": 1.0, "version": 1}


@pytest.mark.asyncio
async def test_silent_blackhole_is_detected_by_the_heartbeat_then_recovers_with_no_loss() -> None:
    config = fast_config()
    async with server_behind_proxy() as (server, proxy), live_client(
        proxied_url(server, proxy), config=config
    ) as live:
        applied = AppliedLog(live.store)
        timeline = Timeline(live.manager)
        seed_channels(server, "seed")
        await wait_until(lambda: _all_subscribed(server))
        published = await _publish_stream(server, 0, 500, "b")
        await wait_until(lambda: len(applied.ids("anomalies")) == 500)
        # the client's documented bound: the server's ping interval plus max_server_ping_delay,
        # counted from the last message received (which was just now)
        bound = server.config.ping_interval + config.max_server_ping_delay
        start = timeline.loop.time()
        proxy.blackhole()
        published += await _publish_stream(server, 500, 500, "b")  # into the hole
        await wait_until(lambda: bool(timeline.lost), within=bound + 3, what="dead link")
        decided_at, why = timeline.dropped[0]
        assert why == "no ping"
        assert decided_at - start <= bound + 0.25
        # the client aborts a dead link (no closing handshake), so the state knows at once
        reported = timeline.lost[0][0] - start
        assert reported <= bound + 0.25
        assert timeline.lost[0][1].reason == "no ping"
        healed = timeline.loop.time()
        proxy.restore()
        await wait_until(lambda: bool(timeline.connected), within=10, what="reconnect")
        await wait_until(lambda: len(applied.ids("anomalies")) >= 1000, what="catch up")
        caught_up = timeline.loop.time()
        await asyncio.sleep(0.05)
        assert applied.ids("anomalies") == published  # nothing lost, nothing twice
        assert dict(live.store.state.connection.resyncs) == {}
        _figure("blackhole: heartbeat bound (s)", bound)
        _figure("blackhole: dead link decided after (s)", round(decided_at - start, 3))
        _figure("blackhole: ConnectionLost in the store after (s)", round(reported, 3))
        _figure("blackhole: connected again after restore (s)",
                round(timeline.connected[0] - healed, 3))
        _figure("blackhole: caught up after restore (s)", round(caught_up - healed, 3))


@pytest.mark.asyncio
async def test_rejected_token_stops_retrying_with_the_reason() -> None:
    clock = ManualClock(1000.0)
    forged = token(secret=SECRET[::-1])
    async with server_behind_proxy() as (server, proxy), live_client(
        proxied_url(server, proxy), tok=forged, connect=False, manager_kwargs={"clock": clock}
    ) as live:
        clock.add_listener(live.manager.poke)
        with pytest.raises(ConnectionError):
            await asyncio.wait_for(live.manager.connect(), 5)
        state = live.store.state.connection
        assert state.status is Status.FAILED
        assert state.code == 3500
        assert "token" in state.reason
        clock.advance(60.0)  # hundreds of backoff periods on the client's clock
        await asyncio.sleep(0.05)  # time for an attempt to reach the proxy, were one made
        assert proxy.accepted == 1


@pytest.mark.asyncio
async def test_terminal_disconnect_code_stops_retrying_with_the_reason() -> None:
    clock = ManualClock(1000.0)
    async with server_behind_proxy() as (server, proxy), live_client(
        proxied_url(server, proxy), manager_kwargs={"clock": clock}
    ) as live:
        clock.add_listener(live.manager.poke)
        # control: a reconnectable close (3001 shutdown) is retried once the clock moves
        await server.restart()
        await wait_until(lambda: live.store.state.connection.status is Status.RECONNECTING)
        clock.advance(1.0)
        await wait_until(lambda: live.store.state.connection.status is Status.CONNECTED)
        assert proxy.accepted == 2
        await server.stop(code=3503, reason="force disconnect")
        await wait_until(lambda: live.store.state.connection.status is Status.FAILED)
        state = live.store.state.connection
        assert (state.code, state.reason) == (3503, "force disconnect")
        await server.start()
        clock.advance(60.0)
        await asyncio.sleep(0.05)
        assert proxy.accepted == 2


async def _storm(policy: BackoffPolicy, clients: int = 200) -> tuple[int, int, float]:
    """``clients`` connected clients, a server restart; returns (attempts, worst 100 ms window,
    spread in seconds) measured at the proxy. Jitter is seeded per client (deterministic)."""
    config = fast_config(backoff=policy)
    async with server_behind_proxy(max_channels_per_connection=4) as (server, proxy):
        managers = [
            WebSocketManager(
                proxied_url(server, proxy),
                token=token(f"u{i}"),
                config=config,
                rand=random.Random(i).random,
            )
            for i in range(clients)
        ]
        subs = [m.publications("health").subscribe(on_error=lambda _e: None) for m in managers]
        try:
            async with asyncio.timeout(30):
                await asyncio.gather(*(m.connect() for m in managers))
            await wait_until(lambda: server.core.broker.subscriber_count("health") == clients)
            first_wave = len(proxy.attempt_times)
            # One process hosts all 200 clients, the proxy and the server here, so a collector
            # pause in it would fire many clients' timers together -- a harness artifact that
            # separate client processes never share. Collect now, and not during the window.
            gc.collect()
            gc.disable()
            try:
                await server.restart()  # every client is told 3001 shutdown at once
                await wait_until(
                    lambda: server.core.broker.subscriber_count("health") == clients, within=30
                )
            finally:
                gc.enable()
        finally:
            for sub in subs:
                sub.dispose()
            await asyncio.gather(*(m.close() for m in managers))
        times = sorted(proxy.attempt_times[first_wave:])
        worst = max(sum(1 for t in times if start <= t < start + 0.1) for start in times)
        return len(times), worst, times[-1] - times[0]


@pytest.mark.asyncio
async def test_reconnect_storm_of_200_clients_with_the_default_backoff() -> None:
    # the production policy, as shipped (first windows [0, 1 s], reset after 1 s up)
    attempts, worst, spread = await _storm(BackoffPolicy())
    _figure("storm (default backoff): attempts / worst 100 ms / spread",
            (attempts, worst, round(spread, 3)))
    assert attempts >= 200
    assert worst < attempts / 4  # under 25 % of the attempts in any 100 ms


@pytest.mark.asyncio
async def test_reconnecting_to_a_quiet_channel_needs_no_resync() -> None:
    # regression: the broker used to forget a never-published stream with its last subscriber
    # and recreate it with a new epoch, so every reconnect resynced quiet channels
    async with server_behind_proxy() as (server, proxy), live_client(
        proxied_url(server, proxy), channels=("health",)
    ) as live:
        timeline = Timeline(live.manager)
        await wait_until(lambda: _all_subscribed(server, ("health",)))
        proxy.cut()
        await wait_until(timeline.connected_more_than(0), what="reconnect")
        await wait_until(lambda: _all_subscribed(server, ("health",)))
        await asyncio.sleep(0.05)
        assert dict(live.store.state.connection.resyncs) == {}


@pytest.mark.asyncio
async def test_a_command_issued_as_the_link_dies_does_not_wedge_the_client() -> None:
    # regression: on 3.11 asyncio.wait_for lost the timers task's cancel when a command poked it
    # as the socket died (CPython gh-86296), leaving the client CONNECTED on a dead socket
    config = fast_config()
    async with server_behind_proxy() as (server, proxy):
        manager = WebSocketManager(
            proxied_url(server, proxy), token=token(), config=config, open_timeout=2.0
        )
        bridge = StoreBridge(manager, channels=("anomalies",))
        store = create_live_store(middleware=[bridge.middleware])
        await bridge.start()
        try:
            async with asyncio.timeout(5):
                await manager.connect()
            await wait_until(lambda: _all_subscribed(server, ("anomalies",)))
            await _publish_stream(server, 0, 1, "w")
            await wait_until(lambda: "a0" in store.state.anomalies)
            proxy.cut()
            store.dispatch(AcknowledgeAnomaly("a0", command_id="c-at-the-cut"))
            bound = server.config.ping_interval + config.max_server_ping_delay
            await wait_until(
                lambda: proxy.accepted > 1, within=bound + 2, what="retry"
            )
            await wait_until(lambda: not store.state.optimistic.transactions, what="commit")
            assert store.state.anomalies["a0"].version == 2
        finally:
            await bridge.aclose()
            async with asyncio.timeout(5):
                await manager.close()
