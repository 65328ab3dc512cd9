"""The dashboard's Textual widgets. Each renders one view record from :mod:`.view`.

Widgets never read the store: the app binds a selector stream to each widget's ``show`` method
through the Textual adapter, so values arrive on the app's thread, one record per change. Rendering
is a pure function of the record (plus the clock, for the reconnect countdown), kept in
module-level ``format_*`` functions that the tests call directly.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.timer import Timer
from textual.widgets import DataTable, Sparkline, Static

from reactive_aiops.aiops.models import DetectorStatus, HealthStatus, Severity
from reactive_aiops.ui.dashboard.view import (
    AnomalyRow,
    ConnectionView,
    DetectorBadge,
    HealthView,
)

__all__ = [
    "AnomalyTable",
    "ConnectionPanel",
    "DetectorBadges",
    "HealthPanel",
    "format_anomaly_cells",
    "format_badges",
    "format_connection",
]

_STATUS_STYLE = {
    "connected": "bold green",
    "connecting": "yellow",
    "reconnecting": "bold yellow",
    "disconnected": "dim",
    "failed": "bold red",
    "offline": "dim",
}
_DETECTOR_STYLE = {
    DetectorStatus.ACTIVE: "black on green",
    DetectorStatus.PAUSED: "black on yellow",
    DetectorStatus.TRAINING: "black on cyan",
    DetectorStatus.ERROR: "white on red",
}
_SEVERITY_STYLE = {
    Severity.LOW: "dim",
    Severity.MEDIUM: "yellow",
    Severity.HIGH: "bold dark_orange",
    Severity.CRITICAL: "bold white on red",
}
_HEALTH_STYLE = {
    HealthStatus.OK: "bold green",
    HealthStatus.DEGRADED: "bold yellow",
    HealthStatus.CRITICAL: "bold red",
}


def format_connection(view: ConnectionView, now: float) -> Text:
    """The connection line: status, latency, reconnect countdown and the reason for a loss."""
    text = Text()
    text.append("● ", style=_STATUS_STYLE.get(view.status, ""))
    text.append(view.status.upper(), style=_STATUS_STYLE.get(view.status, ""))
    if view.retry_at is not None:
        text.append(f"  retry in {max(0.0, view.retry_at - now):.1f}s")
        if view.attempt:
            text.append(f" (attempt {view.attempt})")
    if view.latency_ms is not None:
        text.append(f"  latency {view.latency_ms:.1f} ms")
    text.append(f"  {view.messages_per_second:.0f} msg/s  reconnects {view.reconnects}")
    if view.detail:
        style = "red" if view.status in ("failed", "reconnecting") else "dim"
        text.append(f"  {view.detail}", style=style)
    return text


class ConnectionPanel(Static):
    """Connection status; re-renders on its own every 0.2 s while a reconnect is counting down.

    ``clock`` must be the clock the connection slice's ``next_retry_at`` was stamped with.
    """

    def __init__(self, *, clock: Callable[[], float] = time.time, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.view = ConnectionView(status="offline")
        self._clock = clock
        self._ticker: Timer | None = None

    def show(self, view: ConnectionView) -> None:
        """Render ``view`` now; start or stop the countdown ticker as needed."""
        self.view = view
        self._render_now()
        if view.retry_at is not None and self._ticker is None:
            self._ticker = self.set_interval(0.2, self._render_now)
        elif view.retry_at is None and self._ticker is not None:
            self._ticker.stop()
            self._ticker = None

    def _render_now(self) -> None:
        self.update(format_connection(self.view, self._clock()))


def format_badges(badges: Sequence[DetectorBadge]) -> Text:
    """One badge per detector: ``name status``, coloured by status, marked while a command runs."""
    text = Text()
    if not badges:
        return Text("no detectors yet", style="dim")
    for badge in badges:
        label = f" {badge.name} {badge.status.value}"
        if badge.pending is not None:
            label += f" ({badge.pending}…)"
        label += " "
        text.append(label, style=_DETECTOR_STYLE.get(badge.status, ""))
        if badge.reverted is not None:
            text.append(f" {badge.reverted}", style="red")
        text.append("  ")
    return text


class DetectorBadges(Static):
    """A row of detector badges."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.badges: tuple[DetectorBadge, ...] = ()

    def show(self, badges: tuple[DetectorBadge, ...]) -> None:
        """Render ``badges``."""
        self.badges = badges
        self.update(format_badges(badges))


def format_anomaly_cells(row: AnomalyRow) -> tuple[Text, ...]:
    """The cells of one anomaly row: severity, metric, detector, score, status, started."""
    if row.pending is not None:
        status_style = "italic yellow"
    elif row.reverted is not None:
        status_style = "bold red"
    else:
        status_style = "green" if row.state.value == "acknowledged" else ""
    status = row.marker
    if row.pending is None and row.reverted is None and row.acknowledged_by:
        status += f" by {row.acknowledged_by}"
    return (
        Text(row.severity.value.upper(), style=_SEVERITY_STYLE.get(row.severity, "")),
        Text(row.metric),
        Text(row.detector_id),
        Text(f"{row.score:.1f}", justify="right"),
        Text(status, style=status_style),
        Text(time.strftime("%H:%M:%S", time.localtime(row.started_at))),
    )


class AnomalyTable(DataTable[Text]):
    """The notification centre: one row per anomaly, the cursor kept on the same anomaly."""

    COLUMNS = ("severity", "metric", "detector", "score", "status", "started")

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(cursor_type="row", zebra_stripes=True, **kwargs)
        self.rows_shown: tuple[AnomalyRow, ...] = ()

    def on_mount(self) -> None:
        """Create the columns."""
        self.add_columns(*self.COLUMNS)

    @property
    def selected_id(self) -> str | None:
        """The id of the anomaly under the cursor, or None when the list is empty."""
        if not self.rows_shown or not 0 <= self.cursor_row < len(self.rows_shown):
            return None
        return self.rows_shown[self.cursor_row].id

    def show(self, rows: tuple[AnomalyRow, ...]) -> None:
        """Replace the rows, keeping the cursor on the anomaly it was on when it is still listed."""
        keep = self.selected_id
        self.rows_shown = rows
        self.clear()
        for row in rows:
            self.add_row(*format_anomaly_cells(row), key=row.id)
        if keep is not None:
            for index, row in enumerate(rows):
                if row.id == keep:
                    self.move_cursor(row=index, scroll=False)
                    break


class HealthPanel(Vertical):
    """System health: status and counts, and events per second over time (a sparkline).

    ``history`` samples are kept: one per health update from the server.
    """

    def __init__(self, *, history: int = 120, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.rates: deque[float] = deque(maxlen=history)
        self.view = HealthView(status=None)

    def compose(self) -> ComposeResult:
        """A summary line above the sparkline."""
        yield Static("waiting for the first health update", id="health-summary")
        yield Sparkline([], summary_function=max, id="health-rate")

    def show(self, view: HealthView) -> None:
        """Render ``view`` and append its event rate to the sparkline."""
        self.view = view
        summary = self.query_one("#health-summary", Static)
        if view.status is None:
            summary.update(Text("waiting for the first health update", style="dim"))
            return
        self.rates.append(view.events_per_second)
        text = Text()
        text.append(view.status.value.upper(), style=_HEALTH_STYLE.get(view.status, ""))
        text.append(
            f"  {view.events_per_second:,.1f} events/s"
            f"  open anomalies {view.open_anomalies}"
            f"  detectors active {view.detectors_active}  error {view.detectors_error}"
        )
        summary.update(text)
        self.query_one("#health-rate", Sparkline).data = list(self.rates)
