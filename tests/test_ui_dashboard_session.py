"""``open_session``: embedded server + client + bridge + live store, initial load, errors."""

from __future__ import annotations

import pytest
from dashboard_helpers import anomaly_event, detector_event, live_session
from websockets.asyncio.client import connect

from reactive_aiops.core.connection import Status
from reactive_aiops.server.app import serve_embedded
from reactive_aiops.server.config import ServerConfig, SimulationConfig
from reactive_aiops.ui.dashboard.session import open_session, operator_token
from reactive_aiops.ui.dashboard.view import select_anomaly_rows


def _config() -> ServerConfig:
    return ServerConfig(port=0, token_secret="k" * 32, simulation=SimulationConfig(enabled=False))


@pytest.mark.asyncio
async def test_what_the_server_held_before_connecting_is_loaded() -> None:
    config = _config()
    async with serve_embedded(config) as server:
        server.publish("detectors", detector_event("det-1", "api"))
        server.publish("anomalies", anomaly_event("a1", "high", version=1))
        server.publish("anomalies", anomaly_event("a1", "critical", version=2))
        async with open_session(server.url, token=operator_token(config.token_secret)) as s:
            state = s.store.state
            assert state.connection.status is Status.CONNECTED
            assert [d.id for d in state.detectors.values()] == ["det-1"]
            (row,) = select_anomaly_rows(state)
            assert (row.id, row.severity.value) == ("a1", "critical")  # the newest version won
            assert s.server is None  # an external server: not ours to stop


@pytest.mark.asyncio
async def test_the_embedded_server_stops_with_the_session() -> None:
    async with live_session() as session:
        url = session.url
        assert session.server is not None
        assert session.store.state.connection.status is Status.CONNECTED
    with pytest.raises(ConnectionRefusedError):
        async with connect(url):
            pass


@pytest.mark.asyncio
async def test_a_rejected_token_raises_connection_error() -> None:
    config = _config()
    async with serve_embedded(config) as server:
        with pytest.raises(ConnectionError):
            async with open_session(server.url, token="not-a-jwt"):
                pass


@pytest.mark.asyncio
async def test_an_embedded_session_with_simulation_sees_its_detectors() -> None:
    async with open_session(rate=200.0, seed=1) as session:
        assert session.server is not None
        assert session.server.simulator is not None
        assert len(session.store.state.detectors) == session.server.config.simulation.detectors
