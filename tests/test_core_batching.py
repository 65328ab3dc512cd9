"""The batch protocol: ``reduce_many`` equals the fold, layer by layer and for the live reducer.

Every layer that carries ``reduce_many`` (combine_reducers, dedupe_stats, optimistic, the entity
slices) is checked against ``fold`` on random action sequences from random reachable states:
equal results, and the very same state whenever the fold returns the state it was given. The
store applies a ``Batch`` through ``reduce_many`` and falls back to the fold to name a failing
action (or to recover from a ``reduce_many`` that raised where the fold does not).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Sequence
from typing import Any

import aiops_helpers as aiops
import attrs
import immutables
import pytest
from core_middleware_helpers import Append, Put, Root, server
from hypothesis import given, settings
from hypothesis import strategies as st

from reactive_aiops.aiops import AnomalyUpserted, DetectorUpserted, HealthUpdated
from reactive_aiops.aiops.live_store import create_live_reducer
from reactive_aiops.aiops.reducers import anomalies_reducer, detectors_reducer, health_reducer
from reactive_aiops.aiops.state import AppState, root_reducer
from reactive_aiops.core import (
    Batch,
    CombinedState,
    EntityCollection,
    Init,
    ReducerError,
    combine_reducers,
    create_store,
    dedupe_stats,
    optimistic,
    reduce_all,
    with_reduce_many,
)
from reactive_aiops.core.batching import fold, reduce_many_of
from reactive_aiops.core.connection import Connected, ConnectionLost, LatencyMeasured
from reactive_aiops.core.dedupe import DUPLICATE_ID, TOO_OLD, DuplicateDropped
from reactive_aiops.core.events import EventMeta, MalformedEvent, ServerEvent, UnknownEvent
from reactive_aiops.core.optimistic import (
    EMPTY_JOURNAL,
    ExpireTransactions,
    Optimistic,
    OptimisticJournal,
    RevertPending,
    TransactionCommitted,
    TransactionReverted,
)

Reducer = Callable[[Any, Any], Any]

# -- comparing states --------------------------------------------------------------------------


def canon(value: Any) -> Any:
    """A plain-data image of a state: entity collections (equal only by identity) become their
    contents and ordered view, checked to agree with each other by identity."""
    if isinstance(value, EntityCollection):
        view = tuple(value.ordered())
        assert all(value[value.key_of(v)] is v for v in view)
        return ("collection", dict(value.items()), view)
    if isinstance(value, immutables.Map):
        return ("map", {k: canon(v) for k, v in value.items()})
    if isinstance(value, CombinedState):
        return ("combined", {k: canon(v) for k, v in value.items()})
    if isinstance(value, tuple):
        return tuple(canon(v) for v in value)
    if isinstance(value, dict):
        return {k: canon(v) for k, v in value.items()}
    if attrs.has(type(value)):
        fields = attrs.fields(type(value))
        return (type(value).__name__, tuple(canon(getattr(value, f.name)) for f in fields))
    return value


def check_layer(reducer: Reducer, state: Any, actions: Sequence[object]) -> Any:
    """Assert the batching contract for ``reducer`` at ``state``; return the fold's state."""
    many = reduce_many_of(reducer)
    assert many is not None
    expected = fold(reducer, state, actions)
    got = many(state, actions)
    if expected is state:
        assert got is state
    assert canon(got) == canon(expected)
    return expected


# -- strategies --------------------------------------------------------------------------------

TXNS = st.sampled_from(["t1", "t2", "t3"])
CIDS = st.one_of(st.none(), TXNS)


def _meta(channel: str, command_id: str | None = None, offset: int | None = None) -> EventMeta:
    return EventMeta(channel, "test", event_id=None, offset=offset, command_id=command_id)


METAS = st.builds(_meta, st.sampled_from(["anomalies", "detectors"]), CIDS, st.integers(0, 9))
COUNTED = st.one_of(
    st.builds(DuplicateDropped, METAS, st.sampled_from([DUPLICATE_ID, TOO_OLD])),
    st.builds(UnknownEvent, METAS, st.just({}), st.just("unknown type")),
    st.builds(MalformedEvent, METAS, st.just({}), st.just("bad field")),
    st.builds(ServerEvent, METAS, st.just({})),
)

# The tiny order-sensitive domain of the middleware tests, under combine_reducers.
KEYS = st.sampled_from("ab")
TEXTS = st.sampled_from(["x", "y", "1"])
TINY_PLAIN = st.one_of(
    st.builds(Append, KEYS, TEXTS),
    st.builds(Put, KEYS, TEXTS),
    st.builds(lambda k, t, c: server(k, t, command_id=c), KEYS, TEXTS, CIDS),
    st.builds(lambda k, t, c: Put(k, t, _meta("test", c)), KEYS, TEXTS, CIDS),
)
JOURNAL = st.one_of(
    st.builds(Optimistic, st.builds(Append, KEYS, st.sampled_from(["p", "q"])), TXNS),
    st.builds(Optimistic, st.builds(Put, KEYS, st.sampled_from(["p", "q"])), TXNS),
    st.builds(TransactionCommitted, TXNS, st.one_of(st.none(), st.builds(Put, KEYS, TEXTS))),
    st.builds(TransactionReverted, TXNS),
    st.builds(RevertPending),
    st.builds(ExpireTransactions, st.sampled_from([0.0, 5.0, 20.0, 40.0])),
)
# Plain actions weigh most, so runs (the fast path) are long and frequent.
TINY = st.one_of(TINY_PLAIN, TINY_PLAIN, TINY_PLAIN, COUNTED, JOURNAL)
TINY_SEQ = st.lists(TINY, max_size=30)


def data_slice(state: immutables.Map[str, str] | None, act: Any) -> immutables.Map[str, str]:
    if state is None:
        state = immutables.Map()
    if type(act) is Append:
        return state.set(act.key, state.get(act.key, "") + act.text)
    if type(act) is Put and state.get(act.key) != act.text:
        return state.set(act.key, act.text)
    return state


def tiny_root() -> Reducer:
    return combine_reducers(Root, data=data_slice)


def reachable(reducer: Reducer, prefix: Sequence[object]) -> Any:
    return fold(reducer, reducer(None, Init()), prefix)


# -- the helpers -------------------------------------------------------------------------------


def test_reduce_all_folds_without_reduce_many_and_uses_it_when_present() -> None:
    def add(state: int | None, act: Any) -> int:
        return (state or 0) + act

    assert reduce_all(add, 1, [2, 3]) == 6
    assert reduce_all(add, 5, []) == 5
    calls: list[Sequence[object]] = []

    def many(state: int | None, actions: Sequence[object]) -> int:
        calls.append(actions)
        return fold(add, state, actions)

    assert with_reduce_many(add, many) is add
    assert reduce_all(add, 1, (2, 3)) == 6
    assert calls == [(2, 3)]


def test_with_reduce_many_wraps_what_takes_no_attributes() -> None:
    class Adder:
        def reduce(self, state: int, act: int) -> int:
            return state + act

    bound = Adder().reduce
    wrapped = with_reduce_many(bound, lambda s, xs: fold(bound, s, xs))
    assert wrapped is not bound
    assert wrapped(1, 2) == 3
    assert reduce_many_of(wrapped) is not None
    assert reduce_all(wrapped, 1, [2, 3]) == 6


def test_a_reduce_many_copied_onto_a_wrapper_is_not_the_wrappers() -> None:
    # functools.wraps copies __dict__: the wrapper must not inherit the inner's fast path.
    seen: list[object] = []

    @functools.wraps(anomalies_reducer)
    def logging_reducer(state: Any, act: Any) -> Any:
        seen.append(act)
        return anomalies_reducer(state, act)

    assert getattr(logging_reducer, "reduce_many", None) is not None
    assert reduce_many_of(logging_reducer) is None
    acts = [AnomalyUpserted(aiops.anomaly("a1")), AnomalyUpserted(aiops.anomaly("a2"))]
    reduce_all(logging_reducer, None, acts)
    assert seen == acts
    assert reduce_many_of(anomalies_reducer) is not None


def test_every_layer_of_the_live_reducer_carries_reduce_many() -> None:
    for reducer in (
        create_live_reducer(),
        root_reducer,
        anomalies_reducer,
        detectors_reducer,
        optimistic(tiny_root()),
        dedupe_stats(tiny_root()),
        combine_reducers(data=data_slice),
    ):
        assert reduce_many_of(reducer) is not None
    assert reduce_many_of(health_reducer) is None  # fold-only: reduce_all folds it


# -- layer by layer ----------------------------------------------------------------------------


@settings(max_examples=200, deadline=None)
@given(TINY_SEQ, TINY_SEQ)
def test_combine_reducers_attrs_class(prefix: list[object], actions: list[object]) -> None:
    reducer = tiny_root()
    check_layer(reducer, None, actions)
    check_layer(reducer, reachable(reducer, prefix), actions)


@settings(max_examples=200, deadline=None)
@given(st.lists(aiops.domain_actions, max_size=12), st.lists(aiops.domain_actions, max_size=25))
def test_combine_reducers_combined_state(prefix: list[object], actions: list[object]) -> None:
    reducer = combine_reducers(
        detectors=detectors_reducer, anomalies=anomalies_reducer, health=health_reducer
    )
    check_layer(reducer, None, actions)
    check_layer(reducer, reachable(reducer, prefix), actions)
    # A root missing a slice reduces it from None, as the fold does.
    partial = CombinedState({"health": None})
    check_layer(reducer, partial, actions)


@settings(max_examples=200, deadline=None)
@given(TINY_SEQ, TINY_SEQ)
def test_dedupe_stats(prefix: list[object], actions: list[object]) -> None:
    reducer = dedupe_stats(tiny_root())
    check_layer(reducer, None, actions)
    check_layer(reducer, reachable(reducer, prefix), actions)


@settings(max_examples=300, deadline=None)
@given(TINY_SEQ, TINY_SEQ)
def test_optimistic(prefix: list[object], actions: list[object]) -> None:
    reducer = optimistic(dedupe_stats(tiny_root()), ttl=10.0, max_pending=2, keep_committed=2)
    check_layer(reducer, None, actions)
    check_layer(reducer, reachable(reducer, prefix), actions)


def test_optimistic_runs_skip_the_journal_only_while_nothing_is_pending() -> None:
    calls: list[Sequence[object]] = []
    inner = tiny_root()

    def spy(state: Any, actions: Sequence[object]) -> Any:
        calls.append(tuple(actions))
        return reduce_all(inner, state, actions)

    reducer = optimistic(with_reduce_many(lambda s, a: inner(s, a), spy))
    start = reachable(reducer, [])
    plain = [Append("a", "1"), Append("a", "2"), Put("b", "x")]
    pending = Optimistic(Append("a", "p"), "t1")
    final = check_layer(reducer, start, [*plain, pending, *plain, TransactionReverted("t1")])
    assert dict(final.data) == {"a": "1212", "b": "x"}
    calls.clear()
    reduce_all(reducer, start, [*plain, pending, *plain, TransactionReverted("t1"), *plain])
    # Only the runs outside the pending window went to the inner reducer at once.
    assert calls == [tuple(plain), tuple(plain)]


def test_optimistic_falls_back_to_the_fold_when_the_inner_reducer_touches_the_journal() -> None:
    def meddler(journal: OptimisticJournal | None, act: Any) -> OptimisticJournal:
        journal = journal or EMPTY_JOURNAL
        if type(act) is Put and act.key == "j":
            return attrs.evolve(journal, commits=journal.commits + 1)
        return journal

    reducer = optimistic(combine_reducers(Root, data=data_slice, optimistic=meddler))
    start = reachable(reducer, [])
    final = check_layer(reducer, start, [Append("a", "1"), Put("j", "x"), Append("a", "2")])
    assert final.optimistic.commits == 1


@settings(max_examples=300, deadline=None)
@given(st.lists(aiops.domain_actions, max_size=12), st.lists(aiops.domain_actions, max_size=30))
def test_entity_slices(prefix: list[object], actions: list[object]) -> None:
    for reducer in (anomalies_reducer, detectors_reducer):
        check_layer(reducer, None, actions)
        check_layer(reducer, reachable(reducer, prefix), actions)


UPSERT_RUNS = st.lists(
    st.one_of(
        st.builds(AnomalyUpserted, aiops.anomalies),
        st.builds(DetectorUpserted, aiops.detectors),
        aiops.domain_actions,
    ),
    max_size=40,
)


@settings(max_examples=300, deadline=None)
@given(UPSERT_RUNS, UPSERT_RUNS)
def test_entity_slices_with_long_upsert_runs(prefix: list[object], actions: list[object]) -> None:
    for reducer in (anomalies_reducer, detectors_reducer, root_reducer):
        check_layer(reducer, reachable(reducer, prefix), actions)


def test_entity_slice_batch_of_only_unrelated_actions_keeps_the_slice() -> None:
    acts = [HealthUpdated(aiops.health()), Append("a", "1")]
    state = anomalies_reducer(None, Init())
    assert reduce_all(anomalies_reducer, state, acts) is state
    assert reduce_all(anomalies_reducer, None, acts) is state  # None -> the empty collection
    assert reduce_all(anomalies_reducer, None, []) is None


# -- the live reducer --------------------------------------------------------------------------

COMMANDS = st.one_of(
    st.builds(
        aiops.AcknowledgeAnomaly, aiops.IDS, st.just("cmd"), st.sampled_from([None, "alice"])
    ),
    st.builds(aiops.ResolveAnomaly, aiops.IDS, st.just("cmd"), st.just(aiops.T0 + 5)),
    st.builds(aiops.PauseDetector, aiops.DETECTOR_IDS, st.just("cmd")),
    st.builds(aiops.ResumeDetector, aiops.DETECTOR_IDS, st.just("cmd")),
)
ECHOES = st.one_of(
    st.builds(lambda a, c: AnomalyUpserted(a, meta=_meta("anomalies", c)), aiops.anomalies, CIDS),
    st.builds(lambda d, c: DetectorUpserted(d, meta=_meta("detectors", c)), aiops.detectors, CIDS),
)
LIVE_JOURNAL = st.one_of(
    st.builds(Optimistic, COMMANDS, TXNS),
    st.builds(
        TransactionCommitted,
        TXNS,
        st.one_of(st.none(), st.builds(AnomalyUpserted, aiops.anomalies)),
    ),
    st.builds(TransactionReverted, TXNS),
    st.builds(RevertPending),
    st.builds(ExpireTransactions, st.sampled_from([0.0, 5.0, 20.0, 40.0])),
)
CONNECTION = st.one_of(
    st.builds(Connected, st.sampled_from([1.0, 2.0]), st.just("c1")),
    st.builds(
        ConnectionLost, st.just(3.0), st.just(3000), st.just("gone"), st.just(1), st.just(4.0)
    ),
    st.builds(LatencyMeasured, st.just(5.0), st.sampled_from([0.01, 0.02])),
)
UPSERTS = st.builds(AnomalyUpserted, aiops.anomalies)
LIVE = st.one_of(
    UPSERTS, UPSERTS, UPSERTS, ECHOES, aiops.domain_actions, COUNTED, LIVE_JOURNAL, CONNECTION
)


@settings(max_examples=300, deadline=None)
@given(st.lists(LIVE, max_size=20), st.lists(LIVE, max_size=40))
def test_live_reducer(prefix: list[object], actions: list[object]) -> None:
    reducer = create_live_reducer(command_ttl=10.0, max_pending=2)
    check_layer(reducer, None, actions)
    check_layer(reducer, reachable(reducer, prefix), actions)


def test_live_reducer_frame_of_upserts_is_one_root_rebuild() -> None:
    reducer = create_live_reducer()
    start: AppState = reducer(None, Init())
    frame = [
        AnomalyUpserted(aiops.anomaly(f"x{i}", version=1), meta=_meta("anomalies", None, i))
        for i in range(50)
    ]
    final = check_layer(reducer, start, frame)
    assert len(final.anomalies) == 50
    got = reduce_all(reducer, start, frame)
    # One upsert_many: the collection's only link goes straight back to the start's.
    assert got.anomalies.changed_keys_since(start.anomalies) == {f"x{i}" for i in range(50)}
    link = got.anomalies._link
    assert link is not None
    assert link.prev is None
    assert reduce_all(reducer, got, frame) is got  # a re-delivered frame changes nothing


# -- the store ---------------------------------------------------------------------------------


@attrs.frozen
class Boom:
    """Raises in ``exploding``'s slice."""


def exploding(state: int | None, act: Any) -> int:
    if type(act) is Boom:
        raise ValueError("kaboom")
    if type(act) is int:
        return (state or 0) + act
    return state or 0


def counting(reducer: Reducer) -> tuple[Reducer, list[Sequence[object]]]:
    """``reducer`` with a ``reduce_many`` that records its calls and delegates."""
    calls: list[Sequence[object]] = []
    inner = reduce_many_of(reducer)
    assert inner is not None

    def many(state: Any, actions: Sequence[object]) -> Any:
        calls.append(actions)
        return inner(state, actions)

    return with_reduce_many(lambda s, a: reducer(s, a), many), calls


def test_store_applies_a_batch_with_one_reduce_many_call() -> None:
    reducer, calls = counting(combine_reducers(n=exploding))
    store = create_store(reducer)
    notified: list[object] = []
    store.subscribe(lambda: notified.append(store.state))
    store.dispatch_batch([1, 2, 3])
    assert store.state["n"] == 6
    assert calls == [(1, 2, 3)]
    assert len(notified) == 1
    store.dispatch_batch([4])  # a batch of one is one plain reducer call
    assert store.state["n"] == 10
    assert len(calls) == 1


def test_store_batch_whose_third_action_raises_names_it_and_changes_nothing() -> None:
    reducer, calls = counting(combine_reducers(n=exploding))
    store = create_store(reducer)
    store.dispatch(5)
    before = store.state
    notified: list[object] = []
    store.subscribe(lambda: notified.append(1))
    boom = Boom()
    with pytest.raises(ReducerError) as info:
        store.dispatch(Batch((1, 2, boom, 3)))
    assert info.value.action is boom
    assert isinstance(info.value.__cause__, ValueError)
    assert len(calls) == 1  # reduce_many raised first; the fold then found the culprit
    assert store.state is before
    assert notified == []


def test_store_uses_the_folds_state_when_only_reduce_many_raises(
    caplog: pytest.LogCaptureFixture,
) -> None:
    def broken(state: Any, actions: Sequence[object]) -> Any:
        raise RuntimeError("bug in reduce_many")

    plain = combine_reducers(n=exploding)
    store = create_store(with_reduce_many(lambda s, a: plain(s, a), broken))
    with caplog.at_level(logging.WARNING, logger="reactive_aiops.core.store"):
        store.dispatch_batch([1, 2, 3])
    assert store.state["n"] == 6
    assert "reduce_many raised but the fold did not" in caplog.text


def test_store_trusts_reduce_many_when_it_returns() -> None:
    # The contract says reduce_many may raise only where the fold raises, not that it must:
    # the store does not run the fold to double-check a result it was given.
    plain = combine_reducers(n=exploding)

    def lenient(state: Any, actions: Sequence[object]) -> Any:
        return fold(plain, state, [a for a in actions if type(a) is not Boom])

    store = create_store(with_reduce_many(lambda s, a: plain(s, a), lenient))
    store.dispatch_batch([1, Boom(), 2])
    assert store.state["n"] == 3
    with pytest.raises(ReducerError):
        store.dispatch(Boom())  # one action: the plain reducer, as before


def test_store_batch_through_the_live_reducer_is_logged_and_replayed_action_by_action() -> None:
    from reactive_aiops.core import MemoryLog, record_actions, replay

    log = MemoryLog()
    reducer = create_live_reducer()
    store = create_store(reducer, middleware=[record_actions(log)])
    frame = [AnomalyUpserted(aiops.anomaly(f"x{i}", version=i % 3)) for i in range(20)]
    store.dispatch_batch(frame)
    store.dispatch_batch([Optimistic(aiops.AcknowledgeAnomaly("x1", "cmd"), "t1"), *frame[:5]])
    replayed = replay(log, reducer)
    assert canon(replayed) == canon(store.state)
    assert len(store.state.anomalies) == 20
