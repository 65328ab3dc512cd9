"""Per-channel subscription state: reference count, stream position, and in-order delivery.

Sans-I/O: methods take wire messages and return what to deliver. The recovery rules follow the
SDKs (ask to ``recover`` only after a ``recoverable: true`` result) and add what the SDKs leave
to the application: every offset is applied once and in order, and any hole in the stream (a
gap, a changed epoch, "not recovered", a resubscribe without recovery) yields a *resync reason*
so the application reloads a snapshot instead of silently showing a partial stream.
"""

from __future__ import annotations

import enum
from collections.abc import Iterator

import attrs

from reactive_aiops.wire import Publication, StreamPosition, SubscribeRequest, SubscribeResult

#: Publications held while a subscribe is in flight (the server should not send any; if it does
#: and overflows this, we resync rather than grow).
MAX_EARLY_PUBLICATIONS = 1000


class ChannelStatus(enum.StrEnum):
    """Where one channel's subscription is."""

    PENDING = "pending"  # wanted, to be sent once connected (or after a retry delay)
    SUBSCRIBING = "subscribing"
    SUBSCRIBED = "subscribed"
    FAILED = "failed"  # refused for good; stays until the last reference goes


@attrs.frozen
class Delivery:
    """Outcome of feeding publications: ``apply`` in order, ``duplicates`` dropped, and a
    ``resync`` reason if the stream has a hole (deliver the publications anyway, after it)."""

    apply: tuple[Publication, ...] = ()
    duplicates: int = 0
    resync: str | None = None


@attrs.define
class Channel:
    """Mutable bookkeeping of one channel, owned by ``ClientProtocol``."""

    name: str
    refs: int = 0
    status: ChannelStatus = ChannelStatus.PENDING
    recoverable: bool = False
    positioned: bool = False
    epoch: str = ""
    offset: int = 0
    ever_subscribed: bool = False
    recovering: bool = False
    command_id: int = 0
    retry_at: float | None = None
    retry_delays: Iterator[float] | None = None
    early: list[Publication] = attrs.field(factory=list)
    early_overflow: bool = False

    @property
    def position(self) -> StreamPosition | None:
        """The last applied position, if the channel is positioned."""
        if not (self.recoverable or self.positioned):
            return None
        return StreamPosition(offset=self.offset, epoch=self.epoch)

    def subscribe_request(self, ask_recoverable: bool) -> SubscribeRequest:
        """The subscribe to send now; marks the channel SUBSCRIBING (caller sets command_id)."""
        self.recovering = self.recoverable and self.ever_subscribed
        self.status = ChannelStatus.SUBSCRIBING
        self.early.clear()
        self.early_overflow = False
        if self.recovering:
            return SubscribeRequest(
                channel=self.name,
                recover=True,
                epoch=self.epoch,
                offset=self.offset,
                recoverable=ask_recoverable,
                positioned=ask_recoverable,
            )
        return SubscribeRequest(
            channel=self.name, recoverable=ask_recoverable, positioned=ask_recoverable
        )

    def subscribed(self, result: SubscribeResult) -> Delivery:
        """Apply a successful subscribe result: recovered publications plus early ones."""
        resync: str | None = None
        was_recovering, had_stream = self.recovering, self.ever_subscribed
        if not had_stream:
            pass  # a first subscribe: the application loads its snapshot anyway
        elif not (was_recovering and result.recoverable):
            resync = "resubscribed without recovery (channel not recoverable)"
        elif self.epoch and result.epoch != self.epoch:
            resync = f"epoch changed from {self.epoch!r} to {result.epoch!r}"
        elif not result.recovered:
            resync = "not recovered"
        self.status = ChannelStatus.SUBSCRIBED
        self.ever_subscribed = True
        self.recovering = False
        self.retry_delays = None
        self.recoverable = result.recoverable
        self.positioned = result.positioned or result.recoverable
        recovered_ok = was_recovering and resync is None
        if not recovered_ok:
            # A fresh stream: start from the server's top; nothing before it is ours to apply.
            self.epoch, self.offset = result.epoch, result.offset
        early, overflow = self.early, self.early_overflow
        self.early, self.early_overflow = [], False
        pubs = (result.publications if recovered_ok else ()) + tuple(early)
        delivery = self.publications(pubs)
        if overflow and resync is None:
            resync = "too many publications before the subscribe reply"
        return Delivery(delivery.apply, delivery.duplicates, resync or delivery.resync)

    def publications(self, pubs: tuple[Publication, ...] | list[Publication]) -> Delivery:
        """Filter publications through the stream position: in order, each offset once."""
        if self.status is ChannelStatus.SUBSCRIBING:
            room = MAX_EARLY_PUBLICATIONS - len(self.early)
            self.early.extend(pubs[:room])
            self.early_overflow = self.early_overflow or len(pubs) > room
            return Delivery()
        if self.status is not ChannelStatus.SUBSCRIBED:
            return Delivery()
        apply: list[Publication] = []
        duplicates = 0
        resync: str | None = None
        for pub in pubs:
            if pub.offset == 0 or not self.positioned:
                apply.append(pub)  # an unpositioned stream has nothing to check
                continue
            if pub.offset <= self.offset:
                duplicates += 1
                continue
            if pub.offset != self.offset + 1 and resync is None:
                resync = f"gap: expected offset {self.offset + 1}, got {pub.offset}"
            self.offset = pub.offset
            apply.append(pub)
        return Delivery(tuple(apply), duplicates, resync)

    def take_next(self, pub: Publication) -> bool:
        """The hot path of :meth:`publications` for one push: True (position advanced) when
        ``pub`` is to be applied with nothing else to report -- the channel is subscribed and
        ``pub`` is unpositioned or exactly the next offset. False means "not that simple": call
        :meth:`publications` (nothing was changed)."""
        if self.status is not ChannelStatus.SUBSCRIBED:
            return False
        offset = pub.offset
        if offset == 0 or not self.positioned:
            return True
        if offset == self.offset + 1:
            self.offset = offset
            return True
        return False

    def connection_lost(self) -> None:
        """The socket dropped: resubscribe (with recovery if possible) after reconnect."""
        if self.status is not ChannelStatus.FAILED:
            self.status = ChannelStatus.PENDING
            self.retry_at = None
            self.early.clear()

    def server_unsubscribed(self) -> None:
        """The server dropped the subscription but allows resubscribing (code >= 2500)."""
        self.status = ChannelStatus.PENDING
        self.retry_at = None
