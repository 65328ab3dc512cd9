"""WebSocketManager against our real event server (reactive_aiops.server) on 127.0.0.1."""

from __future__ import annotations

from typing import Any

import pytest
from client_helpers import subscribed, until
from server_helpers import anomaly_event, config, detector_event, token

from reactive_aiops.core.connection import ResyncRequired, Status
from reactive_aiops.net import WebSocketManager
from reactive_aiops.protocol import BackoffPolicy, ClientConfig, ReplyError
from reactive_aiops.server.app import serve_embedded
from reactive_aiops.wire import Publication, decode_event, rpc_request_data

FAST = ClientConfig(backoff=BackoffPolicy(initial=0.05, maximum=0.2))


@pytest.mark.asyncio
async def test_live_events_rpc_and_restart_with_recovery() -> None:
    async with serve_embedded(config()) as server:
        manager = WebSocketManager(server.url, token=token("alice"), config=FAST)
        resyncs: list[ResyncRequired] = []
        manager.actions.subscribe(
            lambda a: resyncs.append(a) if isinstance(a, ResyncRequired) else None
        )
        subs = subscribed(manager)
        await manager.connect()
        got: list[Publication] = []
        manager.publications("anomalies").subscribe(got.append)
        await until(lambda: subs == ["anomalies"], "subscribed")
        server.publish("anomalies", anomaly_event("an-1", event_id="e1"))
        await until(lambda: len(got) == 1, "live event")
        event = decode_event(got[0].data)
        assert (event.type, event.data["id"]) == ("anomaly.upserted", "an-1")

        with pytest.raises(ReplyError) as info:
            await manager.rpc(
                "anomaly.acknowledge", rpc_request_data("anomaly.acknowledge", "cmd-1", "no-such")
            )
        assert info.value.code == 404

        await server.restart(keep_history=True)
        server.publish("anomalies", anomaly_event("an-2", event_id="e2"))
        await until(lambda: len(got) == 2, "recovered after restart")
        assert [p.offset for p in got] == [got[0].offset, got[0].offset + 1]
        assert resyncs == []
        assert manager.state.health.reconnects >= 1
        await manager.close()


@pytest.mark.asyncio
async def test_restart_without_history_is_a_resync() -> None:
    async with serve_embedded(config()) as server:
        manager = WebSocketManager(server.url, token=token("alice"), config=FAST)
        resyncs: list[Any] = []
        manager.actions.subscribe(
            lambda a: resyncs.append(a) if isinstance(a, ResyncRequired) else None
        )
        subs = subscribed(manager)
        await manager.connect()
        got: list[Publication] = []
        manager.publications("detectors").subscribe(got.append)
        await until(lambda: subs == ["detectors"], "subscribed")
        server.publish("detectors", detector_event("det-1"))
        await until(lambda: len(got) == 1, "first event")
        await server.restart(keep_history=False)
        await until(lambda: len(resyncs) == 1, "resync")
        assert resyncs[0].channel == "detectors"
        await manager.close()


@pytest.mark.asyncio
async def test_bad_token_fails_without_retrying() -> None:
    async with serve_embedded(config()) as server:
        manager = WebSocketManager(server.url, token="not-a-jwt", config=FAST)
        with pytest.raises(ConnectionError):
            await manager.connect()
        assert manager.state.status is Status.FAILED
        assert manager.state.code == 3500
        await manager.close()
