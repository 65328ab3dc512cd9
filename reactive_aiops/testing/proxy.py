"""FaultProxy: an in-process TCP proxy that injects network faults between a client and a server.

It listens on ``127.0.0.1`` port 0 and forwards every accepted connection to an upstream
``host:port``. While running, a test can:

- :meth:`FaultProxy.cut` -- abort every proxied connection now, on both sides, with a TCP RST
  (``SO_LINGER`` 0), like a crashed middlebox or a pulled cable followed by a reset;
- :meth:`FaultProxy.blackhole` -- keep every socket open but silently drop the bytes flowing in
  both directions (new connections too) until :meth:`FaultProxy.restore`. Teardown is swallowed
  as well, as a partitioned network would: a side that goes away while blackholed is only
  propagated to the other side on :meth:`restore` (or :meth:`aclose`);
- :meth:`FaultProxy.delay` -- hold bytes for ``seconds`` in one or both directions, order kept;
- :meth:`FaultProxy.refuse` -- reset new connections at once (for a while, or until
  :meth:`FaultProxy.accept_again`), like a port with nothing listening;
- :meth:`FaultProxy.retarget` -- send new connections to another upstream port (a restarted
  server bound a new port 0); established connections are left alone.

Counters: :attr:`accepted` (connections accepted, refused ones included), :attr:`refused`,
:attr:`attempt_times` (the injected clock at each accept -- measure reconnect storms with it),
:attr:`active` (links currently open). :meth:`aclose` aborts everything and returns once no
socket and no task of the proxy is left. Use it as ``async with FaultProxy(host, port) as p:``.

The proxy is built on asyncio protocols and ``call_at`` timers: forwarding itself runs no task;
the only tasks are the short-lived upstream connects, which :meth:`aclose` cancels and awaits.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import socket
import struct
import time
from collections.abc import Callable
from types import TracebackType
from typing import Literal, Self

__all__ = ["Direction", "FaultProxy"]

#: ``"up"`` is client -> server, ``"down"`` server -> client.
Direction = Literal["up", "down", "both"]

_Item = bytes | Literal["eof", "close"]


def _reset(transport: asyncio.Transport | None) -> None:
    """Abort ``transport`` so the peer sees a RST rather than an orderly FIN."""
    if transport is None or transport.is_closing():
        return
    sock = transport.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    transport.abort()


class _Pipe:
    """One direction of a link: bytes held until due, then written to ``dest`` in order."""

    def __init__(self, link: _Link, direction: Literal["up", "down"]) -> None:
        self._link = link
        self._direction = direction
        self.dest: asyncio.Transport | None = None
        # (due time, bytes or an "eof"/"close" marker)
        self._queue: collections.deque[tuple[float, _Item]] = collections.deque()
        self._timer: asyncio.TimerHandle | None = None
        self._last_due = 0.0
        self.eof_held = False

    def feed(self, data: _Item) -> None:
        proxy = self._link.proxy
        if proxy.blackholed and data != "close":
            if data == "eof":
                self.eof_held = True  # a partition swallows the FIN too; sent on restore()
            return
        loop = proxy.loop
        due = max(loop.time() + proxy.delay_of(self._direction), self._last_due)
        self._last_due = due
        self._queue.append((due, data))
        self._flush()

    def _flush(self) -> None:
        self._timer = None
        if self.dest is None:
            return  # upstream not connected yet: flushed by attach()
        loop = self._link.proxy.loop
        now = loop.time()
        while self._queue:
            due, data = self._queue[0]
            if due > now:
                if self._timer is None:
                    self._timer = loop.call_at(due, self._flush)
                return
            self._queue.popleft()
            if self.dest.is_closing():
                continue
            if isinstance(data, bytes):
                self.dest.write(data)
            elif data == "eof" and self.dest.can_write_eof():
                self.dest.write_eof()
                side = self._link.upstream if self._direction == "up" else self._link.client
                side.eof_out = True
                if side.eof_in:  # both halves done: a full close
                    self.dest.close()
            else:
                self.dest.close()

    def attach(self, dest: asyncio.Transport) -> None:
        self.dest = dest
        self._flush()

    def cancel(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._queue.clear()


class _Side(asyncio.Protocol):
    """Protocol of one socket of a link; forwards events to the link."""

    def __init__(self, link: _Link, name: Literal["client", "upstream"]) -> None:
        self.link = link
        self.name: Literal["client", "upstream"] = name
        self.transport: asyncio.Transport | None = None
        self.gone = False
        self.eof_in = False  # the peer sent EOF
        self.eof_out = False  # we sent EOF to the peer

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        if self.link.closed:  # refused, cut or closed before the socket was handed over
            _reset(transport)

    def data_received(self, data: bytes) -> None:
        self.link.received(self, data)

    def eof_received(self) -> bool:
        self.eof_in = True
        self.link.received(self, "eof")
        # keep our write half open until the other side finishes, unless it already has
        return not self.eof_out

    def connection_lost(self, exc: Exception | None) -> None:
        self.link.lost(self, exc)

    def pause_writing(self) -> None:
        self.link.pause(self)

    def resume_writing(self) -> None:
        self.link.resume(self)


class _Link:
    """One proxied connection: the accepted client socket and its upstream socket."""

    def __init__(self, proxy: FaultProxy) -> None:
        self.proxy = proxy
        self.client = _Side(self, "client")
        self.upstream = _Side(self, "upstream")
        self.up = _Pipe(self, "up")
        self.down = _Pipe(self, "down")
        self.closed = False
        # a side lost while blackholed: (side, reset?) propagated on restore()
        self.pending_loss: tuple[_Side, bool] | None = None

    def other(self, side: _Side) -> _Side:
        return self.upstream if side is self.client else self.client

    def received(self, side: _Side, data: _Item) -> None:
        (self.up if side is self.client else self.down).feed(data)

    def lost(self, side: _Side, exc: Exception | None) -> None:
        side.gone = True
        if self.closed:
            return
        if self.other(side).gone:
            self.closed = True
            self.up.cancel()
            self.down.cancel()
            self.proxy.forget(self)
            return
        if self.proxy.blackholed:
            self.pending_loss = (side, exc is not None)
            return
        self.finish(side, reset=exc is not None)

    def finish(self, side: _Side, *, reset: bool) -> None:
        """``side`` went away: mirror it on the other side (RST for a reset, else close)."""
        other = self.other(side)
        if reset or other.transport is None:
            self.abort()
            return
        # an orderly close: queued (delayed) bytes drain first; the link is forgotten once the
        # other side's connection_lost arrives
        (self.up if other is self.upstream else self.down).feed("close")

    def abort(self) -> None:
        self.closed = True
        self.up.cancel()
        self.down.cancel()
        _reset(self.client.transport)
        _reset(self.upstream.transport)
        self.proxy.forget(self)

    def pause(self, side: _Side) -> None:
        other = self.other(side).transport
        if other is not None and not other.is_closing():
            other.pause_reading()

    def resume(self, side: _Side) -> None:
        other = self.other(side).transport
        if other is not None and not other.is_closing():
            other.resume_reading()


class FaultProxy:
    """A TCP proxy on ``127.0.0.1`` port 0 in front of ``upstream_host:upstream_port``.

    Call :meth:`start` (or use ``async with``) before :attr:`port`; always :meth:`aclose` it.
    ``clock`` stamps :attr:`attempt_times` and times :meth:`refuse` windows (default
    ``time.monotonic``; pass a manual clock to end a refusal without waiting).
    """

    def __init__(
        self,
        upstream_host: str,
        upstream_port: int,
        *,
        host: str = "127.0.0.1",
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.upstream_host = upstream_host
        self.upstream_port = upstream_port
        self._host = host
        self._clock = clock
        self._server: asyncio.Server | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._links: set[_Link] = set()
        self._connecting: set[asyncio.Task[None]] = set()
        self._delay = {"up": 0.0, "down": 0.0}
        self._refuse_until: float | None = None
        self.blackholed = False
        #: connections accepted since start (refused ones included)
        self.accepted = 0
        #: connections reset at once because of :meth:`refuse` or an unreachable upstream
        self.refused = 0
        #: the clock at each accepted connection, in order
        self.attempt_times: list[float] = []

    # -- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> Self:
        """Bind the listening socket; returns ``self``. Raises ``RuntimeError`` if started."""
        if self._server is not None:
            raise RuntimeError("FaultProxy already started")
        self._loop = asyncio.get_running_loop()
        self._server = await self._loop.create_server(self._accept, self._host, 0)
        return self

    async def __aenter__(self) -> Self:
        return await self.start()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Stop listening, reset every link and wait until no socket or task is left."""
        server, self._server = self._server, None
        if server is not None:
            server.close()
        for task in list(self._connecting):
            task.cancel()
        if self._connecting:
            await asyncio.gather(*self._connecting, return_exceptions=True)
        self.cut()
        if server is not None:
            await server.wait_closed()
        # abort() closes sockets on the next loop iteration; let that run
        await asyncio.sleep(0)
        await asyncio.sleep(0)

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        """The loop the proxy runs on (after :meth:`start`)."""
        if self._loop is None:
            raise RuntimeError("FaultProxy not started: await proxy.start() first")
        return self._loop

    @property
    def port(self) -> int:
        """The port clients connect to."""
        if self._server is None:
            raise RuntimeError("FaultProxy not started: await proxy.start() first")
        port: int = self._server.sockets[0].getsockname()[1]
        return port

    @property
    def url_host(self) -> str:
        """``host:port`` to build client URLs from."""
        return f"{self._host}:{self.port}"

    @property
    def active(self) -> int:
        """Links currently open (accepted and not yet torn down)."""
        return len(self._links)

    # -- faults ------------------------------------------------------------------------------

    def cut(self) -> int:
        """Reset every open link on both sides now; returns how many were cut."""
        links = list(self._links)
        for link in links:
            link.abort()
        return len(links)

    def blackhole(self) -> None:
        """Drop all bytes both ways (sockets stay open) until :meth:`restore`."""
        self.blackholed = True

    def restore(self) -> None:
        """End a blackhole; teardowns swallowed meanwhile are propagated now."""
        self.blackholed = False
        for link in list(self._links):
            for pipe in (link.up, link.down):
                if pipe.eof_held:
                    pipe.eof_held = False
                    pipe.feed("eof")
            if link.pending_loss is not None:
                side, reset = link.pending_loss
                link.pending_loss = None
                link.finish(side, reset=reset)

    def delay(self, seconds: float, direction: Direction = "both") -> None:
        """Hold bytes ``seconds`` before forwarding them (``0`` ends it). Order is kept."""
        if seconds < 0:
            raise ValueError(f"delay must be >= 0 seconds, got {seconds!r}")
        for d in ("up", "down") if direction == "both" else (direction,):
            self._delay[d] = float(seconds)

    def delay_of(self, direction: Literal["up", "down"]) -> float:
        """The current delay of one direction, in seconds."""
        return self._delay[direction]

    def refuse(self, seconds: float | None = None) -> None:
        """Reset new connections at once, for ``seconds`` (``None``: until :meth:`accept_again`)."""
        self._refuse_until = float("inf") if seconds is None else self._clock() + seconds

    def accept_again(self) -> None:
        """End :meth:`refuse`."""
        self._refuse_until = None

    def retarget(self, port: int, host: str | None = None) -> None:
        """Send new connections to ``host:port`` (default: same host); open links stay."""
        self.upstream_port = port
        if host is not None:
            self.upstream_host = host

    # -- internals ---------------------------------------------------------------------------

    def forget(self, link: _Link) -> None:
        self._links.discard(link)

    def _accept(self) -> asyncio.Protocol:
        self.accepted += 1
        self.attempt_times.append(self._clock())
        link = _Link(self)
        self._links.add(link)
        refusing = self._refuse_until is not None and self._clock() < self._refuse_until
        if refusing:
            self.refused += 1
            link.abort()  # connection_made resets the socket as it arrives
        else:
            task = self.loop.create_task(self._connect_upstream(link))
            self._connecting.add(task)
            task.add_done_callback(self._connecting.discard)
        return link.client

    async def _connect_upstream(self, link: _Link) -> None:
        # the client's bytes are queued in link.up until the upstream socket exists
        try:
            await self.loop.create_connection(
                lambda: link.upstream, self.upstream_host, self.upstream_port
            )
        except OSError:
            self.refused += 1
            link.abort()
            return
        if link.closed:
            _reset(link.upstream.transport)
            return
        assert link.upstream.transport is not None
        assert link.client.transport is not None
        link.up.attach(link.upstream.transport)
        link.down.attach(link.client.transport)
