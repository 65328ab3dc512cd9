"""The dashboard panels: text formatting, and panels rendering under a real Textual app."""

from __future__ import annotations

from typing import Any

import attrs
import pytest
from textual.app import App, ComposeResult

from reactive_aiops.aiops.models import AnomalyState, DetectorStatus, HealthStatus, Severity
from reactive_aiops.ui.dashboard.view import (
    AnomalyRow,
    ConnectionView,
    DetectorBadge,
    HealthView,
)
from reactive_aiops.ui.dashboard.widgets import (
    AnomalyTable,
    ConnectionPanel,
    HealthPanel,
    format_anomaly_cells,
    format_badges,
)


def _row(anomaly_id: str, severity: Severity = Severity.HIGH, **changes: Any) -> AnomalyRow:
    row = AnomalyRow(
        id=anomaly_id,
        detector_id="det-1",
        metric="cpu.utilization",
        severity=severity,
        state=AnomalyState.OPEN,
        score=7.5,
        value=97.0,
        started_at=1_700_000_000.0,
    )
    return attrs.evolve(row, **changes)


def test_cells_show_marker_and_who_acknowledged() -> None:
    row = _row("a1", state=AnomalyState.ACKNOWLEDGED, acknowledged_by="ann")
    cells = format_anomaly_cells(row)
    assert cells[0].plain == "HIGH"
    assert cells[3].plain == "7.5"
    assert cells[4].plain == "acknowledged by ann"
    pending = format_anomaly_cells(_row("a2", pending="resolve"))
    assert pending[4].plain == "resolve pending"


def test_badges_show_status_and_commands() -> None:
    text = format_badges(
        (
            DetectorBadge("d1", "api", "m", DetectorStatus.ACTIVE),
            DetectorBadge("d2", "db", "m", DetectorStatus.PAUSED, pending="resume"),
            DetectorBadge("d3", "q", "m", DetectorStatus.ERROR, reverted="pause reverted: 403"),
        )
    ).plain
    assert "api active" in text
    assert "db paused (resume…)" in text
    assert "q error" in text
    assert "pause reverted: 403" in text
    assert format_badges(()).plain == "no detectors yet"


class PanelsApp(App[None]):
    def compose(self) -> ComposeResult:
        yield ConnectionPanel(clock=lambda: 100.0)
        yield AnomalyTable()
        yield HealthPanel(history=3)


@pytest.mark.asyncio
async def test_table_keeps_the_cursor_on_the_same_anomaly() -> None:
    app = PanelsApp()
    async with app.run_test() as pilot:
        table = app.query_one(AnomalyTable)
        table.show((_row("a1"), _row("a2"), _row("a3")))
        await pilot.press("down")
        assert table.selected_id == "a2"
        # a critical one arrives on top: the cursor follows a2 to its new index
        table.show((_row("c1", Severity.CRITICAL), _row("a1"), _row("a2"), _row("a3")))
        assert table.selected_id == "a2"
        assert table.cursor_row == 2
        table.show((_row("a1"),))  # a2 is gone: the cursor stays in range
        assert table.selected_id == "a1"
        table.show(())
        assert table.selected_id is None


@pytest.mark.asyncio
async def test_health_sparkline_keeps_the_last_samples() -> None:
    app = PanelsApp()
    async with app.run_test():
        panel = app.query_one(HealthPanel)
        panel.show(HealthView(status=None))
        assert list(panel.rates) == []
        for rate in (1.0, 2.0, 3.0, 4.0):
            panel.show(HealthView(status=HealthStatus.OK, events_per_second=rate))
        assert list(panel.rates) == [2.0, 3.0, 4.0]


@pytest.mark.asyncio
async def test_connection_countdown_ticks_only_while_reconnecting() -> None:
    app = PanelsApp()
    async with app.run_test():
        panel = app.query_one(ConnectionPanel)
        panel.show(ConnectionView(status="reconnecting", retry_at=102.5, attempt=3))
        assert "retry in 2.5s (attempt 3)" in str(panel.render())
        assert panel._ticker is not None
        panel.show(ConnectionView(status="connected"))
        assert panel._ticker is None
        assert "retry" not in str(panel.render())
