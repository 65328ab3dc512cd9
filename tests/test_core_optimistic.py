"""The optimistic journal: rebase semantics, settlement in any order, TTL, bounds and costs."""

from __future__ import annotations

from typing import Any

import attrs
import hypothesis.strategies as st
import pytest
from core_middleware_helpers import (
    Append,
    CountingReducer,
    Put,
    Root,
    fold,
    reducer,
    server,
)
from hypothesis import HealthCheck, settings
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    consumes,
    initialize,
    invariant,
    rule,
)
from reactivex.testing import TestScheduler

from reactive_aiops.core import Batch, create_store
from reactive_aiops.core.events import EventMeta, MalformedEvent, ServerEvent, UnknownEvent
from reactive_aiops.core.optimistic import (
    EMPTY_JOURNAL,
    ExpireTransactions,
    FieldLens,
    Optimistic,
    RevertPending,
    TransactionCommitted,
    TransactionReverted,
    expire_transactions,
    optimistic,
)

TTL = 10.0


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


# -- the model: a direct reading of the definition ---------------------------------------------


@attrs.define
class Model:
    confirmed: list[object] = attrs.Factory(list)
    pending: list[tuple[str, object]] = attrs.Factory(list)
    started: dict[str, float] = attrs.Factory(dict)
    committed: set[str] = attrs.Factory(set)
    reverted: dict[str, tuple[str, tuple[object, ...]]] = attrs.Factory(dict)

    def txn_order(self) -> list[str]:
        return list(self.started)

    def actions_of(self, txn: str) -> tuple[object, ...]:
        return tuple(a for t, a in self.pending if t == txn)

    def drop(self, txn: str) -> None:
        self.pending = [(t, a) for t, a in self.pending if t != txn]
        del self.started[txn]

    def revert(self, txn: str, reason: str) -> None:
        self.reverted[txn] = (reason, self.actions_of(txn))
        self.drop(txn)

    def expire(self, now: float) -> None:
        for txn, start in list(self.started.items()):
            if start + TTL <= now:
                self.revert(txn, "timeout")

    def visible(self) -> Root:
        return fold([a for _, a in self.pending], fold(self.confirmed))


class OptimisticMachine(RuleBasedStateMachine):
    pending_txns = Bundle("pending_txns")

    @initialize()
    def setup(self) -> None:
        self.clock = Clock()
        self.model = Model()
        self.counter = 0
        enhanced = optimistic(reducer, ttl=TTL, keep_reverted=10_000, keep_committed=10_000)
        self.store = create_store(enhanced, middleware=[expire_transactions(now=self.clock)])

    def fresh(self) -> str:
        self.counter += 1
        return f"t{self.counter}"

    # Every rule dispatches once through the expiry middleware, which first expires due txns.
    def dispatch(self, act: object) -> None:
        self.model.expire(self.clock.now)
        self.store.dispatch(act)

    @rule(key=st.sampled_from("ab"), text=st.sampled_from(["x", "y", "z"]))
    def server_event(self, key: str, text: str) -> None:
        self.dispatch(server(key, text))
        self.model.confirmed.append(server(key, text))

    @rule(
        target=pending_txns,
        key=st.sampled_from("ab"),
        text=st.sampled_from(["1", "2"]),
        put=st.booleans(),
    )
    def begin(self, key: str, text: str, put: bool) -> str:
        txn = self.fresh()
        act = Put(key, text) if put else Append(key, text)
        self.dispatch(Optimistic(act, txn))
        self.model.started[txn] = self.clock.now
        self.model.pending.append((txn, act))
        return txn

    @rule(txn=pending_txns, key=st.sampled_from("ab"), text=st.sampled_from(["3", "4"]))
    def extend(self, txn: str, key: str, text: str) -> None:
        self.model.expire(self.clock.now)
        if txn not in self.model.started:
            return  # already settled: a new Optimistic would begin a fresh transaction
        self.dispatch(Optimistic(Append(key, text), txn))
        self.model.pending.append((txn, Append(key, text)))

    @rule(txn=consumes(pending_txns), with_result=st.booleans())
    def commit(self, txn: str, with_result: bool) -> None:
        result = Put("r", txn) if with_result else None
        self.model.expire(self.clock.now)
        self.dispatch(TransactionCommitted(txn, result))
        m = self.model
        if txn in m.started:
            m.confirmed.extend([result] if result else m.actions_of(txn))
            m.drop(txn)
            m.committed.add(txn)
        elif txn in m.committed:
            pass  # settled already: the change is confirmed once
        elif txn in m.reverted:
            # A late commit: the server did it after all (e.g. after our timeout).
            m.confirmed.extend([result] if result else m.reverted.pop(txn)[1])
            m.reverted.pop(txn, None)
            m.committed.add(txn)
        elif result is not None:
            m.confirmed.append(result)  # an id we never saw: the server's result is still truth
            m.committed.add(txn)

    @rule(txn=consumes(pending_txns), key=st.sampled_from("ab"))
    def echo(self, txn: str, key: str) -> None:
        """The server's event caused by the command: it confirms (or follows) the transaction."""
        event = server(key, f"<{txn}>", command_id=txn)
        self.dispatch(event)
        m = self.model
        if txn in m.started:
            m.drop(txn)
        elif txn in m.committed:
            return  # absorbed: the change is already confirmed once
        m.confirmed.append(event)
        m.committed.add(txn)  # later commits or echoes of it are absorbed

    @rule(txn=consumes(pending_txns), reason=st.sampled_from(["rejected", "409"]))
    def revert(self, txn: str, reason: str) -> None:
        self.model.expire(self.clock.now)
        if txn in self.model.started:
            self.model.revert(txn, reason)
        self.dispatch(TransactionReverted(txn, reason))

    @rule()
    def lose_connection(self) -> None:
        self.model.expire(self.clock.now)
        for txn in list(self.model.started):
            self.model.revert(txn, "connection_lost")
        self.dispatch(RevertPending())

    @rule(dt=st.sampled_from([0.5, 3.0, 9.99, 10.0, 25.0]))
    def advance(self, dt: float) -> None:
        self.clock.now += dt
        self.dispatch(ExpireTransactions(self.clock.now))

    @rule(txn=st.sampled_from([f"t{i}" for i in range(1, 8)]), late_result=st.booleans())
    def late_settlement(self, txn: str, late_result: bool) -> None:
        """Commit an id that may be reverted, committed, pending or unknown."""
        self.commit(txn, late_result)

    @rule(txn=st.sampled_from([f"t{i}" for i in range(1, 8)]), key=st.sampled_from("ab"))
    def late_echo(self, txn: str, key: str) -> None:
        """Echo an id that may be pending, committed (a second channel), reverted or unused."""
        if txn in self.model.started or txn in self.model.committed or txn in self.model.reverted:
            self.echo(txn, key)

    @invariant()
    def visible_is_confirmed_plus_pending(self) -> None:
        state = self.store.state
        assert state.data == self.model.visible().data
        journal = state.optimistic
        assert [t.txn_id for t in journal.transactions] == self.model.txn_order()
        assert [t.started_at for t in journal.transactions] == list(self.model.started.values())
        if journal.steps:
            assert journal.base.optimistic is EMPTY_JOURNAL
            assert journal.base.data == fold(self.model.confirmed).data
        else:
            assert journal.base is None
        for txn, (reason, _) in self.model.reverted.items():
            assert journal.revert_reason(txn) == reason

    def teardown(self) -> None:
        if not hasattr(self, "store"):
            return
        self.store.dispatch(RevertPending("teardown"))
        state = self.store.state
        assert state.data == fold(self.model.confirmed).data
        assert state.optimistic.base is None
        assert state.optimistic.steps == ()


OptimisticMachine.TestCase.settings = settings(
    max_examples=150,
    stateful_step_count=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestOptimisticStateful = OptimisticMachine.TestCase


# -- worked examples ---------------------------------------------------------------------------


def make(**kwargs: Any) -> Any:
    return create_store(optimistic(reducer, **kwargs))


def test_revert_restores_state_as_if_never_dispatched_keeping_server_events() -> None:
    store = make()
    store.dispatch(Optimistic(Append("a", "1"), "t1"))
    store.dispatch(server("a", "s"))
    store.dispatch(Optimistic(Append("a", "2"), "t2"))
    # Rebase: the server event lands underneath; pending "1", "2" stay on top, in order.
    assert store.state.data["a"] == "s12"
    store.dispatch(TransactionReverted("t1", "rejected: 409 conflict"))
    assert store.state.data["a"] == "s2"
    assert store.state.optimistic.revert_reason("t1") == "rejected: 409 conflict"
    store.dispatch(TransactionCommitted("t2"))
    assert store.state.data["a"] == "s2"
    assert store.state.optimistic.base is None


def test_server_event_lands_underneath_pending_change() -> None:
    store = make()
    store.dispatch(Optimistic(Put("a", "mine"), "t1"))
    store.dispatch(server("a", "theirs"))
    assert store.state.data["a"] == "mine"  # the pending change stays on top
    assert store.state.optimistic.base.data["a"] == "theirs"
    store.dispatch(TransactionReverted("t1"))
    assert store.state.data["a"] == "theirs"


def test_commit_and_echo_apply_the_change_once_whichever_comes_first() -> None:
    for order in ("commit-first", "echo-first"):
        store = make()
        store.dispatch(Optimistic(Append("a", "+"), "cmd-1"))
        settle = [TransactionCommitted("cmd-1"), server("a", "+", command_id="cmd-1")]
        if order == "echo-first":
            settle.reverse()
        for act in settle:
            store.dispatch(act)
        assert store.state.data["a"] == "+", order
        assert store.state.optimistic.echoes_absorbed == (1 if order == "commit-first" else 0)
        assert store.state.optimistic.commits == 1


def test_commit_result_replaces_the_optimistic_guess() -> None:
    store = make()
    store.dispatch(Optimistic(Put("a", "guess"), "t1"))
    store.dispatch(TransactionCommitted("t1", result=Put("a", "server")))
    assert store.state.data["a"] == "server"


def test_command_action_with_a_command_id_field_is_not_an_echo() -> None:
    @attrs.frozen
    class Acknowledge:
        command_id: str

    store = make()
    store.dispatch(Optimistic(Append("a", "1"), "c1"))
    store.dispatch(Acknowledge("c1"))
    assert store.state.optimistic.is_pending("c1")


def test_identity_preserved_when_nothing_changes() -> None:
    store = make()
    before = store.state
    store.dispatch(object())
    assert store.state is before
    store.dispatch(Optimistic(Append("a", "1"), "t1"))
    with_pending = store.state
    store.dispatch(object())
    assert store.state is with_pending
    store.dispatch(TransactionReverted("unknown"))
    assert store.state is with_pending


def test_server_event_costs_pending_count_not_history() -> None:
    counting = CountingReducer()
    store = create_store(optimistic(counting))
    for i in range(500):
        store.dispatch(server("h", str(i % 10)))
    for i in range(5):
        store.dispatch(Optimistic(Append("a", str(i)), f"t{i}"))
    counting.calls = 0
    store.dispatch(server("b", "x"))
    assert counting.calls == 1 + 5
    counting.calls = 0
    store.dispatch(TransactionReverted("t2"))
    assert counting.calls == 4


def test_ttl_expiry_through_middleware_and_virtual_scheduler() -> None:
    scheduler = TestScheduler()
    store = create_store(
        optimistic(reducer, ttl=15.0),
        middleware=[expire_transactions(now=lambda: scheduler.clock, scheduler=scheduler)],
    )
    scheduler.advance_to(100.0)
    store.dispatch(Optimistic(Append("a", "1"), "t1"))
    assert store.state.optimistic.pending("t1").started_at == 100.0
    scheduler.advance_to(114.9)
    assert store.state.data["a"] == "1"
    scheduler.advance_to(115.0)
    assert "a" not in store.state.data
    assert store.state.optimistic.revert_reason("t1") == "timeout"
    assert store.state.optimistic.reverted[-1].at == 115.0


def test_per_transaction_ttl_and_stamping_by_first_clock_reading() -> None:
    store = make(ttl=15.0)
    store.dispatch(Optimistic(Append("a", "1"), "t1", ttl=2.0))
    assert store.state.optimistic.pending("t1").started_at is None
    assert store.state.optimistic.next_deadline == float("-inf")
    store.dispatch(ExpireTransactions(50.0))  # stamps, does not expire
    assert store.state.optimistic.is_pending("t1")
    store.dispatch(ExpireTransactions(52.0))
    assert not store.state.optimistic.is_pending("t1")


def test_bounded_bookkeeping() -> None:
    store = make(max_pending=3, keep_reverted=2, keep_committed=2)
    for i in range(5):
        store.dispatch(Optimistic(Append("a", str(i)), f"t{i}"))
    journal = store.state.optimistic
    assert [t.txn_id for t in journal.transactions] == ["t2", "t3", "t4"]
    assert [(r.txn_id, r.reason) for r in journal.reverted] == [
        ("t0", "overflow"),
        ("t1", "overflow"),
    ]
    assert store.state.data["a"] == "234"
    for i in range(2, 5):
        store.dispatch(TransactionCommitted(f"t{i}"))
    assert store.state.optimistic.committed == ("t3", "t4")


def test_batch_with_optimistic_actions_and_dict_root() -> None:
    def dict_reducer(state: dict[str, Any] | None, act: object) -> dict[str, Any]:
        state = state if state is not None else {"n": 0}
        if isinstance(act, Append):
            return {**state, "n": state["n"] + 1}
        return state

    store = create_store(
        optimistic(dict_reducer, field="opt"), middleware=[expire_transactions(now=lambda: 5.0)]
    )
    store.dispatch_batch([Optimistic(Append("a", "1"), "t1"), Optimistic(Append("a", "2"), "t1")])
    assert store.state["n"] == 2
    assert store.state["opt"].pending("t1").started_at == 5.0
    store.dispatch(TransactionReverted("t1"))
    assert store.state["n"] == 0


def test_bad_configuration_and_bad_field() -> None:
    with pytest.raises(ValueError, match="positive"):
        optimistic(reducer, ttl=0)
    with pytest.raises(TypeError, match=r"holding an OptimisticJournal \(found a Map\)"):
        FieldLens("data").get(Root())
    enhanced = optimistic(reducer, field="journal")
    with pytest.raises(TypeError, match=r"needs a field 'journal'.*found no such field"):
        enhanced(Root(), Optimistic(Append("a", "1"), "t"))


def test_composes_with_other_middleware_in_either_order() -> None:
    seen: list[str] = []

    def spy(api: Any) -> Any:
        def wrap(next_: Any) -> Any:
            def dispatch(act: object) -> Any:
                seen.append(type(act).__name__)
                return next_(act)

            return dispatch

        return wrap

    clock = Clock()
    for chain in ([spy, expire_transactions(now=clock)], [expire_transactions(now=clock), spy]):
        seen.clear()
        store = create_store(optimistic(reducer, ttl=1.0), middleware=chain)
        store.dispatch(Optimistic(Append("a", "1"), "t1"))
        clock.now += 1.0
        store.dispatch(server("b", "x"))
        assert "a" not in store.state.data
        assert seen.count("ExpireTransactions") == 2
        clock.now = 0.0


def test_batch_passes_through_unchanged() -> None:
    store = make()
    store.dispatch(Batch((server("a", "1"), server("a", "2"))))
    assert store.state.data["a"] == "12"


def test_undecoded_events_do_not_confirm_a_transaction() -> None:
    store = make()
    store.dispatch(Optimistic(Append("a", "1"), "c1"))
    meta = EventMeta("anomalies", "anomaly.upserted", version=2, command_id="c1")
    store.dispatch(UnknownEvent(meta, {}, "newer"))
    store.dispatch(MalformedEvent(meta, {}, "bad"))
    store.dispatch(ServerEvent(meta, {}))
    assert store.state.optimistic.is_pending("c1")
    assert store.state.data["a"] == "1"


def test_pending_action_that_fails_on_the_new_base_is_reverted_not_the_event() -> None:
    def strict(state: Root | None, act: object) -> Root:
        new = reducer(state, act)
        if isinstance(act, Append) and act.meta is None and "lock" in new.data:
            raise ValueError(f"{act.key} is locked")
        return new

    store = create_store(optimistic(strict))
    store.dispatch(Optimistic(Append("a", "1"), "t1"))
    store.dispatch(Optimistic(Put("b", "2"), "t2"))
    store.dispatch(server("lock", "!"))
    assert dict(store.state.data) == {"lock": "!", "b": "2"}
    journal = store.state.optimistic
    assert journal.revert_reason("t1") == "conflict: ValueError: a is locked"
    assert [t.txn_id for t in journal.transactions] == ["t2"]


def test_expiry_timer_follows_the_earliest_deadline() -> None:
    scheduler = TestScheduler()
    store = create_store(
        optimistic(reducer, ttl=10.0),
        middleware=[expire_transactions(now=lambda: scheduler.clock, scheduler=scheduler)],
    )
    ticks: list[float] = []
    store.actions.subscribe(
        lambda a: ticks.append(a.now) if type(a) is ExpireTransactions else None
    )
    store.dispatch(Optimistic(Append("a", "1"), "t1"))  # deadline 10
    scheduler.advance_to(5.0)
    store.dispatch(Optimistic(Append("a", "2"), "t2"))  # deadline 15
    store.dispatch(TransactionCommitted("t1"))  # the timer for 10 is no longer wanted
    scheduler.advance_to(14.0)
    assert ticks == [0.0, 5.0]  # only the readings taken as each transaction began
    assert store.state.data["a"] == "12"
    scheduler.advance_to(15.0)
    assert ticks == [0.0, 5.0, 15.0]
    assert store.state.data["a"] == "1"
    assert store.state.optimistic.revert_reason("t2") == "timeout"
    scheduler.advance_to(100.0)
    assert ticks == [0.0, 5.0, 15.0]  # nothing pending: no timer
