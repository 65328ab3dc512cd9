"""UI adapters: deliver store streams on a toolkit's own thread, at screen speed.

* Hook-style streams (:mod:`.hooks`): ``use_websocket``, ``use_websocket_health``,
  ``use_real_time_detector``, ``use_real_time_anomalies`` -- current value first, then changes.
* Render coalescing (:mod:`.coalesce`): ``coalesce_frames(fps)`` -- at most one value per frame,
  the newest, delivered at once after a quiet frame, the last one never lost.
* Adapters, each disposed together with its widget: ``aiter_stream`` (asyncio), ``bind_textual``,
  ``bind_tk``, ``bind_qt``.
* ``streaming_gc()``: the garbage-collector policy a live UI process should run under
  (:mod:`.gc_policy`).

No toolkit is imported here or by any adapter module at import time: each adapter receives the
toolkit's objects (a widget, ``QtCore``) from the caller, so ``import reactive_aiops.ui`` works
with none of Textual, Tk or Qt installed. The dashboard lives in :mod:`.dashboard`.
"""

from reactive_aiops.ui._binding import Binding
from reactive_aiops.ui.aio import StreamIterator, aiter_stream
from reactive_aiops.ui.coalesce import DEFAULT_FPS, coalesce_frames
from reactive_aiops.ui.gc_policy import STREAMING_GEN0_THRESHOLD, streaming_gc
from reactive_aiops.ui.hooks import (
    AnomalyFilter,
    use_real_time_anomalies,
    use_real_time_detector,
    use_websocket,
    use_websocket_health,
)
from reactive_aiops.ui.qt import QtObjectScheduler, bind_qt
from reactive_aiops.ui.textual import BINDING_WORKER_GROUP, bind_textual
from reactive_aiops.ui.tk import DEFAULT_POLL_INTERVAL, TkWidgetScheduler, bind_tk

__all__ = [
    "BINDING_WORKER_GROUP",
    "DEFAULT_FPS",
    "DEFAULT_POLL_INTERVAL",
    "STREAMING_GEN0_THRESHOLD",
    "AnomalyFilter",
    "Binding",
    "QtObjectScheduler",
    "StreamIterator",
    "TkWidgetScheduler",
    "aiter_stream",
    "bind_qt",
    "bind_textual",
    "bind_tk",
    "coalesce_frames",
    "streaming_gc",
    "use_real_time_anomalies",
    "use_real_time_detector",
    "use_websocket",
    "use_websocket_health",
]
