"""Errors raised by the wire codec.

Exception tree::

    ValueError
     └── ProtocolError      the text decoded, but breaks the Centrifuge v2 JSON schema
          └── FrameError    the frame itself is unusable: too big, not text, not JSON lines

Both carry a human ``reason``; ``decoded`` holds the messages of the frame that decoded cleanly
before the bad line (so a server can process them first, as Go does, and a client loses nothing),
and ``index`` the position of the offending line (``-1`` for a frame-level fault).
"""

from __future__ import annotations

from collections.abc import Sequence


class ProtocolError(ValueError):
    """Input broke the Centrifuge v2 JSON schema.

    A server answers it with disconnect 3501 (bad request); a client drops the connection and
    reconnects (a misbehaving peer is treated like a network fault, not a bad token).
    """

    def __init__(self, reason: str, *, decoded: Sequence[object] = (), index: int = -1) -> None:
        super().__init__(reason)
        self.reason = reason
        self.decoded: tuple[object, ...] = tuple(decoded)
        self.index = index


class FrameError(ProtocolError):
    """The frame cannot be split into JSON messages: oversized, binary, blank lines, bad JSON."""
