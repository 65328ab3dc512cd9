"""ChannelGates: the hold/merge logic of a loading channel (pure, property-tested)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from reactive_aiops.net.resync import APPLY, DROP, HOLD, ChannelGates
from reactive_aiops.wire import Publication


def pub(offset: int) -> Publication:
    return Publication(data={"n": offset}, offset=offset)


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[int, int, int, int, int, int]:
    """(start, top, position, arrived, max_held, repeats): the subscription starts at ``start``;
    the live stream runs to ``top``; the load is read at ``position`` (anywhere from start to
    top: ahead of what was delivered too, when the fan-out lags) and its reply arrives after
    ``arrived`` live publications; ``repeats`` of the held ones come twice."""
    start = draw(st.integers(0, 50))
    top = draw(st.integers(start, start + 60))
    position = draw(st.integers(start, top))
    arrived = draw(st.integers(0, top - start))
    max_held = draw(st.integers(1, 80))
    repeats = draw(st.integers(0, 3))
    return start, top, position, arrived, max_held, repeats


@given(scenarios())
def test_the_store_sees_one_contiguous_ordered_sequence_after_the_load(
    scenario: tuple[int, int, int, int, int, int],
) -> None:
    start, top, position, arrived, max_held, repeats = scenario
    gates = ChannelGates(max_held=max_held)
    gates.hold("c", "E")
    live = [pub(o) for o in range(start + 1, top + 1)]
    early, late = live[:arrived], live[arrived:]
    for p in early + early[:repeats]:  # a repeat: the same offset offered again
        assert gates.offer("c", p, "E") == HOLD
    if not gates.covers("c", position):
        # held ones were discarded on overflow: the bridge takes the load again, later
        position = max(position, start + arrived)
        assert gates.covers("c", position)
    applied, dropped = gates.release("c", "E", position)
    seen = [p.offset for p in applied]
    for p in late:
        outcome = gates.offer("c", p, "E")
        if outcome == APPLY:
            seen.append(p.offset)
        else:
            assert outcome == DROP
            dropped += 1
    # after the load: each offset once, in order
    assert seen == list(range(position + 1, top + 1))
    # the gate is gone once the stream passed the load (until then a floor drops the rest)
    assert bool(gates.active) == (top == position and position > 0)
    if len(early) + repeats <= max_held:
        assert dropped == (position - start) + min(repeats, len(early))


def test_a_new_epoch_while_loading_drops_what_was_held_of_the_old_one() -> None:
    gates = ChannelGates()
    gates.hold("c", "old")
    for o in (5, 6, 7):
        gates.offer("c", pub(o), "old")
    gates.hold("c", "new")  # resync: the stream restarted
    assert gates.loading("c")
    assert gates.offer("c", pub(1), "new") == HOLD
    assert gates.offer("c", pub(2), "new") == HOLD
    applied, dropped = gates.release("c", "new", 1)
    assert [p.offset for p in applied] == [2]
    assert dropped == 1


def test_a_publication_of_a_new_epoch_resets_the_hold_itself() -> None:
    gates = ChannelGates()
    gates.hold("c", "old")
    gates.offer("c", pub(9), "old")
    assert gates.offer("c", pub(1), "new") == HOLD
    applied, _ = gates.release("c", "new", 0)
    assert [p.offset for p in applied] == [1]


def test_a_floor_of_a_dead_epoch_lets_the_new_stream_through() -> None:
    gates = ChannelGates()
    gates.hold("c", "E")
    assert gates.release("c", "E", 10) == ([], 0)
    assert gates.offer("c", pub(3), "E") == DROP
    assert gates.offer("c", pub(1), "F") == APPLY
    assert not gates.active


def test_a_load_without_position_applies_everything_held_in_offset_order_once() -> None:
    gates = ChannelGates()
    gates.hold("c", "E")
    for o in (3, 1, 2, 2):
        gates.offer("c", pub(o), "E")
    applied, dropped = gates.release("c", "E", None)
    assert [p.offset for p in applied] == [1, 2, 3]
    assert dropped == 1
    assert not gates.active


def test_ungated_channels_apply_and_loading_is_reported() -> None:
    gates = ChannelGates()
    assert gates.offer("x", pub(1), "E") == APPLY
    gates.hold("a", "E")
    assert gates.loading_channels == {"a"}
    gates.forget("a")
    assert not gates.loading("a")
    with pytest.raises(ValueError, match="max_held"):
        ChannelGates(max_held=0)
