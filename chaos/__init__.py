"""``make chaos``: fault scenarios against real processes, one table of figures.

Every scenario starts ``python -m reactive_aiops serve`` as its own process (and a real
``redis-server`` where the engine is Redis), drives it through the HTTP publish API and the
library's own client (``WebSocketManager`` + ``StoreBridge`` + the live store), injects faults
(signals, ``FaultProxy`` cuts, a relay that stops reading, fuzzed frames) and reports what the
store applied against what the publish API accepted. Test harness code: it lives beside the
library, not in it. ``python -m chaos [--quick] [--only NAME ...]``.
"""
