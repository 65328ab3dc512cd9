"""The Textual dashboard under ``App.run_test()`` against a real embedded server.

Every test runs the whole client pipeline (WebSocketManager -> bridge -> live store -> selector
streams -> Textual adapter -> widgets) on the app's loop, with the server on the same loop and
events published through the server's Python publish API. Waits are for network-driven state,
bounded by timeouts; no test waits on a timer.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import attrs
import pytest
from dashboard_helpers import (
    ARTIFACTS_ENV,
    RenderLog,
    anomaly_event,
    detector_event,
    health_event,
    live_session,
    wait_until,
)
from textual.widgets import Static

from reactive_aiops.aiops.models import AnomalyState
from reactive_aiops.protocol.config import ClientConfig
from reactive_aiops.server.app import serve_embedded
from reactive_aiops.server.config import ServerConfig, SimulationConfig
from reactive_aiops.testing.proxy import FaultProxy
from reactive_aiops.ui.dashboard.app import DashboardApp
from reactive_aiops.ui.dashboard.session import operator_token
from reactive_aiops.ui.dashboard.widgets import (
    AnomalyTable,
    ConnectionPanel,
    DetectorBadges,
    HealthPanel,
)

SIZE = (130, 34)


def _ids(app: DashboardApp) -> list[str]:
    return [row.id for row in app.query_one(AnomalyTable).rows_shown]


def _row(app: DashboardApp, anomaly_id: str) -> Any:
    return next(r for r in app.query_one(AnomalyTable).rows_shown if r.id == anomaly_id)


def _save(app: DashboardApp, tmp_path: Path, name: str) -> Path:
    path = Path(app.save_screenshot(f"{name}.svg", str(tmp_path)))
    assert path.read_text(encoding="utf-8").startswith("<svg")
    target = _artifacts_dir()
    if target is not None:
        shutil.copy(path, target / path.name)
    return path


def _artifacts_dir() -> Path | None:
    import os

    value = os.environ.get(ARTIFACTS_ENV)
    if not value:
        return None
    path = Path(value)
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.mark.asyncio
async def test_connection_status_follows_the_server_going_away_and_back(tmp_path: Path) -> None:
    async with live_session() as session:
        app = DashboardApp(session.store)
        async with app.run_test(size=SIZE) as pilot:
            panel = app.query_one(ConnectionPanel)
            await wait_until(pilot, lambda: panel.view.status == "connected")
            assert "CONNECTED" in str(panel.render())

            await session.server.stop()
            await wait_until(pilot, lambda: panel.view.status == "reconnecting")
            text = str(panel.render())
            assert "RECONNECTING" in text
            assert "retry in" in text
            assert "lost:" in text  # the reason (shutdown, then refused while it is down)
            assert panel.view.reconnects >= 1
            _save(app, tmp_path, "dashboard-reconnecting")

            await session.server.start()
            await wait_until(pilot, lambda: panel.view.status == "connected")
            assert panel.view.reconnects >= 1
            assert "retry in" not in str(panel.render())
            assert "lost:" not in str(panel.render())


@pytest.mark.asyncio
async def test_acknowledge_shows_pending_then_confirmed() -> None:
    log = RenderLog()
    async with live_session() as session:
        app = DashboardApp(session.store, user="ann", on_render=log)
        async with app.run_test(size=SIZE) as pilot:
            session.server.publish("anomalies", anomaly_event("a1", "critical"))
            await wait_until(pilot, lambda: _ids(app) == ["a1"])
            assert [t.title for t in app.toasts] == ["Critical anomaly"]

            await pilot.press("a")
            await wait_until(
                pilot,
                lambda: _row(app, "a1").pending is None
                and _row(app, "a1").state is AnomalyState.ACKNOWLEDGED,
            )
            markers = log.markers("a1")
            # The pending state reached the screen before the confirmation replaced it.
            assert "acknowledge pending" in markers
            assert markers.index("acknowledge pending") < markers.index("acknowledged")
            assert markers[-1] == "acknowledged"
            row = _row(app, "a1")
            assert row.acknowledged_by is not None
            server_copy = session.server.core.state.anomalies["a1"]
            assert server_copy.state == "acknowledged"
            assert server_copy.version == 2
            assert [t.title for t in app.toasts] == ["Critical anomaly"]  # no revert toast


@pytest.mark.asyncio
async def test_rejected_acknowledge_reverts_with_the_servers_reason() -> None:
    log = RenderLog()
    async with live_session() as session:
        app = DashboardApp(session.store, on_render=log)
        async with app.run_test(size=SIZE) as pilot:
            session.server.publish("anomalies", anomaly_event("a1", "high"))
            await wait_until(pilot, lambda: _ids(app) == ["a1"])
            # The server resolves it behind the client's back (nothing is published), so the
            # client still shows it open and the acknowledge will conflict: 409.
            state = session.server.core.state
            state.anomalies["a1"] = attrs.evolve(state.anomalies["a1"], state="resolved")

            await pilot.press("a")
            await wait_until(pilot, lambda: _row(app, "a1").reverted is not None)
            row = _row(app, "a1")
            assert row.state is AnomalyState.OPEN  # visibly back to where it was
            assert row.pending is None
            assert row.marker.startswith("open · acknowledge reverted: rejected:")
            assert "409" in row.marker or "conflict" in row.marker.lower()
            assert "acknowledge pending" in log.markers("a1")
            toast = app.toasts[-1]
            assert toast.title == "Command reverted"
            assert toast.severity == "warning"
            assert "acknowledge undone" in toast.message


@pytest.mark.asyncio
async def test_anomaly_list_follows_a_scripted_incident(tmp_path: Path) -> None:
    async with live_session() as session:
        app = DashboardApp(session.store)
        async with app.run_test(size=SIZE) as pilot:
            publish = session.server.publish
            for detector_id, name in (("det-1", "api latency"), ("det-2", "db connections")):
                publish("detectors", detector_event(detector_id, name))
            badges = app.query_one(DetectorBadges)
            await wait_until(pilot, lambda: len(badges.badges) == 2)
            assert [b.name for b in badges.badges] == ["api latency", "db connections"]

            # 1. A low anomaly opens on det-1.
            publish("anomalies", anomaly_event("inc-1", "low", started=100.0))
            await wait_until(pilot, lambda: _ids(app) == ["inc-1"])
            # 2. A critical one on det-2: it goes to the top and raises a toast.
            publish("anomalies", anomaly_event("inc-2", "critical", detector_id="det-2",
                                               started=110.0))
            await wait_until(pilot, lambda: _ids(app) == ["inc-2", "inc-1"])
            assert [t.title for t in app.toasts] == ["Critical anomaly"]
            # 3. The first escalates to high: still below the critical one.
            publish("anomalies", anomaly_event("inc-1", "high", started=100.0, version=2))
            await wait_until(pilot, lambda: _row(app, "inc-1").severity.value == "high")
            assert _ids(app) == ["inc-2", "inc-1"]
            # 4. Another critical, newer: below the older critical (severity, then time).
            publish("anomalies", anomaly_event("inc-3", "critical", started=120.0))
            await wait_until(pilot, lambda: _ids(app) == ["inc-2", "inc-3", "inc-1"])
            assert len(app.toasts) == 2
            # The health panel follows the server's health events: one sparkline sample each.
            rates = [20.0, 22.0, 25.0, 24.0, 60.0, 140.0, 180.0, 175.0, 90.0, 70.0, 65.0, 72.0]
            for n, rate in enumerate(rates):
                publish("health", health_event(rate, updated_at=1_000.0 + n, status="critical"))
            health = app.query_one(HealthPanel)
            await wait_until(pilot, lambda: list(health.rates)[-1:] == [72.0])
            assert list(health.rates) == rates  # every update is a sample, none coalesced away
            assert "CRITICAL" in str(app.query_one("#health-summary", Static).render())
            _save(app, tmp_path, "dashboard")
            # 5. The server resolves the first critical one: it leaves the list.
            publish("anomalies", anomaly_event("inc-2", "critical", detector_id="det-2",
                                               started=110.0, state="resolved", version=2))
            await wait_until(pilot, lambda: _ids(app) == ["inc-3", "inc-1"])
            # A stale copy (older version) arriving late changes nothing; the marker event
            # after it on the same channel proves it was processed.
            publish("anomalies", anomaly_event("inc-1", "low", started=100.0, version=1,
                                               event_id="ev-late"))
            publish("anomalies", anomaly_event("inc-4", "medium", started=130.0))
            await wait_until(pilot, lambda: _ids(app) == ["inc-3", "inc-1", "inc-4"])
            assert _row(app, "inc-1").severity.value == "high"


@pytest.mark.asyncio
async def test_unanswered_acknowledge_times_out_and_reverts() -> None:
    config = ServerConfig(port=0, token_secret="t" * 32, simulation=SimulationConfig(enabled=False))
    async with serve_embedded(config) as server, FaultProxy("127.0.0.1", server.port) as proxy:
        url = f"ws://127.0.0.1:{proxy.port}{config.path}"
        async with live_session(
            url=url,
            token=operator_token(config.token_secret),
            client_config=ClientConfig(command_timeout=0.5),
        ) as session:
            app = DashboardApp(session.store)
            async with app.run_test(size=SIZE) as pilot:
                server.publish("anomalies", anomaly_event("a1", "medium"))
                await wait_until(pilot, lambda: _ids(app) == ["a1"])
                proxy.blackhole()  # the command will never reach the server
                await pilot.press("a")
                assert _row(app, "a1").marker == "acknowledge pending"
                await wait_until(pilot, lambda: _row(app, "a1").reverted is not None)
                assert _row(app, "a1").marker == "open · acknowledge reverted: timeout"
                assert _row(app, "a1").state is AnomalyState.OPEN
                assert app.toasts[-1].message == "acknowledge undone: timeout"
                assert server.core.state.anomalies["a1"].state == "open"
                proxy.restore()


@pytest.mark.asyncio
async def test_resolve_stays_listed_as_pending_until_the_server_confirms() -> None:
    log = RenderLog()
    async with live_session() as session:
        app = DashboardApp(session.store, on_render=log)
        async with app.run_test(size=SIZE) as pilot:
            session.server.publish("anomalies", anomaly_event("a1", "low", started=1.0))
            session.server.publish("anomalies", anomaly_event("a2", "low", started=2.0))
            await wait_until(pilot, lambda: _ids(app) == ["a1", "a2"])
            await pilot.press("down", "r")  # the cursor is on a2
            await wait_until(pilot, lambda: _ids(app) == ["a1"])
            assert log.markers("a2")[-1] == "resolve pending"
            assert session.server.core.state.anomalies["a2"].state == "resolved"
            assert app.query_one(AnomalyTable).selected_id == "a1"


@pytest.mark.asyncio
async def test_pause_and_resume_the_selected_anomalys_detector() -> None:
    log = RenderLog()
    async with live_session() as session:
        app = DashboardApp(session.store, on_render=log)
        async with app.run_test(size=SIZE) as pilot:
            session.server.publish("detectors", detector_event("det-1", "api latency"))
            session.server.publish("anomalies", anomaly_event("a1", "high"))
            badges = app.query_one(DetectorBadges)
            await wait_until(pilot, lambda: _ids(app) == ["a1"] and len(badges.badges) == 1)

            await pilot.press("p")
            await wait_until(
                pilot,
                lambda: badges.badges[0].pending is None
                and badges.badges[0].status.value == "paused",
            )
            shown = [
                (b[0].status.value, b[0].pending)
                for panel, b in log.values
                if panel == "detectors" and b
            ]
            assert ("paused", "pause") in shown  # the pending pause reached the screen first
            assert shown[-1] == ("paused", None)
            assert session.server.core.state.detectors["det-1"].status == "paused"

            await pilot.press("p")
            await wait_until(
                pilot,
                lambda: badges.badges[0].pending is None
                and badges.badges[0].status.value == "active",
            )
            assert session.server.core.state.detectors["det-1"].status == "active"
