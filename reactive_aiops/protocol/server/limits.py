"""Per-connection policy and the checks that enforce it before a frame is parsed.

:class:`ConnectionLimits` (built by the server from ``ServerConfig``), the :class:`TokenBucket`
rate limiter and :func:`json_depth_exceeds`. Time is passed in; nothing here does I/O.
"""

from __future__ import annotations

import attrs

__all__ = [
    "EXPIRY_GRACE",
    "FLAG_REJECT_UNRECOVERED",
    "MAX_OUT_FRAME",
    "ConnectionLimits",
    "TokenBucket",
    "json_depth_exceeds",
]

#: Subscribe flag bit 2: the client prefers error 112 over an unrecovered subscription.
FLAG_REJECT_UNRECOVERED = 2
#: Grace after ``exp`` before an unrefreshed connection is closed (as the Go server).
EXPIRY_GRACE = 25.0
#: Outgoing messages are joined into frames of at most this many characters.
MAX_OUT_FRAME = 64 * 1024


@attrs.frozen
class ConnectionLimits:
    """Per-connection policy; the server builds it from ``ServerConfig``."""

    max_message_size: int = 64 * 1024
    max_nesting_depth: int = 32
    max_channels: int = 128
    rate_per_second: float = 50.0
    rate_burst: int = 100
    #: rejected commands in a row before closing with 3013
    max_rate_violations: int = 200
    send_queue_size: int = 1024
    auth_timeout: float = 10.0
    ping_interval: float = 25.0
    pong_timeout: float = 10.0
    server_version: str = "reactive-aiops"
    #: characters a recovering subscribe reply may take; beyond, the client resyncs instead
    max_recovery_size: int = 512 * 1024


class TokenBucket:
    """Rate limiter: ``rate`` tokens a second, at most ``burst`` saved; time is passed in."""

    __slots__ = ("_last", "_tokens", "burst", "rate")

    def __init__(self, rate: float, burst: int, now: float) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("rate must be > 0 and burst >= 1")
        self.rate, self.burst, self._tokens, self._last = rate, burst, float(burst), now

    def take(self, now: float) -> bool:
        """Spend one token if available; False (spending nothing) otherwise."""
        self._tokens = min(float(self.burst), self._tokens + max(0.0, now - self._last) * self.rate)
        self._last = now
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return True
        return False


def json_depth_exceeds(text: str, limit: int) -> bool:
    """True if ``text`` nests JSON arrays/objects deeper than ``limit``.

    A bracket scan that skips string literals, run before ``json.loads`` so that a frame of
    thousands of ``[`` never reaches the parser's recursion limit.
    """
    if text.count("[") + text.count("{") <= limit:
        return False  # cannot nest deeper than the number of openers
    depth, in_string, escaped = 0, False, False
    for ch in text:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "[{":
            depth += 1
            if depth > limit:
                return True
        elif ch in "]}":
            depth -= 1
    return False
