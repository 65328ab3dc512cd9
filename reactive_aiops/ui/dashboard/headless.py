"""The dashboard pipeline without a terminal: server -> client -> bridge -> store -> selector
streams consumed on the asyncio loop, for a fixed time, then a summary.

What is measured: every server event's ``ts`` (stamped by the server when it sends the event) is
read from the event meta of the action that reached the reducer; when the next dashboard frame
(all four panels' view records, through :func:`coalesce_frames` like the Textual app) reaches the
consumer on the loop, each event it includes gets one latency sample: consumer time minus ``ts``.
Both times are the wall clock (``time.time``), which server and client share on one machine.
"""

from __future__ import annotations

import asyncio
import time
from array import array
from collections.abc import Callable
from typing import Any

import attrs
from reactivex.scheduler.eventloop import AsyncIOScheduler

from reactive_aiops.core.actions import Batch
from reactive_aiops.core.events import event_meta
from reactive_aiops.core.selectors import Selector, create_selector
from reactive_aiops.core.store import Store
from reactive_aiops.ui.aio import aiter_stream
from reactive_aiops.ui.coalesce import coalesce_frames
from reactive_aiops.ui.dashboard.view import (
    select_anomaly_rows,
    select_connection,
    select_connection_view,
    select_detector_badges,
    select_health_view,
)

__all__ = ["LatencyProbe", "Summary", "dashboard_frame", "run_headless"]

#: Everything the dashboard renders, as one record: a new frame whenever any panel would change.
dashboard_frame: Selector[Any, tuple[Any, ...]] = create_selector(
    select_connection_view,
    select_detector_badges,
    select_anomaly_rows,
    select_health_view,
    lambda *panels: panels,
)


class LatencyProbe:
    """Event-to-render latency: events are noted as they reach the reducer, and a render
    covers every event noted before it.

    Feed :meth:`on_action` from ``store.actions`` and call :meth:`on_render` when a rendered
    value reaches the UI loop. Only valid when the render happens after the reducer ran for the
    events it covers (true for an async consumer such as ``aiter_stream``).
    """

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        # Samples are kept in float arrays, not lists: a list of hundreds of thousands of floats
        # is traversed by every full garbage collection (measured: up to 21 ms per collection
        # after 200,000 events, stalling frames), an array is not tracked by the collector.
        self._pending_sent = array("d")  # sent ts of events reduced but not yet rendered
        self._pending_reduced = array("d")  # when each reached the reducer
        #: Latency samples in seconds, one per rendered event.
        self.samples = array("d")
        #: The same events split at the store: ``ts`` -> the store updated (action callbacks run
        #: after the reducers and state subscribers), and from there -> the render.
        self.to_reducer = array("d")
        self.to_render = array("d")
        self.events = 0
        self.renders = 0

    def on_action(self, act: object) -> None:
        """Note the send time of a server event (also inside a ``Batch``)."""
        inner = act.actions if type(act) is Batch else (act,)
        now: float | None = None
        for one in inner:
            meta = event_meta(one)
            if meta is not None and meta.sent_ts is not None:
                if now is None:
                    now = self._clock()
                self._pending_sent.append(meta.sent_ts)
                self._pending_reduced.append(now)
                self.events += 1

    def on_render(self, _value: object = None) -> None:
        """A frame reached the UI: every noted event is now on screen."""
        self.renders += 1
        sent, reduced = self._pending_sent, self._pending_reduced
        if not sent:
            return
        now = self._clock()
        self.samples.extend([now - ts for ts in sent])
        self.to_reducer.extend([r - ts for ts, r in zip(sent, reduced, strict=True)])
        self.to_render.extend([now - r for r in reduced])
        del sent[:], reduced[:]


def _percentile(ordered: list[float], p: float) -> float:
    k = max(0, min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1))))
    return ordered[k]


@attrs.frozen
class Summary:
    """What a headless run saw. Latencies are in milliseconds (None without samples)."""

    seconds: float
    events: int
    renders: int
    anomalies_open: int
    reconnects: int
    anomalies_seen: int = 0
    detectors: int = 0
    status: str = "offline"
    p50_ms: float | None = None
    p95_ms: float | None = None
    p99_ms: float | None = None
    max_ms: float | None = None

    @classmethod
    def build(cls, probe: LatencyProbe, state: Any, seconds: float) -> Summary:
        """Summarize ``probe`` and the final ``state``."""
        connection = select_connection(state)
        rows = select_anomaly_rows(state)
        figures: dict[str, float] = {}
        if probe.samples:
            ordered = sorted(probe.samples)
            figures = {
                "p50_ms": _percentile(ordered, 50) * 1000,
                "p95_ms": _percentile(ordered, 95) * 1000,
                "p99_ms": _percentile(ordered, 99) * 1000,
                "max_ms": ordered[-1] * 1000,
            }
        return cls(
            seconds=seconds,
            events=probe.events,
            renders=probe.renders,
            anomalies_open=sum(1 for r in rows if r.state.value == "open"),
            reconnects=connection.health.reconnects if connection is not None else 0,
            anomalies_seen=len(state.anomalies),
            detectors=len(state.detectors),
            status=connection.status.value if connection is not None else "offline",
            **figures,
        )

    def format(self) -> str:
        """A short human-readable report."""

        def ms(value: float | None) -> str:
            return "n/a" if value is None else f"{value:.2f} ms"

        rate = self.events / max(self.seconds, 1e-9)
        return "\n".join(
            [
                f"headless dashboard run: {self.seconds:.1f} s, connection {self.status}",
                f"  events received   {self.events} ({rate:.1f}/s)",
                f"  frames rendered   {self.renders}",
                f"  detectors         {self.detectors}",
                f"  anomalies open    {self.anomalies_open} (seen {self.anomalies_seen})",
                f"  reconnects        {self.reconnects}",
                "  event-to-render   "
                f"p50 {ms(self.p50_ms)}  p95 {ms(self.p95_ms)}  p99 {ms(self.p99_ms)}"
                f"  max {ms(self.max_ms)}",
            ]
        )


async def run_headless(
    store: Store[Any],
    duration: float,
    *,
    fps: float | None = 60.0,
    clock: Callable[[], float] = time.time,
) -> Summary:
    """Consume the dashboard's frames from ``store`` on this loop for ``duration`` seconds.

    ``fps=None`` renders every change (no coalescing). Returns the :class:`Summary`; the store,
    its client and server are the caller's to stop.
    """
    probe = LatencyProbe(clock)
    loop = asyncio.get_running_loop()
    listening = store.actions.subscribe(probe.on_action)
    frames = store.select(dashboard_frame)
    if fps is not None:
        frames = frames.pipe(coalesce_frames(fps, scheduler=AsyncIOScheduler(loop)))
    started = loop.time()
    deadline = started + duration
    try:
        async with aiter_stream(frames) as iterator:
            while (remaining := deadline - loop.time()) > 0:
                try:
                    async with asyncio.timeout(remaining):
                        value = await anext(iterator)
                except (TimeoutError, StopAsyncIteration):
                    break
                probe.on_render(value)
    finally:
        listening.dispose()
    return Summary.build(probe, store.state, loop.time() - started)
