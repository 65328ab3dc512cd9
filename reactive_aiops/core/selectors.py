"""Memoized selectors in the reselect sense.

A selector made by :func:`create_selector` recomputes only when one of its input selectors
returns a different object (by identity) than last time; :attr:`Selector.recomputations` counts
real recomputations so a test can prove a memo hit.
"""

from __future__ import annotations

from collections.abc import Callable
from operator import is_
from typing import Any, Generic, TypeVar, overload

S = TypeVar("S")
R = TypeVar("R")
A = TypeVar("A")
B = TypeVar("B")
C = TypeVar("C")
D = TypeVar("D")

_UNSET: Any = object()


class Selector(Generic[S, R]):
    """A memoized ``state -> value`` function; call it like one."""

    __slots__ = (
        "_combiner",
        "_input",
        "_inputs",
        "_last_arg",
        "_last_args",
        "_last_result",
        "_last_state",
        "recomputations",
    )

    def __init__(self, inputs: tuple[Callable[[S], Any], ...], combiner: Callable[..., R]) -> None:
        self._inputs = inputs
        # The usual shape (one slice in, a view out) has its own path in __call__, which runs on
        # every store notification: no argument tuple, generator or zip per call.
        self._input: Callable[[S], Any] | None = inputs[0] if len(inputs) == 1 else None
        self._combiner = combiner
        self._last_state: Any = _UNSET
        self._last_arg: Any = _UNSET
        self._last_args: tuple[Any, ...] | None = None
        self._last_result: R = _UNSET
        #: How many times the combiner actually ran.
        self.recomputations = 0

    def __call__(self, state: S) -> R:
        if state is self._last_state:
            return self._last_result
        select = self._input
        if select is not None:
            arg = select(state)
            if arg is not self._last_arg:
                self._last_result = self._combiner(arg)
                self._last_arg = arg
                self.recomputations += 1
            self._last_state = state
            return self._last_result
        last = self._last_args
        args = tuple([select(state) for select in self._inputs])
        # map(is_) compares by identity in C: no generator frame per call.
        if last is not None and all(map(is_, args, last)):
            self._last_state = state
            return self._last_result
        result = self._combiner(*args)
        self.recomputations += 1
        self._last_state = state
        self._last_args = args
        self._last_result = result
        return result

    def reset_recomputations(self) -> None:
        """Set :attr:`recomputations` back to zero (for tests)."""
        self.recomputations = 0

    def clear_cache(self) -> None:
        """Forget the memo so the next call recomputes (and the old state can be collected)."""
        self._last_state = _UNSET
        self._last_arg = _UNSET
        self._last_args = None
        self._last_result = _UNSET


@overload
def create_selector(a: Callable[[S], A], combiner: Callable[[A], R], /) -> Selector[S, R]: ...
@overload
def create_selector(
    a: Callable[[S], A], b: Callable[[S], B], combiner: Callable[[A, B], R], /
) -> Selector[S, R]: ...
@overload
def create_selector(
    a: Callable[[S], A],
    b: Callable[[S], B],
    c: Callable[[S], C],
    combiner: Callable[[A, B, C], R],
    /,
) -> Selector[S, R]: ...
@overload
def create_selector(
    a: Callable[[S], A],
    b: Callable[[S], B],
    c: Callable[[S], C],
    d: Callable[[S], D],
    combiner: Callable[[A, B, C, D], R],
    /,
) -> Selector[S, R]: ...
def create_selector(*functions: Callable[..., Any]) -> Selector[Any, Any]:
    """Create a memoized selector from input selectors and a combiner (the last argument).

    ``create_selector(select_anomalies, lambda anomalies: ...)``. The combiner runs only when an
    input returns a new object; inputs should be cheap attribute reads.
    """
    if len(functions) < 2:
        raise TypeError("create_selector needs at least one input selector and a combiner")
    *inputs, combiner = functions
    return Selector(tuple(inputs), combiner)
