"""Sans-I/O server side of one Centrifuge v2 (JSON) connection.

Text and ``now`` go in (``receive_text``, ``receive_binary``, ``tick``), publications arrive from
the broker through ``deliver``; frames come out of ``data_to_send()`` and a close request appears in
``close_code`` / ``close_reason``. No sockets, no asyncio, no wall clock: the edge
(``reactive_aiops.server.app`` and ``.pump``) pumps it, and tests drive it with plain strings
and numbers.

What it enforces (codes from ``reactive_aiops.wire.codes``):

- connect first (anything else, or a second connect: close 3501); no valid connect within
  ``auth_timeout``: close 3502 "stale"; bad token: close 3500; expired token: error 109 (the SDKs
  fetch a new token and reconnect); connection not refreshed past ``exp`` + grace: close 3005.
- pings ``{}`` every ``ping_interval``; no pong within ``pong_timeout``: close 3012.
- rate limit per connection (error 111, or 429 for RPC commands; a client that keeps flooding is
  closed with 3013); frame size (close 1009) and JSON nesting depth (close 3501).
- subscribe: channel check (102), authorization on every subscribe (103), channel limit (106),
  duplicate (105); recovery from (offset, epoch); positioned delivery: duplicates are dropped and a
  gap (or a new epoch) sends unsubscribe 2500 "insufficient state" so the client recovers.
- a bounded outgoing buffer: a client that does not drain it is closed with 3008 "slow"
  (reconnectable) instead of buffering without limit.

Modules: :mod:`.connection` (:class:`ServerConnection`, the state machine), :mod:`.hub` (the
:class:`Hub` contract the server implements, and the shapes it reports), :mod:`.limits` (the
per-connection policy, the rate limiter and the nesting check) and :mod:`.replies` (the pure
subscribe and history answers, and output framing). Import from here.
"""

from reactive_aiops.protocol.server.connection import ServerConnection, State
from reactive_aiops.protocol.server.hub import (
    AuthFailure,
    HistoryOutcome,
    Hub,
    Principal,
    PublicationLike,
    SubscribeOutcome,
    Subscriber,
)
from reactive_aiops.protocol.server.limits import (
    EXPIRY_GRACE,
    FLAG_REJECT_UNRECOVERED,
    MAX_OUT_FRAME,
    ConnectionLimits,
    TokenBucket,
    json_depth_exceeds,
)

__all__ = [
    "EXPIRY_GRACE",
    "FLAG_REJECT_UNRECOVERED",
    "MAX_OUT_FRAME",
    "AuthFailure",
    "ConnectionLimits",
    "HistoryOutcome",
    "Hub",
    "Principal",
    "PublicationLike",
    "ServerConnection",
    "State",
    "SubscribeOutcome",
    "Subscriber",
    "TokenBucket",
    "json_depth_exceeds",
]
