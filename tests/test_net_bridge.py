"""StoreBridge against the real embedded server: events, commands (commit, reject, timeout,
connection loss), resync after a server that lost its history, and clean shutdown."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from reliability_helpers import (
    WAIT,
    anomaly_payload,
    detector_payload,
    envelope,
    fast_config,
    health_payload,
    live_client,
    proxied_url,
    server_behind_proxy,
    token,
    wait_until,
)

from reactive_aiops.aiops import (
    AcknowledgeAnomaly,
    AnomalyState,
    DetectorStatus,
    PauseDetector,
    ResolveAnomaly,
)
from reactive_aiops.aiops.live_store import create_live_store
from reactive_aiops.core.connection import Status
from reactive_aiops.core.events import MalformedEvent, ServerEvent
from reactive_aiops.net.bridge import AIOPS_CHANNELS, StoreBridge, publication_action
from reactive_aiops.net.client import WebSocketManager
from reactive_aiops.testing.clock import ManualClock
from reactive_aiops.wire import Publication


def _publish_anomaly(server: Any, anomaly_id: str, n: int, **kw: Any) -> None:
    server.publish("anomalies", envelope("anomaly.upserted", f"pa-{anomaly_id}-{n}",
                                         anomaly_payload(anomaly_id, **kw)))


async def _seed_a1(server: Any, store: Any, **kw: Any) -> None:
    """Once the client is subscribed, publish anomaly ``a1`` and wait until the store has it."""
    await wait_until(lambda: server.core.broker.subscriber_count("anomalies") == 1)
    _publish_anomaly(server, "a1", 1, **kw)
    await wait_until(lambda: "a1" in store.state.anomalies)


@pytest.mark.asyncio
async def test_events_and_connection_state_reach_the_store() -> None:
    async with server_behind_proxy() as (server, proxy), live_client(
        proxied_url(server, proxy)
    ) as live:
        store = live.store
        assert store.state.connection.status is Status.CONNECTED
        assert store.state.connection.client_id
        await wait_until(lambda: server.core.broker.subscriber_count("health") == 1)
        server.publish("detectors", envelope("detector.upserted", "d-1", detector_payload("d1")))
        _publish_anomaly(server, "a1", 1)
        await wait_until(lambda: "a1" in store.state.anomalies and "d1" in store.state.detectors)
        assert store.state.detectors["d1"].status is DetectorStatus.ACTIVE
        assert set(live.bridge.channels) == set(AIOPS_CHANNELS)
        for channel in AIOPS_CHANNELS:
            assert server.core.broker.subscriber_count(channel) == 1


@pytest.mark.asyncio
async def test_store_connection_slice_mirrors_the_manager_across_a_reconnect() -> None:
    async with server_behind_proxy() as (server, proxy), live_client(
        proxied_url(server, proxy)
    ) as live:
        await _seed_a1(server, live.store)
        proxy.cut()
        await wait_until(lambda: live.manager.state.health.reconnects == 1)
        await wait_until(lambda: live.manager.state.status is Status.CONNECTED)
        # the store folds the very same actions with the same reducer: the slices are equal
        assert live.store.state.connection == live.manager.state
        assert live.store.state.connection.health.latency is not None


@pytest.mark.asyncio
async def test_a_refused_channel_is_reported_and_the_others_flow() -> None:
    async with server_behind_proxy() as (server, proxy), live_client(
        proxied_url(server, proxy), channels=("anomalies", "no-such-channel")
    ) as live:
        await wait_until(lambda: "no-such-channel" in live.bridge.failed_channels)
        code, _reason = live.bridge.failed_channels["no-such-channel"]
        assert code == 102
        _publish_anomaly(server, "a1", 1)
        await wait_until(lambda: "a1" in live.store.state.anomalies)


@pytest.mark.asyncio
async def test_command_is_optimistic_then_committed_by_the_server() -> None:
    async with server_behind_proxy() as (server, proxy), live_client(
        proxied_url(server, proxy)
    ) as live:
        store = live.store
        await _seed_a1(server, store)
        store.dispatch(AcknowledgeAnomaly("a1", command_id="cmd-ack-1", by="me"))
        # applied at once, before any reply
        assert store.state.anomalies["a1"].state is AnomalyState.ACKNOWLEDGED
        assert store.state.optimistic.is_pending("cmd-ack-1")
        await wait_until(lambda: not store.state.optimistic.transactions, what="commit")
        a1 = store.state.anomalies["a1"]
        assert a1.version == 2
        assert a1.acknowledged_by == "alice"  # the server's copy (token sub), not ours
        # reply and echo (the channel event with our command id) both arrived: one commit
        assert store.state.optimistic.commits == 1
        assert server.core.state.anomalies["a1"].state == "acknowledged"


@pytest.mark.asyncio
async def test_rejections_revert_with_the_code_and_message() -> None:
    async with server_behind_proxy() as (server, proxy), live_client(
        proxied_url(server, proxy)
    ) as live:
        store = live.store
        await _seed_a1(server, store, state="resolved")
        store.dispatch(ResolveAnomaly("a1", command_id="cmd-res"))
        store.dispatch(PauseDetector("nope", command_id="cmd-pause"))
        await wait_until(lambda: not store.state.optimistic.transactions)
        journal = store.state.optimistic
        assert journal.revert_reason("cmd-res") == "rejected: 409 anomaly already resolved"
        assert journal.revert_reason("cmd-pause") == "rejected: 404 detector not found"
        assert store.state.anomalies["a1"].state is AnomalyState.RESOLVED


@pytest.mark.asyncio
async def test_a_viewer_token_is_forbidden_to_command() -> None:
    async with server_behind_proxy() as (server, proxy), live_client(
        proxied_url(server, proxy), tok=token("bob", roles=())
    ) as live:
        store = live.store
        await _seed_a1(server, store)
        store.dispatch(AcknowledgeAnomaly("a1", command_id="cmd-x"))
        await wait_until(lambda: not store.state.optimistic.transactions)
        reason = store.state.optimistic.revert_reason("cmd-x")
        assert reason is not None
        assert reason.startswith("rejected: 403")
        assert store.state.anomalies["a1"].state is AnomalyState.OPEN


@pytest.mark.asyncio
async def test_unanswered_command_times_out_on_the_client_clock() -> None:
    clock = ManualClock(1000.0)
    # a long heartbeat grace: this test is about the command timer alone
    async with server_behind_proxy() as (server, proxy), live_client(
        proxied_url(server, proxy),
        config=fast_config(max_server_ping_delay=60.0),
        manager_kwargs={"clock": clock},
        command_timeout=3.0,
    ) as live:
        clock.add_listener(live.manager.poke)
        store = live.store
        await _seed_a1(server, store)
        proxy.blackhole()
        store.dispatch(AcknowledgeAnomaly("a1", command_id="cmd-slow"))
        await asyncio.sleep(0)  # the bridge's task issues the RPC: its timeout starts now
        clock.advance(2.9)
        await asyncio.sleep(0.05)
        assert store.state.optimistic.is_pending("cmd-slow")
        clock.advance(0.2)
        await wait_until(lambda: not store.state.optimistic.transactions)
        assert store.state.optimistic.revert_reason("cmd-slow") == "timeout"
        assert store.state.anomalies["a1"].state is AnomalyState.OPEN
        proxy.restore()


@pytest.mark.asyncio
async def test_revert_policy_reverts_on_loss_and_a_late_reply_still_commits() -> None:
    async with server_behind_proxy() as (server, proxy), live_client(
        proxied_url(server, proxy), on_connection_lost="revert"
    ) as live:
        store = live.store
        await _seed_a1(server, store)
        proxy.blackhole()
        store.dispatch(AcknowledgeAnomaly("a1", command_id="cmd-lost"))
        await asyncio.sleep(0.05)  # let the RPC go out (into the hole)
        proxy.cut()
        proxy.restore()
        await wait_until(lambda: store.state.optimistic.revert_reason("cmd-lost") is not None)
        assert store.state.optimistic.revert_reason("cmd-lost") == "connection_lost"
        # the client re-sends the command after reconnecting; the server applies it once and
        # its reply commits the server's result although the transaction was reverted
        await wait_until(
            lambda: store.state.anomalies["a1"].state is AnomalyState.ACKNOWLEDGED, what="late"
        )
        assert store.state.anomalies["a1"].version == 2
        assert server.core.state.anomalies["a1"].version == 2


@pytest.mark.asyncio
async def test_keep_policy_resends_after_reconnect_and_commits() -> None:
    async with server_behind_proxy() as (server, proxy), live_client(
        proxied_url(server, proxy)
    ) as live:
        store = live.store
        await _seed_a1(server, store)
        proxy.refuse()
        proxy.cut()
        await wait_until(lambda: store.state.connection.status is not Status.CONNECTED)
        # issued while disconnected: it waits in the client's outbox, shown optimistically
        store.dispatch(AcknowledgeAnomaly("a1", command_id="cmd-queued"))
        assert store.state.optimistic.is_pending("cmd-queued")
        assert store.state.anomalies["a1"].state is AnomalyState.ACKNOWLEDGED
        proxy.accept_again()
        await wait_until(lambda: not store.state.optimistic.transactions, what="commit")
        assert store.state.optimistic.revert_reason("cmd-queued") is None
        assert store.state.anomalies["a1"].version == 2


@pytest.mark.asyncio
async def test_server_restart_without_history_resyncs_each_channel_from_history() -> None:
    async with server_behind_proxy() as (server, proxy), live_client(
        proxied_url(server, proxy)
    ) as live:
        store = live.store
        await wait_until(lambda: server.core.broker.subscriber_count("health") == 1)
        _publish_anomaly(server, "a1", 1)
        await wait_until(lambda: "a1" in store.state.anomalies)
        proxy.refuse()  # keep the client out until the new server has data
        proxy.cut()
        await server.restart(keep_history=False)
        _publish_anomaly(server, "a2", 1)  # only in the new server's history
        proxy.accept_again()
        await wait_until(lambda: "a2" in store.state.anomalies, what="reload")
        resyncs = store.state.connection.resyncs
        assert dict(resyncs) == {c: 1 for c in AIOPS_CHANNELS}
        assert live.bridge.reload_errors == []
        _publish_anomaly(server, "a3", 1)
        await wait_until(lambda: "a3" in store.state.anomalies)
        assert store.state.dedupe.duplicates == 0


@pytest.mark.asyncio
async def test_custom_reload_is_called_once_initially_and_once_per_resync() -> None:
    calls: list[tuple[str, str]] = []

    async def reload(channel: str, reason: str) -> list[object]:
        calls.append((channel, reason))
        return []

    async with server_behind_proxy() as (server, proxy), live_client(
        proxied_url(server, proxy), channels=("anomalies",), reload=reload
    ):
        assert calls == [("anomalies", "initial load")]
        await wait_until(lambda: server.core.broker.subscriber_count("anomalies") == 1)
        proxy.cut()
        await server.restart(keep_history=False)
        await wait_until(lambda: len(calls) > 1)
        await wait_until(lambda: server.core.broker.subscriber_count("anomalies") == 1)
        assert [c for c, _ in calls] == ["anomalies", "anomalies"]
        assert "epoch changed" in calls[1][1] or "not recovered" in calls[1][1]


def test_publication_action_keeps_bad_input_with_a_reason() -> None:
    good = publication_action(
        "anomalies",
        Publication(
            data=envelope("anomaly.upserted", "ev-1", anomaly_payload("a1")), offset=7
        ),
        "ep",
    )
    assert isinstance(good, ServerEvent)
    assert (good.meta.offset, good.meta.epoch, good.meta.event_id) == (7, "ep", "ev-1")
    bad = publication_action("anomalies", Publication(data=[1, 2], offset=8), "ep")
    assert isinstance(bad, MalformedEvent)
    assert bad.data == [1, 2]
    assert "JSON object" in bad.reason
    newer = publication_action(
        "anomalies", Publication(data={"type": "anomaly.upserted", "v": 2, "data": {}}), ""
    )
    assert isinstance(newer, ServerEvent)
    assert newer.meta.version == 2


@pytest.mark.asyncio
async def test_start_needs_the_middleware_installed_once() -> None:
    manager = WebSocketManager("ws://127.0.0.1:9/x")
    bridge = StoreBridge(manager)
    with pytest.raises(RuntimeError, match=r"install bridge\.middleware"):
        await bridge.start()
    create_live_store(middleware=[bridge.middleware])
    with pytest.raises(RuntimeError, match="already installed"):
        create_live_store(middleware=[bridge.middleware])
    with pytest.raises(ValueError, match="keep"):
        StoreBridge(manager, on_connection_lost="drop")  # type: ignore[arg-type]


@pytest.mark.asyncio
async def test_a_command_before_start_is_reverted_not_lost() -> None:
    manager = WebSocketManager("ws://127.0.0.1:9/x")
    bridge = StoreBridge(manager)
    store = create_live_store(middleware=[bridge.middleware])
    store.dispatch(AcknowledgeAnomaly("a1", command_id="early"))
    assert store.state.optimistic.revert_reason("early") == "bridge not started"


@pytest.mark.asyncio
async def test_aclose_leaves_no_task_behind() -> None:
    before = asyncio.all_tasks()
    async with server_behind_proxy() as (server, proxy):
        async with live_client(proxied_url(server, proxy)) as live:
            proxy.blackhole()
            live.store.dispatch(AcknowledgeAnomaly("zz", command_id="pending"))
            await asyncio.sleep(0)
            assert live.bridge.pending_tasks == 1
        assert live.bridge.pending_tasks == 0
    async with asyncio.timeout(WAIT):
        await asyncio.sleep(0)
    assert asyncio.all_tasks() - before == set()


@pytest.mark.asyncio
async def test_one_frame_of_upserts_is_one_notification_and_health_samples_are_each_seen() -> None:
    async with server_behind_proxy() as (server, proxy), live_client(
        proxied_url(server, proxy)
    ) as live:
        store = live.store
        await wait_until(lambda: server.core.broker.subscriber_count("health") == 1)
        states: list[Any] = []
        sub = store.states.subscribe(states.append)
        states.clear()
        # Published in one loop callback, so the server sends them as one frame.
        for n in range(5):
            _publish_anomaly(server, f"b{n}", 1)
        await wait_until(lambda: all(f"b{n}" in store.state.anomalies for n in range(5)))
        assert len(states) == 1  # the frame's five upserts: one batch, one new state
        states.clear()
        for n in range(3):
            health = {**health_payload(), "events_per_second": float(n), "updated_at": 10.0 + n}
            server.publish("health", envelope("health.updated", f"h-{n}", health))
        await wait_until(lambda: (h := store.state.health) is not None and h.updated_at == 12.0)
        # Health updates are samples: each one reached the state on its own.
        assert [s.health.events_per_second for s in states] == [0.0, 1.0, 2.0]
        sub.dispose()
