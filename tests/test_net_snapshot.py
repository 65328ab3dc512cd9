"""The bridge's initial load and resync reload through ``aiops.snapshot``, against a scripted
server that answers the RPC as its spec says (docs/connection.md): the state and the stream
position of each channel it was read at."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import attrs
import pytest
import pytest_asyncio
from client_helpers import ScriptedServer
from reliability_helpers import (
    anomaly_payload,
    detector_payload,
    envelope,
    health_payload,
    server_config,
    token,
    wait_until,
)

from reactive_aiops.aiops import AnomaliesLoaded, DetectorsLoaded, HealthUpdated
from reactive_aiops.aiops.event_table import aiops_converter
from reactive_aiops.aiops.live_store import create_live_store
from reactive_aiops.aiops.state import AppState
from reactive_aiops.core import Store
from reactive_aiops.core.events import event_meta
from reactive_aiops.net import WebSocketManager
from reactive_aiops.net.bridge import StoreBridge
from reactive_aiops.net.snapshot import SNAPSHOT_METHOD, parse_snapshot
from reactive_aiops.protocol import BackoffPolicy, ClientConfig
from reactive_aiops.server.app import serve_embedded
from reactive_aiops.wire import Publication, Push, encode_replies

FAST = ClientConfig(backoff=BackoffPolicy(initial=0.05, maximum=0.2, reset_after=5.0))
EVENT_TYPES = {
    "detectors": "detector.upserted",
    "anomalies": "anomaly.upserted",
    "health": "health.updated",
}


class Domain:
    """The scripted server's AIOps state, published and snapshotted like our server does."""

    def __init__(self, server: ScriptedServer) -> None:
        self.server = server
        self.detectors: dict[str, dict[str, Any]] = {}
        self.anomalies: dict[str, dict[str, Any]] = {}
        self.health: dict[str, Any] | None = None
        self.snapshots = 0
        #: epochs to report instead of the real ones, one snapshot each (a stale read)
        self.stale_epochs: list[str] = []

    def _record(self, channel: str, data: dict[str, Any]) -> None:
        if channel == "detectors":
            self.detectors[data["id"]] = data
        elif channel == "anomalies":
            self.anomalies[data["id"]] = data
        else:
            self.health = data

    async def publish(self, channel: str, data: dict[str, Any]) -> Publication:
        self._record(channel, data)
        stream = self.server.stream(channel)
        event_id = f"{channel}-{stream.epoch}-{stream.offset + 1}"
        return await self.server.publish(
            channel, envelope(EVENT_TYPES[channel], event_id, data)
        )

    def publish_unsent(self, channel: str, data: dict[str, Any]) -> Publication:
        """Apply and append to the history without sending yet (a fan-out that lags)."""
        self._record(channel, data)
        stream = self.server.stream(channel)
        stream.offset += 1
        event_id = f"{channel}-{stream.epoch}-{stream.offset}"
        pub = Publication(data=envelope(EVENT_TYPES[channel], event_id, data), offset=stream.offset)
        stream.history.append(pub)
        return pub

    async def snapshot(self, _data: object) -> dict[str, Any]:
        self.snapshots += 1
        positions = {}
        for channel in EVENT_TYPES:
            stream = self.server.stream(channel)
            epoch = self.stale_epochs.pop(0) if self.stale_epochs else stream.epoch
            positions[channel] = {"offset": stream.offset, "epoch": epoch}
        return {
            "detectors": list(self.detectors.values()),
            "anomalies": list(self.anomalies.values()),
            "health": self.health,
            "positions": positions,
        }


@attrs.define
class Client:
    manager: WebSocketManager
    bridge: StoreBridge
    store: Store[AppState]
    log: list[object]

    def applied_offsets(self, channel: str) -> list[int | None]:
        """Offsets of the server events of ``channel`` the store applied, in order."""
        metas = [event_meta(a) for a in self.log]
        return [m.offset for m in metas if m is not None and m.channel == channel]

    def loads(self, kind: type) -> int:
        return sum(isinstance(a, kind) for a in self.log)


@pytest_asyncio.fixture
async def domain() -> AsyncIterator[Domain]:
    server = ScriptedServer()
    await server.start()
    dom = Domain(server)
    server.rpc_handlers[SNAPSHOT_METHOD] = dom.snapshot
    yield dom
    await server.stop()


async def connect(domain: Domain) -> Client:
    manager = WebSocketManager(domain.server.url, config=FAST)
    bridge = StoreBridge(manager)
    store = create_live_store(middleware=[bridge.middleware])
    log: list[object] = []
    store.actions.subscribe(log.append)
    await bridge.start()
    async with asyncio.timeout(10):
        await manager.connect()
        await bridge.wait_loaded()
    return Client(manager, bridge, store, log)


async def close(client: Client) -> None:
    await client.bridge.aclose()
    await client.manager.close()


@pytest.mark.asyncio
async def test_the_first_subscribe_loads_the_state_then_follows_live(domain: Domain) -> None:
    await domain.publish("detectors", detector_payload("d1"))
    for i in range(5):
        await domain.publish("anomalies", anomaly_payload(f"a{i}"))
    await domain.publish("health", health_payload())
    client = await connect(domain)
    try:
        state = client.store.state
        assert sorted(state.anomalies) == [f"a{i}" for i in range(5)]
        assert list(state.detectors) == ["d1"]
        assert state.health is not None
        assert domain.snapshots == 1  # one RPC for the three channels
        assert client.loads(AnomaliesLoaded) == client.loads(DetectorsLoaded) == 1
        assert client.loads(HealthUpdated) == 1
        assert client.applied_offsets("anomalies") == []  # they came in the snapshot
        for i in range(5, 8):
            await domain.publish("anomalies", anomaly_payload(f"a{i}"))
        await wait_until(lambda: "a7" in client.store.state.anomalies)
        assert client.applied_offsets("anomalies") == [6, 7, 8]
        assert client.store.state.connection.health.duplicates_dropped_total == 0
    finally:
        await close(client)


@pytest.mark.asyncio
async def test_publications_racing_the_snapshot_are_applied_once_and_in_order(
    domain: Domain,
) -> None:
    await domain.publish("anomalies", anomaly_payload("a0"))
    lagging: list[Publication] = []
    take_snapshot = domain.snapshot

    async def racing_snapshot(data: object) -> dict[str, Any]:
        # three publications reach the client (held) before the reply, all in the snapshot;
        # a fourth is in the snapshot but its push is still on its way
        for i in range(1, 4):
            await domain.publish("anomalies", anomaly_payload(f"a{i}"))
        lagging.append(domain.publish_unsent("anomalies", anomaly_payload("a4")))
        return await take_snapshot(data)

    domain.server.rpc_handlers[SNAPSHOT_METHOD] = racing_snapshot
    client = await connect(domain)
    try:
        assert sorted(client.store.state.anomalies) == [f"a{i}" for i in range(5)]
        (conn,) = domain.server.conns
        await conn.ws.send(encode_replies([Push("anomalies", lagging[0])]))  # late fan-out
        await domain.publish("anomalies", anomaly_payload("a5"))
        await wait_until(lambda: "a5" in client.store.state.anomalies)
        assert client.applied_offsets("anomalies") == [6]  # only what the snapshot had not
        # 3 held at or below the snapshot's position, 1 arriving after it: all counted
        assert client.store.state.connection.health.duplicates_dropped_total == 4
        assert not client.bridge.loading
    finally:
        await close(client)


@pytest.mark.asyncio
async def test_a_snapshot_of_another_epoch_is_taken_again(domain: Domain) -> None:
    domain.stale_epochs = ["gone", "gone", "gone"]  # the first read is of a dead stream
    await domain.publish("anomalies", anomaly_payload("a0"))
    client = await connect(domain)
    try:
        assert domain.snapshots == 2
        assert "a0" in client.store.state.anomalies
        assert client.bridge.reload_errors == []
    finally:
        await close(client)


@pytest.mark.asyncio
async def test_a_resync_replaces_the_state_from_a_new_snapshot(domain: Domain) -> None:
    for i in range(3):
        await domain.publish("anomalies", anomaly_payload(f"a{i}"))
    client = await connect(domain)
    try:
        assert sorted(client.store.state.anomalies) == ["a0", "a1", "a2"]
        await domain.server.kill()
        domain.server.new_epoch("anomalies", "e2")  # the broker restarted empty
        domain.anomalies.clear()
        await domain.server.start()
        await domain.publish("anomalies", anomaly_payload("b0"))
        await wait_until(lambda: client.store.state.connection.resyncs.get("anomalies") == 1)
        async with asyncio.timeout(10):
            await client.bridge.wait_loaded()
        assert sorted(client.store.state.anomalies) == ["b0"]
        assert domain.snapshots == 2
        await domain.publish("anomalies", anomaly_payload("b1"))
        await wait_until(lambda: "b1" in client.store.state.anomalies)
        metas = [event_meta(a) for a in client.log]
        new = [m.offset for m in metas if m is not None and m.epoch == "e2"]
        # b0 came in the snapshot (or live, if the client was back before it was published),
        # b1 live: nothing of e2 twice, nothing out of order
        assert new in ([2], [1, 2])
    finally:
        await close(client)


def test_parse_snapshot_takes_only_positioned_channels_and_names_bad_entities() -> None:
    converter = aiops_converter()
    loads = parse_snapshot(
        {
            "detectors": [detector_payload("d1"), {"id": "bad"}],
            "anomalies": [anomaly_payload("a1")],
            "health": None,
            "positions": {
                "detectors": {"offset": 4, "epoch": "E"},
                "health": {"offset": 0, "epoch": "H"},
            },
        },
        converter,
    )
    assert set(loads) == {"detectors", "health"}  # anomalies not readable: left out
    (action,) = loads["detectors"].actions
    assert isinstance(action, DetectorsLoaded)
    assert [d.id for d in action.detectors] == ["d1"]
    assert (loads["detectors"].offset, loads["detectors"].epoch) == (4, "E")
    (problem,) = loads["detectors"].problems
    assert "'bad'" in problem
    assert loads["health"].actions == ()
    for bad in (
        [],
        {"detectors": []},
        {"positions": {"detectors": {"offset": -1, "epoch": "E"}}},
        {"positions": {"detectors": {"offset": 1, "epoch": 5}}},
        {"positions": {"anomalies": {"offset": 1, "epoch": "E"}}, "anomalies": {}},
    ):
        with pytest.raises(ValueError, match="snapshot"):
            parse_snapshot(bad, converter)


@pytest.mark.asyncio
async def test_the_real_server_snapshot_loads_the_state_at_its_position() -> None:
    async with serve_embedded(server_config()) as server:
        for i in range(3):
            server.publish("anomalies", envelope("anomaly.upserted", f"e{i}",
                                                 anomaly_payload(f"a{i}")))
        manager = WebSocketManager(server.url, token=token(), config=FAST)
        bridge = StoreBridge(manager)
        store = create_live_store(middleware=[bridge.middleware])
        client = Client(manager, bridge, store, [])
        store.actions.subscribe(client.log.append)
        await bridge.start()
        try:
            async with asyncio.timeout(10):
                await manager.connect()
                await bridge.wait_loaded()
            assert sorted(store.state.anomalies) == ["a0", "a1", "a2"]
            assert client.loads(AnomaliesLoaded) == 1  # from aiops.snapshot, not history
            assert client.applied_offsets("anomalies") == []
            server.publish("anomalies", envelope("anomaly.upserted", "e3", anomaly_payload("a3")))
            await wait_until(lambda: "a3" in store.state.anomalies)
            assert client.applied_offsets("anomalies") == [4]
            assert bridge.reload_errors == []
        finally:
            await bridge.aclose()
            await manager.close()
