"""``WebSocketManager``: the asyncio client, a thin pump around ``protocol.ClientProtocol``.

It opens sockets with ``websockets.asyncio.client.connect`` (compression off, ``max_size``
guard, no native pings: the Centrifuge heartbeat is application-level), feeds text frames and
the injected clock to the sans-I/O protocol, sends what it asks, and turns its events into
futures and reactivex streams (see net.client_streams).

Receive path and overload policy: frames are processed synchronously as they arrive and
observers run inline. A text frame is handled in the socket's read callback itself, with no trip
around the event loop (net.inline); what cannot be (a fragmented message, or the rest of a read
that took over ``YIELD_EVERY``) waits in websockets' receive queue (``max_queue`` frames of at
most ``max_size`` characters each), the only buffer, and is read in order by the receive loop,
which yields to the event loop every ``YIELD_EVERY``. If the application cannot keep up,
websockets stops reading the socket, the server's bounded per-connection queue fills, and the
server disconnects us (3008 "slow", reconnectable); we reconnect and recover from the last
applied offset, or emit a resync. Memory never grows without bound; a slow consumer costs a
reconnect, not an OOM.
An observer that raises is logged (logger ``reactive_aiops.net.client``) and delivery goes on.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import ssl
import time
from collections import deque
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

import attrs
import reactivex
from reactivex import abc
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed, WebSocketException

from reactive_aiops.core.connection import (
    Connected,
    ConnectionAction,
    ConnectionHealth,
    ConnectionState,
)
from reactive_aiops.net.client_streams import ClientStreams, SubscriptionError, describe
from reactive_aiops.net.endpoints import (
    FATAL_HTTP_STATUSES,
    Endpoints,
    close_info,
    close_socket,
    open_failure,
)
from reactive_aiops.net.inline import InlineConnection
from reactive_aiops.protocol import (
    ClientCode,
    ClientConfig,
    ClientProtocol,
    CloseTransport,
    CommandFailed,
    CommandSucceeded,
    Event,
    Phase,
    PublicationReceived,
    RefreshNeeded,
    SubscriptionFailed,
)
from reactive_aiops.protocol.events import Subscribed
from reactive_aiops.wire import (
    DEFAULT_MAX_FRAME,
    JSONValue,
    Publication,
    Request,
    Result,
    RPCRequest,
    RPCResult,
)

__all__ = ["FATAL_HTTP_STATUSES", "TokenFetcher", "WebSocketManager"]

logger = logging.getLogger(__name__)

TokenFetcher = Callable[[], Awaitable[str]]

#: Seconds of back-to-back frame processing after which the receive loop lets the event loop
#: run other callbacks (well under a 60 fps frame).
YIELD_EVERY = 0.002


_NON_ACTIONS: tuple[type, ...] = (PublicationReceived, Subscribed, SubscriptionFailed)
_NON_ACTIONS += (CommandSucceeded, CommandFailed, CloseTransport, RefreshNeeded)


class WebSocketManager:
    """A Centrifuge v2 JSON client connection that reconnects, recovers and resyncs.

    ``url``: the WebSocket endpoint (Centrifugo: ``ws://host:8000/connection/websocket``), or
    several, tried in order with failover (net.endpoints). ``wss://`` verifies certificates by
    default; ``ca_file`` (PEM) trusts a private CA, ``ssl_context`` sets the TLS policy.
    ``token``: connection token; ``get_token``: async callable returning a fresh one (used when
    ``token`` is empty, after "token expired" at connect -- once -- and to refresh before
    expiry). ``config``: protocol knobs (backoff, timeouts, outbox size...). ``clock`` (seconds)
    and ``rand`` ([0, 1)) are injectable; with a manual clock, call ``poke()`` after moving it.
    ``open_timeout``/``close_timeout``: socket handshake limits; ``max_size``/``max_queue``:
    receive bounds (see the module docstring). ``headers``: extra HTTP headers.

    Use from one event loop; observers are called on it. ``await connect()`` starts the
    connection (it returns once connected, or raises ``ConnectionError`` if the client failed
    terminally); ``await close()`` stops it.
    """

    def __init__(
        self,
        url: str | Sequence[str],
        *,
        token: str = "",
        get_token: TokenFetcher | None = None,
        config: ClientConfig | None = None,
        connect_data: JSONValue = None,
        clock: Callable[[], float] = time.time,
        rand: Callable[[], float] = random.random,
        open_timeout: float = 10.0,
        close_timeout: float = 1.0,
        max_size: int = DEFAULT_MAX_FRAME,
        max_queue: int = 16,
        headers: Mapping[str, str] | None = None,
        ca_file: str | None = None,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        config = config or ClientConfig()
        if get_token is not None and not config.has_token_fetcher:
            config = attrs.evolve(config, has_token_fetcher=True)
        self._endpoints = Endpoints(url, ca_file=ca_file, ssl_context=ssl_context)
        self._get_token = get_token
        self._clock = clock
        self._open_timeout = open_timeout
        self._close_timeout = close_timeout
        self._max_size = max_size
        self._max_queue = max_queue
        self._headers = dict(headers or {})
        self._protocol = ClientProtocol(config, token=token, connect_data=connect_data, rand=rand)
        self._token_needed_first = not token and get_token is not None
        self._streams = ClientStreams(
            raw_changed=lambda raw: setattr(self._protocol, "raw_publications", raw)
        )
        self._futures: dict[int, asyncio.Future[Result]] = {}
        self._wake = asyncio.Event()
        self._outgoing: deque[str] = deque()
        self._outgoing_ready = asyncio.Event()
        self._ws: InlineConnection | None = None
        self._task: asyncio.Task[None] | None = None
        self._background: set[asyncio.Task[Any]] = set()
        self._connected = asyncio.Event()
        self._phase_seen: Phase | None = None

    @property
    def url(self) -> str:
        """The endpoint the client is connected to, or tries next."""
        return self._endpoints.current

    @property
    def urls(self) -> tuple[str, ...]:
        """Every endpoint, in failover order."""
        return self._endpoints.urls

    # -- streams ---------------------------------------------------------------------------

    @property
    def state(self) -> ConnectionState:
        """The connection slice right now."""
        return self._streams.state

    @property
    def states(self) -> reactivex.Observable[ConnectionState]:
        """Connection state: the current value on subscribe, then each change."""
        return self._streams.states

    @property
    def health(self) -> reactivex.Observable[ConnectionHealth]:
        """Connection health (latency, last message time, reconnects, rate, duplicates,
        resyncs): current value first, then each change."""
        return self._streams.health

    @property
    def actions(self) -> reactivex.Observable[ConnectionAction]:
        """Every core.connection action in order (hot): dispatch these into a store."""
        return self._streams.actions

    @property
    def events(self) -> reactivex.Observable[Event]:
        """Every protocol event in order (hot), for bridges that need publications and actions
        interleaved exactly as they happened."""
        return self._streams.events

    @property
    def event_batches(self) -> reactivex.Observable[list[Event]]:
        """The same events as :attr:`events`, one list per protocol step (e.g. every message of
        one received frame), emitted after each event of the list was delivered to ``events``.
        A bridge uses it to apply a frame's publications together (one store notification)."""
        return self._streams.event_batches

    def listen_batches(
        self, listener: Callable[[list[Event]], None], *, raw: bool = False
    ) -> abc.DisposableBase:
        """Call ``listener(events)`` with each list :attr:`event_batches` emits, directly (no
        observer chain per frame; a raising listener is logged). Dispose to stop. With
        ``raw``, plain in-order publications come as ``RawPublicationReceived`` (data
        undecoded, for the listener's own types); the protocol then leaves them so."""
        return self._streams.listen_batches(listener, raw=raw)

    def publications(self, channel: str) -> reactivex.Observable[Publication]:
        """Publications of ``channel``, each offset once and in order. Subscribing holds a
        reference to the channel (subscribed on the server while any is held, restored after
        reconnects); disposing releases it. Errors with ``SubscriptionError`` if the server
        refuses the channel. Raises ``ValueError`` for an empty name."""
        return self._streams.channel(channel, *self._reference(channel))

    def hold(self, channel: str) -> abc.DisposableBase:
        """Hold a reference to ``channel`` without observing its publications: the channel is
        subscribed on the server while any reference is held (as with :meth:`publications`),
        until the returned disposable is disposed or the server refuses the channel. For a
        consumer that reads publications elsewhere (e.g. :attr:`event_batches`) and should not
        pay for an observer on every one. Raises ``ValueError`` for an empty name."""
        return self._streams.hold(channel, *self._reference(channel))

    def _reference(self, channel: str) -> tuple[Callable[[], None], Callable[[], None]]:
        """``(acquire, release)`` of one reference to ``channel`` in the protocol."""
        if not channel:
            raise ValueError("channel name must be a non-empty string")

        def acquire() -> None:
            self._protocol.subscribe(channel, self._clock())
            self._process()

        def release() -> None:
            self._protocol.unsubscribe(channel, self._clock())
            self._process()

        return acquire, release

    # -- lifecycle -------------------------------------------------------------------------

    async def connect(self) -> None:
        """Start (or restart after close/failure) and wait until connected.

        Raises ``ConnectionError`` with the reason if the client fails terminally first. Bound
        the wait with ``asyncio.timeout``; the client keeps trying in the background after it.
        """
        self._protocol.start(self._clock())
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._supervise())
        self.poke()
        await self.wait_connected()

    async def wait_connected(self) -> None:
        """Wait until CONNECTED; ``ConnectionError`` if the client failed or was closed."""
        while not (self._connected.is_set() and self._protocol.phase is Phase.CONNECTED):
            if self._protocol.phase in (Phase.FAILED, Phase.STOPPED, Phase.IDLE):
                raise ConnectionError(self.state.reason or "client is not running")
            self._connected.clear()
            await self._connected.wait()

    async def close(self) -> None:
        """Stop for good: pending commands fail with ``ClientClosed``; subscriptions are kept
        for a later ``connect()``."""
        self._protocol.stop(self._clock())
        self._process()
        self.poke()
        task, self._task = self._task, None
        if task is not None and self._ws is None:
            # No socket to close gracefully: a token fetch or a handshake may be in progress.
            task.cancel()
        if task is not None:
            await asyncio.wait((task,))
            if not task.cancelled() and task.exception() is not None:
                raise task.exception()  # type: ignore[misc]
        for bg in list(self._background):
            bg.cancel()

    @property
    def running(self) -> bool:
        """True while the background task connects or serves (False once stopped or failed)."""
        return self._task is not None and not self._task.done()

    def poke(self) -> None:
        """Re-check timers now (call after moving an injected manual clock)."""
        self._wake.set()

    # -- commands --------------------------------------------------------------------------

    async def call(self, request: Request, command_timeout: float | None = None) -> Result:
        """Send a command and await its result (issued while disconnected, it waits in the
        outbox). ``command_timeout`` (default ``config.command_timeout``) counts from now and
        covers the outbox wait. Raises ``ReplyError``, ``CommandTimeout``, ``OutboxFull`` or
        ``ClientClosed`` (all ``protocol.ClientError``)."""
        key = self._protocol.call(request, self._clock(), command_timeout)
        future: asyncio.Future[Result] = asyncio.get_running_loop().create_future()
        self._futures[key] = future
        self._process()
        self.poke()
        try:
            return await future
        finally:
            self._futures.pop(key, None)

    async def rpc(
        self, method: str, data: JSONValue, command_timeout: float | None = None
    ) -> JSONValue:
        """Call RPC ``method`` with ``data``; returns the reply's ``data`` (see ``call``)."""
        result = await self.call(RPCRequest(data=data, method=method), command_timeout)
        assert isinstance(result, RPCResult), "the server answered an rpc with another method"
        return result.data

    def send(self, data: JSONValue) -> bool:
        """Fire-and-forget ``send``; False (dropped) unless connected."""
        sent = self._protocol.send(data)
        self._process()
        return sent

    # -- the pump --------------------------------------------------------------------------

    async def _supervise(self) -> None:
        protocol = self._protocol
        while protocol.phase not in (Phase.STOPPED, Phase.FAILED, Phase.IDLE):
            if protocol.connect_due(self._clock()):
                await self._serve_one_connection()
                continue
            await self._sleep_until(protocol.next_deadline())
            protocol.tick(self._clock())
            self._process()
        self._connected.set()  # wake waiters so they see the final phase

    async def _sleep_until(self, deadline: float | None) -> None:
        self._wake.clear()
        delay = None if deadline is None else max(0.0, deadline - self._clock())
        # asyncio.timeout, not wait_for: on 3.11 wait_for swallows a cancel that arrives when
        # the event is already set (CPython gh-86296), which wedged the timers task.
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(delay):
                await self._wake.wait()

    async def _fetch_token(self) -> bool:
        assert self._get_token is not None
        try:
            token = await self._get_token()
        except Exception as exc:  # any fetch failure is retried with backoff
            now = self._clock()
            if self._protocol.transport_opening(now):
                self._protocol.transport_failed(
                    now,
                    f"token fetch failed: {describe(exc)}",
                    code=ClientCode.TOKEN_UNAVAILABLE,
                )
            self._process()
            return False
        self._protocol.set_token(token)
        self._token_needed_first = False
        return True

    async def _serve_one_connection(self) -> None:
        protocol = self._protocol
        wants_token = protocol.token_needed or self._token_needed_first
        if wants_token and self._get_token is not None and not await self._fetch_token():
            return
        if not protocol.transport_opening(self._clock()):
            return
        self._process()
        endpoints = self._endpoints
        try:
            ws = await endpoints.open(
                max_size=self._max_size,
                max_queue=self._max_queue,
                open_timeout=self._open_timeout,
                close_timeout=self._close_timeout,
                headers=self._headers,
            )
        except (OSError, TimeoutError, WebSocketException) as exc:
            reason, code, fatal = open_failure(exc)
            immediate = not fatal and endpoints.failed()
            protocol.transport_failed(
                self._clock(), reason, code=code, fatal=fatal, immediate=immediate
            )
            self._process()
            return
        self._ws = ws
        self._outgoing.clear()
        writer = asyncio.get_running_loop().create_task(self._write(ws))
        timer = asyncio.get_running_loop().create_task(self._timers())
        code, reason = 1006, "connection lost"
        try:
            protocol.transport_opened(self._clock())
            self._process()
            # Most text frames are handled in the socket's read callback (net.inline).
            await ws.deliver(self._receive_text, self._receive_binary, budget=YIELD_EVERY)
            code, reason = close_info(ws)
        except ConnectionClosed:
            code, reason = close_info(ws)
        finally:
            writer.cancel()
            timer.cancel()
            # asyncio.wait, not awaiting the tasks: our own cancellation must still propagate
            await asyncio.wait((writer, timer))
            self._ws = None
            if ws.state.name != "CLOSED":
                ws.transport.abort()
        endpoints.closed(code)
        protocol.transport_closed(self._clock(), code, reason)
        self._process()

    def _receive_text(self, text: str) -> None:
        self._protocol.receive_text(text, self._clock())
        self._process()

    def _receive_binary(self, _data: bytes) -> None:
        self._receive_text("binary frame")  # decodes as bad JSON: a protocol error

    async def _write(self, ws: ClientConnection) -> None:
        while True:
            while self._outgoing:
                item = self._outgoing.popleft()
                try:
                    await ws.send(item)
                except ConnectionClosed:
                    return
            self._outgoing_ready.clear()
            await self._outgoing_ready.wait()

    async def _timers(self) -> None:
        while True:
            await self._sleep_until(self._protocol.next_deadline())
            self._protocol.tick(self._clock())
            self._process()

    def _process(self) -> None:
        protocol = self._protocol
        # Each output is taken only when the protocol holds some (its lists, read in place):
        # a received frame has nothing to send, and the call (with a fresh empty list) is
        # saved once per frame.
        if protocol._out:
            frames = protocol.data_to_send()
            if frames and self._ws is not None:
                self._outgoing.extend(frames)
                self._outgoing_ready.set()
        if protocol._events:
            events = protocol.events_received()
            # publications inline there (the hot path), the rest through _handle, then the batch
            self._streams.deliver(events, self._handle)
        phase = protocol.phase
        if phase is not self._phase_seen:  # only a change can wake wait_connected
            self._phase_seen = phase
            if phase is Phase.CONNECTED or phase in (Phase.FAILED, Phase.STOPPED):
                self._connected.set()

    def _handle(self, event: Event) -> None:
        if isinstance(event, PublicationReceived):
            self._streams.publish(event.channel, event.publication)
        elif isinstance(event, CommandSucceeded | CommandFailed):
            future = self._futures.get(event.key)
            if future is not None and not future.done():
                if isinstance(event, CommandSucceeded):
                    future.set_result(event.result)
                else:
                    future.set_exception(event.error)
        elif isinstance(event, CloseTransport):
            if self._ws is not None:
                # Not queued behind the writer: on a dead link a send may never finish.
                self._outgoing.clear()
                self._spawn(close_socket(self._ws, event, self._close_timeout))
        elif isinstance(event, RefreshNeeded):
            self._spawn(self._refresh())
        elif isinstance(event, Connected):
            self._endpoints.connected()
        elif isinstance(event, SubscriptionFailed):
            self._streams.fail_channel(
                event.channel, SubscriptionError(event.channel, event.code, event.reason)
            )
        self._streams.apply(event, not isinstance(event, _NON_ACTIONS))
        # Anything but a publication may have moved a deadline earlier (Connected starts the
        # heartbeat and the health window; a reply may schedule a retry): the timers task may
        # be asleep until a later one (e.g. the connect timeout), so let it look again.
        self._wake.set()

    async def _refresh(self) -> None:
        if self._get_token is None:
            return
        try:
            token = await self._get_token()
        except Exception:  # retried after config.refresh_retry
            self._protocol.refresh_failed(self._clock())
        else:
            self._protocol.refresh_token(token, self._clock())
        self._process()
        self.poke()

    def _spawn(self, coro: Awaitable[None]) -> None:
        task = asyncio.ensure_future(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)
