"""WebSocketManager against a real websockets server on 127.0.0.1 (port 0)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio
from client_helpers import ScriptedServer, until
from websockets.asyncio.server import serve

from reactive_aiops.core.connection import ConnectionState, ResyncRequired, Status
from reactive_aiops.net import WebSocketManager
from reactive_aiops.net.client_streams import SubscriptionError
from reactive_aiops.protocol import (
    BackoffPolicy,
    ClientClosed,
    ClientConfig,
    CommandTimeout,
    ReplyError,
)
from reactive_aiops.testing.clock import ManualClock
from reactive_aiops.wire import (
    Command,
    Error,
    Publication,
    Push,
    RefreshRequest,
    RPCRequest,
    SubscribeRequest,
    UnsubscribePush,
    encode_replies,
)

FAST = ClientConfig(backoff=BackoffPolicy(initial=0.05, maximum=0.2, reset_after=5.0))
WAIT = 10.0  # upper bound for awaiting real network events


@pytest_asyncio.fixture
async def server() -> AsyncIterator[ScriptedServer]:
    srv = ScriptedServer()
    await srv.start()
    yield srv
    await srv.stop()


def sent(server: ScriptedServer, kind: type) -> list[Any]:
    """Requests of type ``kind`` the server received, in order."""
    return [
        c.request for c in server.commands if isinstance(c, Command) and isinstance(c.request, kind)
    ]


def collect(manager: WebSocketManager, channel: str) -> tuple[list[Publication], Any]:
    got: list[Publication] = []
    disposable = manager.publications(channel).subscribe(got.append)
    return got, disposable


@pytest.mark.asyncio
async def test_connect_subscribe_receive_and_rpc(server: ScriptedServer) -> None:
    manager = WebSocketManager(server.url, config=FAST)
    states: list[ConnectionState] = []
    manager.states.subscribe(states.append)
    await manager.connect()
    assert manager.state.status is Status.CONNECTED
    statuses = [s.status for s in states]
    assert [a for a, b in zip(statuses, [None, *statuses], strict=False) if a != b] == [
        Status.DISCONNECTED,
        Status.CONNECTING,
        Status.CONNECTED,
    ]
    got, _ = collect(manager, "news")
    await until(lambda: server.subscribed("news"), "subscribed")
    await server.publish("news", {"n": 1})
    await server.publish("news", {"n": 2})
    await until(lambda: len(got) == 2, "two publications")
    assert [p.data for p in got] == [{"n": 1}, {"n": 2}]
    assert await manager.rpc("anomaly.acknowledge", {"command_id": "c1"}) == {
        "method": "anomaly.acknowledge",
        "echo": {"command_id": "c1"},
    }
    server.rpc_errors["anomaly.resolve"] = Error(409, "conflict")
    with pytest.raises(ReplyError) as info:
        await manager.rpc("anomaly.resolve", {})
    assert info.value.code == 409
    health = manager.state.health
    assert health.latency is not None
    assert health.latency > 0
    await manager.close()
    final: ConnectionState = manager.state
    assert final.status is Status.DISCONNECTED


@pytest.mark.asyncio
async def test_reconnect_after_kill_and_restart_recovers_each_offset_once(
    server: ScriptedServer,
) -> None:
    manager = WebSocketManager(server.url, config=FAST)
    statuses: list[Status] = []
    manager.states.subscribe(lambda s: statuses.append(s.status))
    await manager.connect()
    got, _ = collect(manager, "anomalies")
    await until(lambda: server.subscribed("anomalies"), "subscribed")
    for n in range(3):
        await server.publish("anomalies", n)
    await until(lambda: len(got) == 3, "live publications")

    await server.kill()
    await until(lambda: manager.state.status is Status.RECONNECTING, "reconnecting")
    await until(lambda: manager.state.attempt >= 2, "retrying while the server is down")
    for n in range(3, 6):  # published while we are away: must be recovered
        await server.publish("anomalies", n)
    await server.start()
    await until(lambda: manager.state.status is Status.CONNECTED, "reconnected")
    await until(lambda: len(got) == 6, "recovered publications")
    await server.publish("anomalies", 6)
    await until(lambda: len(got) == 7, "live again")
    assert [p.offset for p in got] == [1, 2, 3, 4, 5, 6, 7]
    assert [p.data for p in got] == list(range(7))
    assert manager.state.health.resyncs == 0
    assert manager.state.health.reconnects >= 1
    assert Status.RECONNECTING in statuses
    await manager.close()


@pytest.mark.asyncio
async def test_resync_on_epoch_change(server: ScriptedServer) -> None:
    manager = WebSocketManager(server.url, config=FAST)
    resyncs: list[ResyncRequired] = []
    manager.actions.subscribe(
        lambda a: resyncs.append(a) if isinstance(a, ResyncRequired) else None
    )
    await manager.connect()
    got, _ = collect(manager, "detectors")
    await until(lambda: server.subscribed("detectors"), "subscribed")
    await server.publish("detectors", "a")
    await until(lambda: len(got) == 1, "first")
    await server.close_all(3001, "shutdown")
    server.new_epoch("detectors", "e2")
    await until(lambda: len(resyncs) == 1, "resync")
    assert resyncs[0].channel == "detectors"
    assert "epoch changed" in resyncs[0].reason
    await until(lambda: server.subscribed("detectors"), "resub")
    await server.publish("detectors", "b")
    await until(lambda: len(got) == 2, "continues on the new epoch")
    assert manager.state.resyncs["detectors"] == 1
    await manager.close()


@pytest.mark.asyncio
async def test_gap_in_the_stream_is_a_resync(server: ScriptedServer) -> None:
    manager = WebSocketManager(server.url, config=FAST)
    await manager.connect()
    got, _ = collect(manager, "health")
    await until(lambda: server.subscribed("health"), "subscribed")
    await server.publish("health", 1)
    server.lose("health", 2)
    await server.publish("health", 4)
    await until(lambda: len(got) == 2, "both delivered")
    assert manager.state.resyncs["health"] == 1
    await manager.close()


@pytest.mark.asyncio
async def test_terminal_disconnect_code_stops_retrying(server: ScriptedServer) -> None:
    manager = WebSocketManager(server.url, config=FAST)
    await manager.connect()
    await server.close_all(3503, "force disconnect")
    await until(lambda: manager.state.status is Status.FAILED, "failed")
    assert (manager.state.code, manager.state.reason) == (3503, "force disconnect")
    connects = server.connects
    await until(lambda: not manager.running, "the client gave up")  # no retry is pending
    assert server.connects == connects
    with pytest.raises(ClientClosed):
        await manager.rpc("x", None)
    with pytest.raises(ConnectionError, match="force disconnect"):
        await manager.wait_connected()
    await manager.close()


@pytest.mark.asyncio
async def test_rejected_token_fails_with_reason() -> None:
    server = ScriptedServer(tokens={"good": "ok"})
    await server.start()
    try:
        manager = WebSocketManager(server.url, token="forged", config=FAST)
        with pytest.raises(ConnectionError, match="invalid token"):
            await manager.connect()
        assert manager.state.status is Status.FAILED
        assert manager.state.code == 3500
        manager2 = WebSocketManager(server.url, token="good", config=FAST)
        await manager2.connect()
        await manager2.close()
        server.tokens = {"nobody": "unauthorized"}
        manager3 = WebSocketManager(server.url, token="nobody", config=FAST)
        with pytest.raises(ConnectionError, match="unauthorized"):
            await manager3.connect()
        assert manager3.state.code == 101
    finally:
        await server.stop()


@pytest.mark.asyncio
async def test_expired_token_at_connect_is_fetched_once() -> None:
    server = ScriptedServer(tokens={"old": "expired", "new": "ok"})
    await server.start()
    fetched: list[str] = []

    async def get_token() -> str:
        fetched.append("new")
        return "new"

    try:
        manager = WebSocketManager(server.url, token="old", get_token=get_token, config=FAST)
        await manager.connect()
        assert fetched == ["new"]
        assert manager.state.status is Status.CONNECTED
        await manager.close()
    finally:
        await server.stop()


@pytest.mark.asyncio
async def test_token_refreshed_over_the_live_connection() -> None:
    server = ScriptedServer(ttl=2)
    await server.start()
    tokens = iter(["t1", "t2", "t3", "t4"])

    async def get_token() -> str:
        return next(tokens)

    clock = ManualClock(1000.0)
    try:
        config = ClientConfig(refresh_margin=1.0)
        manager = WebSocketManager(server.url, get_token=get_token, config=config, clock=clock)
        clock.add_listener(manager.poke)
        await manager.connect()
        clock.advance(1.0)  # ttl 2 - margin 1
        await until(lambda: bool(sent(server, RefreshRequest)), "refresh sent")
        assert [r.token for r in sent(server, RefreshRequest)] == ["t2"]
        assert server.connects == 1
        await manager.close()
    finally:
        await server.stop()


@pytest.mark.asyncio
async def test_heartbeat_declares_a_silent_server_dead() -> None:
    server = ScriptedServer(ping=25)  # advertises pings but the test clock decides time
    server.pinging = False
    await server.start()
    clock = ManualClock(1000.0)
    try:
        manager = WebSocketManager(server.url, config=FAST, clock=clock, rand=lambda: 0.0)
        clock.add_listener(manager.poke)
        await manager.connect()
        clock.advance(34.0)
        await asyncio.sleep(0)
        assert manager.state.status is Status.CONNECTED
        clock.advance(1.0)  # ping 25 + grace 10 without a message
        await until(lambda: server.connects == 2, "reconnected after declaring it dead")
        assert manager.state.health.reconnects == 1
        await until(lambda: manager.state.status is Status.CONNECTED, "connected again")
        await manager.close()
    finally:
        await server.stop()


@pytest.mark.asyncio
async def test_commands_wait_in_the_outbox_while_disconnected(server: ScriptedServer) -> None:
    manager = WebSocketManager(server.url, config=FAST)
    await manager.connect()
    await server.kill()
    await until(lambda: manager.state.status is Status.RECONNECTING, "down")
    pending = asyncio.ensure_future(manager.rpc("detector.pause", {"command_id": "c9"}, 30))
    await asyncio.sleep(0.05)
    assert not pending.done()
    await server.start()
    assert await asyncio.wait_for(pending, WAIT) == {
        "method": "detector.pause",
        "echo": {"command_id": "c9"},
    }
    await server.kill()
    await until(lambda: manager.state.status is Status.RECONNECTING, "down again")
    with pytest.raises(CommandTimeout):
        await manager.call(RPCRequest(method="m"), command_timeout=0.05)
    await manager.close()


@pytest.mark.asyncio
async def test_refcounted_publications_observables(server: ScriptedServer) -> None:
    manager = WebSocketManager(server.url, config=FAST)
    await manager.connect()
    a, da = collect(manager, "ch")
    b, db = collect(manager, "ch")
    await until(lambda: server.subscribed("ch"), "subscribed")
    assert len(sent(server, SubscribeRequest)) == 1  # two observers, one subscription
    await server.publish("ch", 1)
    await until(lambda: len(a) == len(b) == 1, "both observers")
    da.dispose()
    await server.publish("ch", 2)
    await until(lambda: len(b) == 2, "second observer still fed")
    assert len(a) == 1
    db.dispose()
    await until(lambda: not server.subscribed("ch"), "unsubscribed on the server")
    with pytest.raises(ValueError, match="non-empty"):
        manager.publications("")
    await manager.close()


@pytest.mark.asyncio
async def test_hold_is_a_reference_without_an_observer(server: ScriptedServer) -> None:
    manager = WebSocketManager(server.url, config=FAST)
    await manager.connect()
    held = manager.hold("ch")
    await until(lambda: server.subscribed("ch"), "subscribed by the hold alone")
    got, observed = collect(manager, "ch")
    assert len(sent(server, SubscribeRequest)) == 1  # hold and observer share one subscription
    held.dispose()
    held.dispose()  # idempotent: releases one reference only
    await server.publish("ch", 1)
    await until(lambda: len(got) == 1, "the observer still fed")
    observed.dispose()
    await until(lambda: not server.subscribed("ch"), "unsubscribed with the last reference")
    with pytest.raises(ValueError, match="non-empty"):
        manager.hold("")
    await manager.close()


@pytest.mark.asyncio
async def test_refused_channel_ends_its_holds(server: ScriptedServer) -> None:
    manager = WebSocketManager(server.url, config=FAST)
    await manager.connect()
    held = manager.hold("secret")
    errors: list[Exception] = []
    manager.publications("secret").subscribe(on_error=errors.append)
    await until(lambda: server.subscribed("secret"), "subscribed")
    await server.conns[0].ws.send(encode_replies([Push("secret", UnsubscribePush(2000, "gone"))]))
    await until(lambda: bool(errors), "channel refused")
    fresh = manager.hold("secret")
    await until(lambda: len(sent(server, SubscribeRequest)) == 2, "subscribed again")
    fresh.dispose()  # the only reference left: the refusal released `held`'s, as an observer's
    await until(lambda: not server.subscribed("secret"), "unsubscribed")
    held.dispose()  # already released: a no-op
    await manager.close()


@pytest.mark.asyncio
async def test_channel_refused_errors_its_observers(server: ScriptedServer) -> None:
    manager = WebSocketManager(server.url, config=FAST)
    await manager.connect()
    errors: list[Exception] = []
    manager.publications("secret").subscribe(on_error=errors.append)
    await until(lambda: server.subscribed("secret"), "subscribed")
    await server.conns[0].ws.send(encode_replies([Push("secret", UnsubscribePush(2000, "gone"))]))
    await until(lambda: bool(errors), "error delivered")
    assert isinstance(errors[0], SubscriptionError)
    assert errors[0].code == 2000
    await manager.close()


@pytest.mark.asyncio
async def test_http_403_at_handshake_is_fatal() -> None:
    async def reject(connection: Any, request: Any) -> Any:
        return connection.respond(403, "forbidden\n")

    async with serve(lambda ws: ws.wait_closed(), "127.0.0.1", 0, process_request=reject) as srv:
        port = srv.sockets[0].getsockname()[1]
        manager = WebSocketManager(f"ws://127.0.0.1:{port}/", config=FAST)
        with pytest.raises(ConnectionError, match="HTTP 403"):
            await manager.connect()
        assert manager.state.status is Status.FAILED
        await manager.close()


@pytest.mark.asyncio
async def test_refused_port_keeps_retrying_with_attempts_in_state() -> None:
    srv = ScriptedServer()
    await srv.start()
    url = srv.url
    await srv.kill()
    manager = WebSocketManager(url, config=FAST)
    task = asyncio.ensure_future(manager.connect())
    await until(lambda: manager.state.attempt >= 3, "several attempts")
    state = manager.state
    assert state.status in (Status.RECONNECTING, Status.CONNECTING)
    await manager.close()
    with pytest.raises(ConnectionError):
        await task


@pytest.mark.asyncio
async def test_close_while_fetching_the_first_token(server: ScriptedServer) -> None:
    release = asyncio.Event()

    async def slow_token() -> str:
        await release.wait()
        return "t"

    manager = WebSocketManager(server.url, get_token=slow_token, config=FAST)
    attempt = asyncio.ensure_future(manager.connect())
    await until(lambda: manager.running, "started")
    await manager.close()
    release.set()
    with pytest.raises(ConnectionError):
        await attempt
    assert not manager.running
    assert server.connects == 0
    assert manager.state.status is Status.DISCONNECTED


@pytest.mark.asyncio
async def test_failing_token_fetcher_is_retried() -> None:
    server = ScriptedServer(tokens={"good": "ok"})
    await server.start()
    calls: list[int] = []

    async def flaky() -> str:
        calls.append(1)
        if len(calls) < 3:
            raise OSError("auth service down")
        return "good"

    try:
        manager = WebSocketManager(server.url, get_token=flaky, config=FAST)
        await manager.connect()
        assert len(calls) == 3
        assert manager.state.health.reconnects == 2
        await manager.close()
    finally:
        await server.stop()


@pytest.mark.asyncio
async def test_http_503_at_handshake_is_retried() -> None:
    statuses = [503, 503]

    async def maybe_reject(connection: Any, request: Any) -> Any:
        if statuses:
            return connection.respond(statuses.pop(), "busy\n")
        return None

    async def answer_connect(ws: Any) -> None:
        async for text in ws:
            await ws.send('{"id":1,"connect":{"client":"x"}}' if '"connect"' in text else "{}")

    async with serve(answer_connect, "127.0.0.1", 0, process_request=maybe_reject) as srv:
        port = srv.sockets[0].getsockname()[1]
        manager = WebSocketManager(f"ws://127.0.0.1:{port}/", config=FAST)
        await manager.connect()
        assert manager.state.health.reconnects == 2
        assert statuses == []
        await manager.close()


@pytest.mark.asyncio
async def test_a_raising_observer_does_not_stop_the_client(
    server: ScriptedServer, caplog: pytest.LogCaptureFixture
) -> None:
    manager = WebSocketManager(server.url, config=FAST)
    await manager.connect()
    good: list[Publication] = []

    def bad(_: Publication) -> None:
        raise RuntimeError("observer bug")

    manager.publications("ch").subscribe(bad)
    await until(lambda: server.subscribed("ch"), "subscribed")
    await server.publish("ch", 1)
    await until(lambda: "observer bug" in caplog.text, "logged")
    manager.publications("ch").subscribe(good.append)
    await server.publish("ch", 2)
    await until(lambda: len(good) == 1, "still delivering")
    assert manager.state.status is Status.CONNECTED
    await manager.close()


@pytest.mark.asyncio
async def test_connect_again_after_a_terminal_failure(server: ScriptedServer) -> None:
    manager = WebSocketManager(server.url, config=FAST)
    await manager.connect()
    await server.close_all(3503, "force disconnect")
    await until(lambda: not manager.running, "gave up")
    await manager.connect()
    assert manager.state.status is Status.CONNECTED
    assert server.connects == 2
    await manager.close()


@pytest.mark.asyncio
async def test_timer_sleep_never_swallows_a_cancel_racing_a_poke() -> None:
    # Regression: with asyncio.wait_for (3.11, CPython gh-86296) a cancel arriving together
    # with poke() was lost and the connection pump waited on the timers task forever.
    manager = WebSocketManager("ws://127.0.0.1:9/", config=FAST)
    sleeper = asyncio.ensure_future(manager._sleep_until(time.time() + 100))
    await asyncio.sleep(0)
    manager.poke()
    sleeper.cancel()
    with pytest.raises(asyncio.CancelledError):
        await sleeper
