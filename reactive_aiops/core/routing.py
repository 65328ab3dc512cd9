"""Declaring which actions a slice reducer reacts to, so it is called only for those.

A slice reducer of a live store sees every action, although each reacts to a handful of types:
the anomalies slice to five, the health slice to one. :func:`handles` declares them::

    @handles(AnomalyUpserted, AnomalyRemoved)
    def anomalies(state, action): ...

:func:`~reactive_aiops.core.combine.combine_reducers` then calls a declaring slice only for an
action that is an instance of one of its types, and for
:class:`~reactive_aiops.core.actions.Init` and :class:`~reactive_aiops.core.actions.ReplaceReducer`
(the store's first action and a reducer swap, which may add slices), and skips it otherwise.
Which slices an action type reaches is worked out once per type. A reducer without a declaration
is called for every action, as before.

The contract of a declaration ``handles(*types)`` on ``reducer``: for every state ``s`` the
reducer itself returned and every action ``a`` that is not an instance of ``types``,
``reducer(s, a) is s``. Skipping the call is then unobservable. A declaration that lists too
many types only costs calls; one that misses a type the reducer reacts to loses that reaction,
so keep the tuple next to the reducer's own checks (the domain's tests compare every routed root
with an unrouted one over generated actions).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any, Generic, TypeVar

from reactive_aiops.core.actions import Init, ReplaceReducer

__all__ = ["ActionRouter", "handled_types", "handles"]

_R = TypeVar("_R", bound=Callable[..., Any])
_S = TypeVar("_S")

_ATTRIBUTE = "__handles__"

#: Actions every slice sees whatever it declares: the store's first action and a reducer swap
#: (a new slice must be initialised).
_ALWAYS = (Init, ReplaceReducer)

#: Bound on the per-type plans of one router (action types are classes, so this is only ever
#: reached by code that makes classes on the fly).
_MAX_PLANS = 4096


def handles(*types: type[Any]) -> Callable[[_R], _R]:
    """Declare the action types ``reducer`` reacts to (see the module docstring's contract).

    Raises ``TypeError`` if a type is not a class. Returns the reducer itself (a function gets
    the attribute in place).
    """
    for kind in types:
        if not isinstance(kind, type):
            raise TypeError(f"handles() takes action classes, got {kind!r}")

    def declare(reducer: _R) -> _R:
        setattr(reducer, _ATTRIBUTE, tuple(types))
        return reducer

    return declare


def handled_types(reducer: Callable[..., Any]) -> tuple[type[Any], ...] | None:
    """The types ``reducer`` declared with :func:`handles`, or ``None`` (it sees every action)."""
    found = getattr(reducer, _ATTRIBUTE, None)
    return found if isinstance(found, tuple) else None


class ActionRouter(Generic[_S]):
    """Which of a fixed list of slices an action type reaches, computed once per type.

    ``reducer_of(slice)`` gives a slice's reducer (whose :func:`handles` declaration counts).
    ``router.plan(kind)`` is the tuple of slices an action of class ``kind`` must be given to, in
    their order. :attr:`plans` is the cache behind it: a hot path reads it first (one dict lookup
    in C) and calls :meth:`plan` only on a miss.
    """

    __slots__ = ("_declared", "_slices", "plans")

    def __init__(
        self, slices: Sequence[_S], reducer_of: Callable[[_S], Callable[..., Any]]
    ) -> None:
        self._slices = tuple(slices)
        self._declared = tuple(handled_types(reducer_of(s)) for s in self._slices)
        #: action class -> the slices it reaches, filled by :meth:`plan`
        self.plans: dict[type[Any], tuple[_S, ...]] = {}

    def plan(self, kind: type[Any]) -> tuple[_S, ...]:
        """The slices an action of class ``kind`` must be given to, in their order."""
        plan = self.plans.get(kind)
        if plan is None:
            always = issubclass(kind, _ALWAYS)
            plan = tuple(
                one
                for one, declared in zip(self._slices, self._declared, strict=True)
                if always or declared is None or issubclass(kind, declared)
            )
            if len(self.plans) >= _MAX_PLANS:
                self.plans.clear()
            self.plans[kind] = plan
        return plan

    def plan_many(self, kinds: Iterable[type[Any]]) -> tuple[_S, ...]:
        """The slices any of ``kinds`` reaches, in their order."""
        wanted: set[int] = set()
        for kind in kinds:
            wanted.update(map(id, self.plan(kind)))
        return tuple(one for one in self._slices if id(one) in wanted)
