"""The connection slice: pure reducer over connection facts."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from reactive_aiops.core import create_store
from reactive_aiops.core.actions import action_type
from reactive_aiops.core.connection import (
    Connected,
    Connecting,
    ConnectionFailed,
    ConnectionLost,
    ConnectionState,
    Disconnected,
    DuplicatesDropped,
    HealthSampled,
    LatencyMeasured,
    ResyncRequired,
    Status,
    connection_reducer,
    is_connected,
    message_age,
    retry_in,
)
from reactive_aiops.core.dedupe import DuplicateDropped
from reactive_aiops.core.events import EventMeta


def fold(*actions: object) -> ConnectionState:
    state = connection_reducer(None, object())
    for act in actions:
        state = connection_reducer(state, act)
    return state


def test_initial_state_and_identity_for_unknown_actions() -> None:
    state = connection_reducer(None, object())
    assert state == ConnectionState()
    assert state.status is Status.DISCONNECTED
    assert connection_reducer(state, "something else") is state


def test_lifecycle() -> None:
    state = fold(Connecting(1.0), Connected(1.5, "c1"))
    assert is_connected(state)
    assert (state.client_id, state.since, state.health.last_message_at) == ("c1", 1.5, 1.5)
    state = connection_reducer(state, ConnectionLost(9.0, 3001, "shutdown", 1, 9.4))
    assert (state.status, state.attempt, state.next_retry_at) == (Status.RECONNECTING, 1, 9.4)
    assert (state.code, state.reason, state.health.reconnects) == (3001, "shutdown", 1)
    assert retry_in(state, 9.1) == pytest.approx(0.3)
    assert retry_in(state, 10.0) == 0.0
    state = connection_reducer(state, Connecting(9.4, 1))
    assert (state.status, state.attempt, state.next_retry_at) == (Status.CONNECTING, 1, None)
    assert retry_in(state, 9.5) is None
    state = connection_reducer(state, ConnectionFailed(9.6, 3500, "invalid token"))
    assert (state.status, state.code, state.reason) == (Status.FAILED, 3500, "invalid token")
    state = connection_reducer(state, Disconnected(10.0))
    assert (state.status, state.reason) == (Status.DISCONNECTED, "disconnect called")


def test_health() -> None:
    state = fold(
        LatencyMeasured(1.0, 0.100),
        LatencyMeasured(2.0, 0.020),
        DuplicatesDropped("a", 2),
        DuplicatesDropped("b"),
        ResyncRequired("a", "gap"),
        ResyncRequired("a", "epoch changed"),
        ResyncRequired("b", "not recovered"),
        HealthSampled(3.0, 2.5, 12.0),
    )
    health = state.health
    assert health.latency == pytest.approx(0.1 + 0.125 * (0.02 - 0.1))
    assert health.latency_last == 0.020
    assert (health.duplicates_dropped_total, health.resyncs) == (3, 3)
    assert health.duplicates_dropped == 3  # the former name reads the same figure
    assert dict(state.resyncs) == {"a": 2, "b": 1}
    assert (health.last_message_at, health.messages_per_second) == (2.5, 12.0)
    assert message_age(state, 4.0) == 1.5
    assert message_age(ConnectionState(), 4.0) is None
    assert connection_reducer(state, HealthSampled(4.0, 2.5, 12.0)) is state
    for gone in (
        ConnectionLost(5.0, 1006, "x", 1, 6.0),
        ConnectionFailed(5.0, 3500, "x"),
        Disconnected(5.0),
    ):
        assert connection_reducer(state, gone).health.messages_per_second == 0.0


def test_actions_have_stable_names_and_work_in_a_store() -> None:
    assert action_type(ResyncRequired("a", "gap")) == "connection.resync_required"
    store = create_store(connection_reducer)
    store.dispatch(Connecting(1.0))
    store.dispatch(Connected(2.0, "x"))
    assert store.state.status is Status.CONNECTED


actions = st.one_of(
    st.builds(Connecting, st.floats(0, 100), st.integers(0, 5)),
    st.builds(Connected, st.floats(0, 100), st.text(max_size=3)),
    st.builds(
        ConnectionLost,
        st.floats(0, 100),
        st.integers(1000, 5000),
        st.text(max_size=3),
        st.integers(1, 9),
        st.floats(0, 200),
    ),
    st.builds(ConnectionFailed, st.floats(0, 100), st.integers(0, 5000), st.text(max_size=3)),
    st.builds(Disconnected, st.floats(0, 100)),
    st.builds(LatencyMeasured, st.floats(0, 100), st.floats(0, 5)),
    st.builds(DuplicatesDropped, st.sampled_from("ab"), st.integers(1, 3)),
    st.builds(
        DuplicateDropped,
        st.builds(EventMeta, st.sampled_from("ab"), st.just("t")),
        st.sampled_from(["duplicate_offset", "duplicate_id", "too_old"]),
    ),
    st.builds(ResyncRequired, st.sampled_from("ab"), st.text(max_size=3)),
)


@given(st.lists(actions, max_size=30))
def test_counters_only_grow_and_match_the_actions(acts: list[object]) -> None:
    state = fold(*acts)
    h = state.health
    assert h.reconnects == sum(isinstance(a, ConnectionLost) for a in acts)
    assert (
        h.resyncs == sum(isinstance(a, ResyncRequired) for a in acts) == sum(state.resyncs.values())
    )
    assert h.duplicates_dropped_total == sum(
        a.count for a in acts if isinstance(a, DuplicatesDropped)
    ) + sum(isinstance(a, DuplicateDropped) for a in acts)
    if acts and isinstance(acts[-1], ConnectionFailed):
        assert state.status is Status.FAILED
