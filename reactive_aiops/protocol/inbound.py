"""What the client protocol does with each message it receives: replies, pushes and pings.

Split out of :mod:`reactive_aiops.protocol.client` (one concern per module):
:class:`Inbound` is the receiving half of :class:`~reactive_aiops.protocol.client.ClientProtocol`,
which supplies the sending half it calls back into (``_close``, ``_fail``, ``_send_subscribe``,
``refresh_failed``). The phases and the per-command bookkeeping both halves share live here too.
"""

from __future__ import annotations

import enum

import attrs

from reactive_aiops.core.connection import Connected, LatencyMeasured
from reactive_aiops.protocol.calls import Calls
from reactive_aiops.protocol.channels import Channel, ChannelStatus
from reactive_aiops.protocol.config import ClientConfig
from reactive_aiops.protocol.errors import ClientCode, ReplyError
from reactive_aiops.protocol.events import (
    CommandFailed,
    CommandSucceeded,
    Event,
    PublicationReceived,
    RawPublicationReceived,
)
from reactive_aiops.protocol.subscriptions import Subscriptions
from reactive_aiops.wire import (
    DEFAULT_MAX_FRAME,
    ClientMessage,
    ConnectResult,
    Disconnect,
    Error,
    ErrorCode,
    Ping,
    Pong,
    ProtocolError,
    Publication,
    Push,
    RefreshResult,
    Reply,
    Request,
    SubscribeResult,
    UnsubscribePush,
    decode_publication_push,
    decode_publications,
    decode_publications_raw,
    decode_raw_data,
    decode_replies,
    is_reconnectable,
    is_retryable_error,
)

#: Close code the client sends when it drops the socket itself (the reason says why).
CLIENT_CLOSE_CODE = 1000


class Phase(enum.Enum):
    """The protocol's own view of the socket (finer than core.connection.Status)."""

    IDLE = "idle"  # never started
    WAITING = "waiting"  # until next_connect_at
    OPENING = "opening"  # socket handshake in progress
    CONNECTING = "connecting"  # connect command sent
    CONNECTED = "connected"
    CLOSING = "closing"  # we asked the driver to close; waiting for transport_closed
    STOPPED = "stopped"  # the application closed us
    FAILED = "failed"  # terminal error


@attrs.define
class _Inflight:
    kind: str  # connect | subscribe | unsubscribe | refresh | call
    sent_at: float
    deadline: float | None = None
    channel: str = ""
    key: int = 0


@attrs.frozen
class _Close:
    code: int
    reason: str
    retry: bool
    immediate: bool = False


_OPEN = (Phase.CONNECTING, Phase.CONNECTED)
#: Reasons that mean the peer is unreachable: abort the socket rather than close it politely.
_DEAD_LINK_CODES = frozenset(
    {ClientCode.NO_PING, ClientCode.CONNECT_TIMEOUT, ClientCode.SUBSCRIBE_TIMEOUT}
)


class Inbound:
    """The receiving half of the client protocol (see the module doc)."""

    config: ClientConfig
    phase: Phase
    raw_publications: bool
    client_id: str
    token_needed: bool
    _token_refetched: bool
    _connected_at: float | None
    _ping: int
    _pong: bool
    _last_received: float
    _last_message_at: float | None
    _window_start: float
    _window_count: int
    _refresh_at: float | None
    _refresh_inflight: bool
    _subs: Subscriptions
    _inflight: dict[int, _Inflight]
    _calls: Calls
    _out: list[ClientMessage]
    _events: list[Event]

    # -- the sending half's operations, which ClientProtocol defines --------------------------

    def _close(self, code: int, reason: str, *, retry: bool, immediate: bool = False) -> None:
        raise NotImplementedError

    def _fail(self, now: float, code: int, reason: str, *, close: bool = True) -> None:
        raise NotImplementedError

    def _send_subscribe(self, channel: Channel, now: float) -> None:
        raise NotImplementedError

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
        raise NotImplementedError

    def refresh_failed(self, now: float) -> None:
        raise NotImplementedError

    # -- receiving ------------------------------------------------------------------------------

    def receive_text(self, text: str, now: float) -> None:
        """Feed one text frame from the server. A malformed frame closes the connection (after
        processing the messages before the bad one) and reconnects."""
        if self.phase not in _OPEN:
            return
        if type(text) is str and len(text) <= DEFAULT_MAX_FRAME:
            # a frame of publication pushes only (the per-event frame): each straight to its
            # channel, no Push
            if self.raw_publications:
                raws = decode_publications_raw(text)
                if raws is not None:
                    self._last_received = self._last_message_at = now
                    self._window_count += len(raws)
                    channels = self._subs.channels
                    events = self._events
                    for name, offset, data in raws:
                        channel = channels.get(name)
                        if channel is None:
                            continue  # not wanted: dropped (as Subscriptions.publication does)
                        # Channel.take_next, inline (once per event): subscribed, and the
                        # publication unpositioned or the next one
                        if channel.status is ChannelStatus.SUBSCRIBED:
                            if offset == 0 or not channel.positioned:
                                events.append(RawPublicationReceived(name, offset, data))
                                continue
                            if offset == channel.offset + 1:
                                channel.offset = offset
                                events.append(RawPublicationReceived(name, offset, data))
                                continue
                        pub = Publication(decode_raw_data(data), None, offset)
                        events.extend(self._subs.publication(name, pub, now))
                    return
            elif "\n" not in text:  # the per-event frame
                one = decode_publication_push(text)
                if one is not None:
                    self._last_received = self._last_message_at = now
                    self._window_count += 1
                    self._on_publication(one[0], one[1], now)
                    return
            else:
                pubs = decode_publications(text)
                if pubs is not None:
                    self._last_received = self._last_message_at = now
                    self._window_count += len(pubs)
                    for name, pub in pubs:
                        self._on_publication(name, pub, now)
                    return
        try:
            messages = decode_replies(text)
        except ProtocolError as exc:
            for message in exc.decoded:
                self._receive(message, now)  # type: ignore[arg-type]
            if self.phase in _OPEN:
                self._close(ClientCode.BAD_PROTOCOL, f"bad protocol: {exc.reason}", retry=True)
            return
        for message in messages:
            if self.phase not in _OPEN:
                break
            self._receive(message, now)

    def _receive(self, message: Reply | Push | Ping, now: float) -> None:
        self._last_received = now
        self._last_message_at = now
        self._window_count += 1
        if isinstance(message, Ping):
            if self._pong and self.phase is Phase.CONNECTED:
                self._out.append(Pong())
        elif isinstance(message, Reply):
            self._on_reply(message, now)
        else:
            self._on_push(message, now)

    def _on_reply(self, reply: Reply, now: float) -> None:
        inflight = self._inflight.pop(reply.id, None)
        if inflight is None:
            return  # a late reply to a command that timed out
        self._events.append(LatencyMeasured(now, now - inflight.sent_at))
        result = reply.result
        if inflight.kind == "connect":
            self._on_connect_reply(result, now)
        elif inflight.kind == "subscribe":
            self._on_subscribe_reply(inflight.channel, reply.id, result, now)
        elif inflight.kind == "refresh":
            self._on_refresh_reply(result, now)
        elif inflight.kind == "call":
            call = self._calls.pop(inflight.key)
            if call is None:
                return
            if isinstance(result, Error):
                error = ReplyError(result.code, result.message, result.temporary)
                self._events.append(CommandFailed(inflight.key, error))
            else:
                self._events.append(CommandSucceeded(inflight.key, result))

    def _on_connect_reply(self, result: object, now: float) -> None:
        if isinstance(result, Error):
            reason = result.message or f"connect error {result.code}"
            if result.code == ErrorCode.TOKEN_EXPIRED:
                if self.config.has_token_fetcher and not self._token_refetched:
                    self.token_needed = self._token_refetched = True
                    self._close(result.code, reason, retry=True, immediate=True)
                else:
                    self._fail(now, result.code, reason)
            elif is_retryable_error(result.code, result.temporary):
                self._close(result.code, reason, retry=True)
            else:
                self._fail(now, result.code, reason)
            return
        if not isinstance(result, ConnectResult):
            self._close(ClientCode.BAD_PROTOCOL, "bad protocol: connect answered", retry=True)
            return
        self.phase = Phase.CONNECTED
        self._connected_at = now
        self._token_refetched = False
        self.client_id = result.client
        self._ping, self._pong = result.ping, result.pong
        self._window_start, self._window_count = now, 0
        self._last_message_at = now
        if result.expires and self.config.has_token_fetcher:
            self._refresh_at = now + self._refresh_delay(result.ttl)
        self._events.append(Connected(now, result.client))
        for channel in self._subs.due(now):
            self._send_subscribe(channel, now)
        for key, call in self._calls.drain_outbox():
            call.wire_id = self._send(call.request, now, "call", key=key)

    def _refresh_delay(self, ttl: int) -> float:
        return max(ttl - self.config.refresh_margin, ttl / 2)

    def _on_subscribe_reply(self, name: str, msg_id: int, result: object, now: float) -> None:
        channel = self._subs.get(name)
        if channel is None or channel.command_id != msg_id:
            return  # unsubscribed (or resubscribed) meanwhile
        channel.command_id = 0
        if isinstance(result, Error):
            self._events.extend(self._subs.failed(channel, result, now))
        elif isinstance(result, SubscribeResult):
            self._events.extend(self._subs.subscribed(channel, result, now))
        else:
            self._close(ClientCode.BAD_PROTOCOL, "bad protocol: subscribe answered", retry=True)

    def _on_refresh_reply(self, result: object, now: float) -> None:
        self._refresh_inflight = False
        if isinstance(result, RefreshResult):
            self._refresh_at = now + self._refresh_delay(result.ttl) if result.expires else None
        elif isinstance(result, Error) and is_retryable_error(result.code, result.temporary):
            self.refresh_failed(now)
        elif isinstance(result, Error):
            self._fail(now, result.code, result.message or "refresh refused")

    def _on_publication(self, name: str, pub: Publication, now: float) -> None:
        channel = self._subs.get(name)
        if channel is not None and channel.take_next(pub):
            self._events.append(PublicationReceived(name, pub))
        else:
            self._events.extend(self._subs.publication(name, pub, now))

    def _on_push(self, push: Push, now: float) -> None:
        body = push.body
        if type(body) is Publication:
            self._on_publication(push.channel, body, now)
        elif isinstance(body, Publication):
            self._events.extend(self._subs.publication(push.channel, body, now))
        elif isinstance(body, UnsubscribePush):
            resubscribe, events = self._subs.server_unsubscribed(push.channel, body)
            self._events.extend(events)
            if resubscribe is not None:
                self._send_subscribe(resubscribe, now)
        elif isinstance(body, Disconnect):
            reason = body.reason or f"disconnect {body.code}"
            if is_reconnectable(body.code):
                self._close(body.code, reason, retry=True)
            else:
                self._fail(now, body.code, reason)
        # join/leave/message/subscribe/refresh pushes: not used by this client (docs/protocol.md)
