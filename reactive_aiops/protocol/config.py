"""Client protocol settings (all times in seconds)."""

from __future__ import annotations

import attrs

from reactive_aiops.protocol.backoff import BackoffPolicy


@attrs.frozen
class ClientConfig:
    """Knobs of ``ClientProtocol`` (and ``WebSocketManager``, which passes them through).

    - ``backoff``: reconnect delays (full jitter) and when to reset them.
    - ``command_timeout``: default per-command timeout, from issue time (so it covers the time a
      command waits in the outbox while disconnected).
    - ``connect_timeout``: for the ``connect`` reply (the socket handshake has its own, in net).
    - ``max_server_ping_delay``: grace after the server's ``ping`` interval before we declare the
      connection dead (the SDKs use 10 s). Any message resets the window, not just pings.
    - ``outbox_size``: commands waiting for a connection; one more fails with ``OutboxFull``.
    - ``refresh_margin``: refresh the token this long before it expires (at least at half-life).
    - ``refresh_retry``: (min, max) delay before retrying a failed refresh, drawn uniformly.
    - ``ask_recoverable``: send ``recoverable``/``positioned`` in subscribe (a server with
      ``force_*`` options does not need it; Centrifugo needs it unless forced).
    - ``has_token_fetcher``: a fresh token can be fetched (enables refresh and the single retry
      after "token expired" at connect).
    - ``health_interval``: how often ``HealthSampled`` is emitted while connected.
    - ``name``/``version``: sent in ``connect`` so servers can tell clients apart.
    """

    backoff: BackoffPolicy = attrs.field(factory=BackoffPolicy)
    command_timeout: float = 5.0
    connect_timeout: float = 5.0
    max_server_ping_delay: float = 10.0
    outbox_size: int = 256
    refresh_margin: float = 10.0
    refresh_retry: tuple[float, float] = (5.0, 10.0)
    ask_recoverable: bool = True
    has_token_fetcher: bool = False
    health_interval: float = 1.0
    name: str = "reactive-aiops"
    version: str = "0.1.0"
