"""Sans-I/O Centrifuge v2 client protocol: text and time in, events and text out.

``ClientProtocol`` never touches a socket, a loop or a clock. The driver (net.client) does:

1. ``start(now)``; then whenever ``connect_due(now)``: if ``token_needed`` fetch one and
   ``set_token``; ``transport_opening(now)``; open the socket; ``transport_opened(now)`` or
   ``transport_failed(now, reason, fatal=...)``.
2. Feed every text frame to ``receive_text(text, now)``; call ``tick(now)`` at
   ``next_deadline()``; after each call send ``data_to_send()`` and handle ``events_received()``.
3. When the socket closes, ``transport_closed(now, code, reason)``.

Behaviour follows the official SDKs where they agree (ids never reset, pong only when the connect
result said ``pong``, recover only after ``recoverable: true``, the disconnect-code ranges) and
adds: in-order, exactly-once delivery per channel with resync on holes; a bounded outbox for
commands issued while disconnected; per-command timeouts; a reconnect backoff that resets only
after a connection stayed up ``reset_after`` seconds.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator

from reactive_aiops.core.connection import (
    Connecting,
    ConnectionFailed,
    ConnectionLost,
    Disconnected,
    HealthSampled,
)
from reactive_aiops.protocol.calls import Calls
from reactive_aiops.protocol.channels import Channel, ChannelStatus
from reactive_aiops.protocol.config import ClientConfig
from reactive_aiops.protocol.errors import (
    ClientClosed,
    ClientCode,
    CommandTimeout,
    OutboxFull,
)
from reactive_aiops.protocol.events import (
    CloseTransport,
    CommandFailed,
    Event,
    RefreshNeeded,
)
from reactive_aiops.protocol.inbound import (
    _DEAD_LINK_CODES,
    _OPEN,
    CLIENT_CLOSE_CODE,
    Inbound,
    Phase,
    _Close,
    _Inflight,
)
from reactive_aiops.protocol.subscriptions import Subscriptions
from reactive_aiops.wire import (
    MAX_ID,
    ClientMessage,
    Command,
    ConnectRequest,
    JSONValue,
    RefreshRequest,
    Request,
    RPCRequest,
    SendRequest,
    StreamPosition,
    UnsubscribeRequest,
    encode_commands,
    is_reconnectable,
)

__all__ = ["CLIENT_CLOSE_CODE", "ClientProtocol", "Phase"]


class ClientProtocol(Inbound):
    """The client side of the protocol for one logical connection (across reconnects).

    ``rand`` (floats in [0, 1)) drives backoff jitter; ``token`` is the connection token
    (``""`` for anonymous); ``connect_data`` is sent as ``connect.data``.

    ``raw_publications`` (an attribute too; the driver may switch it at any time): emit each
    plain, in-order publication push as a ``RawPublicationReceived`` with its data undecoded,
    for a consumer that decodes it into its own types; everything else (gaps, duplicates,
    publications held during a subscribe, recovered ones) still comes as
    ``PublicationReceived``, in the same order and with the same bookkeeping.
    """

    def __init__(
        self,
        config: ClientConfig | None = None,
        *,
        token: str = "",
        connect_data: JSONValue = None,
        rand: Callable[[], float] = random.random,
        raw_publications: bool = False,
    ) -> None:
        config = ClientConfig() if config is None else config
        self.raw_publications = raw_publications
        self.config = config
        self._rand = rand
        self._token = token
        self._connect_data = connect_data
        self.token_needed = False
        self._token_refetched = False
        self.phase = Phase.IDLE
        self._next_id = 0
        self._attempt = 0
        self._delays: Iterator[float] = config.backoff.delays(rand)
        self._connected_at: float | None = None
        self.next_connect_at: float | None = None
        self._pending_close: _Close | None = None
        self.client_id = ""
        self._ping = 0
        self._pong = False
        self._last_received = 0.0
        self._refresh_at: float | None = None
        self._refresh_inflight = False
        self._subs = Subscriptions(config.backoff, rand)
        self._inflight: dict[int, _Inflight] = {}
        self._calls = Calls(config.outbox_size)
        self._out: list[ClientMessage] = []
        self._events: list[Event] = []
        self._window_start = 0.0
        self._window_count = 0
        self._last_message_at: float | None = None

    # -- outputs ---------------------------------------------------------------------------

    def data_to_send(self) -> list[str]:
        """Text frames to send now, in order (at most one per call: commands are batched)."""
        if not self._out:
            return []
        frame, self._out = encode_commands(self._out), []
        return [frame]

    def events_received(self) -> list[Event]:
        """Events since the last call, in order (connection actions among them)."""
        events, self._events = self._events, []
        return events

    # -- lifecycle -------------------------------------------------------------------------

    def start(self, now: float) -> None:
        """Begin connecting (again after ``stop`` or a failure): ``connect_due`` becomes true."""
        if self.phase in (Phase.IDLE, Phase.STOPPED, Phase.FAILED):
            self.phase = Phase.WAITING
            self._attempt = 0
            self._delays = self.config.backoff.delays(self._rand)
            self._token_refetched = False
            self.next_connect_at = now

    def stop(self, now: float, reason: str = "disconnect called") -> None:
        """Close for good: pending commands fail with ``ClientClosed``; subscriptions are kept
        and restored by a later ``start``."""
        if self.phase in (Phase.STOPPED, Phase.IDLE):
            return
        if self.phase in (Phase.OPENING, *_OPEN, Phase.CLOSING):
            self._pending_close = _Close(ClientCode.DISCONNECT_CALLED, reason, retry=False)
            self._out.clear()
            self._events.append(CloseTransport(CLIENT_CLOSE_CODE, reason))
        self.phase = Phase.STOPPED
        self.next_connect_at = None
        self._fail_calls(ClientClosed(reason))
        self._events.append(Disconnected(now, reason))

    def connect_due(self, now: float) -> bool:
        """True when the driver should open a socket now."""
        return (
            self.phase is Phase.WAITING
            and self.next_connect_at is not None
            and now >= self.next_connect_at
        )

    def set_token(self, token: str) -> None:
        """Use ``token`` from now on (next connect, or after ``token_needed``)."""
        self._token = token
        self.token_needed = False

    def transport_opening(self, now: float) -> bool:
        """The driver starts the socket handshake. Returns False (and does nothing) unless a
        connection attempt was due: e.g. ``stop`` ran while the driver fetched a token."""
        if self.phase is not Phase.WAITING:
            return False
        self.phase = Phase.OPENING
        self.next_connect_at = None
        self._events.append(Connecting(now, self._attempt))
        return True

    def transport_opened(self, now: float) -> None:
        """The socket is open: sends ``connect``."""
        if self.phase is not Phase.OPENING:
            return
        self.phase = Phase.CONNECTING
        self._last_received = now
        request = ConnectRequest(
            token=self._token,
            data=self._connect_data,
            name=self.config.name,
            version=self.config.version,
        )
        self._send(request, now, "connect", deadline=now + self.config.connect_timeout)

    def transport_failed(
        self,
        now: float,
        reason: str,
        *,
        code: int = ClientCode.TRANSPORT_CLOSED,
        fatal: bool = False,
        immediate: bool = False,
    ) -> None:
        """Opening the socket failed (network error, HTTP status). ``fatal`` for 401/403-like
        rejections: the client then stops in FAILED instead of retrying. ``immediate``: retry
        at once, without a backoff delay (the driver fails over to another endpoint)."""
        if self.phase is not Phase.OPENING:
            return
        if fatal:
            self._fail(now, code, reason, close=False)
        else:
            self._schedule_reconnect(now, code, reason, immediate)

    def transport_closed(self, now: float, code: int, reason: str) -> None:
        """The socket is closed (by either side). Decides: reconnect, or stay stopped/failed."""
        decision, self._pending_close = self._pending_close, None
        self._connection_lost(now)
        if self.phase in (Phase.STOPPED, Phase.FAILED, Phase.IDLE, Phase.WAITING):
            return
        if decision is None:
            retry = is_reconnectable(code)
            decision = _Close(code, reason or "connection closed", retry)
        if decision.retry:
            self._schedule_reconnect(now, decision.code, decision.reason, decision.immediate)
        else:
            self._fail(now, decision.code, decision.reason, close=False)

    # -- inputs ----------------------------------------------------------------------------

    def tick(self, now: float) -> None:
        """Run timers due at ``now``: timeouts, heartbeat, retries, refresh, health samples."""
        self._expire_calls(now)
        if self.phase is Phase.CONNECTING or self.phase is Phase.CONNECTED:
            for msg_id, inflight in list(self._inflight.items()):
                if inflight.deadline is not None and now >= inflight.deadline:
                    del self._inflight[msg_id]
                    if inflight.kind == "connect":
                        self._close(ClientCode.CONNECT_TIMEOUT, "connect timeout", retry=True)
                        return
                    if inflight.kind == "subscribe":
                        reason = f"subscribe timeout ({inflight.channel})"
                        self._close(ClientCode.SUBSCRIBE_TIMEOUT, reason, retry=True)
                        return
        if self.phase is not Phase.CONNECTED:
            return
        ping_deadline = self._ping_deadline()
        if ping_deadline is not None and now >= ping_deadline:
            self._close(ClientCode.NO_PING, "no ping", retry=True)
            return
        for channel in self._subs.due(now):
            self._send_subscribe(channel, now)
        if self._refresh_at is not None and now >= self._refresh_at:
            self._refresh_at = None
            self._refresh_inflight = True
            self._events.append(RefreshNeeded())
        if now >= self._window_start + self.config.health_interval:
            elapsed = now - self._window_start
            rate = self._window_count / elapsed if elapsed > 0 else 0.0
            self._events.append(HealthSampled(now, self._last_message_at, rate))
            self._window_start, self._window_count = now, 0

    def next_deadline(self) -> float | None:
        """When ``tick`` (or, while waiting, ``connect_due``) next has work; None if nothing."""
        times: list[float] = []
        if self.phase is Phase.WAITING and self.next_connect_at is not None:
            times.append(self.next_connect_at)
        call_deadline = self._calls.next_deadline()
        if call_deadline is not None:
            times.append(call_deadline)
        if self.phase in _OPEN:
            times.extend(i.deadline for i in self._inflight.values() if i.deadline is not None)
        if self.phase is Phase.CONNECTED:
            ping_deadline = self._ping_deadline()
            if ping_deadline is not None:
                times.append(ping_deadline)
            retry = self._subs.next_retry()
            if retry is not None:
                times.append(retry)
            if self._refresh_at is not None:
                times.append(self._refresh_at)
            times.append(self._window_start + self.config.health_interval)
        return min(times) if times else None

    # -- application API -------------------------------------------------------------------

    def subscribe(self, channel: str, now: float) -> bool:
        """Add a reference to ``channel``; True if it is the first (a subscribe goes out once
        connected). A FAILED channel is retried when a new reference arrives."""
        if not channel:
            raise ValueError("channel name must be a non-empty string")
        state = self._subs.acquire(channel)
        if state.status is ChannelStatus.PENDING and self.phase is Phase.CONNECTED:
            self._send_subscribe(state, now)
        return state.refs == 1

    def unsubscribe(self, channel: str, now: float) -> bool:
        """Drop a reference; True if it was the last (the channel and its position are gone)."""
        state = self._subs.release(channel)
        if state is None:
            return False
        active = state.status in (ChannelStatus.SUBSCRIBING, ChannelStatus.SUBSCRIBED)
        if active and self.phase is Phase.CONNECTED:
            self._send(UnsubscribeRequest(channel=channel), now, "unsubscribe")
        return True

    def channels(self) -> dict[str, ChannelStatus]:
        """Wanted channels and their status."""
        return self._subs.statuses()

    def position(self, channel: str) -> StreamPosition | None:
        """Last applied stream position of ``channel`` (None if unknown or unpositioned)."""
        return self._subs.position(channel)

    def call(self, request: Request, now: float, timeout: float | None = None) -> int:
        """Issue a command (rpc, publish, history, presence...); returns a key that a later
        ``CommandSucceeded``/``CommandFailed`` carries. Queued in the outbox while not connected;
        fails at once with ``OutboxFull`` or ``ClientClosed`` (stopped/failed client)."""
        if isinstance(request, ConnectRequest | SendRequest):
            raise TypeError("connect is the protocol's own; use send() for send")
        key = self._calls.new_key()
        if self.phase in (Phase.STOPPED, Phase.FAILED):
            self._events.append(CommandFailed(key, ClientClosed(f"client is {self.phase.value}")))
            return key
        deadline = now + (self.config.command_timeout if timeout is None else timeout)
        call = self._calls.add(key, request, deadline)
        if self.phase is Phase.CONNECTED:
            call.wire_id = self._send(request, now, "call", key=key)
        elif not self._calls.queue(key):
            size = self.config.outbox_size
            self._events.append(CommandFailed(key, OutboxFull(f"outbox full ({size} waiting)")))
        return key

    def rpc(self, method: str, data: JSONValue, now: float, timeout: float | None = None) -> int:
        """``call(RPCRequest(method=method, data=data), now, timeout)``."""
        return self.call(RPCRequest(data=data, method=method), now, timeout)

    def send(self, data: JSONValue) -> bool:
        """Fire-and-forget ``send`` (no reply); False (dropped) unless connected."""
        if self.phase is not Phase.CONNECTED:
            return False
        self._out.append(Command(0, SendRequest(data=data)))
        return True

    def refresh_token(self, token: str, now: float) -> None:
        """Answer to ``RefreshNeeded``: send ``refresh`` with the fresh token."""
        self._token = token
        self._refresh_inflight = False
        if self.phase is Phase.CONNECTED:
            self._refresh_inflight = True
            self._send(RefreshRequest(token=token), now, "refresh")

    def refresh_failed(self, now: float) -> None:
        """The token fetch for a refresh failed: try again after ``refresh_retry``."""
        self._refresh_inflight = False
        low, high = self.config.refresh_retry
        self._refresh_at = now + low + (high - low) * self._rand()

    # -- internals -------------------------------------------------------------------------

    def _new_id(self) -> int:
        self._next_id = self._next_id + 1 if self._next_id < MAX_ID else 1
        return self._next_id

    def _send(
        self,
        request: Request,
        now: float,
        kind: str,
        *,
        deadline: float | None = None,
        channel: str = "",
        key: int = 0,
    ) -> int:
        msg_id = self._new_id()
        self._out.append(Command(msg_id, request))
        self._inflight[msg_id] = _Inflight(kind, now, deadline, channel, key)
        return msg_id

    def _send_subscribe(self, channel: Channel, now: float) -> None:
        channel.retry_at = None
        request = channel.subscribe_request(self.config.ask_recoverable)
        deadline = now + self.config.command_timeout
        channel.command_id = self._send(
            request, now, "subscribe", deadline=deadline, channel=channel.name
        )

    def _ping_deadline(self) -> float | None:
        if self._ping <= 0:
            return None
        return self._last_received + self._ping + self.config.max_server_ping_delay

    def _close(self, code: int, reason: str, *, retry: bool, immediate: bool = False) -> None:
        self._pending_close = _Close(code, reason, retry, immediate)
        self.phase = Phase.CLOSING
        self._out.clear()  # nothing more goes to a socket we are closing
        dead = code in _DEAD_LINK_CODES
        self._events.append(CloseTransport(CLIENT_CLOSE_CODE, reason[:120], abort=dead))

    def _fail(self, now: float, code: int, reason: str, *, close: bool = True) -> None:
        self._out.clear()
        if close and self.phase in (*_OPEN, Phase.OPENING):
            self._pending_close = _Close(code, reason, retry=False)
            self._events.append(CloseTransport(CLIENT_CLOSE_CODE, reason[:120]))
        self.phase = Phase.FAILED
        self.next_connect_at = None
        self._fail_calls(ClientClosed(f"connection failed: {reason}"))
        self._events.append(ConnectionFailed(now, code, reason))

    def _schedule_reconnect(
        self, now: float, code: int, reason: str, immediate: bool = False
    ) -> None:
        healthy = self._connected_at is not None and (
            now - self._connected_at >= self.config.backoff.reset_after
        )
        if healthy:
            self._attempt = 0
            self._delays = self.config.backoff.delays(self._rand)
        self._connected_at = None
        self._attempt += 1
        delay = 0.0 if immediate else next(self._delays)
        self.phase = Phase.WAITING
        self.next_connect_at = now + delay
        self._events.append(ConnectionLost(now, code, reason, self._attempt, self.next_connect_at))

    def _connection_lost(self, now: float) -> None:
        in_flight = sorted(
            (msg_id, i.key) for msg_id, i in self._inflight.items() if i.kind == "call"
        )
        self._calls.requeue_front([key for _, key in in_flight])
        self._inflight.clear()
        self._out.clear()
        self._refresh_at = None
        self._refresh_inflight = False
        self._ping, self._pong = 0, False
        self._subs.connection_lost()

    def _fail_calls(self, error: Exception) -> None:
        for key in self._calls.clear():
            self._events.append(CommandFailed(key, error))

    def _expire_calls(self, now: float) -> None:
        for key, call in self._calls.expire(now):
            if call.wire_id:
                self._inflight.pop(call.wire_id, None)
            self._events.append(CommandFailed(key, CommandTimeout("no reply in time")))
