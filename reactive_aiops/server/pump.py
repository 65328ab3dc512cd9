"""Moving a connection's output to its socket: a coalesced fast path and a writer task.

Publications reach a ``ServerConnection`` synchronously (inside ``Broker.publish``). Waking one
writer task per connection per message is what makes a naive fan-out slow, so output goes two
ways:

- fast path: every connection that got output during the current event-loop callback is flushed
  once, right after it (``Flusher``, via ``call_soon``), writing straight into the socket's buffer
  as ``websockets.broadcast`` does; messages of the same callback share one frame;
- slow path: if the writer task is busy, or the socket's buffer already holds ``DIRECT_LIMIT``
  bytes (the client is not keeping up), the writer task drains the queue with backpressure
  (``await send``). The queue is bounded by ``ServerConnection`` itself, which closes a client
  that lets it overflow with 3008.

The writer task also owns the connection's timers (``next_deadline``/``tick``): the fast path
wakes it whenever a deadline moved, e.g. when ``connect`` started the ping timer.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

from websockets.asyncio.server import ServerConnection, broadcast
from websockets.exceptions import ConnectionClosed
from websockets.protocol import State as WsState

from reactive_aiops.protocol.server import ServerConnection as ProtocolConnection
from reactive_aiops.wire.codes import DisconnectCode

#: Write directly only while the socket's outgoing buffer is below this many bytes.
DIRECT_LIMIT = 64 * 1024


class Pump:
    """The edge state of one connection: its writer task and the fast-path flush."""

    __slots__ = ("clock", "conn", "deadline", "parked", "wake", "ws")

    def __init__(self, conn: ProtocolConnection, ws: ServerConnection,
                 clock: Callable[[], float]) -> None:
        self.conn = conn
        self.ws = ws
        self.clock = clock
        self.wake = asyncio.Event()
        self.parked = False  # the writer waits on ``wake`` with nothing in flight
        self.deadline: float | None = None  # the deadline the parked writer sleeps until

    def flush(self) -> None:
        """Write pending output now if the writer is idle and the socket keeps up."""
        conn, ws = self.conn, self.ws
        if (not self.parked or conn.closed or ws.protocol.state is not WsState.OPEN
                or ws.transport.get_write_buffer_size() >= DIRECT_LIMIT):
            self.wake.set()
            return
        for frame in conn.data_to_send():
            with contextlib.suppress(Exception):  # a dead socket: the reader loop sees it
                broadcast((ws,), frame, raise_exceptions=True)
        if conn.next_deadline() != self.deadline:
            self.wake.set()

    async def run_writer(self) -> None:
        """Drain the queue with backpressure, fire timers, and send the close frame."""
        conn, ws = self.conn, self.ws
        try:
            while True:
                if not conn.pending and not conn.closed:
                    self.deadline = conn.next_deadline()
                    timeout = None if self.deadline is None else max(
                        0.0, self.deadline - self.clock())
                    self.parked = True
                    try:
                        with contextlib.suppress(TimeoutError):
                            async with asyncio.timeout(timeout):
                                await self.wake.wait()
                    finally:
                        self.parked = False
                self.wake.clear()
                conn.tick(self.clock())
                for frame in conn.data_to_send():
                    await ws.send(frame)
                if conn.closed and not conn.pending:
                    code = conn.close_code or DisconnectCode.SERVER_ERROR
                    if code != DisconnectCode.CONNECTION_CLOSED:
                        await ws.close(code, conn.close_reason)
                    return
        except ConnectionClosed:
            return


class Flusher:
    """Collects the connections that got output and flushes each once per loop callback."""

    def __init__(self) -> None:
        self._dirty: dict[int, Pump] = {}
        self._scheduled = False

    def mark(self, pump: Pump) -> None:
        """``pump`` has output: flush it right after the current callback."""
        self._dirty[id(pump)] = pump
        if not self._scheduled:
            self._scheduled = True
            asyncio.get_running_loop().call_soon(self._flush)

    def _flush(self) -> None:
        self._scheduled = False
        dirty, self._dirty = self._dirty, {}
        for pump in dirty.values():
            pump.flush()


def abort_if_open(ws: ServerConnection) -> None:
    """Drop ``ws``'s TCP connection now unless it is already closed.

    Called ``close_timeout`` after the server decided to close: a peer that reads nothing never
    lets the close frame out of the send buffer, so neither the drain nor the closing handshake
    would ever finish, and the socket, its buffers and its handler would stay forever.
    """
    if ws.protocol.state is not WsState.CLOSED:
        ws.transport.abort()
