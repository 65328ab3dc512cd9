"""A garbage-collector policy for a process that renders a live stream (an application's choice,
never applied by the library on its own; the dashboard CLI and the benchmarks apply it).

Two defaults of CPython's collector hurt a pipeline that decodes tens of thousands of events per
second:

* the first generation is collected whenever 700 more container objects are alive than before.
  One WebSocket frame keeps all its events' objects alive until the store has them (a backlogged
  frame carries ~180 events, ~15 containers each), so the collector ran several times per frame
  and promoted whole frames into the older generations, where they died expensively;
* every full collection traverses the whole heap, the import-time heap included (Textual,
  reactivex, websockets: ~50,000 objects), which stalled frames by up to 34 ms.

:func:`streaming_gc` raises the first threshold and hides the heap allocated before it from the
collector for as long as it is open. Measured (docs/performance.md): under a 65,000 events/s
flood the coalescing pipeline received 47,000 events/s with the heap hidden alone and 54,000
with both; at 50,000 events/s full collections went from ~550 ms in 4 s (up to 34 ms each) to
one of 0.5 ms. Cyclic garbage is still collected, only less often.
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator

__all__ = ["STREAMING_GEN0_THRESHOLD", "streaming_gc"]

#: Net new container objects between first-generation collections while :func:`streaming_gc`
#: is open (CPython's default is 700): above what one backlogged frame keeps alive.
STREAMING_GEN0_THRESHOLD = 10_000


@contextlib.contextmanager
def streaming_gc(gen0_threshold: int = STREAMING_GEN0_THRESHOLD) -> Iterator[None]:
    """While open: the first-generation threshold is ``gen0_threshold`` and everything allocated
    before entering (modules, classes, an open session) is frozen out of collections. On exit the
    thresholds are restored and the frozen heap is handed back to the collector.

    Enter it once the application is set up, around its run loop. Not re-entrant.
    """
    if gen0_threshold < 1:
        raise ValueError(f"gen0_threshold must be >= 1, got {gen0_threshold}")
    thresholds = gc.get_threshold()
    gc.collect()
    gc.freeze()
    gc.set_threshold(gen0_threshold, *thresholds[1:])
    try:
        yield
    finally:
        gc.set_threshold(*thresholds)
        gc.unfreeze()
