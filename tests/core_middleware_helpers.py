"""A tiny order-sensitive domain shared by the middleware tests (optimistic, dedupe, action log).

``Append`` concatenates (order matters), ``Put`` overwrites; either may carry an
:class:`EventMeta`, which makes it a server event.
"""

from __future__ import annotations

from typing import Any

import attrs
import immutables

from reactive_aiops.core.actions import action
from reactive_aiops.core.dedupe import DedupeStats
from reactive_aiops.core.events import EventMeta
from reactive_aiops.core.optimistic import EMPTY_JOURNAL, OptimisticJournal


@action(name="test.mw.Append")
class Append:
    key: str
    text: str
    meta: EventMeta | None = None


@action(name="test.mw.Put")
class Put:
    key: str
    text: str
    meta: EventMeta | None = None


_EMPTY_MAP: immutables.Map[str, str] = immutables.Map()
_NO_DROPS = DedupeStats()


@attrs.frozen
class Root:
    data: immutables.Map[str, str] = _EMPTY_MAP
    optimistic: OptimisticJournal = EMPTY_JOURNAL
    dedupe: DedupeStats = _NO_DROPS


class CountingReducer:
    """The domain reducer, counting its calls so tests can prove costs."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, state: Root | None, act: Any) -> Root:
        self.calls += 1
        if state is None:
            state = Root()
        if isinstance(act, Append):
            text = state.data.get(act.key, "") + act.text
            return attrs.evolve(state, data=state.data.set(act.key, text))
        if isinstance(act, Put):
            if state.data.get(act.key) == act.text:
                return state
            return attrs.evolve(state, data=state.data.set(act.key, act.text))
        return state


def reducer(state: Root | None, act: Any) -> Root:
    """The domain reducer without counting."""
    return _PLAIN(state, act)


_PLAIN = CountingReducer()


def fold(actions: list[object], state: Root | None = None) -> Root:
    """Apply ``actions`` in order with the plain reducer, from ``state`` or the initial state."""
    current = reducer(state, object()) if state is None else state
    for act in actions:
        current = reducer(current, act)
    return current


def server(key: str, text: str, *, command_id: str | None = None, **meta: Any) -> Append:
    """A server event appending ``text`` to ``key``."""
    return Append(key, text, EventMeta("test", "append", command_id=command_id, **meta))
