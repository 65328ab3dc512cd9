"""Edge limits: the Origin allowlist, and the per-connection policies re-exported for callers.

The per-connection policies (``TokenBucket``, ``json_depth_exceeds``) live with the sans-I/O
connection in ``reactive_aiops.protocol.server``, which must not import the server package.
"""

from __future__ import annotations

from reactive_aiops.protocol.server import TokenBucket, json_depth_exceeds

__all__ = ["TokenBucket", "json_depth_exceeds", "origin_allowed"]


def origin_allowed(
    origin: str | None, allowed: frozenset[str] | None, *, allow_missing: bool
) -> bool:
    """Decide whether a WebSocket handshake with this ``Origin`` header may proceed.

    ``allowed=None`` admits every Origin. A missing header (non-browser clients such as the
    Python SDK) is admitted only if ``allow_missing``; browsers always send one.
    """
    if origin is None:
        return allow_missing
    if allowed is None:
        return True
    return origin in allowed
