"""reactive_aiops.testing: public test doubles (fault-injecting proxy, ...)."""

from reactive_aiops.testing.proxy import Direction, FaultProxy

__all__ = ["Direction", "FaultProxy"]
