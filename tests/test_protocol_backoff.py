"""Backoff: full jitter under an exponential cap, injected randomness."""

from __future__ import annotations

import itertools
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from reactive_aiops.protocol import BackoffPolicy, ClientConfig, ClientProtocol, Phase, backoff
from reactive_aiops.wire import ConnectResult, Reply, encode_replies


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
    assert [next(first) for _ in range(5)] == [1.0, 1.0, 1.0, 2.0, 3.0]
    assert next(policy.delays(lambda: 1.0)) == 1.0


@given(st.integers(1, 5), st.lists(st.floats(0, 0.999999), min_size=1, max_size=30))
def test_the_first_flat_windows_are_initial_then_they_grow(flat: int, draws: list[float]) -> None:
    it = iter(draws)
    gen = backoff(0.5, 20.0, rand=lambda: next(it), flat=flat)
    for n, (draw, delay) in enumerate(zip(draws, gen, strict=False)):
        window = 0.5 if n < flat else min(20.0, 0.5 * 2 ** (n - flat + 1))
        assert delay == pytest.approx(draw * window)


def test_flat_must_be_positive() -> None:
    with pytest.raises(ValueError, match="flat"):
        next(backoff(flat=0))


RESTART = 0.4  # seconds a server restart takes (issue 11: three restarts of 0.4 s each)
UP = 3.0  # seconds the client stays connected between restarts


def _offline_times(policy: BackoffPolicy, draws: list[float]) -> list[tuple[float, int]]:
    """Three server restarts of RESTART s, UP s apart, through the sans-I/O client: an attempt
    made while the server is down fails. Returns (seconds offline, failed attempts) per
    restart."""
    it = itertools.cycle(draws)
    protocol = ClientProtocol(ClientConfig(backoff=policy), rand=lambda: next(it))
    now = 0.0
    offline: list[tuple[float, int]] = []

    protocol.start(now)
    _answer_connect(protocol, now)
    for _ in range(3):
        now += UP
        protocol.transport_closed(now, 3001, "shutdown")  # the server restarts
        down_at, back_at = now, now + RESTART
        failed = 0
        while protocol.phase is not Phase.CONNECTED:
            now = max(now, protocol.next_connect_at or now)
            assert protocol.connect_due(now)
            if now < back_at:
                protocol.transport_opening(now)
                protocol.transport_failed(now, "connection refused")
                failed += 1
            else:
                _answer_connect(protocol, now)
        offline.append((now - down_at, failed))
    return offline


def _answer_connect(protocol: ClientProtocol, now: float) -> None:
    protocol.transport_opening(now)
    protocol.transport_opened(now)
    (frame,) = protocol.data_to_send()
    msg_id = json.loads(frame)["id"]
    protocol.receive_text(encode_replies([Reply(msg_id, ConnectResult(client="c"))]), now)
    protocol.events_received()


# draws of exactly 0 would retry at the same instant forever on a frozen test clock
@given(st.lists(st.floats(0.01, 0.999999), min_size=1, max_size=12))
def test_each_restart_is_back_within_about_a_second_even_after_a_failed_attempt(
    draws: list[float],
) -> None:
    # worst case: an attempt just before the server is back fails, the next waits one more
    # flat window of 1 s at most; so with two failed attempts
    policy = BackoffPolicy()
    for offline, failed in _offline_times(policy, draws):
        if failed < policy.flat:
            assert offline < RESTART + policy.initial


def test_the_former_policy_stayed_offline_for_seconds() -> None:
    # what issue 11 measured (9.5 s over three restarts): the windows kept doubling because a
    # connection had to stay up 10 s before they reset
    former = BackoffPolicy(reset_after=10.0, flat=1)
    draws = [0.3, 0.9]  # one attempt too early, then a long draw from a doubled window
    assert sum(t for t, _ in _offline_times(former, draws)) > 3 * (RESTART + former.initial)
    assert sum(t for t, _ in _offline_times(BackoffPolicy(), draws)) < 3 * (RESTART + 1.0)
