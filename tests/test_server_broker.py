"""Broker: offsets, epochs, bounded history, expiry, and the recovery boundary table."""

from __future__ import annotations

import itertools

import pytest

from reactive_aiops.server.broker import Broker, Publication


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Sink:
    def __init__(self) -> None:
        self.got: list[tuple[int, str]] = []

    def deliver(self, publication: Publication, epoch: str) -> None:
        self.got.append((publication.offset, epoch))


def make(size: int = 5, ttl: float = 60.0, stream_ttl: float = 3600.0) -> tuple[Broker, Clock]:
    clock = Clock()
    epochs = (f"ep{n}" for n in itertools.count(1))
    broker = Broker(history_size=size, history_ttl=ttl, stream_ttl=stream_ttl, clock=clock,
                    new_epoch=lambda: next(epochs))
    return broker, clock


def publish(broker: Broker, n: int, channel: str = "c") -> None:
    for i in range(n):
        broker.publish(channel, {"n": i})


def test_offsets_are_consecutive_per_channel_and_epoch_is_stable() -> None:
    broker, _ = make()
    offsets = [broker.publish("a", {}).offset for _ in range(3)]
    assert offsets == [1, 2, 3]
    assert broker.publish("b", {}).offset == 1
    assert broker.position("a") == (3, "ep1")
    assert broker.position("b") == (1, "ep2")


def test_history_is_bounded_by_size_and_age() -> None:
    broker, clock = make(size=3, ttl=10.0)
    publish(broker, 5)
    assert [p.offset for p in broker.history("c")] == [3, 4, 5]
    clock.now += 5
    publish(broker, 1)
    clock.now += 6  # offsets 3..5 are now 11 s old, 6 is 6 s old
    assert [p.offset for p in broker.history("c")] == [6]
    assert broker.position("c") == (6, "ep1")


# Recovery boundary table: (name, publications, history size, setup, request offset, epoch,
# expected recovered, expected recovered offsets, expected reply offset)
@pytest.mark.parametrize(
    ("row", "published", "offset", "epoch", "recovered", "offsets", "reply_offset"),
    [
        ("empty stream", 0, 0, "ep1", True, [], 0),
        ("position at the top", 4, 4, "ep1", True, [], 4),
        ("inside the retained history", 8, 5, "ep1", True, [6, 7, 8], 5),
        ("whole retained history exactly", 8, 3, "ep1", True, [4, 5, 6, 7, 8], 3),
        ("older than the retained history", 8, 2, "ep1", False, [], 8),
        ("ahead of the top", 4, 9, "ep1", False, [], 4),
        ("wrong epoch", 4, 2, "other", False, [], 4),
        ("empty epoch is not checked", 4, 2, "", True, [3, 4], 2),
    ],
)
def test_recovery_boundary_table(row: str, published: int, offset: int, epoch: str,
                                 recovered: bool, offsets: list[int], reply_offset: int) -> None:
    broker, _ = make(size=5)
    broker.position("c")  # the stream exists (epoch ep1) even before any publication
    publish(broker, published)
    result = broker.subscribe("c", Sink(), recover=True, offset=offset, epoch=epoch)
    assert result.recovered is recovered, row
    assert [p.offset for p in result.publications] == offsets, row
    assert result.offset == reply_offset, row
    assert result.epoch == "ep1"
    assert result.was_recovering


def test_recovery_of_an_expired_stream_is_refused_with_a_new_epoch() -> None:
    broker, clock = make(size=5, stream_ttl=100.0)
    publish(broker, 3)
    clock.now += 101  # no publication for longer than stream_ttl: the stream expires
    result = broker.subscribe("c", Sink(), recover=True, offset=3, epoch="ep1")
    assert (result.recovered, result.publications, result.offset, result.epoch) == (
        False, (), 0, "ep2")
    assert broker.publish("c", {}).offset == 1


def test_recovery_of_a_position_whose_history_aged_out_is_refused() -> None:
    broker, clock = make(size=5, ttl=10.0)
    publish(broker, 3)
    clock.now += 11
    result = broker.subscribe("c", Sink(), recover=True, offset=1, epoch="ep1")
    assert not result.recovered
    assert result.offset == 3
    # but a client already at the top lost nothing
    assert broker.subscribe("c", Sink(), recover=True, offset=3, epoch="ep1").recovered


def test_subscribe_registers_atomically_with_the_history_read() -> None:
    broker, _ = make(size=100)
    publish(broker, 5)
    sink = Sink()
    result = broker.subscribe("c", sink, recover=True, offset=2, epoch="ep1")
    publish(broker, 2)
    recovered = [p.offset for p in result.publications]
    live = [offset for offset, _ in sink.got]
    assert recovered + live == [3, 4, 5, 6, 7]  # none lost, none duplicated


def test_unsubscribe_stops_delivery_and_a_subscriber_may_leave_during_delivery() -> None:
    broker, _ = make()

    class LeavesOnFirst(Sink):
        def deliver(self, publication: Publication, epoch: str) -> None:
            super().deliver(publication, epoch)
            broker.unsubscribe("c", self)

    leaver, stayer = LeavesOnFirst(), Sink()
    broker.subscribe("c", leaver)
    broker.subscribe("c", stayer)
    publish(broker, 2)
    assert [o for o, _ in leaver.got] == [1]
    assert [o for o, _ in stayer.got] == [1, 2]
    broker.unsubscribe("c", stayer)
    assert broker.subscriber_count("c") == 0
    broker.unsubscribe("nope", stayer)  # no-op


def test_bad_configuration_is_refused() -> None:
    with pytest.raises(ValueError, match="stream_ttl"):
        Broker(stream_ttl=0)


def test_empty_streams_are_forgotten_with_their_last_subscriber() -> None:
    broker, _ = make()
    sink = Sink()
    broker.subscribe("detectors:made-up", sink)
    assert broker.peek("detectors:made-up") == (0, "ep1", ())
    broker.unsubscribe("detectors:made-up", sink)
    assert broker.peek("detectors:made-up") is None
    assert broker.channel_count == 0
    broker.subscribe("c", sink)
    broker.publish("c", {})
    broker.unsubscribe("c", sink)
    assert broker.peek("c") is not None  # a stream with publications keeps its position


def test_a_quiet_channel_keeps_its_epoch_when_its_last_subscriber_leaves() -> None:
    # A reconnecting client must be able to recover a channel that never had a publication.
    broker, _clock = make()
    first = Sink()
    result = broker.subscribe("health", first)
    broker.unsubscribe("health", first)
    assert broker.channel_count == 0  # still forgotten: made-up names cannot grow the broker
    again = broker.subscribe("health", Sink(), recover=True, offset=0, epoch=result.epoch)
    assert again.recovered
    assert again.epoch == result.epoch
