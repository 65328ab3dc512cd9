"""Sans-I/O server side of one Centrifuge v2 (JSON) connection: :class:`ServerConnection`.

Text and ``now`` go in (``receive_text``, ``receive_binary``, ``tick``), publications arrive from
the broker through ``deliver``; frames come out of ``data_to_send()`` and a close request appears
in ``close_code`` / ``close_reason``. What it enforces: :mod:`reactive_aiops.protocol.server`.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from reactive_aiops.protocol.server.hub import (
    AuthFailure,
    HistoryOutcome,
    Hub,
    Principal,
    PublicationLike,
    SubscribeOutcome,
)
from reactive_aiops.protocol.server.limits import (
    EXPIRY_GRACE,
    FLAG_REJECT_UNRECOVERED,
    ConnectionLimits,
    TokenBucket,
    json_depth_exceeds,
)
from reactive_aiops.protocol.server.replies import (
    error_reply,
    history_result,
    join_frames,
    subscribe_reply,
)
from reactive_aiops.wire.codec import (
    decode_commands,
    encode_publication_push,
    encode_replies,
    encode_reply,
)
from reactive_aiops.wire.codes import DisconnectCode, ErrorCode, UnsubscribeCode
from reactive_aiops.wire.errors import ProtocolError
from reactive_aiops.wire.integers import find_unsafe_integer
from reactive_aiops.wire.messages import (
    ClientMessage,
    Command,
    ConnectRequest,
    ConnectResult,
    Error,
    HistoryRequest,
    Ping,
    Pong,
    PublishRequest,
    Push,
    RefreshRequest,
    RefreshResult,
    Reply,
    RPCRequest,
    SendRequest,
    ServerMessage,
    SubscribeRequest,
    UnsubscribePush,
    UnsubscribeRequest,
    UnsubscribeResult,
)

__all__ = ["ServerConnection", "State"]


class State(enum.Enum):
    """Connection lifecycle."""

    AWAIT_CONNECT = "await_connect"
    CONNECTED = "connected"
    CLOSED = "closed"


class ServerConnection:
    """One client connection's protocol state. Not thread-safe; one event loop drives it."""

    def __init__(self, hub: Hub, limits: ConnectionLimits, client_id: str, now: float) -> None:
        self.hub = hub
        self.limits = limits
        self.client_id = client_id
        self.state = State.AWAIT_CONNECT
        self.principal: Principal | None = None
        self.close_code: int | None = None
        self.close_reason = ""
        #: channel -> (epoch, last offset sent)
        self.positions: dict[str, tuple[str, int]] = {}
        #: channel -> publications received while the hub reads its position (subscribe pending)
        self._pending: dict[str, list[tuple[PublicationLike, str]]] = {}
        self._out: list[str] = []
        self._opened_at = now
        self._bucket = TokenBucket(limits.rate_per_second, limits.rate_burst, now)
        self._violations = 0
        self._next_ping: float | None = None
        self._pong_deadline: float | None = None
        self._connect_failed = False
        #: Called when output becomes pending or a close is requested, so an edge can wake its
        #: writer; it must not call back into the connection.
        self.on_output: Callable[[], None] | None = None
        #: Counters for observability and tests.
        self.pongs_received = 0
        self.refreshes = 0

    # -- outputs ------------------------------------------------------------------------------

    def data_to_send(self) -> list[str]:
        """Frames to send now, in order (messages joined with ``\\n`` up to 64 KiB a frame)."""
        out, self._out = self._out, []
        return join_frames(out)

    @property
    def pending(self) -> int:
        """Messages waiting in the outgoing buffer."""
        return len(self._out)

    @property
    def closed(self) -> bool:
        """True once a close was requested (the edge sends the close frame)."""
        return self.state is State.CLOSED

    def next_deadline(self) -> float | None:
        """When ``tick`` must next run (None: nothing scheduled)."""
        if self.state is State.AWAIT_CONNECT:
            return self._opened_at + self.limits.auth_timeout
        if self.state is State.CLOSED:
            return None
        deadlines = [d for d in (self._next_ping, self._pong_deadline) if d is not None]
        if self.principal is not None:
            deadlines.append(self.principal.exp + EXPIRY_GRACE)
        return min(deadlines) if deadlines else None

    # -- inputs -------------------------------------------------------------------------------

    def close(self, code: int, reason: str, *, drop_pending: bool = False) -> None:
        """Request a close with ``code``; unsubscribes everything. Idempotent."""
        if self.state is State.CLOSED:
            return
        self.state = State.CLOSED
        self.close_code, self.close_reason = code, reason
        if drop_pending:
            self._out.clear()
        self._release()
        if self.on_output is not None:
            self.on_output()

    def connection_lost(self) -> None:
        """The transport is gone: stop receiving publications."""
        if self.state is not State.CLOSED:
            self.state = State.CLOSED
            self.close_code, self.close_reason = DisconnectCode.CONNECTION_CLOSED, "closed"
        self._release()

    def _release(self) -> None:
        for channel in (*self.positions, *self._pending):
            self.hub.unsubscribe(channel, self)
        self.positions.clear()
        self._pending.clear()

    def receive_binary(self, data: bytes, now: float) -> None:
        """Binary frames have no place in the JSON protocol: close 3501."""
        self.close(DisconnectCode.BAD_REQUEST, "bad request: binary frame")

    def receive_text(self, text: str, now: float) -> None:
        """Process one client text frame: its commands in order."""
        if self.state is State.CLOSED:
            return
        if len(text) > self.limits.max_message_size:
            self.close(DisconnectCode.MESSAGE_TOO_BIG, "message too big")
            return
        if json_depth_exceeds(text, self.limits.max_nesting_depth):
            self.close(DisconnectCode.BAD_REQUEST, "bad request: nesting too deep")
            return
        try:
            messages: Sequence[ClientMessage] = decode_commands(
                text, max_size=self.limits.max_message_size
            )
            failed = False
        except ProtocolError as exc:
            # Go processes the good commands before the bad one, then disconnects.
            messages = [m for m in exc.decoded if isinstance(m, Command | Pong)]
            if not messages and exc.index > 0:
                # A framing fault (bad JSON line) reports no decoded prefix: decode it here.
                try:
                    messages = decode_commands("\n".join(text.split("\n")[: exc.index]))
                except ProtocolError:
                    messages = []
            failed = True
        for message in messages:
            if self.closed:  # a command of this frame closed the connection
                return
            self._handle(message, now)
        if failed:
            self.close(DisconnectCode.BAD_REQUEST, "bad request")

    def tick(self, now: float) -> None:
        """Fire due timers: auth timeout, pings, pong deadline, connection expiry."""
        if self.state is State.AWAIT_CONNECT:
            if now >= self._opened_at + self.limits.auth_timeout:
                self.close(DisconnectCode.STALE, "stale")
            return
        if self.state is State.CLOSED:
            return
        if self._pong_deadline is not None and now >= self._pong_deadline:
            self.close(DisconnectCode.NO_PONG, "no pong")
            return
        if self.principal is not None and now >= self.principal.exp + EXPIRY_GRACE:
            self.close(DisconnectCode.EXPIRED, "connection expired")
            return
        if self._next_ping is not None and now >= self._next_ping:
            self._push_raw(encode_reply(Ping()))
            self._next_ping = now + self.limits.ping_interval
            if self._pong_deadline is None:
                self._pong_deadline = now + self.limits.pong_timeout

    def deliver(self, publication: PublicationLike, epoch: str) -> None:
        """A broker publication for a subscribed channel (called by the broker; never raises)."""
        if self.state is not State.CONNECTED:
            return
        channel = publication.channel
        position = self.positions.get(channel)
        if position is None:
            pending = self._pending.get(channel)
            if pending is not None:
                pending.append((publication, epoch))
            return
        known_epoch, last = position
        if epoch == known_epoch and publication.offset <= last:
            return  # already sent (recovered, or delivered twice): drop the duplicate
        if epoch != known_epoch or publication.offset != last + 1:
            self._lose_position(channel)
            return
        self.positions[channel] = (epoch, publication.offset)
        frame = publication.frame
        if frame is None:
            frame = publication.frame = encode_publication_push(
                channel, publication.data, publication.offset
            )
        self._push_raw(frame)

    def position_lost(self, channel: str) -> None:
        """The engine lost ``channel``'s stream (e.g. Redis restarted empty): if subscribed,
        unsubscribe with 2500 so the client resubscribes and learns the new epoch."""
        if self.state is State.CONNECTED and channel in self.positions:
            self._lose_position(channel)

    # -- internals ----------------------------------------------------------------------------

    def _push_raw(self, text: str) -> None:
        if self.state is State.CLOSED and self.close_code is not None:
            return
        self._out.append(text)
        if len(self._out) == 1 and self.on_output is not None:
            self.on_output()
        if len(self._out) > self.limits.send_queue_size:
            # A slow consumer: drop what it cannot take and let it reconnect and recover.
            self.close(DisconnectCode.SLOW, "slow", drop_pending=True)

    def _send(self, messages: Iterable[ServerMessage]) -> None:
        for message in messages:
            self._push_raw(encode_replies((message,)))

    def _reply(self, command_id: int, result: Any) -> None:
        self._send((Reply(command_id, result),))

    def _lose_position(self, channel: str) -> None:
        self.hub.unsubscribe(channel, self)
        del self.positions[channel]
        self._send(
            (
                Push(
                    channel,
                    UnsubscribePush(UnsubscribeCode.INSUFFICIENT_STATE, "insufficient state"),
                ),
            )
        )

    def _handle(self, message: ClientMessage, now: float) -> None:
        if isinstance(message, Pong):
            if self.state is not State.CONNECTED or self._pong_deadline is None:
                self.close(DisconnectCode.BAD_REQUEST, "bad request: unexpected pong")
            else:
                self._pong_deadline = None
                self.pongs_received += 1
            return
        request = message.request
        if self.state is State.AWAIT_CONNECT:
            if not isinstance(request, ConnectRequest) or self._connect_failed:
                self.close(DisconnectCode.BAD_REQUEST, "bad request: connect first")
            else:
                self._connect(message.id, request, now)
            return
        if isinstance(request, SendRequest):
            return  # fire-and-forget messages are not used by this server
        if not self._bucket.take(now):
            self._violations += 1
            if self._violations > self.limits.max_rate_violations:
                self.close(DisconnectCode.TOO_MANY_REQUESTS, "too many requests")
            elif isinstance(request, RPCRequest):
                self._reply(message.id, error_reply(ErrorCode.APP_RATE_LIMITED))
            else:
                self._reply(message.id, error_reply(ErrorCode.TOO_MANY_REQUESTS))
            return
        self._violations = 0
        if isinstance(request, ConnectRequest):
            self.close(DisconnectCode.BAD_REQUEST, "bad request: already connected")
        elif isinstance(request, SubscribeRequest):
            self._subscribe(message.id, request)
        elif isinstance(request, UnsubscribeRequest):
            if request.channel in self.positions or request.channel in self._pending:
                self.hub.unsubscribe(request.channel, self)
                self.positions.pop(request.channel, None)
                self._pending.pop(request.channel, None)
            self._reply(message.id, UnsubscribeResult())
        elif isinstance(request, RPCRequest):
            assert self.principal is not None
            if find_unsafe_integer(request.data) is not None:
                # An integer JavaScript cannot hold exactly: the command could not mean it.
                self.close(DisconnectCode.BAD_REQUEST, "bad request: unsafe integer")
                return
            command_id = message.id
            self.hub.rpc(request.method, request.data, self.principal,
                         lambda result: self._reply(command_id, result))
        elif isinstance(request, RefreshRequest):
            self._refresh(message.id, request, now)
        elif isinstance(request, HistoryRequest):
            self._history(message.id, request)
        elif isinstance(request, PublishRequest):
            # Clients never publish; detection services use the publish API.
            self._reply(message.id, error_reply(ErrorCode.PERMISSION_DENIED))
        else:
            self._reply(message.id, error_reply(ErrorCode.NOT_AVAILABLE))

    def _verify(self, token: str, now: float) -> Principal | Error | None:
        """A principal, an error reply (expired), or None after closing (invalid)."""
        verified = self.hub.authenticate(token, now)
        if verified is AuthFailure.EXPIRED:
            return error_reply(ErrorCode.TOKEN_EXPIRED)
        if verified is AuthFailure.INVALID:
            self.close(DisconnectCode.INVALID_TOKEN, "invalid token")
            return None
        return verified

    def _connect(self, command_id: int, request: ConnectRequest, now: float) -> None:
        verified = self._verify(request.token, now)
        if verified is None:
            return
        if isinstance(verified, Error):
            # Told, not closed: the SDK fetches a fresh token and reconnects.
            self._connect_failed = True
            self._reply(command_id, verified)
            return
        self.principal = verified
        self.state = State.CONNECTED
        self._next_ping = now + self.limits.ping_interval
        ttl = max(1, int(verified.exp - now))
        self._reply(
            command_id,
            ConnectResult(
                client=self.client_id,
                version=self.limits.server_version,
                expires=True,
                ttl=ttl,
                ping=int(self.limits.ping_interval),
                pong=True,
            ),
        )

    def _refresh(self, command_id: int, request: RefreshRequest, now: float) -> None:
        verified = self._verify(request.token, now)
        if verified is None:
            return
        if isinstance(verified, Error):
            self._reply(command_id, verified)
            return
        assert self.principal is not None
        if verified.sub != self.principal.sub:
            self.close(DisconnectCode.INVALID_TOKEN, "invalid token")
            return
        self.principal = verified
        self.refreshes += 1
        # Permissions may have narrowed: drop channels the new token no longer allows.
        for channel in [c for c in self.positions if not verified.allows_channel(c)]:
            self.hub.unsubscribe(channel, self)
            del self.positions[channel]
            self._send(
                (Push(channel, UnsubscribePush(UnsubscribeCode.SERVER, "permission denied")),)
            )
        self._reply(
            command_id,
            RefreshResult(client=self.client_id, expires=True, ttl=max(1, int(verified.exp - now))),
        )

    def _check_channel(self, channel: str) -> Error | None:
        if not self.hub.channel_exists(channel):
            return error_reply(ErrorCode.UNKNOWN_CHANNEL)
        assert self.principal is not None
        if not self.principal.allows_channel(channel):
            return error_reply(ErrorCode.PERMISSION_DENIED)
        return None

    def _subscribe(self, command_id: int, request: SubscribeRequest) -> None:
        channel = request.channel
        if not channel:
            self.close(DisconnectCode.BAD_REQUEST, "bad request: empty channel")
            return
        if channel in self.positions or channel in self._pending:
            self._reply(command_id, error_reply(ErrorCode.ALREADY_SUBSCRIBED))
            return
        problem = self._check_channel(channel)
        if problem is None and len(self.positions) + len(self._pending) >= self.limits.max_channels:
            problem = error_reply(ErrorCode.LIMIT_EXCEEDED)
        if problem is not None:
            self._reply(command_id, problem)
            return
        self._pending[channel] = []

        def done(outcome: SubscribeOutcome | Error) -> None:
            self._subscribed(command_id, request, outcome)

        self.hub.subscribe(channel, self, request.recover, request.offset, request.epoch, done)

    def _subscribed(self, command_id: int, request: SubscribeRequest,
                    outcome: SubscribeOutcome | Error) -> None:
        channel = request.channel
        buffered = self._pending.pop(channel, None)
        if buffered is None or self.state is not State.CONNECTED:
            # Unsubscribed or closed while the hub was reading: nothing to answer.
            if not isinstance(outcome, Error):
                self.hub.unsubscribe(channel, self)
            return
        if isinstance(outcome, Error):
            self._reply(command_id, outcome)
            return
        epoch, offset, recovered, pubs = outcome
        if request.recover and not recovered and request.flag & FLAG_REJECT_UNRECOVERED:
            self.hub.unsubscribe(channel, self)
            self._reply(command_id, error_reply(ErrorCode.UNRECOVERABLE_POSITION))
            return
        last = pubs[-1].offset if pubs else offset
        self.positions[channel] = (epoch, last)
        self._push_raw(subscribe_reply(command_id, request, epoch, offset, recovered, pubs,
                                       self.limits.max_recovery_size))
        # Live publications that arrived during the read: the ones the read already covered
        # are dropped as duplicates by offset, the rest follow in order (a gap resubscribes).
        for publication, pub_epoch in buffered:
            self.deliver(publication, pub_epoch)

    def _history(self, command_id: int, request: HistoryRequest) -> None:
        problem = self._check_channel(request.channel)
        if problem is not None:
            self._reply(command_id, problem)
            return

        def done(outcome: HistoryOutcome | Error) -> None:
            if isinstance(outcome, Error):
                self._reply(command_id, outcome)
            else:
                self._reply(command_id, history_result(request, outcome))

        self.hub.history(request.channel, done)
