"""One browser tab of the web dashboard: NiceGUI elements rendering the hub's frames.

Each tab has its own UI state (filters, selected anomaly, what it already notified about) and
one coalesced binding to the store's frame stream (:func:`.adapter.bind_client`), so it renders
at most ``fps`` times a second and each render leaves as one update message. Everything that came
from the wire reaches the page as element text, table cell values or chart data -- never as HTML.
"""

from __future__ import annotations

import json
import time
from typing import Any

from nicegui import Client, background_tasks, ui
from nicegui.events import GenericEventArguments

from reactive_aiops.aiops.models import AnomalyState, DetectorStatus, Severity
from reactive_aiops.ui.dashboard.view import AnomalyRow, DetectorBadge
from reactive_aiops.ui.web.adapter import bind_client
from reactive_aiops.ui.web.hub import CommandRefused, Hub
from reactive_aiops.ui.web.model import (
    Frame,
    NotificationGate,
    TabFilter,
    connection_text,
    row_cells,
)

__all__ = ["NOTIFY_SCRIPT", "DashboardTab"]

#: Defines ``raiopsNotify(title, body, tag)``: a Notification when allowed, else false (the
#: server then shows a toast in the page). Title and body arrive as JSON string literals.
NOTIFY_SCRIPT = """<script>
window.raiopsNotify = function (title, body, tag) {
  if (!("Notification" in window) || Notification.permission !== "granted") return false;
  try { new Notification(title, {body: body, tag: tag}); return true; } catch (e) { return false; }
};
</script>"""

_COLUMNS = [
    {"name": "severity", "label": "Severity", "field": "severity", "align": "left"},
    {"name": "metric", "label": "Metric", "field": "metric", "align": "left"},
    {"name": "detector", "label": "Detector", "field": "detector", "align": "left"},
    {"name": "score", "label": "Score", "field": "score"},
    {"name": "value", "label": "Value", "field": "value"},
    {"name": "status", "label": "Status", "field": "status", "align": "left"},
    {"name": "by", "label": "Acknowledged by", "field": "by", "align": "left"},
    {"name": "id", "label": "Id", "field": "id", "align": "left"},
]
_STATUS_COLOR = {
    "connected": "positive",
    "connecting": "warning",
    "reconnecting": "warning",
    "failed": "negative",
}
_DETECTOR_COLOR = {
    DetectorStatus.ACTIVE: "positive",
    DetectorStatus.PAUSED: "warning",
    DetectorStatus.TRAINING: "info",
    DetectorStatus.ERROR: "negative",
}


def _line_chart(name: str) -> dict[str, Any]:
    return {
        "animation": False,
        "grid": {"left": 48, "right": 16, "top": 28, "bottom": 28},
        "title": {"text": name, "textStyle": {"fontSize": 13}},
        "tooltip": {"trigger": "axis"},
        "xAxis": {"type": "time"},
        "yAxis": {"type": "value", "scale": True},
        "series": [{"type": "line", "showSymbol": False, "data": []}],
    }


def _points(samples: list[tuple[float, float]]) -> list[list[float]]:
    return [[t * 1000.0, v] for t, v in samples]


class DashboardTab:
    """The elements of one tab and its render function; build it inside a page function."""

    def __init__(
        self, hub: Hub, client: Client, *, user: str, tab_filter: TabFilter, fps: float
    ) -> None:
        self.hub = hub
        self.client = client
        self.user = user
        self.filter = tab_filter
        self.tab_id = client.id
        self.selected: str | None = None
        self.frames = 0
        self._last: Frame | None = None
        self._shown_rows: list[AnomalyRow] = []
        self._gate = NotificationGate()
        self._reverts_seen: dict[str, str] = {}
        self._rates_version = -1
        self._scores_version = -1
        self._score_for: str | None = None
        self._activity_last: object = ()  # never a record: the first render fills the list
        self._build()
        self.render(hub.frame())
        bind_client(client, hub.frames(), self.render, fps=fps)
        ui.timer(0.25, self._tick)
        hub.tabs[self.tab_id] = self.stats
        client.on_delete(lambda: hub.tabs.pop(self.tab_id, None))

    # -- layout ----------------------------------------------------------------------------------

    def _build(self) -> None:
        ui.add_head_html(NOTIFY_SCRIPT)
        with ui.column().classes("w-full gap-2 p-2") as self.root:
            with ui.row().classes("w-full items-center gap-4"):
                ui.label("reactive-aiops").classes("text-xl font-bold")
                ui.label(self.hub.title).classes("text-gray-500")
                ui.space()
                self.user_label = ui.label(f"signed in as {self.user}").props(
                    "data-testid=user"
                )
                # Runs in the browser on the click itself: permission prompts need the gesture.
                ui.button("Enable notifications").props("flat dense").on(
                    "click",
                    js_handler="() => window.Notification && Notification.requestPermission()",
                )
            with ui.row().classes("w-full items-center gap-2"):
                self.status_badge = ui.badge("offline", color="grey")
                self.connection_label = ui.label("").props("data-testid=connection")
            self.detectors_row = (
                ui.row(wrap=True).classes("w-full gap-1").props("data-testid=detectors")
            )
            with ui.row().classes("w-full items-center gap-2"):
                self.severity_select = ui.select(
                    [s.value for s in Severity], multiple=True, label="Severity",
                    value=sorted(s.value for s in self.filter.severities),
                    on_change=self._filters_changed,
                ).classes("min-w-[12rem]").props("dense clearable")
                self.state_select = ui.select(
                    [s.value for s in AnomalyState if s is not AnomalyState.RESOLVED],
                    multiple=True, label="State",
                    value=sorted(s.value for s in self.filter.states),
                    on_change=self._filters_changed,
                ).classes("min-w-[12rem]").props("dense clearable")
                ui.space()
                self.selected_label = ui.label("nothing selected").props("data-testid=selected")
                ui.button("Acknowledge", on_click=self._acknowledge).props("data-testid=ack")
                ui.button("Resolve", on_click=self._resolve).props("data-testid=resolve")
                ui.button("Pause/resume detector", on_click=self._toggle_detector).props(
                    "data-testid=pause"
                )
            self.table = ui.table(
                columns=_COLUMNS, rows=[], row_key="id", pagination=0
            ).classes("w-full cursor-pointer").props("dense flat bordered data-testid=anomalies")
            # The selected row is marked by a per-tab boolean cell, never by wire text in code.
            self.table.props(":table-row-class-fn=\"row => row.selected ? 'bg-blue-2' : ''\"")
            self.table.on("rowClick", self._row_clicked)
            with ui.row().classes("w-full no-wrap gap-2"):
                self.rate_chart = ui.echart(_line_chart("events/s")).classes("w-1/2 h-56")
                self.score_chart = ui.echart(_line_chart("score (select an anomaly)")).classes(
                    "w-1/2 h-56"
                )
            self.health_label = ui.label("health: waiting for the server").props(
                "data-testid=health"
            )
            ui.label("Commands from this dashboard").classes("font-bold")
            self.activity = ui.column().classes("gap-0 text-sm").props("data-testid=activity")

    def stats(self) -> dict[str, int]:
        """Frames rendered and UI messages sent to this tab so far."""
        return {"frames": self.frames, "messages": self.client.outbox.next_message_id}

    # -- rendering -------------------------------------------------------------------------------

    def render(self, frame: Frame) -> None:
        """Bring every element whose record changed up to ``frame`` (all of them the first
        time)."""
        last = self._last
        self._last = frame
        self.frames += 1
        with self.root:
            if last is None or last.connection != frame.connection \
                    or last.resyncs != frame.resyncs:
                self._show_connection(frame)
            detectors = last is None or last.detectors != frame.detectors
            anomalies = last is None or last.anomalies != frame.anomalies
            if detectors:
                self._show_detectors(frame.detectors)
            if anomalies:
                self._show_rows(frame.anomalies)
                self._notify(frame.anomalies)
            if detectors or anomalies:
                self._toast_reverts(frame, quiet=self.frames == 1)
            if last is None or last.health != frame.health:
                self._show_health(frame)
            self._show_charts()
            self._show_activity()

    def _tick(self) -> None:
        # Only the reconnect countdown moves without a store change.
        if self._last is not None and self._last.connection.retry_at is not None:
            self._show_connection(self._last)

    def _show_connection(self, frame: Frame) -> None:
        view = frame.connection
        self.status_badge.set_text(view.status)
        self.status_badge.props(f"color={_STATUS_COLOR.get(view.status, 'grey')}")
        self.connection_label.set_text(connection_text(view, frame.resyncs, time.time()))

    def _show_detectors(self, badges: tuple[DetectorBadge, ...]) -> None:
        self.detectors_row.clear()
        with self.detectors_row:
            if not badges:
                ui.label("no detectors yet").classes("text-gray-500")
            for badge in badges:
                text = f"{badge.name}: {badge.status.value}"
                if badge.pending is not None:
                    text += f" ({badge.pending} pending)"
                elif badge.reverted is not None:
                    text += f" ({badge.reverted})"
                ui.badge(text, color=_DETECTOR_COLOR.get(badge.status, "grey"))

    def _show_rows(self, rows: tuple[AnomalyRow, ...]) -> None:
        shown = self.filter.apply(rows)
        self._shown_rows = shown
        cells = [row_cells(row) for row in shown]
        for cell, row in zip(cells, shown, strict=True):
            cell["by"] = self.hub.shown_by(row)
            cell["selected"] = row.id == self.selected
        if cells != self.table.rows:
            self.table.rows = cells
            self.table.update()
        self._show_selected()

    def _show_selected(self) -> None:
        row = self._selected_row()
        if row is None and self.selected is not None:
            self.selected_label.set_text(f"selected: {self.selected} (no longer listed)")
        elif row is None:
            self.selected_label.set_text("nothing selected")
        else:
            self.selected_label.set_text(f"selected: {row.id} ({row.marker})")

    def _show_health(self, frame: Frame) -> None:
        health = frame.health
        if health.status is None:
            self.health_label.set_text("health: waiting for the server")
            return
        self.health_label.set_text(
            f"health: {health.status.value} · {health.events_per_second:.0f} events/s · "
            f"{health.open_anomalies} open anomalies · {health.detectors_active} detectors active"
            f" · {health.detectors_error} in error"
        )

    def _show_charts(self) -> None:
        rates = self.hub.rates
        if rates.version != self._rates_version:
            self._rates_version = rates.version
            self.rate_chart.options["series"][0]["data"] = _points(rates.samples())
            self.rate_chart.update()
        scores = self.hub.scores
        version = scores.version_of(self.selected) if self.selected else 0
        # Redrawn only when the selected anomaly's own series moved, not on every score.
        if version != self._scores_version or self._score_for != self.selected:
            self._scores_version = version
            self._score_for = self.selected
            title = f"score of {self.selected}" if self.selected else "score (select an anomaly)"
            self.score_chart.options["title"]["text"] = title
            samples = scores.samples(self.selected) if self.selected else []
            self.score_chart.options["series"][0]["data"] = _points(samples)
            self.score_chart.update()

    def _show_activity(self) -> None:
        records = self.hub.audit_records
        last = records[-1] if records else None
        if last is self._activity_last:
            return
        self._activity_last = last
        self.activity.clear()
        with self.activity:
            if not records:
                ui.label("none yet").classes("text-gray-500")
            for record in reversed(records[-5:]):
                ui.label(f"{record.user}: {record.action} {record.entity} → {record.outcome}")

    def _notify(self, rows: tuple[AnomalyRow, ...]) -> None:
        for row in self._gate.fresh(rows):
            title = f"{row.severity.value.upper()} anomaly: {row.metric}"
            body = f"{row.detector_id} · score {row.score:.1f} · {row.id}"
            self._raise(title, body, row.id)

    def _raise(self, title: str, body: str, tag: str) -> None:
        async def send() -> None:
            call = f"raiopsNotify({json.dumps(title)}, {json.dumps(body)}, {json.dumps(tag)})"
            shown = await self.client.run_javascript(call, timeout=5.0)
            if shown is not True and not self.client.is_deleted:
                with self.root:
                    ui.notify(f"{title} — {body}", type="negative", position="bottom-right")

        background_tasks.create(send(), name="raiops-notify")

    def _toast_reverts(self, frame: Frame, *, quiet: bool) -> None:
        # ``quiet``: the tab just opened; reverts from before are marked in the rows, no toast.
        marks = [(f"anomaly:{r.id}", r.id, r.reverted) for r in frame.anomalies]
        marks += [(f"detector:{b.id}", b.name, b.reverted) for b in frame.detectors]
        for key, name, reverted in marks:
            if reverted is not None and self._reverts_seen.get(key) != reverted:
                self._reverts_seen[key] = reverted
                if not quiet:
                    ui.notify(f"{name}: {reverted}", type="warning", position="bottom-right")

    # -- interaction -----------------------------------------------------------------------------

    def _selected_row(self) -> AnomalyRow | None:
        return next((r for r in self._shown_rows if r.id == self.selected), None)

    def _select(self, anomaly_id: str | None) -> None:
        self.selected = anomaly_id
        if self._last is not None:
            self._show_rows(self._last.anomalies)
        self._show_selected()
        self._show_charts()

    def _row_clicked(self, event: GenericEventArguments) -> None:
        args = event.args if isinstance(event.args, list) else [event.args]
        row = next((a for a in args if isinstance(a, dict) and "id" in a), None)
        if row is not None and isinstance(row["id"], str):
            self._select(row["id"])

    def _filters_changed(self) -> None:
        try:
            self.filter = TabFilter(
                frozenset(Severity(v) for v in self.severity_select.value or ()),
                frozenset(AnomalyState(v) for v in self.state_select.value or ()),
            )
        except ValueError:
            return
        if self._last is not None:
            self._show_rows(self._last.anomalies)

    def _command(self, action: Any) -> None:
        try:
            action()
        except CommandRefused as exc:
            ui.notify(str(exc), type="info", position="bottom-right")
            return
        # Show the optimistic change now, not at the next frame.
        self.render(self.hub.frame())

    def _acknowledge(self) -> None:
        row = self._selected_row()
        if row is None:
            ui.notify("select an anomaly first", position="bottom-right")
            return
        self._command(lambda: self.hub.acknowledge(row, self.user))

    def _resolve(self) -> None:
        row = self._selected_row()
        if row is None:
            ui.notify("select an anomaly first", position="bottom-right")
            return
        self._command(lambda: self.hub.resolve(row, self.user))

    def _toggle_detector(self) -> None:
        row = self._selected_row()
        badges = self._last.detectors if self._last is not None else ()
        badge = next((b for b in badges if row is not None and b.id == row.detector_id), None)
        if badge is None:
            ui.notify("select an anomaly whose detector is known", position="bottom-right")
            return
        self._command(lambda: self.hub.toggle_detector(badge, self.user))
