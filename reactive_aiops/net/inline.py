"""``InlineConnection``: a websockets client connection that hands text messages over inline.

websockets queues every received message and wakes the task awaiting ``recv()``: one trip
around the event loop per frame before anyone reads it. On this project's machines that trip
is about 20 µs at the median (docs/performance.md), a large share of event-to-render latency
at 1,000 events/s. This connection gives each complete text message to a callback straight
from the transport's ``data_received``, so the protocol, the store and the selectors run in the
same callback that read the socket.

What still goes through websockets' queue, and so through ``recv()``: fragmented messages,
binary messages, a text frame that is not valid UTF-8 (``recv()`` then fails the connection as
before), everything that arrives while the queue is not empty (so messages keep their order),
and everything once one read has been processed inline for ``budget`` seconds (so a flood still
gives the event loop a turn; the queue's high-water mark then pauses reading, as before).
"""

from __future__ import annotations

import asyncio
import collections
import time
from collections.abc import Callable
from typing import Any

from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed
from websockets.frames import Frame, Opcode

__all__ = ["InlineConnection"]

_TEXT = Opcode.TEXT

#: Seconds of inline processing per socket read, by default (well under a 60 fps frame).
DEFAULT_BUDGET = 0.002


class InlineConnection(ClientConnection):
    """A ``ClientConnection`` that hands each complete text message to a callback inline.

    Call :meth:`deliver` once the connection is open; until then messages are queued for
    ``recv()`` as usual.
    """

    #: Called with each text message taken inline; None: queue everything.
    on_text: Callable[[str], None] | None = None
    #: Seconds of inline processing per socket read, after which the rest of that read is
    #: queued (the receive loop yields to the event loop between its messages).
    budget: float = DEFAULT_BUDGET
    #: Messages handed over inline so far (the rest went through websockets' queue).
    inline_messages: int = 0
    _read_began: float = 0.0
    _failure: Exception | None = None
    _pending: collections.deque[Any] | None = None

    async def deliver(
        self,
        on_text: Callable[[str], None],
        on_binary: Callable[[bytes], None],
        *,
        budget: float = DEFAULT_BUDGET,
    ) -> None:
        """Hand every message to ``on_text`` / ``on_binary``, in order, until the connection
        closes: inline where possible, the rest from here. Returns after a normal close;
        raises ``ConnectionClosed`` after an abnormal one, and what a callback raised (the
        connection is aborted then, and nothing after that message is handed over)."""
        self.budget = budget
        # websockets' queue of received frames; were it ever to move (it is not public API),
        # nothing is taken inline and everything goes through recv() as before
        pending = getattr(getattr(self.recv_messages, "frames", None), "queue", None)
        if isinstance(pending, collections.deque):
            self._pending = pending
            self.on_text = on_text
        try:
            yielded = time.perf_counter()
            async for message in self:
                if self._failure is not None:
                    break
                if isinstance(message, str):
                    on_text(message)
                else:
                    on_binary(bytes(message))
                # While messages are queued, receiving them never suspends, so under a flood
                # nothing else on the loop (frame timers, the UI's consumers) would run until
                # the queue drained. Give the loop a turn every ``budget`` seconds of it.
                now = time.perf_counter()
                if now - yielded >= budget:
                    await asyncio.sleep(0)
                    yielded = time.perf_counter()
        except ConnectionClosed:
            if self._failure is None:
                raise
        finally:
            self.on_text = None
        if self._failure is not None:
            raise self._failure

    def data_received(self, data: bytes) -> None:
        self._read_began = time.perf_counter()
        super().data_received(data)

    def process_event(self, event: Any) -> None:
        on_text = self.on_text
        if (
            on_text is not None
            and type(event) is Frame
            and event.opcode is _TEXT
            and event.fin
            and not self._pending
            and time.perf_counter() - self._read_began < self.budget
        ):
            try:
                text = bytes(event.data).decode()
            except UnicodeDecodeError:
                pass  # recv() reports it as websockets always did
            else:
                self.inline_messages += 1
                try:
                    on_text(text)
                except Exception as exc:
                    # Out of the read callback asyncio would only log it: end the connection
                    # and let deliver() raise it, as if it had received this message itself.
                    self._failure = exc
                    self.on_text = None
                    self.transport.abort()
                return
        super().process_event(event)
