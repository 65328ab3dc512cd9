"""One channel's stream position: recovery decisions and in-order, exactly-once delivery."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from reactive_aiops.protocol.channels import (
    MAX_EARLY_PUBLICATIONS,
    Channel,
    ChannelStatus,
)
from reactive_aiops.wire import Publication, StreamPosition, SubscribeResult


def subscribed(channel: Channel, **result: object) -> tuple[list[int], int, str | None]:
    channel.subscribe_request(ask_recoverable=True)
    delivery = channel.subscribed(SubscribeResult(**result))  # type: ignore[arg-type]
    return [p.offset for p in delivery.apply], delivery.duplicates, delivery.resync


def test_first_subscribe_asks_no_recovery_and_never_resyncs() -> None:
    ch = Channel("a")
    request = ch.subscribe_request(ask_recoverable=False)
    assert (request.recover, request.recoverable, request.positioned) == (False, False, False)
    assert ch.subscribed(SubscribeResult(recoverable=True, epoch="E", offset=9)).resync is None
    assert ch.position == StreamPosition(9, "E")
    assert ch.status is ChannelStatus.SUBSCRIBED


def test_recovery_request_carries_the_last_applied_position() -> None:
    ch = Channel("a")
    subscribed(ch, recoverable=True, epoch="E", offset=3)
    ch.publications([Publication(offset=4)])
    ch.connection_lost()
    request = ch.subscribe_request(ask_recoverable=True)
    assert (request.recover, request.epoch, request.offset) == (True, "E", 4)


def test_recovered_publications_then_early_ones_are_merged_by_offset() -> None:
    ch = Channel("a")
    subscribed(ch, recoverable=True, epoch="E", offset=3)
    ch.connection_lost()
    ch.subscribe_request(ask_recoverable=True)
    # a live publication arrives before the subscribe reply; the reply recovers 4..6
    assert ch.publications([Publication(offset=6), Publication(offset=7)]).apply == ()
    delivery = ch.subscribed(
        SubscribeResult(
            recoverable=True,
            epoch="E",
            offset=3,
            recovered=True,
            publications=tuple(Publication(offset=o) for o in (4, 5, 6)),
        )
    )
    assert [p.offset for p in delivery.apply] == [4, 5, 6, 7]
    assert (delivery.duplicates, delivery.resync) == (1, None)


def test_too_many_early_publications_resync() -> None:
    ch = Channel("a")
    subscribed(ch, recoverable=True, epoch="E", offset=0)
    ch.connection_lost()
    ch.subscribe_request(ask_recoverable=True)
    ch.publications([Publication(offset=o) for o in range(1, MAX_EARLY_PUBLICATIONS + 5)])
    delivery = ch.subscribed(SubscribeResult(recoverable=True, epoch="E", recovered=True))
    assert len(delivery.apply) == MAX_EARLY_PUBLICATIONS
    assert delivery.resync is not None


def test_unpositioned_channels_pass_everything_through() -> None:
    ch = Channel("a")
    subscribed(ch)
    delivery = ch.publications([Publication(data=1), Publication(data=1), Publication(offset=3)])
    assert len(delivery.apply) == 3
    assert ch.position is None


def test_a_failed_channel_ignores_publications_and_stays_failed_on_loss() -> None:
    ch = Channel("a")
    ch.status = ChannelStatus.FAILED
    assert ch.publications([Publication(offset=1)]).apply == ()
    ch.connection_lost()
    assert ch.status is ChannelStatus.FAILED


@given(
    epoch_changes=st.booleans(),
    recovered=st.booleans(),
    recoverable=st.booleans(),
)
def test_resubscribe_resyncs_unless_cleanly_recovered(
    epoch_changes: bool, recovered: bool, recoverable: bool
) -> None:
    ch = Channel("a")
    subscribed(ch, recoverable=True, epoch="E", offset=5)
    ch.connection_lost()
    _, _, resync = subscribed(
        ch,
        recoverable=recoverable,
        epoch="F" if epoch_changes else "E",
        offset=5,
        recovered=recovered,
    )
    clean = recoverable and not epoch_changes and recovered
    assert (resync is None) == clean
