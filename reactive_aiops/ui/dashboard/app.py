"""The Textual dashboard app: four panels bound to selector streams of one store.

``DashboardApp(store)`` shows whatever store it is given -- the live client store from
:func:`reactive_aiops.aiops.live_store.create_live_store`, or any store with the AIOps slices --
and turns keys into commands dispatched to that store. It owns no connection: the caller starts
the client (and the embedded server) and stops them after the app exits (see :mod:`.session`).

Every panel reads one memoized view selector of the store, bound with the Textual adapter
(:func:`.bind.bind_selector`): values land on the app's thread, and the selector runs and the
panel renders at most ``fps`` times a second however fast events arrive.
Commands are dispatched as the domain's command actions; the live store's middleware applies them
optimistically and carries them to the server, and the panels show the journal: pending, then
confirmed, or reverted with the reason (also as a toast).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

import attrs
from textual.app import App, ComposeResult
from textual.binding import Binding as KeyBinding
from textual.binding import BindingType
from textual.containers import Vertical
from textual.widget import Widget
from textual.widgets import Footer, Header, Static

from reactive_aiops.aiops.actions import (
    AcknowledgeAnomaly,
    PauseDetector,
    ResolveAnomaly,
    ResumeDetector,
)
from reactive_aiops.aiops.models import AnomalyState, DetectorStatus
from reactive_aiops.core.optimistic import RevertedTransaction
from reactive_aiops.core.store import Store
from reactive_aiops.ui.dashboard.bind import bind_selector
from reactive_aiops.ui.dashboard.view import (
    AnomalyRow,
    command_label,
    new_critical_ids,
    select_anomaly_rows,
    select_connection_view,
    select_detector_badges,
    select_health_view,
    select_journal,
)
from reactive_aiops.ui.dashboard.widgets import (
    AnomalyTable,
    ConnectionPanel,
    DetectorBadges,
    HealthPanel,
)

__all__ = ["DashboardApp", "Toast"]

# Inline rather than a .tcss file: package data beyond py.typed is not installed with the wheel.
_CSS = """
#connection {
    height: 1;
    padding: 0 1;
    background: $boost;
}

#detectors {
    height: auto;
    max-height: 4;
    padding: 0 1;
    margin-bottom: 1;
}

#anomalies-box {
    height: 1fr;
    border: round $primary;
}

.panel-title {
    text-style: bold;
    padding: 0 1;
}

#anomalies {
    height: 1fr;
}

#health {
    height: 6;
    border: round $secondary;
    padding: 0 1;
}

#health-summary {
    height: 1;
}

#health-rate {
    height: 3;
}
"""


@attrs.frozen
class Toast:
    """A notification the app raised (kept in :attr:`DashboardApp.toasts` for tests and logs)."""

    title: str
    message: str
    severity: str


def _reverted(state: Any) -> tuple[RevertedTransaction, ...]:
    return select_journal(state).reverted


class DashboardApp(App[int]):
    """The AIOps dashboard over ``store``.

    ``user`` is recorded as ``acknowledged_by`` on acknowledgements; ``clock`` stamps commands and
    runs the reconnect countdown (use the clock the connection slice is stamped with); ``fps``
    caps renders per panel per second; ``quit_after`` (seconds) exits the app on its own.
    ``on_render(panel, value)`` is called after each panel rendered a value (instrumentation:
    panel is ``connection``, ``detectors``, ``anomalies`` or ``health``). ``screenshot`` is an
    SVG path written just before a ``quit_after`` exit.
    """

    TITLE = "reactive-aiops"
    SUB_TITLE = "live AIOps dashboard"
    CSS = _CSS
    BINDINGS: ClassVar[list[BindingType]] = [
        KeyBinding("a", "acknowledge", "Acknowledge"),
        KeyBinding("r", "resolve", "Resolve"),
        KeyBinding("p", "toggle_detector", "Pause/resume detector"),
        KeyBinding("q", "quit", "Quit"),
    ]

    def __init__(
        self,
        store: Store[Any],
        *,
        user: str = "operator",
        clock: Callable[[], float] = time.time,
        fps: float | None = 30.0,
        title: str | None = None,
        quit_after: float | None = None,
        on_render: Callable[[str, Any], None] | None = None,
        screenshot: str | None = None,
    ) -> None:
        super().__init__()
        self.store = store
        self.user = user
        self.clock = clock
        self.fps = fps
        self.quit_after = quit_after
        self._on_render = on_render
        self._screenshot = screenshot
        if title is not None:
            self.sub_title = title
        #: Every toast raised, oldest first.
        self.toasts: list[Toast] = []
        #: Renders delivered per panel (for tests and the headless summary).
        self.renders: dict[str, int] = {}
        self._seen_critical: set[str] = set()
        self._renderers: dict[str, Callable[[], None]] = {}
        self._seen_reverts: set[int] = set()

    # -- layout ----------------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        """Header, connection, detectors, anomalies (the main area), health, footer."""
        yield Header()
        yield ConnectionPanel(clock=self.clock, id="connection")
        yield DetectorBadges(id="detectors")
        with Vertical(id="anomalies-box"):
            yield Static("Anomalies (a: acknowledge, r: resolve)", classes="panel-title")
            yield AnomalyTable(id="anomalies")
        yield HealthPanel(id="health")
        yield Footer()

    def on_mount(self) -> None:
        """Bind every panel to its selector stream."""
        self._bind(self.query_one(ConnectionPanel), select_connection_view, "connection")
        self._bind(self.query_one(DetectorBadges), select_detector_badges, "detectors")
        table = self.query_one(AnomalyTable)
        self._bind(table, select_anomaly_rows, "anomalies", self._on_rows)
        # Health is unthrottled: it changes about once a second, and each update is a sample of
        # the sparkline's history, which coalescing would drop.
        self._bind(self.query_one(HealthPanel), select_health_view, "health", throttle=False)
        # Reverts are read unthrottled, each one deserves its toast; bound to the table, where
        # they are shown.
        bind_selector(table, self.store, _reverted, self._on_reverts, fps=None)
        table.focus()
        if self.quit_after is not None:
            self.set_timer(self.quit_after, self._time_up)

    def _time_up(self) -> None:
        if self._screenshot is not None:
            path = Path(self._screenshot)
            self.save_screenshot(path.name, str(path.parent))
        self.exit(0)

    def _bind(
        self,
        widget: Widget,
        selector: Callable[[Any], Any],
        name: str,
        after: Callable[[Any], None] | None = None,
        *,
        throttle: bool = True,
    ) -> None:
        show: Callable[[Any], None] = getattr(widget, "show")  # noqa: B009 - every panel has one
        self.renders[name] = 0

        def deliver(value: Any) -> None:
            show(value)
            self.renders[name] += 1
            if self._on_render is not None:
                self._on_render(name, value)
            if after is not None:
                after(value)

        bind_selector(widget, self.store, selector, deliver, fps=self.fps if throttle else None)
        self._renderers[name] = lambda: deliver(selector(self.store.state))

    def render_now(self, panel: str) -> None:
        """Render ``panel`` from the store's current state at once, outside the frame cadence.

        Used after the operator's own commands so the optimistic change (and its pending mark)
        shows immediately, not at the next frame; the coalesced stream delivers anything newer.
        """
        self._renderers[panel]()

    # -- notifications ---------------------------------------------------------------------------

    def toast(self, message: str, *, title: str = "", severity: str = "information") -> None:
        """Raise a Textual notification and remember it in :attr:`toasts`."""
        self.toasts.append(Toast(title, message, severity))
        self.notify(message, title=title, severity=severity, markup=False)  # type: ignore[arg-type]

    def _on_rows(self, rows: tuple[AnomalyRow, ...]) -> None:
        by_id = {row.id: row for row in rows}
        for anomaly_id in new_critical_ids(self._seen_critical, rows):
            row = by_id[anomaly_id]
            self.toast(
                f"{row.metric} on {row.detector_id}: score {row.score:.1f}",
                title="Critical anomaly",
                severity="error",
            )

    def _on_reverts(self, reverted: tuple[RevertedTransaction, ...]) -> None:
        for rev in reverted:
            if id(rev) in self._seen_reverts:
                continue
            self._seen_reverts.add(id(rev))
            what = ", ".join(command_label(a) for a in rev.actions) or "command"
            self.toast(f"{what} undone: {rev.reason}", title="Command reverted", severity="warning")
        # Forget ids of reverts that left the journal so a recycled id() cannot hide a new one.
        self._seen_reverts &= {id(rev) for rev in reverted}

    # -- commands --------------------------------------------------------------------------------

    def _selected(self) -> AnomalyRow | None:
        table = self.query_one(AnomalyTable)
        selected = table.selected_id
        return next((r for r in table.rows_shown if r.id == selected), None)

    def action_acknowledge(self) -> None:
        """Acknowledge the selected anomaly (optimistically; the server confirms or rejects)."""
        row = self._selected()
        if row is None:
            self.bell()
            return
        if row.pending is not None or row.state is not AnomalyState.OPEN:
            self.toast(f"{row.id} is {row.marker}", title="Nothing to acknowledge")
            return
        self.store.dispatch(AcknowledgeAnomaly(row.id, by=self.user, at=self.clock()))
        self.render_now("anomalies")

    def action_resolve(self) -> None:
        """Resolve the selected anomaly (optimistically; the server confirms or rejects)."""
        row = self._selected()
        if row is None:
            self.bell()
            return
        if row.pending is not None or row.state is AnomalyState.RESOLVED:
            self.toast(f"{row.id} is {row.marker}", title="Nothing to resolve")
            return
        self.store.dispatch(ResolveAnomaly(row.id, at=self.clock()))
        self.render_now("anomalies")

    def action_toggle_detector(self) -> None:
        """Pause the selected anomaly's detector, or resume it when it is paused."""
        row = self._selected()
        badges = self.query_one(DetectorBadges).badges
        badge = next((b for b in badges if row is not None and b.id == row.detector_id), None)
        if badge is None:
            self.bell()
            return
        if badge.pending is not None:
            self.toast(f"{badge.name}: {badge.pending} pending", title="Command in flight")
            return
        if badge.status is DetectorStatus.PAUSED:
            self.store.dispatch(ResumeDetector(badge.id, at=self.clock()))
        else:
            self.store.dispatch(PauseDetector(badge.id, at=self.clock()))
        self.render_now("detectors")
