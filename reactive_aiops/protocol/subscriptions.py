"""All wanted channels of a client: references, subscribe retries, and the events their replies
and pushes produce. Sans-I/O: ``ClientProtocol`` sends the subscribe/unsubscribe commands."""

from __future__ import annotations

from collections.abc import Callable

from reactive_aiops.core.connection import DuplicatesDropped, ResyncRequired
from reactive_aiops.protocol.backoff import BackoffPolicy
from reactive_aiops.protocol.channels import Channel, ChannelStatus, Delivery
from reactive_aiops.protocol.events import (
    Event,
    PublicationReceived,
    Subscribed,
    SubscriptionFailed,
)
from reactive_aiops.wire import (
    Error,
    Publication,
    StreamPosition,
    SubscribeResult,
    UnsubscribePush,
    is_resubscribable,
    is_retryable_error,
)


class Subscriptions:
    """Channels by name. Methods return the events to emit, in order."""

    def __init__(self, backoff: BackoffPolicy, rand: Callable[[], float]) -> None:
        self._backoff = backoff
        self._rand = rand
        self._channels: dict[str, Channel] = {}
        #: the channels by name, to read (the per-event path looks its channel up here)
        self.channels = self._channels

    def get(self, name: str) -> Channel | None:
        """The channel, if wanted."""
        return self._channels.get(name)

    def acquire(self, name: str) -> Channel:
        """Add a reference (creating the channel); a FAILED channel becomes PENDING again."""
        channel = self._channels.get(name)
        if channel is None:
            channel = self._channels[name] = Channel(name)
        channel.refs += 1
        if channel.status is ChannelStatus.FAILED:
            channel.status = ChannelStatus.PENDING
        return channel

    def release(self, name: str) -> Channel | None:
        """Drop a reference; returns the channel (now forgotten) if it was the last one."""
        channel = self._channels.get(name)
        if channel is None:
            return None
        channel.refs -= 1
        if channel.refs > 0:
            return None
        del self._channels[name]
        return channel

    def statuses(self) -> dict[str, ChannelStatus]:
        """Wanted channels and their status."""
        return {name: c.status for name, c in self._channels.items()}

    def position(self, name: str) -> StreamPosition | None:
        """Last applied position of ``name`` (None if unknown or unpositioned)."""
        channel = self._channels.get(name)
        return None if channel is None else channel.position

    def due(self, now: float) -> list[Channel]:
        """PENDING channels to subscribe now (no retry delay, or the delay is over)."""
        return [
            c
            for c in self._channels.values()
            if c.status is ChannelStatus.PENDING and (c.retry_at is None or now >= c.retry_at)
        ]

    def next_retry(self) -> float | None:
        """When the next delayed subscribe retry is due."""
        times = [
            c.retry_at
            for c in self._channels.values()
            if c.status is ChannelStatus.PENDING and c.retry_at is not None
        ]
        return min(times) if times else None

    def connection_lost(self) -> None:
        """Every channel waits for the next connection (keeping its position)."""
        for channel in self._channels.values():
            channel.connection_lost()
            channel.command_id = 0

    def failed(self, channel: Channel, error: Error, now: float) -> list[Event]:
        """A subscribe error reply: retry later (temporary) or give the channel up."""
        if is_retryable_error(error.code, error.temporary):
            if channel.retry_delays is None:
                channel.retry_delays = self._backoff.delays(self._rand)
            channel.status = ChannelStatus.PENDING
            channel.retry_at = now + next(channel.retry_delays)
            return []
        channel.status = ChannelStatus.FAILED
        return [SubscriptionFailed(channel.name, error.code, error.message)]

    def subscribed(self, channel: Channel, result: SubscribeResult, now: float) -> list[Event]:
        """A subscribe result: ``Subscribed``, then a resync if needed, then publications."""
        delivery = channel.subscribed(result)
        recovered = result.recovered and delivery.resync is None
        return [Subscribed(channel.name, result, recovered), *_events(channel.name, delivery, now)]

    def publication(self, name: str, publication: Publication, now: float) -> list[Event]:
        """A publication push, filtered through the channel's position."""
        channel = self._channels.get(name)
        if channel is None:
            return []
        return _events(name, channel.publications((publication,)), now)

    def server_unsubscribed(
        self, name: str, push: UnsubscribePush
    ) -> tuple[Channel | None, list[Event]]:
        """An unsubscribe push: returns the channel to resubscribe (code >= 2500) or the
        ``SubscriptionFailed`` event (code < 2500)."""
        channel = self._channels.get(name)
        if channel is None:
            return None, []
        if is_resubscribable(push.code):
            channel.server_unsubscribed()
            return channel, []
        channel.status = ChannelStatus.FAILED
        return None, [SubscriptionFailed(name, push.code, push.reason)]


def _events(name: str, delivery: Delivery, now: float) -> list[Event]:
    events: list[Event] = []
    if delivery.resync is not None:
        events.append(ResyncRequired(name, delivery.resync, now))
    if delivery.duplicates:
        events.append(DuplicatesDropped(name, delivery.duplicates))
    events.extend(PublicationReceived(name, pub) for pub in delivery.apply)
    return events
