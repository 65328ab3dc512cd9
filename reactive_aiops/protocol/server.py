"""Sans-I/O server side of one Centrifuge v2 (JSON) connection.

Text and ``now`` go in (``receive_text``, ``receive_binary``, ``tick``), publications arrive from
the broker through ``deliver``; frames come out of ``data_to_send()`` and a close request appears in
``close_code`` / ``close_reason``. No sockets, no asyncio, no wall clock: the edge
(``reactive_aiops.server.app``) pumps it, and tests drive it with plain strings and numbers.

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
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Protocol

import attrs

from reactive_aiops.wire.codec import decode_commands, encode_replies, encode_reply
from reactive_aiops.wire.codes import ERROR_MESSAGES, DisconnectCode, ErrorCode, UnsubscribeCode
from reactive_aiops.wire.errors import ProtocolError
from reactive_aiops.wire.integers import find_unsafe_integer
from reactive_aiops.wire.messages import (
    ClientMessage,
    Command,
    ConnectRequest,
    ConnectResult,
    Error,
    HistoryRequest,
    HistoryResult,
    Ping,
    Pong,
    Publication,
    PublishRequest,
    Push,
    RefreshRequest,
    RefreshResult,
    Reply,
    RPCRequest,
    RPCResult,
    SendRequest,
    ServerMessage,
    SubscribeRequest,
    SubscribeResult,
    UnsubscribePush,
    UnsubscribeRequest,
    UnsubscribeResult,
)

#: Subscribe flag bit 2: the client prefers error 112 over an unrecovered subscription.
FLAG_REJECT_UNRECOVERED = 2
#: Grace after ``exp`` before an unrefreshed connection is closed (as the Go server).
EXPIRY_GRACE = 25.0
#: Outgoing messages are joined into frames of at most this many characters.
MAX_OUT_FRAME = 64 * 1024


class Principal(Protocol):
    """What a verified token grants (``reactive_aiops.server.auth.Claims`` satisfies it)."""

    @property
    def sub(self) -> str: ...

    @property
    def exp(self) -> float: ...

    def allows_channel(self, channel: str) -> bool: ...


class PublicationLike(Protocol):
    """A broker publication: ``frame`` caches its encoded push for the whole fan-out."""

    channel: str
    offset: int
    data: Any
    frame: str | None


class AuthFailure(enum.Enum):
    """Why a token was refused: ``EXPIRED`` (client refreshes) or ``INVALID`` (terminal)."""

    EXPIRED = "expired"
    INVALID = "invalid"


#: What ``Hub.subscribe`` reports: ``(epoch, offset, recovered, publications)``, or an error.
SubscribeOutcome = tuple[str, int, bool, Sequence[PublicationLike]]
#: What ``Hub.history`` reports: ``(epoch, top offset, retained publications)``, or an error.
HistoryOutcome = tuple[str, int, Sequence[PublicationLike]]


class Hub(Protocol):
    """The server-wide parts a connection calls (no I/O in the connection itself).

    ``subscribe``, ``history`` and ``rpc`` report through a ``done`` callback: an in-process
    engine calls it before returning, a networked one (Redis) later, from the event loop. A
    subscriber is registered for live publications *before* ``subscribe`` reads the stream's
    position, and the connection buffers what arrives until ``done``: nothing published in
    between is lost, and what the read already returned is dropped by offset.
    """

    def authenticate(self, token: str, now: float) -> Principal | AuthFailure:
        """Verify a connection token at ``now``."""
        ...

    def channel_exists(self, channel: str) -> bool: ...

    def subscribe(
        self, channel: str, subscriber: ServerConnection, recover: bool, offset: int, epoch: str,
        done: Callable[[SubscribeOutcome | Error], None],
    ) -> None:
        """Register ``subscriber``, then report ``(epoch, offset, recovered, publications)``.

        On an error the hub has already unregistered ``subscriber``.
        """
        ...

    def unsubscribe(self, channel: str, subscriber: ServerConnection) -> None: ...

    def history(self, channel: str, done: Callable[[HistoryOutcome | Error], None]) -> None:
        """Report ``(epoch, top offset, retained publications)``."""
        ...

    def rpc(self, method: str, data: Any, principal: Principal,
            done: Callable[[RPCResult | Error], None]) -> None: ...


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


class State(enum.Enum):
    """Connection lifecycle."""

    AWAIT_CONNECT = "await_connect"
    CONNECTED = "connected"
    CLOSED = "closed"


def _error(code: int, message: str | None = None) -> Error:
    temporary = code in (ErrorCode.INTERNAL, ErrorCode.TOO_MANY_REQUESTS)
    return Error(code, message or ERROR_MESSAGES.get(code, "error"), temporary)


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
        if len(out) <= 1:
            return out
        frames: list[str] = []
        batch: list[str] = []
        size = 0
        for text in out:
            if batch and size + len(text) + 1 > MAX_OUT_FRAME:
                frames.append("\n".join(batch))
                batch, size = [], 0
            batch.append(text)
            size += len(text) + 1
        frames.append("\n".join(batch))
        return frames

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
            frame = publication.frame = encode_reply(
                Push(channel, Publication(data=publication.data, offset=publication.offset))
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
                self._reply(message.id, _error(ErrorCode.APP_RATE_LIMITED))
            else:
                self._reply(message.id, _error(ErrorCode.TOO_MANY_REQUESTS))
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
            self._reply(message.id, _error(ErrorCode.PERMISSION_DENIED))
        else:
            self._reply(message.id, _error(ErrorCode.NOT_AVAILABLE))

    def _verify(self, token: str, now: float) -> Principal | Error | None:
        """A principal, an error reply (expired), or None after closing (invalid)."""
        verified = self.hub.authenticate(token, now)
        if verified is AuthFailure.EXPIRED:
            return _error(ErrorCode.TOKEN_EXPIRED)
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
            return _error(ErrorCode.UNKNOWN_CHANNEL)
        assert self.principal is not None
        if not self.principal.allows_channel(channel):
            return _error(ErrorCode.PERMISSION_DENIED)
        return None

    def _subscribe(self, command_id: int, request: SubscribeRequest) -> None:
        channel = request.channel
        if not channel:
            self.close(DisconnectCode.BAD_REQUEST, "bad request: empty channel")
            return
        if channel in self.positions or channel in self._pending:
            self._reply(command_id, _error(ErrorCode.ALREADY_SUBSCRIBED))
            return
        problem = self._check_channel(channel)
        if problem is None and len(self.positions) + len(self._pending) >= self.limits.max_channels:
            problem = _error(ErrorCode.LIMIT_EXCEEDED)
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
            self._reply(command_id, _error(ErrorCode.UNRECOVERABLE_POSITION))
            return
        last = pubs[-1].offset if pubs else offset
        self.positions[channel] = (epoch, last)
        result = SubscribeResult(
            recoverable=True, positioned=True, epoch=epoch, offset=offset, recovered=recovered,
            was_recovering=request.recover,
            publications=tuple(Publication(data=p.data, offset=p.offset) for p in pubs))
        text = encode_replies((Reply(command_id, result),))
        if pubs and len(text) > self.limits.max_recovery_size:
            # A backlog this big would not fit a client's frame limit (1 MiB in websockets):
            # the client would reconnect forever. Say "not recovered": it resyncs from a
            # snapshot instead, and goes on from the top.
            text = encode_replies((Reply(command_id, SubscribeResult(
                recoverable=True, positioned=True, epoch=epoch, offset=last, recovered=False,
                was_recovering=request.recover)),))
        self._push_raw(text)
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
                self._history_reply(command_id, request, outcome)

        self.hub.history(request.channel, done)

    def _history_reply(self, command_id: int, request: HistoryRequest,
                       outcome: HistoryOutcome) -> None:
        epoch, top, retained = outcome
        pubs = list(retained)
        if request.since is not None:
            if request.since.epoch and request.since.epoch != epoch:
                self._reply(command_id, _error(ErrorCode.UNRECOVERABLE_POSITION))
                return
            pubs = [p for p in pubs if p.offset > request.since.offset]
        if request.reverse:
            pubs.reverse()
        if request.limit >= 0:
            pubs = pubs[: request.limit]
        self._reply(
            command_id,
            HistoryResult(
                publications=tuple(Publication(data=p.data, offset=p.offset) for p in pubs),
                epoch=epoch,
                offset=top,
            ),
        )
