"""Batch reduction: an optional fast path for applying many actions to a state at once.

A reducer is ``reducer(state, action) -> state``. A reducer MAY also carry an attribute
``reduce_many(state, actions) -> state`` that applies a whole sequence of actions in one go --
say, one entity-collection update for fifty upserts, or one root rebuild for a whole frame
instead of one per action. :func:`reduce_all` uses it when present and otherwise folds;
:func:`with_reduce_many` attaches one. The store applies a
:class:`~reactive_aiops.core.actions.Batch` through it.

The contract of ``reduce_many(s, xs)``, for every state ``s`` (``None`` included) and every
sequence ``xs``:

* it returns a state *equal* to ``fold(reducer, s, xs)`` (the reducer applied to each action in
  turn; :func:`fold`). Equal as the fold's own states would be compared: for values held by
  identity (such as an :class:`~reactive_aiops.core.entities.EntityCollection`), equal contents;
* it returns ``s`` *itself* whenever the fold would return ``s`` itself (it may also return ``s``
  when the fold returns a new but equal state), so "nothing changed" stays one identity check;
* it may raise only where the fold raises (and then nothing is applied: states are immutable).

An implementation that cannot see at once that its shortcut is equivalent should fold.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol, TypeVar, cast

__all__ = ["BatchReducer", "ReduceMany", "fold", "reduce_all", "reduce_many_of", "with_reduce_many"]

#: ``reduce_many(state, actions) -> state``: see the module docstring for the contract.
ReduceMany = Callable[[Any, Sequence[object]], Any]

_R = TypeVar("_R", bound=Callable[..., Any])

# Set beside ``reduce_many`` by :func:`with_reduce_many`. ``functools.wraps`` copies a function's
# ``__dict__`` onto its wrapper, which would otherwise hand the wrapper the inner reducer's fast
# path and skip whatever the wrapper adds; the owner tells the two apart.
_OWNER = "__reduce_many_owner__"


class BatchReducer(Protocol):
    """A reducer that also applies a sequence of actions at once (see the module docstring)."""

    def __call__(self, state: Any, action: Any, /) -> Any:
        """Apply one action."""
        ...

    def reduce_many(self, state: Any, actions: Sequence[object], /) -> Any:
        """Apply ``actions`` in order; equal to the fold, ``state`` itself when nothing changed."""
        ...


def fold(reducer: Callable[[Any, Any], Any], state: Any, actions: Sequence[object]) -> Any:
    """Apply ``reducer`` to each action in turn from ``state``: the reference semantics."""
    for act in actions:
        state = reducer(state, act)
    return state


def reduce_many_of(reducer: Callable[[Any, Any], Any]) -> ReduceMany | None:
    """Return the ``reduce_many`` that ``reducer`` carries, or ``None`` when it has none.

    A ``reduce_many`` attached by :func:`with_reduce_many` to another function and copied onto
    ``reducer`` (as ``functools.wraps`` does) is not ``reducer``'s own and is ignored.
    """
    many: ReduceMany | None = getattr(reducer, "reduce_many", None)
    if many is None:
        return None
    if getattr(reducer, _OWNER, reducer) is not reducer:
        return None
    return many


def reduce_all(reducer: Callable[[Any, Any], Any], state: Any, actions: Sequence[object]) -> Any:
    """Apply ``actions`` to ``state``: with ``reducer.reduce_many`` when it has one, else a fold."""
    many = reduce_many_of(reducer)
    if many is not None:
        return many(state, actions)
    return fold(reducer, state, actions)


def with_reduce_many(reducer: _R, many: ReduceMany) -> _R:
    """Attach ``many`` as ``reducer.reduce_many`` and return the reducer.

    ``many`` must keep the contract in the module docstring. A function gets the attribute in
    place; a reducer that takes no attributes (a bound method, a builtin) is first wrapped in a
    function that calls it.
    """
    target: Any = reducer
    try:
        setattr(target, "reduce_many", many)  # noqa: B010 - an attribute mypy cannot know
    except (AttributeError, TypeError):
        target = _wrap(reducer)
        setattr(target, "reduce_many", many)  # noqa: B010 - an attribute mypy cannot know
    setattr(target, _OWNER, target)
    return cast(_R, target)


def _wrap(reducer: Callable[..., Any]) -> Callable[[Any, Any], Any]:
    def wrapped(state: Any, action: Any) -> Any:
        return reducer(state, action)

    wrapped.__doc__ = getattr(reducer, "__doc__", None)
    return wrapped
