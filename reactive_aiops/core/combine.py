"""``combine_reducers``: one reducer per slice, one root state, unchanged slices shared."""

from __future__ import annotations

import functools
import operator
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, TypeVar, overload

import attrs

from reactive_aiops.core._fastinit import fast_constructor, fast_replacers
from reactive_aiops.core.batching import fold, reduce_all, with_reduce_many
from reactive_aiops.core.routing import ActionRouter

_T = TypeVar("_T")

SliceReducer = Callable[[Any, Any], Any]


class CombinedState(Mapping[str, Any]):
    """An immutable mapping of slice name to slice state, also readable as attributes.

    Built by :func:`combine_reducers` without a state class. Equality and hashing follow the
    slices. A slice named like a mapping method (``items``, ``keys``, ``values``, ``get``, ``set``)
    is read with ``state["items"]``; ``state.items`` is the method.
    """

    __slots__ = ("_slices",)

    def __init__(self, slices: Mapping[str, Any] | None = None) -> None:
        object.__setattr__(self, "_slices", dict(slices or {}))

    def __getitem__(self, key: str) -> Any:
        return self._slices[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._slices)

    def __len__(self) -> int:
        return len(self._slices)

    def __getattr__(self, name: str) -> Any:
        try:
            return self._slices[name]
        except KeyError:
            raise AttributeError(name) from None

    def __setattr__(self, name: str, value: Any) -> None:
        raise attrs.exceptions.FrozenInstanceError()

    def __hash__(self) -> int:
        return hash(tuple(self._slices.items()))

    def __repr__(self) -> str:
        inner = ", ".join(f"{k}={v!r}" for k, v in self._slices.items())
        return f"CombinedState({inner})"

    def set(self, **changes: Any) -> CombinedState:
        """Return a copy with the given slices replaced."""
        return CombinedState({**self._slices, **changes})


@overload
def combine_reducers(
    state_class: None = None, /, **reducers: SliceReducer
) -> Callable[[CombinedState | None, Any], CombinedState]: ...


@overload
def combine_reducers(
    state_class: type[_T], /, **reducers: SliceReducer
) -> Callable[[_T | None, Any], _T]: ...


def combine_reducers(
    state_class: type[Any] | None = None, /, **reducers: SliceReducer
) -> Callable[[Any, Any], Any]:
    """Combine slice reducers into one root reducer.

    Each ``reducers[name](slice_state, action)`` receives its slice (None at first) and returns
    the new slice. The root is a :class:`CombinedState`, or an instance of the frozen attrs
    ``state_class`` whose other fields keep their value (defaults at first). The root reducer
    returns the *same* root object when no slice changed, so memoized selectors and ``select``
    streams cost one identity check. The root reducer carries ``reduce_many``
    (:mod:`reactive_aiops.core.batching`): each slice reduces a whole sequence of actions (with
    its own ``reduce_many`` if it has one) and the root is rebuilt once.

    A slice reducer that declared its action types with
    :func:`~reactive_aiops.core.routing.handles` is called only for those
    (:mod:`reactive_aiops.core.routing`): a live event reaches the one slice it is about.
    """
    if not reducers:
        raise ValueError("combine_reducers needs at least one slice reducer")
    items = tuple(reducers.items())
    # The (name, reducer) pairs each action type reaches; the hot paths read router.plans first.
    router = ActionRouter(items, operator.itemgetter(1))
    plans = router.plans
    plan_of = router.plan

    def items_for(actions: Sequence[object]) -> tuple[tuple[str, SliceReducer], ...]:
        return router.plan_many(set(map(type, actions)))

    if state_class is None:

        def combined(state: CombinedState | None, action: Any) -> CombinedState:
            if state is None:
                return CombinedState({name: reducer(None, action) for name, reducer in items})
            plan = plans.get(type(action))
            if plan is None:
                plan = plan_of(type(action))
            changed: dict[str, Any] | None = None
            slices = state._slices
            for name, reducer in plan:
                before = slices.get(name)
                after = reducer(before, action)
                if after is not before:
                    if changed is None:
                        changed = {}
                    changed[name] = after
            return state if changed is None else state.set(**changed)

        def combined_many(state: CombinedState | None, actions: Sequence[object]) -> Any:
            if state is None:
                return fold(combined, state, actions)
            changed = _slices_changed(items_for(actions), state._slices.get, actions)
            return state if changed is None else state.set(**changed)

        return with_reduce_many(combined, combined_many)

    if not attrs.has(state_class):
        raise TypeError(f"{state_class.__qualname__} is not an attrs class")
    field_names = {field.name for field in attrs.fields(state_class)}
    unknown = set(reducers) - field_names
    if unknown:
        raise TypeError(f"{state_class.__qualname__} has no field(s) {sorted(unknown)}")

    # attrs.evolve re-reads the class's fields on every call; the root is rebuilt on almost
    # every action, so the same thing is done here from a list made once: every init field's
    # current value, the changed slices replacing theirs, passed by alias (exactly as evolve).
    init_fields = [f for f in attrs.fields(state_class) if f.init]
    index = {f.name: i for i, f in enumerate(init_fields)}
    # Positional arguments in init order are what evolve's keywords amount to when no init
    # field is keyword-only; otherwise (and for subclasses) evolve itself is used.
    positional = len(init_fields) > 1 and not any(f.kw_only for f in init_fields)
    read_all = operator.attrgetter(*(f.name for f in init_fields)) if positional else None
    # The root from every field's value, positionally: without attrs' frozen __init__ (one C
    # setattr per field; AppState has six) where that only stores them (core._fastinit).
    build: Callable[..., Any] = (fast_constructor(state_class) if positional else None) or (
        state_class
    )
    # The same for the usual change of one slice: field name -> replace(root, slice), which
    # reads the other fields itself (no tuple and list of every field in between).
    replacers = fast_replacers(state_class)

    def rebuild(state: Any, changed: dict[str, Any]) -> Any:
        if read_all is not None and type(state) is state_class and changed.keys() <= index.keys():
            values = list(read_all(state))
            for name, value in changed.items():
                values[index[name]] = value
            return build(*values)
        return attrs.evolve(state, **changed)

    def combined_class(state: Any, action: Any) -> Any:
        if state is None:
            return state_class(**{name: reducer(None, action) for name, reducer in items})
        plan = plans.get(type(action))
        if plan is None:
            plan = plan_of(type(action))
        if len(plan) == 1:
            # The usual live action reaches one slice: no dict of changes, one rebuild.
            ((name, reducer),) = plan
            before = getattr(state, name)
            after = reducer(before, action)
            if after is before:
                return state
            if replacers is not None and type(state) is state_class:
                return replacers[name](state, after)
            position = index.get(name)
            if read_all is None or position is None or type(state) is not state_class:
                return rebuild(state, {name: after})
            values = list(read_all(state))  # rebuild(), inline for the one-slice change
            values[position] = after
            return build(*values)
        changed: dict[str, Any] | None = None
        for name, reducer in plan:
            before = getattr(state, name)
            after = reducer(before, action)
            if after is not before:
                if changed is None:
                    changed = {}
                changed[name] = after
        return state if changed is None else rebuild(state, changed)

    def combined_class_many(state: Any, actions: Sequence[object]) -> Any:
        if state is None:
            return fold(combined_class, state, actions)
        changed = _slices_changed(items_for(actions), functools.partial(getattr, state), actions)
        return state if changed is None else rebuild(state, changed)

    return with_reduce_many(combined_class, combined_class_many)


def _slices_changed(
    items: tuple[tuple[str, SliceReducer], ...],
    get: Callable[[str], Any],
    actions: Sequence[object],
) -> dict[str, Any] | None:
    """The slices ``actions`` change, by name (None when none does); ``get(name)`` reads one.

    Slice reducers see only their own slice, so each can take the whole sequence before the
    next one: the interleaving of a fold changes nothing but the cost (one root rebuild).
    """
    changed: dict[str, Any] | None = None
    for name, reducer in items:
        before = get(name)
        after = reduce_all(reducer, before, actions)
        if after is not before:
            if changed is None:
                changed = {}
            changed[name] = after
    return changed
