"""Bookkeeping of application commands: keys, deadlines, and the bounded outbox.

A command gets a *key* when issued (stable across reconnects) and a wire id each time it is sent.
Its deadline counts from issue time, so it covers the wait in the outbox. Pure data structure:
``ClientProtocol`` decides when to send and turns expiries into events.
"""

from __future__ import annotations

import heapq
from collections import deque
from collections.abc import Iterator

import attrs

from reactive_aiops.wire import Request


@attrs.define
class Call:
    """One pending command; ``wire_id`` is 0 while it waits in the outbox."""

    request: Request
    deadline: float
    wire_id: int = 0


class Calls:
    """Pending commands by key, an outbox of keys (FIFO, bounded) and a deadline heap."""

    def __init__(self, outbox_size: int) -> None:
        self.outbox_size = outbox_size
        self._calls: dict[int, Call] = {}
        self._outbox: deque[int] = deque()
        self._deadlines: list[tuple[float, int]] = []
        self._next_key = 0

    def new_key(self) -> int:
        """A fresh key (never reused)."""
        self._next_key += 1
        return self._next_key

    def add(self, key: int, request: Request, deadline: float) -> Call:
        """Track a command that is about to be sent (set ``wire_id``) or queued."""
        call = self._calls[key] = Call(request, deadline)
        heapq.heappush(self._deadlines, (deadline, key))
        return call

    def queue(self, key: int) -> bool:
        """Put ``key`` in the outbox; False (and forgotten) if the outbox is full."""
        if len(self._outbox) >= self.outbox_size:
            del self._calls[key]
            return False
        self._outbox.append(key)
        return True

    def pop(self, key: int) -> Call | None:
        """Forget a finished command (None if it already timed out or failed)."""
        return self._calls.pop(key, None)

    def drain_outbox(self) -> Iterator[tuple[int, Call]]:
        """Yield queued commands in order, removing them from the outbox (caller sends them)."""
        while self._outbox:
            key = self._outbox.popleft()
            call = self._calls.get(key)
            if call is not None:
                yield key, call

    def requeue_front(self, keys: list[int]) -> None:
        """Commands that were in flight when the socket dropped go first, in their order (the
        outbox may exceed its size by them: they were accepted already)."""
        for key in reversed(keys):
            call = self._calls.get(key)
            if call is not None:
                call.wire_id = 0
                self._outbox.appendleft(key)

    def expire(self, now: float) -> list[tuple[int, Call]]:
        """Remove and return the commands whose deadline is at or before ``now``."""
        expired = []
        while self._deadlines and self._deadlines[0][0] <= now:
            _, key = heapq.heappop(self._deadlines)
            call = self._calls.pop(key, None)
            if call is None:
                continue
            if not call.wire_id:
                self._outbox.remove(key)
            expired.append((key, call))
        return expired

    def next_deadline(self) -> float | None:
        """The earliest deadline of a pending command."""
        while self._deadlines and self._deadlines[0][1] not in self._calls:
            heapq.heappop(self._deadlines)
        return self._deadlines[0][0] if self._deadlines else None

    def clear(self) -> list[int]:
        """Forget everything; returns the keys that were pending, in issue order."""
        keys = sorted(self._calls)
        self._calls.clear()
        self._outbox.clear()
        self._deadlines.clear()
        return keys
