"""Command bookkeeping: outbox order and bound, deadlines, requeue."""

from __future__ import annotations

from reactive_aiops.protocol.calls import Calls
from reactive_aiops.wire import RPCRequest


def test_outbox_is_fifo_and_bounded() -> None:
    calls = Calls(outbox_size=2)
    keys = [calls.new_key() for _ in range(3)]
    for n, key in enumerate(keys):
        calls.add(key, RPCRequest(method=str(n)), deadline=10.0)
    assert calls.queue(keys[0])
    assert calls.queue(keys[1])
    assert not calls.queue(keys[2])
    assert calls.pop(keys[2]) is None  # a refused command is forgotten
    assert [k for k, _ in calls.drain_outbox()] == keys[:2]


def test_expiry_removes_from_the_outbox_and_skips_finished_calls() -> None:
    calls = Calls(outbox_size=10)
    a, b, c = calls.new_key(), calls.new_key(), calls.new_key()
    calls.add(a, RPCRequest(), 5.0)
    calls.queue(a)
    calls.add(b, RPCRequest(), 3.0).wire_id = 7
    calls.add(c, RPCRequest(), 4.0)
    calls.queue(c)
    assert calls.pop(c) is not None
    assert calls.next_deadline() == 3.0
    assert [k for k, _ in calls.expire(4.5)] == [b]
    assert calls.next_deadline() == 5.0
    assert [k for k, _ in calls.expire(5.0)] == [a]
    assert list(calls.drain_outbox()) == []
    assert calls.next_deadline() is None


def test_requeue_puts_in_flight_calls_first_in_order() -> None:
    calls = Calls(outbox_size=1)
    a, b, c = calls.new_key(), calls.new_key(), calls.new_key()
    calls.add(a, RPCRequest(), 9).wire_id = 1
    calls.add(b, RPCRequest(), 9).wire_id = 2
    calls.add(c, RPCRequest(), 9)
    calls.queue(c)
    calls.requeue_front([a, b])
    drained = list(calls.drain_outbox())
    assert [k for k, _ in drained] == [a, b, c]
    assert all(call.wire_id == 0 for _, call in drained)
    assert calls.clear() == [a, b, c]
