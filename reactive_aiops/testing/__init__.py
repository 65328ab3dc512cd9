"""reactive_aiops.testing: public test doubles (a manual clock, a fault-injecting TCP proxy)."""

from reactive_aiops.testing.clock import ManualClock
from reactive_aiops.testing.proxy import Direction, FaultProxy

__all__ = ["Direction", "FaultProxy", "ManualClock"]
