"""Routing actions to the slices that declared them (``core.routing``, ``combine_reducers``).

The declarations of the live store's slice reducers are checked against their contract on
generated states and actions: an action outside a slice's declared types must leave that slice
*identical*, so skipping the call is unobservable. The routed live reducer is also compared with
an unrouted twin, step by step.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_core_batching import LIVE, canon

from reactive_aiops.aiops.live_store import create_live_reducer
from reactive_aiops.aiops.reducers import anomalies_reducer, detectors_reducer, health_reducer
from reactive_aiops.aiops.state import AppState, make_root_reducer
from reactive_aiops.core import Init, ReplaceReducer, combine_reducers, create_store
from reactive_aiops.core.connection import connection_reducer
from reactive_aiops.core.dedupe import dedupe_stats_reducer
from reactive_aiops.core.optimistic import optimistic
from reactive_aiops.core.routing import ActionRouter, handled_types, handles

Reducer = Callable[[Any, Any], Any]

#: The live store's slices by AppState field, each with a declaration.
LIVE_SLICES: dict[str, Reducer] = {
    "detectors": detectors_reducer,
    "anomalies": anomalies_reducer,
    "health": health_reducer,
    "connection": connection_reducer,
    "dedupe": dedupe_stats_reducer,
}


@attrs.frozen
class Ping:
    pass


@attrs.frozen
class LoudPing(Ping):
    pass


@attrs.frozen
class Other:
    pass


def test_handles_records_the_types_and_refuses_non_classes() -> None:
    @handles(Ping)
    def reducer(state: Any, act: Any) -> Any:
        return state

    assert handled_types(reducer) == (Ping,)
    assert handled_types(lambda s, a: s) is None
    with pytest.raises(TypeError, match="action classes"):
        handles("Ping")  # type: ignore[arg-type]


def test_router_plans_by_class_with_subclasses_and_always_for_init() -> None:
    @handles(Ping)
    def pings(state: Any, act: Any) -> Any:
        return state

    def everything(state: Any, act: Any) -> Any:
        return state

    router = ActionRouter([pings, everything], lambda reducer: reducer)
    assert router.plan(Ping) == (pings, everything)
    assert router.plan(LoudPing) == (pings, everything)  # a subclass is an instance of the type
    assert router.plan(Other) == (everything,)
    assert router.plan(Init) == (pings, everything)
    assert router.plan(ReplaceReducer) == (pings, everything)
    assert router.plan_many({Other, Ping}) == (pings, everything)
    assert router.plans[Other] == (everything,)  # the cache a hot path reads first


@pytest.mark.parametrize("with_class", [True, False])
def test_a_declared_slice_is_called_only_for_its_actions(with_class: bool) -> None:
    calls: list[object] = []

    @handles(Ping)
    def counted(state: int | None, act: Any) -> int:
        calls.append(act)
        return (state or 0) + (1 if isinstance(act, Ping) else 0)

    def others(state: int | None, act: Any) -> int:
        return (state or 0) + (1 if isinstance(act, Other) else 0)

    @attrs.frozen
    class Root:
        counted: int = 0
        others: int = 0

    root = (
        combine_reducers(Root, counted=counted, others=others)
        if with_class
        else combine_reducers(counted=counted, others=others)
    )
    store = create_store(root)
    assert calls == [Init()]
    store.dispatch(Other())
    store.dispatch(Other())
    store.dispatch_batch([Other(), Other()])
    assert calls == [Init()]  # never called for what it does not handle
    assert store.state.others == 4
    store.dispatch(LoudPing())
    store.dispatch_batch([Other(), Ping()])
    assert store.state.counted == 2
    assert store.state.others == 5
    assert calls[1:] == [LoudPing(), Other(), Ping()]  # a batch it is in reaches it whole


# -- the live slices keep their declarations' contract ------------------------------------------


@settings(max_examples=300, deadline=None)
@given(st.lists(LIVE, max_size=25), st.lists(LIVE, min_size=1, max_size=25))
def test_each_live_slice_is_identical_under_every_action_it_does_not_declare(
    prefix: list[object], actions: list[object]
) -> None:
    reducer = create_live_reducer(command_ttl=10.0, max_pending=2)
    state: AppState = reducer(None, Init())
    for act in prefix:
        state = reducer(state, act)
    for name, slice_reducer in LIVE_SLICES.items():
        declared = handled_types(slice_reducer)
        assert declared is not None, name
        held = getattr(state, name)
        for act in actions:
            if not isinstance(act, declared):
                assert slice_reducer(held, act) is held, (name, act)
            held = slice_reducer(held, act)


def _unrouted(reducer: Reducer) -> Reducer:
    def plain(state: Any, act: Any) -> Any:
        return reducer(state, act)

    return plain


@settings(max_examples=300, deadline=None)
@given(st.lists(LIVE, max_size=60))
def test_the_routed_live_reducer_equals_an_unrouted_one(actions: list[object]) -> None:
    routed = create_live_reducer(command_ttl=10.0, max_pending=2)
    unrouted = optimistic(
        make_root_reducer(**{name: _unrouted(r) for name, r in LIVE_SLICES.items()}),
        ttl=10.0,
        max_pending=2,
    )
    a = routed(None, Init())
    b = unrouted(None, Init())
    assert canon(a) == canon(b)
    for act in actions:
        a = routed(a, act)
        b = unrouted(b, act)
        assert canon(a) == canon(b), act
