"""In-process channel broker: offsets, epochs, bounded history and race-free recovery.

Every channel is a stream: publications get consecutive offsets starting at 1 and the stream has an
epoch (a random token fixed for the stream's life). History keeps at most ``history_size``
publications, none older than ``history_ttl``; a stream with no publication for ``stream_ttl``
expires and starts again at offset 0 with a new epoch, so clients can tell their position is void.

Subscribing reads history and registers the subscriber in one synchronous step. The broker is only
ever touched from one thread (the event loop), so no publication can fall between the history read
and the registration: nothing is lost and nothing is delivered twice. Recovery follows the Go
server (``isStreamRecovered``): recovered iff the epoch matches (an empty requested epoch is not
checked) and history holds every publication after the requested offset, or the offset is the top.
"""

from __future__ import annotations

import secrets
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable
from typing import Any, Protocol

import attrs

Clock = Callable[[], float]


class Publication:
    """One publication; ``data`` is JSON-compatible. ``frame`` caches its encoded push per channel
    (set by whoever encodes it first, so a fan-out to N clients encodes once)."""

    __slots__ = ("channel", "data", "frame", "offset", "time")

    def __init__(self, channel: str, offset: int, data: Any, time: float) -> None:
        self.channel = channel
        self.offset = offset
        self.data = data
        self.time = time
        self.frame: str | None = None

    def __repr__(self) -> str:
        return f"Publication({self.channel!r}, offset={self.offset})"


class Subscriber(Protocol):
    """Receives publications of the channels it subscribed; must not raise."""

    def deliver(self, publication: Publication, epoch: str) -> None: ...


@attrs.frozen
class SubscribeResult:
    """Stream position after subscribing, and what recovery found.

    ``offset`` is the client's offset when recovered (the client advances it while processing
    ``publications``), otherwise the current top; ``publications`` is empty unless recovered.
    """

    epoch: str
    offset: int
    recovered: bool
    was_recovering: bool
    publications: tuple[Publication, ...] = ()


def recover_position(stream_epoch: str, top: int, retained: Iterable[Publication], *,
                     recover: bool, offset: int, epoch: str) -> SubscribeResult:
    """Where a subscriber starts, given the stream's epoch, top and retained history.

    Recovered iff the epoch matches (an empty requested epoch is not checked) and the history
    holds every publication after ``offset``, or ``offset`` is the top. Shared by both engines.
    """
    if not recover:
        return SubscribeResult(stream_epoch, top, False, False)
    epoch_ok = epoch == "" or epoch == stream_epoch
    missed = [p for p in retained if p.offset > offset]
    if missed:
        recovered = epoch_ok and missed[0].offset == offset + 1
    else:
        recovered = epoch_ok and offset == top
    if not recovered:
        return SubscribeResult(stream_epoch, top, False, True)
    return SubscribeResult(stream_epoch, offset, True, True, tuple(missed))


class _Stream:
    __slots__ = ("epoch", "history", "last_publish", "subscribers", "top")

    def __init__(self, epoch: str, now: float) -> None:
        self.epoch = epoch
        self.top = 0
        self.history: deque[Publication] = deque()
        self.last_publish = now
        self.subscribers: dict[int, Subscriber] = {}


#: empty streams whose epoch is remembered after their last subscriber left
_MAX_IDLE_EPOCHS = 4096


def _random_epoch() -> str:
    return secrets.token_hex(4)


class Broker:
    """Channels with history; publish, subscribe with recovery, unsubscribe."""

    def __init__(
        self,
        *,
        history_size: int = 1000,
        history_ttl: float = 300.0,
        stream_ttl: float = 86400.0,
        clock: Clock = time.time,
        new_epoch: Callable[[], str] = _random_epoch,
    ) -> None:
        if history_size < 0 or history_ttl < 0 or stream_ttl <= 0:
            raise ValueError("history_size and history_ttl must be >= 0, stream_ttl > 0")
        self._history_size = history_size
        self._history_ttl = history_ttl
        self._stream_ttl = stream_ttl
        self._clock = clock
        self._new_epoch = new_epoch
        self._streams: dict[str, _Stream] = {}
        # Epochs of empty streams forgotten with their last subscriber. Reusing one when the
        # channel comes back is truthful (nothing was ever published on it) and spares a client
        # that reconnects to a quiet channel a needless resync. Bounded, oldest forgotten first.
        self._idle_epochs: OrderedDict[str, str] = OrderedDict()
        self.published = 0

    def _stream(self, channel: str, now: float) -> _Stream:
        stream = self._streams.get(channel)
        if stream is None:
            epoch = self._idle_epochs.pop(channel, None) or self._new_epoch()
            stream = self._streams[channel] = _Stream(epoch, now)
        elif now - stream.last_publish > self._stream_ttl and stream.top:
            # Expired: the old positions mean nothing any more; a new epoch says so.
            stream.epoch = self._new_epoch()
            stream.top = 0
            stream.history.clear()
            stream.last_publish = now
        self._trim(stream, now)
        return stream

    def _trim(self, stream: _Stream, now: float) -> None:
        history = stream.history
        while len(history) > self._history_size:
            history.popleft()
        horizon = now - self._history_ttl
        while history and history[0].time < horizon:
            history.popleft()

    def publish(self, channel: str, data: Any) -> Publication:
        """Append ``data`` to ``channel`` and deliver it to the channel's subscribers now."""
        now = self._clock()
        stream = self._stream(channel, now)
        stream.top += 1
        pub = Publication(channel, stream.top, data, now)
        stream.last_publish = now
        if self._history_size and self._history_ttl:
            stream.history.append(pub)
            if len(stream.history) > self._history_size:
                stream.history.popleft()
        self.published += 1
        epoch = stream.epoch
        # Snapshot: a subscriber may unsubscribe itself (slow consumer) while being delivered to.
        for sub in tuple(stream.subscribers.values()):
            sub.deliver(pub, epoch)
        return pub

    def position(self, channel: str) -> tuple[int, str]:
        """Current ``(top offset, epoch)`` of ``channel`` (creating the stream if needed)."""
        stream = self._stream(channel, self._clock())
        return stream.top, stream.epoch

    def history(self, channel: str) -> tuple[Publication, ...]:
        """The retained publications of ``channel``, oldest first."""
        return tuple(self._stream(channel, self._clock()).history)

    def subscribe(
        self,
        channel: str,
        subscriber: Subscriber,
        *,
        recover: bool = False,
        offset: int = 0,
        epoch: str = "",
    ) -> SubscribeResult:
        """Register ``subscriber`` and, if ``recover``, return what it missed since ``offset``."""
        stream = self._stream(channel, self._clock())
        stream.subscribers[id(subscriber)] = subscriber
        return recover_position(stream.epoch, stream.top, stream.history, recover=recover,
                                offset=offset, epoch=epoch)

    def unsubscribe(self, channel: str, subscriber: Subscriber) -> None:
        """Stop delivering ``channel`` to ``subscriber`` (no-op if it was not subscribed).

        A stream that never had a publication is forgotten with its last subscriber, so clients
        subscribing to made-up channel names cannot grow the broker without bound.
        """
        stream = self._streams.get(channel)
        if stream is not None:
            stream.subscribers.pop(id(subscriber), None)
            if not stream.subscribers and stream.top == 0:
                del self._streams[channel]
                self._idle_epochs[channel] = stream.epoch
                if len(self._idle_epochs) > _MAX_IDLE_EPOCHS:
                    self._idle_epochs.popitem(last=False)

    def peek(self, channel: str) -> tuple[int, str, tuple[Publication, ...]] | None:
        """``(top, epoch, history)`` of an existing stream, or None; never creates one."""
        if channel not in self._streams:
            return None
        stream = self._stream(channel, self._clock())
        return stream.top, stream.epoch, tuple(stream.history)

    @property
    def channel_count(self) -> int:
        """How many streams the broker holds."""
        return len(self._streams)

    def subscriber_count(self, channel: str) -> int:
        """How many subscribers ``channel`` has right now."""
        stream = self._streams.get(channel)
        return 0 if stream is None else len(stream.subscribers)
