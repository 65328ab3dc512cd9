"""Backoff: full jitter under an exponential cap, injected randomness."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from reactive_aiops.protocol import BackoffPolicy, backoff


def test_caps_double_until_maximum() -> None:
    delays = list(itertools.islice(backoff(0.5, 20.0, 2.0, rand=lambda: 1.0), 8))
    assert delays == [0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 20.0, 20.0]


def test_full_jitter_can_be_zero() -> None:
    assert list(itertools.islice(backoff(rand=lambda: 0.0), 3)) == [0.0, 0.0, 0.0]


@given(st.lists(st.floats(0, 0.999999), min_size=1, max_size=30))
def test_every_delay_is_within_its_cap(draws: list[float]) -> None:
    it = iter(draws)
    gen = backoff(0.5, 20.0, rand=lambda: next(it))
    for n, delay in enumerate(itertools.islice(gen, len(draws))):
        assert 0 <= delay <= min(20.0, 0.5 * 2**n)


@pytest.mark.parametrize(("initial", "maximum", "factor"), [(0, 1, 2), (2, 1, 2), (1, 2, 0.5)])
def test_bad_parameters(initial: float, maximum: float, factor: float) -> None:
    with pytest.raises(ValueError, match="initial"):
        next(backoff(initial, maximum, factor))


def test_policy_makes_fresh_generators() -> None:
    policy = BackoffPolicy(initial=1.0, maximum=3.0)
    first = policy.delays(lambda: 1.0)
    assert [next(first), next(first), next(first)] == [1.0, 2.0, 3.0]
    assert next(policy.delays(lambda: 1.0)) == 1.0
