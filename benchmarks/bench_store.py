"""B1: dispatch throughput of a counter reducer with one selector subscriber.

Three ways to do the same work, side by side:

* ``bare floor``: a plain function reducer and a list of listeners, one of which selects a value,
  compares it with the last one and calls the subscriber on change. Nothing cheaper is possible.
* ``reactive-aiops``: ``create_store`` + ``store.select(...).subscribe(...)``.
* ``python-redux``: its idiomatic ``store.autorun(selector)`` (compiled with Cython upstream).

The selector output changes on every other action, so half the dispatches reach the subscriber.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import attrs

from benchmarks._harness import Row, time_per_op
from reactive_aiops.core import action, create_store


@action(name="bench.increment")
class Increment:
    pass


@attrs.frozen
class CounterState:
    value: int = 0


def counter(state: CounterState | None, act: object) -> CounterState:
    if state is None:
        return CounterState()
    if type(act) is Increment:
        return CounterState(state.value + 1)
    return state


def half(state: CounterState) -> int:
    return state.value // 2


def bare_floor(n: int) -> None:
    state = counter(None, None)
    listeners: list[Callable[[], None]] = []
    received: list[int] = []
    last = half(state)

    def select_listener() -> None:
        nonlocal last
        value = half(state)
        if value is not last and value != last:
            last = value
            received.append(value)

    listeners.append(select_listener)
    inc = Increment()
    for _ in range(n):
        state = counter(state, inc)
        for listener in listeners:
            listener()


def ours(n: int) -> None:
    store = create_store(counter)
    received: list[int] = []
    store.select(half).subscribe(received.append)
    dispatch = store.dispatch
    inc = Increment()
    for _ in range(n):
        dispatch(inc)
    assert store.state.value == n


def python_redux(n: int) -> None:
    from immutable import Immutable
    from redux import BaseAction, InitAction, Store, StoreOptions

    class ReduxState(Immutable):
        value: int

    class ReduxIncrement(BaseAction):
        pass

    def reducer(state: Any, act: Any) -> Any:
        if state is None or isinstance(act, InitAction):
            return ReduxState(value=0)
        if isinstance(act, ReduxIncrement):
            return ReduxState(value=state.value + 1)
        return state

    store = Store(reducer, StoreOptions(auto_init=True))
    received: list[int] = []

    def select_half(s: Any) -> int:
        return int(s.value) // 2

    @store.autorun(select_half)
    def render(value: int) -> None:
        received.append(value)

    inc = ReduxIncrement()
    for _ in range(n):
        store.dispatch(inc)
    store.clean_up()


def run(quick: bool) -> list[Row]:
    ops = 20_000 if quick else 100_000
    repeats = 5 if quick else 15
    group = "B1 dispatch, 1 select subscriber"
    rows = [
        Row(group, "bare floor", "us/dispatch", time_per_op(bare_floor, ops=ops, repeats=repeats)),
        Row(group, "reactive-aiops", "us/dispatch", time_per_op(ours, ops=ops, repeats=repeats)),
    ]
    try:
        samples = time_per_op(python_redux, ops=ops, repeats=repeats)
    except ImportError as exc:  # the bench extra is not installed
        rows.append(Row(group, "python-redux", "us/dispatch", (float("nan"),), note=str(exc)))
    else:
        rows.append(Row(group, "python-redux autorun", "us/dispatch", samples))
    return rows
