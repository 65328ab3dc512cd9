"""Action log: record then replay gives an equal state; bounded memory log; bad lines are typed."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import attrs
import hypothesis.strategies as st
import pytest
from core_middleware_helpers import Append, Put, Root, reducer, server
from hypothesis import given, settings

from reactive_aiops.core import Batch, ReducerError, action, create_store
from reactive_aiops.core.actionlog import (
    ActionLogError,
    JsonlLog,
    LogFormatError,
    LogRecord,
    MemoryLog,
    decode_record,
    encode_record,
    read_jsonl,
    record_actions,
    replay,
)
from reactive_aiops.core.dedupe import dedupe, dedupe_stats
from reactive_aiops.core.events import EventMeta, EventRoute, EventTable, ServerEvent, map_events
from reactive_aiops.core.optimistic import (
    Optimistic,
    RevertPending,
    TransactionCommitted,
    TransactionReverted,
    expire_transactions,
    optimistic,
)

LIVE = optimistic(dedupe_stats(reducer), ttl=5.0)


class Clock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


keys = st.sampled_from("ab")
texts = st.sampled_from(["x", "y", 'é\n"q'])
txns = st.sampled_from(["t1", "t2", "t3"])
metas = st.builds(
    EventMeta,
    channel=st.sampled_from(["c1", "c2"]),
    event_type=st.just("append"),
    event_id=st.none() | st.sampled_from(["e1", "e2", "e3"]),
    offset=st.none() | st.integers(0, 5),
    epoch=st.just("E"),
    command_id=st.none() | txns,
    sent_ts=st.none() | st.floats(0, 1e9),
)
domain = st.builds(Append, keys, texts) | st.builds(Put, keys, texts)
events = st.builds(Append, keys, texts, metas)
steps = st.one_of(
    domain,
    events,
    st.builds(Optimistic, domain, txns, st.none() | st.just(2.0)),
    st.builds(TransactionCommitted, txns, st.none() | domain),
    st.builds(TransactionReverted, txns, st.sampled_from(["rejected", "409"])),
    st.builds(RevertPending),
    st.builds(lambda actions: Batch(tuple(actions)), st.lists(events | domain, max_size=3)),
    st.floats(0.1, 4.0).map(lambda dt: ("advance", dt)),
)


def run_session(actions: list[Any], log: Any) -> Any:
    clock = Clock()
    store = create_store(
        LIVE,
        middleware=[
            dedupe(window=4),
            expire_transactions(now=clock),
            record_actions(log, now=clock),
        ],
    )
    for act in actions:
        if isinstance(act, tuple):
            clock.now += act[1]
        else:
            store.dispatch(act)
    return store.state


@settings(max_examples=120, deadline=None)
@given(st.lists(steps, max_size=40))
def test_record_then_replay_gives_an_equal_state(actions: list[Any]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "log.jsonl"
        memory = MemoryLog()
        with JsonlLog(path) as file_log:

            class Both:
                def encode(self, act: object) -> Any:
                    return (memory.encode(act), file_log.encode(act))

                def append(self, prepared: Any, ts: float, before: Any) -> None:
                    memory.append(prepared[0], ts, before)
                    file_log.append(prepared[1], ts, before)

            final = run_session(actions, Both())
        records = list(read_jsonl(path))
        assert [r.action for r in records] == [r.action for r in memory.records]
        assert replay(records, LIVE) == final
        assert replay(memory, LIVE) == final
        assert [r.seq for r in records] == list(range(1, len(records) + 1))


def test_records_round_trip_through_cattrs() -> None:
    nested = Optimistic(Append("k", "v", EventMeta("c", "t", offset=3, sent_ts=1.5)), "t1", 2.0)
    record = LogRecord(7, 12.25, Batch((nested, TransactionCommitted("t1", Put("k", "w")))))
    line = encode_record(record)
    assert decode_record(line) == record
    body = json.loads(line)
    assert body["action"]["type"] == "@@batch"
    assert body["action"]["data"]["actions"][0]["type"] == "Optimistic"


def test_memory_log_bounds_keep_replay_exact() -> None:
    log = MemoryLog(max_records=5, max_age=10.0)
    clock = Clock()
    store = create_store(reducer, middleware=[record_actions(log, now=clock)])
    for i in range(20):
        clock.now += 1.0 if i != 12 else 30.0  # a quiet spell: older records age out
        store.dispatch(Append("a", str(i % 10)))
    assert len(log) == 5
    assert log.trimmed == 15
    assert [r.seq for r in log.records] == [16, 17, 18, 19, 20]
    assert replay(log, reducer) == store.state
    store.dispatch(Put("a", ""))
    assert log.records[-1].action == Put("a", "")
    with pytest.raises(ValueError, match="positive"):
        MemoryLog(max_records=0)


def test_max_age_trims_by_record_time() -> None:
    log = MemoryLog(max_age=10.0)
    for ts in (0.0, 5.0, 10.0, 21.0):
        log.append(Append("a", "x"), ts, None)
    assert [r.ts for r in log.records] == [21.0]
    log.append(Append("a", "x"), 25.0, None)
    assert [r.ts for r in log.records] == [21.0, 25.0]


def test_unregistered_action_is_refused_before_it_changes_anything(tmp_path: Path) -> None:
    @attrs.frozen
    class NotRegistered:
        n: int

    with JsonlLog(tmp_path / "l.jsonl") as log:
        store = create_store(reducer, middleware=[record_actions(log)])
        before = store.state
        with pytest.raises(ActionLogError, match="register it with @action"):
            store.dispatch(Optimistic(NotRegistered(1), "t"))
        assert store.state is before
    assert (tmp_path / "l.jsonl").read_text() == ""


def test_unserializable_field_is_an_action_log_error() -> None:
    @action(name="test.log.Holder")
    class Holder:
        value: Any

    with pytest.raises(ActionLogError, match=r"test\.log\.Holder"):
        JsonlLog.encode(None, Holder({1, 2}))  # type: ignore[arg-type]


def test_rejected_action_is_not_recorded() -> None:
    def picky(state: Any, act: object) -> Any:
        if isinstance(act, Put):
            raise ValueError("no")
        return reducer(state, act)

    log = MemoryLog()
    store = create_store(picky, middleware=[record_actions(log)])
    store.dispatch(Append("a", "1"))
    with pytest.raises(ReducerError):
        store.dispatch(Put("a", "2"))
    assert [type(r.action) for r in log.records] == [Append]


BAD_LINES = [
    ("{not json", "not JSON"),
    ("[1, 2]", "expected a JSON object"),
    ('{"seq": 1, "ts": 0.0}', "action"),
    (
        '{"seq": "x", "ts": 0.0, "action": {"type": "test.mw.Put", "data": {"key": "a"}}}',
        "seq",
    ),
    (
        '{"seq": 1, "ts": 0.0, "action": {"type": "no.such.type", "data": {}}}',
        "unknown action type",
    ),
    ('{"seq": 1, "ts": 0.0, "action": {"type": "test.mw.Put", "data": {"key": "a"}}}', "text"),
    ('{"seq": 1, "ts": 0.0, "action": {"kind": "test.mw.Put"}}', "expected an action"),
]


@pytest.mark.parametrize(("line", "reason"), BAD_LINES)
def test_malformed_line_names_its_line_number(tmp_path: Path, line: str, reason: str) -> None:
    good = encode_record(LogRecord(1, 0.0, Put("a", "b")))
    path = tmp_path / "bad.jsonl"
    path.write_text(f"{good}\n\n{good}\n{line}\n{good}\n", encoding="utf-8")
    with pytest.raises(LogFormatError) as info:
        list(read_jsonl(path))
    assert info.value.line == 4
    assert reason in info.value.reason
    assert str(info.value).startswith(f"{path}:4: ")


def test_replay_through_decoding_middleware_when_recorded_outside() -> None:
    """A log placed outermost holds raw ServerEvents; replay through dedupe + map_events."""
    table = EventTable([EventRoute("c", "append", int, lambda n, meta: Append("k", str(n), meta))])
    log = MemoryLog()
    store = create_store(LIVE, middleware=[record_actions(log), dedupe(), map_events(table)])
    for offset, text in [(1, 1), (2, 2), (2, 2), (3, "x")]:
        store.dispatch(ServerEvent(EventMeta("c", "append", offset=offset), text))
    assert store.state.data["k"] == "12"
    assert store.state.dedupe.duplicates == 1
    assert store.state.dedupe.malformed == 1
    assert replay(log, LIVE, middleware=[dedupe(), map_events(table)]) == store.state
    assert replay(log, LIVE) != store.state  # the pure reducer alone cannot decode


def test_server_helper_events_survive_round_trip() -> None:
    act = server("a", "x", command_id="c1", offset=4, event_id="e")
    assert decode_record(encode_record(LogRecord(1, 1.0, act))).action == act
    assert Root() == replay([], reducer)
