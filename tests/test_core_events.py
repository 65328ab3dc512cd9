"""The generic event table and the map_events middleware: routing, versions, nothing dropped."""

from __future__ import annotations

from typing import Any

import attrs
import cattrs
import hypothesis.strategies as st
import pytest
from hypothesis import given, settings

from reactive_aiops.core import Batch, action, create_store
from reactive_aiops.core.events import (
    EventMeta,
    EventRoute,
    EventTable,
    MalformedEvent,
    ServerEvent,
    UnknownEvent,
    command_id_of,
    describe_error,
    event_meta,
    map_events,
)


@attrs.frozen
class Point:
    x: int
    y: int = 0


@action(name="test.events.Moved")
class Moved:
    point: Point
    meta: EventMeta | None = None


@action(name="test.events.MovedV2")
class MovedV2:
    x: int
    meta: EventMeta | None = None


def build_v2(raw: dict[str, Any], meta: EventMeta) -> MovedV2:
    if raw.get("x") == 13:
        raise ValueError("x must not be 13")
    return MovedV2(raw["x"], meta)


TABLE = EventTable(
    [
        EventRoute("points", "moved", Point, lambda p, m: Moved(p, m)),
        EventRoute("points:*", "moved", Point, lambda p, m: Moved(p, m)),
        EventRoute("points", "moved", dict, build_v2, version=2),
        EventRoute("*", "ping", int, lambda n, m: Moved(Point(n), m)),
    ]
)


def m(channel: str = "points", event_type: str = "moved", version: int = 1) -> EventMeta:
    return EventMeta(channel, event_type, version, event_id="e", offset=1, command_id="c")


def test_routes_by_channel_pattern_type_and_version() -> None:
    assert TABLE.decode(m(), {"x": 1}) == Moved(Point(1), m())
    assert TABLE.decode(m("points:7"), {"x": 2, "y": 3}) == Moved(Point(2, 3), m("points:7"))
    assert TABLE.decode(m(version=2), {"x": 4}) == MovedV2(4, m(version=2))
    assert TABLE.decode(m("anything", "ping"), 5) == Moved(Point(5), m("anything", "ping"))
    assert len(TABLE.routes) == 4


@pytest.mark.parametrize(
    ("meta", "reason"),
    [
        (m(version=3), "'moved' version 3 (newer than this client) is not supported; known [1, 2]"),
        (
            m("points:7", version=2),
            "'moved' version 2 (newer than this client) is not supported; known [1]",
        ),
        (m("pointsX"), "event type 'moved' is not expected on channel 'pointsX'"),
        (m(event_type="spun"), "unknown event type 'spun'"),
    ],
)
def test_unknown_events_say_why(meta: EventMeta, reason: str) -> None:
    act = TABLE.decode(meta, {"x": 1})
    assert act == UnknownEvent(meta, {"x": 1}, reason)


def test_malformed_events_carry_a_readable_reason() -> None:
    act = TABLE.decode(m(), {"y": "z"})
    assert isinstance(act, MalformedEvent)
    assert "required field missing @ data.x" in act.reason
    assert "data.y" in act.reason
    act = TABLE.decode(m(), [1, 2])
    assert act == MalformedEvent(m(), [1, 2], "expected a JSON object, got list")
    act = TABLE.decode(m(version=2), {"x": 13})
    assert act == MalformedEvent(m(version=2), {"x": 13}, "ValueError: x must not be 13")
    act = TABLE.decode(m(version=2), {})
    assert isinstance(act, MalformedEvent)
    assert act.reason == "KeyError: 'x'"


def test_duplicate_route_is_rejected_and_converter_is_dedicated() -> None:
    route = EventRoute("a", "t", int, lambda n, meta: n)
    with pytest.raises(ValueError, match="duplicate event route"):
        EventTable([route, route])
    assert TABLE.converter is not cattrs.global_converter
    own = cattrs.Converter()
    assert EventTable([route], converter=own).converter is own


def test_event_meta_protocol() -> None:
    @attrs.frozen
    class Command:
        command_id: str
        meta: str = "not an EventMeta"

    assert event_meta(Moved(Point(1), m())) == m()
    assert command_id_of(Moved(Point(1), m())) == "c"
    assert event_meta(Command("c")) is None
    assert command_id_of(Command("c")) is None  # a command's own id is not an echo
    assert command_id_of(ServerEvent(m(), {})) == "c"


def test_map_events_middleware_decodes_single_and_batched_events() -> None:
    seen: list[object] = []

    def reducer(state: Any, act: object) -> Any:
        seen.append(act)
        return state

    store = create_store(reducer, middleware=[map_events(TABLE)])
    seen.clear()
    store.dispatch(ServerEvent(m(), {"x": 1}))
    store.dispatch_batch([ServerEvent(m(event_type="?"), {}), "other", ServerEvent(m(), {})])
    store.dispatch("plain")
    assert seen[0] == Moved(Point(1), m())
    assert isinstance(seen[1], UnknownEvent)
    assert seen[2] == "other"
    assert isinstance(seen[3], MalformedEvent)
    assert seen[4] == "plain"


def test_batch_without_events_passes_unchanged() -> None:
    passed: list[object] = []
    dispatch = map_events(TABLE)(None)(passed.append)  # the middleware never uses its api
    batch = Batch(("a", "b"))
    dispatch(batch)
    assert passed[0] is batch


json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=4),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from("xyz"), inner),
    max_leaves=8,
)


@settings(max_examples=300, deadline=None)
@given(
    st.sampled_from(["points", "points:1", "other"]),
    st.sampled_from(["moved", "ping", "zzz"]),
    st.integers(0, 3),
    json,
)
def test_nothing_raises_and_nothing_is_dropped(
    channel: str, event_type: str, version: int, data: Any
) -> None:
    act = TABLE.decode(m(channel, event_type, version), data)
    assert act is not None
    assert event_meta(act) == m(channel, event_type, version)


@pytest.mark.parametrize("bad", [float("inf"), float("-inf"), float("nan")])
def test_a_non_finite_number_for_an_int_field_is_malformed_not_an_exception(bad: float) -> None:
    # int(inf) raises OverflowError, which no other check caught (found by the property above)
    act = TABLE.decode(m(), {"x": bad})
    assert isinstance(act, MalformedEvent)
    assert event_meta(act) == m()


def test_describe_error_for_plain_exceptions() -> None:
    assert describe_error(KeyError("k")) == "KeyError: 'k'"
