"""create_selector memoization and compose."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from reactive_aiops.core import CombinedState, compose, create_selector


def test_recomputes_only_when_an_input_changes_identity() -> None:
    state = CombinedState({"numbers": (1, 2, 3), "other": 0})
    total = create_selector(lambda s: s.numbers, lambda xs: sum(xs))
    assert total(state) == 6
    assert total(state) == 6
    assert total(state.set(other=1)) == 6  # new state, same input object
    assert total.recomputations == 1
    assert total(state.set(numbers=(1, 2))) == 3
    assert total.recomputations == 2


def test_multiple_inputs_and_reset() -> None:
    sel = create_selector(lambda s: s["a"], lambda s: s["b"], lambda a, b: a + b)
    first = {"a": 1, "b": 2}
    assert sel(first) == 3
    sel.reset_recomputations()
    assert sel.recomputations == 0
    assert sel({"a": 1, "b": 2}) == 3  # new state and equal, but b is the same int object
    assert sel.recomputations == 0
    sel.clear_cache()
    assert sel(first) == 3
    assert sel.recomputations == 1


def test_one_input_memo_clear_and_a_failing_combiner() -> None:
    calls: list[object] = []

    def combine(xs: object) -> int:
        calls.append(xs)
        if xs is None:
            raise ValueError("no numbers")
        return len(xs)  # type: ignore[arg-type]

    numbers = (1, 2)
    sel = create_selector(lambda s: s["xs"], combine)
    assert sel({"xs": numbers}) == 2
    assert sel({"xs": numbers}) == 2  # new state, same input object: a memo hit
    assert calls == [numbers]
    with pytest.raises(ValueError, match="no numbers"):
        sel({"xs": None})
    # A failed recomputation leaves the memo as it was: the old input still hits it.
    assert sel({"xs": numbers}) == 2
    assert sel.recomputations == 1
    sel.clear_cache()
    assert sel({"xs": numbers}) == 2  # the same input object, but the memo was cleared
    assert sel.recomputations == 2
    assert calls == [numbers, None, numbers]


def test_selector_needs_input_and_combiner() -> None:
    with pytest.raises(TypeError):
        create_selector(lambda s: s)  # type: ignore[call-overload]


def test_selectors_compose() -> None:
    inner = create_selector(lambda s: s["xs"], lambda xs: tuple(sorted(xs)))
    outer = create_selector(inner, lambda xs: xs[0] if xs else None)
    state = {"xs": [3, 1, 2]}
    assert outer(state) == 1
    assert outer({"xs": state["xs"]}) == 1
    assert (inner.recomputations, outer.recomputations) == (1, 1)


@given(st.lists(st.integers(), max_size=10), st.integers())
def test_compose_is_right_to_left(values: list[int], x: int) -> None:
    fns = [lambda v, k=k: v * 2 + k for k in values]
    expected = x
    for fn in reversed(fns):
        expected = fn(expected)
    assert compose(*fns)(x) == expected
    assert compose()(x) == x


@given(st.lists(st.tuples(st.integers(0, 2), st.integers(0, 2), st.integers(0, 2)), max_size=20))
def test_recomputes_exactly_when_some_input_is_another_object(picks: list[tuple[int, ...]]) -> None:
    # Three candidate objects per input, equal to each other but never identical: only
    # identity may decide a memo hit, for one input and for several.
    pools = [[[i] for _ in range(3)] for i in range(3)]
    one = create_selector(lambda s: s[0], lambda a: (a,))
    three = create_selector(
        lambda s: s[0], lambda s: s[1], lambda s: s[2], lambda a, b, c: (a, b, c)
    )
    last: tuple[object, ...] | None = None
    expected_one = expected_three = 0
    for pick in picks:
        state = tuple(pools[n][k] for n, k in enumerate(pick))
        if last is None or state[0] is not last[0]:
            expected_one += 1
        if last is None or any(a is not b for a, b in zip(state, last, strict=True)):
            expected_three += 1
        assert one(state)[0] is state[0]
        assert all(a is b for a, b in zip(three(state), state, strict=True))
        last = state
    assert (one.recomputations, three.recomputations) == (expected_one, expected_three)
