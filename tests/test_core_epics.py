"""Epics: output dispatched in order, failures become EffectFailed and restart with backoff."""

from __future__ import annotations

from typing import Any

import reactivex
from reactivex import Observable
from reactivex import operators as ops
from reactivex.testing import TestScheduler

from reactive_aiops.core import EffectFailed, action, create_store


@action(name="test.ping")
class Ping:
    n: int


@action(name="test.pong")
class Pong:
    n: int


def log_reducer(state: tuple[object, ...] | None, act: object) -> tuple[object, ...]:
    if state is None:
        return ()
    if isinstance(act, Ping | Pong | EffectFailed):
        return (*state, act)
    return state


def ping_pong(actions: Observable[Any], _states: Observable[Any]) -> Observable[Any]:
    return actions.pipe(
        ops.filter(lambda a: isinstance(a, Ping)),
        ops.flat_map(lambda a: reactivex.of(Pong(a.n), Pong(a.n + 100))),
    )


def test_epic_output_is_dispatched_after_the_triggering_action_in_order() -> None:
    store = create_store(log_reducer, epics=[ping_pong])
    store.dispatch(Ping(1))
    store.dispatch(Ping(2))
    assert store.state == (Ping(1), Pong(1), Pong(101), Ping(2), Pong(2), Pong(102))


def test_epic_sees_state() -> None:
    def count_epic(actions: Observable[Any], states: Observable[Any]) -> Observable[Any]:
        return actions.pipe(
            ops.filter(lambda a: isinstance(a, Ping)),
            ops.with_latest_from(states),
            ops.map(lambda pair: Pong(len(pair[1]))),
        )

    store = create_store(log_reducer, epics=[count_epic])
    store.dispatch(Ping(0))
    assert store.state[-1] == Pong(1)


def test_failing_epic_reports_and_restarts_with_backoff_others_carry_on() -> None:
    scheduler = TestScheduler()
    starts: list[float] = []

    def flaky(actions: Observable[Any], _states: Observable[Any]) -> Observable[Any]:
        starts.append(scheduler.clock)

        def fail_on_ping(a: Any) -> Any:
            if isinstance(a, Ping) and a.n < 0:
                raise RuntimeError("bad ping")
            return Pong(a.n * 10)

        return actions.pipe(ops.filter(lambda a: isinstance(a, Ping)), ops.map(fail_on_ping))

    store = create_store(
        log_reducer, epics=[flaky, ping_pong], epic_scheduler=scheduler, epic_backoff=(1.0, 4.0)
    )
    store.dispatch(Ping(-1))
    failed = [a for a in store.state if isinstance(a, EffectFailed)]
    assert len(failed) == 1
    assert failed[0].attempt == 1
    assert failed[0].retry_in == 1.0
    assert "bad ping" in failed[0].error
    assert "flaky" in failed[0].epic
    # the other epic carried on
    assert Pong(-1) in store.state

    # while the flaky epic is down, pings are served only by ping_pong
    store.dispatch(Ping(3))
    assert Pong(30) not in store.state
    scheduler.advance_to(1.0)
    assert starts == [0.0, 1.0]
    store.dispatch(Ping(4))
    assert Pong(40) in store.state

    # consecutive failures back off exponentially, capped
    store.dispatch(Ping(-2))  # emission of Pong(40) reset the streak, so this is attempt 1 again
    scheduler.advance_by(1.0)
    store.dispatch(Ping(-3))
    scheduler.advance_by(2.0)
    store.dispatch(Ping(-4))
    delays = [a.retry_in for a in store.state if isinstance(a, EffectFailed)]
    assert delays == [1.0, 1.0, 2.0, 4.0]
    store.close()
    scheduler.advance_by(10.0)
    assert len(starts) == 4  # the restart due at t=8 never happens after close()


def test_epic_factory_that_raises_is_reported() -> None:
    scheduler = TestScheduler()

    def broken(_a: Observable[Any], _s: Observable[Any]) -> Observable[Any]:
        raise ValueError("cannot build")

    store = create_store(log_reducer, epics=[broken], epic_scheduler=scheduler)
    assert isinstance(store.state[0], EffectFailed)
    store.dispatch(Ping(1))
    assert store.state[-1] == Ping(1)
    store.close()
