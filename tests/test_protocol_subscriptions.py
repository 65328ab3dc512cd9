"""The set of wanted channels: references, retries, and the events replies and pushes yield."""

from __future__ import annotations

from reactive_aiops.core.connection import ResyncRequired
from reactive_aiops.protocol import BackoffPolicy, ChannelStatus, Subscribed, SubscriptionFailed
from reactive_aiops.protocol.events import PublicationReceived
from reactive_aiops.protocol.subscriptions import Subscriptions
from reactive_aiops.wire import Error, Publication, SubscribeResult, UnsubscribePush


def make() -> Subscriptions:
    # one flat window, so the second retry shows the growth
    return Subscriptions(BackoffPolicy(initial=1.0, maximum=4.0, flat=1), rand=lambda: 1.0)


def test_references() -> None:
    subs = make()
    first = subs.acquire("a")
    assert subs.acquire("a") is first
    assert first.refs == 2
    assert subs.release("a") is None
    assert subs.release("a") is first
    assert subs.get("a") is None
    assert subs.release("a") is None


def test_retry_delays_grow_per_channel_and_reset_on_success() -> None:
    subs = make()
    ch = subs.acquire("a")
    assert subs.due(0.0) == [ch]
    ch.subscribe_request(ask_recoverable=False)
    assert subs.failed(ch, Error(100, "internal", temporary=True), 0.0) == []
    assert (ch.status, ch.retry_at, subs.next_retry()) == (ChannelStatus.PENDING, 1.0, 1.0)
    assert subs.due(0.5) == []
    assert subs.due(1.0) == [ch]
    ch.subscribe_request(ask_recoverable=False)
    subs.failed(ch, Error(111, "too many", temporary=True), 1.0)
    assert ch.retry_at == 3.0
    ch.subscribe_request(ask_recoverable=False)
    events = subs.subscribed(ch, SubscribeResult(), 3.0)
    assert events == [Subscribed("a", SubscribeResult(), False)]
    assert ch.retry_delays is None


def test_terminal_errors_and_pushes() -> None:
    subs = make()
    ch = subs.acquire("a")
    ch.subscribe_request(ask_recoverable=False)
    assert subs.failed(ch, Error(103, "permission denied"), 0.0) == [
        SubscriptionFailed("a", 103, "permission denied")
    ]
    assert subs.statuses() == {"a": ChannelStatus.FAILED}
    assert subs.acquire("a").status is ChannelStatus.PENDING
    assert subs.server_unsubscribed("zzz", UnsubscribePush(2500)) == (None, [])
    resub, events = subs.server_unsubscribed("a", UnsubscribePush(2501, "expired"))
    assert (resub, events) == (ch, [])
    assert subs.server_unsubscribed("a", UnsubscribePush(2000, "bye")) == (
        None,
        [SubscriptionFailed("a", 2000, "bye")],
    )


def test_publication_events_in_order_with_resync_first() -> None:
    subs = make()
    ch = subs.acquire("a")
    ch.subscribe_request(ask_recoverable=True)
    subs.subscribed(ch, SubscribeResult(recoverable=True, epoch="E", offset=1), 0.0)
    assert subs.publication("a", Publication(offset=2), 1.0) == [
        PublicationReceived("a", Publication(offset=2))
    ]
    events = subs.publication("a", Publication(offset=5), 2.0)
    assert [type(e) for e in events] == [ResyncRequired, PublicationReceived]
    assert subs.publication("nope", Publication(offset=1), 2.0) == []
    assert subs.position("a") is not None
    assert subs.position("nope") is None
