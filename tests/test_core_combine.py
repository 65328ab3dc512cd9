"""combine_reducers: slices, identity preservation, attrs root classes."""

from __future__ import annotations

from typing import Any

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from reactive_aiops.core import CombinedState, Init, combine_reducers


def add_reducer(key: str) -> Any:
    def reducer(state: int | None, act: object) -> int:
        if state is None:
            return 0
        if isinstance(act, tuple) and act[0] == key and act[1] != 0:
            return state + int(act[1])
        return state

    return reducer


@attrs.frozen
class Root:
    a: int = 0
    b: int = 0
    untouched: str = "kept"


def test_initial_slices_come_from_each_reducer() -> None:
    root = combine_reducers(a=add_reducer("a"), b=add_reducer("b"))
    state = root(None, Init())
    assert dict(state) == {"a": 0, "b": 0}
    assert state.a == 0


def test_same_object_when_no_slice_changed() -> None:
    root = combine_reducers(a=add_reducer("a"), b=add_reducer("b"))
    state = root(None, Init())
    assert root(state, ("c", 1)) is state
    assert root(state, ("a", 0)) is state  # the slice reducer returned its input


def test_only_changed_slices_are_replaced() -> None:
    nested: dict[str, list[int]] = {"x": [1]}

    def keep(state: object, act: object) -> object:
        return nested if state is None else state

    root = combine_reducers(a=add_reducer("a"), keep=keep)
    first = root(None, Init())
    second = root(first, ("a", 2))
    assert second is not first
    assert second.a == 2
    assert second.keep is first.keep


def test_combined_state_is_immutable_and_hashable() -> None:
    state = CombinedState({"a": 1})
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        state.a = 2
    assert hash(state) == hash(CombinedState({"a": 1}))
    assert state == CombinedState({"a": 1})
    with pytest.raises(AttributeError):
        _ = state.missing


def test_attrs_root_keeps_unreduced_fields() -> None:
    root = combine_reducers(Root, a=add_reducer("a"), b=add_reducer("b"))
    state = root(None, Init())
    assert state == Root(0, 0, "kept")
    changed = root(attrs.evolve(state, untouched="mine"), ("b", 5))
    assert changed == Root(0, 5, "mine")


def test_attrs_root_rejects_unknown_fields_and_non_attrs() -> None:
    with pytest.raises(TypeError, match="no field"):
        combine_reducers(Root, nope=add_reducer("a"))
    with pytest.raises(TypeError, match="not an attrs class"):
        combine_reducers(dict, a=add_reducer("a"))
    with pytest.raises(ValueError, match="at least one"):
        combine_reducers()


@given(
    st.lists(
        st.tuples(st.sampled_from(["a", "b", "c"]), st.integers(min_value=-2, max_value=2)),
        max_size=40,
    )
)
def test_identity_property(actions: list[tuple[str, int]]) -> None:
    for use_class in (False, True):
        root: Any = (
            combine_reducers(Root, a=add_reducer("a"), b=add_reducer("b"))
            if use_class
            else combine_reducers(a=add_reducer("a"), b=add_reducer("b"))
        )
        state = root(None, Init())
        model = {"a": 0, "b": 0}
        for act in actions:
            new = root(state, act)
            key, amount = act
            if key in model and amount != 0:
                model[key] += amount
                assert new is not state
            else:
                assert new is state
            state = new
            assert (state.a, state.b) == (model["a"], model["b"])
