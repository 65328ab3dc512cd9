"""P1-P2: where the client pipeline's time goes, stage by stage, without a network.

* P1: the cost of each stage for one ``anomaly.upserted`` publication (hot, in a loop): the
  ``json.loads`` floor, the wire decode of a frame, the sans-I/O protocol receive (its data
  decoded, or left raw as the bridge asks), the bridge's edge decode (envelope and payload to
  the domain action in one step, from the decoded data or from its JSON text: the live
  path), the slow path it replaces (``publication_action``, then the event table's decode), and
  the live reducer applying the upsert.
* P2: the whole client pipeline per event -- ``ClientProtocol.receive_text`` and the manager's
  delivery through the bridge, dedupe, event table, optimistic journal and reducers to the store
  and a ``select`` stream of the dashboard's anomaly list -- with 1, 10 and 50 publications per
  WebSocket frame (each frame is applied as one batch: one notification, one selector run),
  under the dashboard's garbage-collector policy (``ui.gc_policy.streaming_gc``, as in
  ``bench_latency``), and at one publication per frame also under CPython's default policy.

The latency benchmark (``bench_latency``) measures the same pipeline end to end over a socket;
this one says which stage to look at when that number moves.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Callable
from typing import Any

from benchmarks._harness import Row, time_per_op
from benchmarks._latency_server import _anomaly_event
from reactive_aiops.aiops.event_table import aiops_event_table
from reactive_aiops.aiops.live_store import create_live_reducer, create_live_store
from reactive_aiops.aiops.selectors import select_anomalies_by_severity
from reactive_aiops.core.actions import Init
from reactive_aiops.core.events import ServerEvent
from reactive_aiops.net.bridge import StoreBridge, publication_action
from reactive_aiops.net.client import WebSocketManager
from reactive_aiops.net.edge import EdgeDecoder
from reactive_aiops.protocol.client import ClientProtocol
from reactive_aiops.ui.gc_policy import streaming_gc
from reactive_aiops.wire import Publication, decode_publications_raw, decode_replies

__all__ = ["run"]

CHANNEL = "anomalies"


def _push_line(n: int) -> str:
    event = _anomaly_event(n)
    event["ts"] = time.time()
    return json.dumps({"push": {"channel": CHANNEL, "pub": {"data": event, "offset": n}}})


def _frames(start: int, events: int, per_frame: int) -> list[str]:
    lines = [_push_line(n) for n in range(start, start + events)]
    return ["\n".join(lines[i : i + per_frame]) for i in range(0, events, per_frame)]


def _connect(protocol: ClientProtocol, process: Callable[[], object]) -> None:
    """Drive ``protocol`` to CONNECTED with ``anomalies`` subscribed at offset 0."""
    now = time.time()
    protocol.start(now)
    protocol.transport_opening(now)
    protocol.transport_opened(now)
    process()
    protocol.receive_text('{"id":1,"connect":{"client":"bench","version":"0"}}', now)
    process()
    protocol.receive_text(
        '{"id":2,"subscribe":{"recoverable":true,"epoch":"e","offset":0,"positioned":true}}', now
    )
    process()


def _stages(quick: bool) -> list[Row]:
    ops, repeats = (2_000, 5) if quick else (20_000, 9)
    group = "P1 per-event cost by stage (hot loop)"
    line = _push_line(1)
    pub = Publication(data=json.loads(line)["push"]["pub"]["data"], offset=1)
    table = aiops_event_table()
    server_event = publication_action(CHANNEL, pub, "e")
    assert isinstance(server_event, ServerEvent)
    reducer = create_live_reducer()
    # Distinct versions so every upsert changes the state (as a live stream does).
    upserts = [
        table.decode(e.meta, e.data)
        for e in (
            publication_action(CHANNEL, Publication(data=_anomaly_event(n), offset=n), "e")
            for n in range(1, ops + 1)
        )
        if isinstance(e, ServerEvent)
    ]

    protocol = ClientProtocol(token="t")
    _connect(protocol, protocol.events_received)
    offset = [0]

    def receive(n: int) -> None:
        base = offset[0]
        for i in range(n):
            pub_json = f'{{"data":{{}},"offset":{base + i + 1}}}'
            protocol.receive_text(f'{{"push":{{"channel":"{CHANNEL}","pub":{pub_json}}}}}', 0.0)
        protocol.events_received()
        offset[0] = base + n

    # The same with the live event as data, the data decoded (as any consumer gets it) and
    # left raw (as the bridge asks for it, to decode it straight into the domain action).
    data_json = json.dumps(json.loads(line)["push"]["pub"]["data"])
    full = {raw: ClientProtocol(token="t", raw_publications=raw) for raw in (False, True)}
    for each in full.values():
        each.subscribe(CHANNEL, 0.0)  # the push's channel, subscribed at offset 0 (_connect)
        _connect(each, each.events_received)
    full_offset = {False: 0, True: 0}

    def receive_event(raw: bool) -> Callable[[int], None]:
        target = full[raw]

        def run(n: int) -> None:
            base = full_offset[raw]
            for i in range(n):
                pub_json = f'{{"data":{data_json},"offset":{base + i + 1}}}'
                target.receive_text(f'{{"push":{{"channel":"{CHANNEL}","pub":{pub_json}}}}}', 0.0)
            target.events_received()
            full_offset[raw] = base + n

        return run

    def reduce(n: int) -> None:
        state = reducer(None, Init())
        for act in upserts[:n]:
            state = reducer(state, act)

    def loads(n: int) -> None:
        for _ in range(n):
            json.loads(line)

    def wire(n: int) -> None:
        for _ in range(n):
            decode_replies(line)

    def bridge(n: int) -> None:
        for _ in range(n):
            publication_action(CHANNEL, pub, "e")

    edge_decoder = EdgeDecoder(table)

    def edge(n: int) -> None:
        for _ in range(n):
            edge_decoder(CHANNEL, pub, "e")

    raws = decode_publications_raw(line)
    assert raws is not None
    raw_data = raws[0][2]

    def edge_raw(n: int) -> None:
        for _ in range(n):
            edge_decoder.decode_raw(CHANNEL, 1, raw_data, "e")

    def decode(n: int) -> None:
        for _ in range(n):
            table.decode(server_event.meta, server_event.data)

    stages: list[tuple[str, Callable[[int], None]]] = [
        ("json.loads of the line (the floor)", loads),
        ("wire: decode_replies (frame of one push)", wire),
        ("protocol: receive_text (in-order push, no data)", receive),
        ("protocol: receive_text (in-order anomaly push, data decoded)", receive_event(False)),
        ("protocol: receive_text (in-order anomaly push, data raw)", receive_event(True)),
        ("edge: EdgeDecoder (envelope + payload -> AnomalyUpserted)", edge),
        ("edge: decode_raw (the same from the data's JSON text)", edge_raw),
        ("slow path 1/2: publication_action (envelope -> ServerEvent)", bridge),
        ("slow path 2/2: event table decode (payload -> AnomalyUpserted)", decode),
        ("live reducer: one AnomalyUpserted", reduce),
    ]
    return [
        Row(group, name, "us", time_per_op(op, ops=ops, repeats=repeats)) for name, op in stages
    ]


async def _whole(per_frame: int, events: int, repeats: int) -> tuple[float, ...]:
    manager = WebSocketManager("ws://127.0.0.1:9/unused", token="t")
    bridge = StoreBridge(manager, channels=(CHANNEL,))
    store = create_live_store(middleware=[bridge.middleware])
    await bridge.start()
    # A view keeps the newest value only, as a widget does: a list of every view (200 anomalies
    # each) kept alive would make the collector's work part of the figure.
    seen: list[Any] = [None]
    subscription = store.select(select_anomalies_by_severity).subscribe(
        lambda view: seen.__setitem__(0, view)
    )
    protocol = manager._protocol  # the pump's own input, fed here without a socket
    process = manager._process
    _connect(protocol, process)
    # The bridge loads the channel on its first subscribe: answer its aiops.snapshot (id 3)
    # with an empty state at offset 0, so what follows is the live path being measured.
    for _ in range(5):  # the loader's task sends the RPC within its first turns
        await asyncio.sleep(0)
    assert protocol._inflight, "the bridge did not ask for its snapshot"
    protocol.receive_text(
        '{"id":3,"rpc":{"data":{"detectors":[],"anomalies":[],"health":null,'
        '"positions":{"anomalies":{"offset":0,"epoch":"e"}}}}}',
        time.time(),
    )
    process()
    await asyncio.wait_for(bridge.wait_loaded(), 5)
    samples = []
    start = 1
    try:
        for _ in range(repeats + 1):  # the first pass warms up
            frames = _frames(start, events, per_frame)
            start += events
            began = time.perf_counter_ns()
            for frame in frames:
                protocol.receive_text(frame, time.time())
                process()
            samples.append((time.perf_counter_ns() - began) / 1000 / events)
    finally:
        subscription.dispose()
        await bridge.aclose()
    assert len(store.state.anomalies) > 0, "the pipeline applied nothing"
    assert seen[0] is not None, "no view"
    assert len(seen[0]) == len(store.state.anomalies), "a stale view"
    return tuple(samples[1:])


def _pipeline(quick: bool) -> list[Row]:
    events, repeats = (1_000, 3) if quick else (10_000, 5)
    group = "P2 whole client pipeline per event (no network)"
    rows = []
    # Under the garbage-collector policy the dashboard runs with (ui.gc_policy), as the latency
    # benchmark does; one row with CPython's default policy shows what the policy is worth.
    for per_frame, gc_policy in ((1, "default"), (1, "streaming"), (10, "streaming"),
                                 (50, "streaming")):
        policy = streaming_gc() if gc_policy == "streaming" else contextlib.nullcontext()
        with policy:
            samples = asyncio.run(_whole(per_frame, events, repeats))
        name = f"{per_frame} publication(s) per frame"
        rows.append(
            Row(
                group,
                name if gc_policy == "streaming" else f"{name}, CPython's default GC",
                "us",
                samples,
                f"{1e6 / min(samples):,.0f} events/s on one core at best",
            )
        )
    return rows


def run(quick: bool) -> list[Row]:
    """Stage costs (P1), then the whole pipeline by frame size (P2)."""
    return _stages(quick) + _pipeline(quick)


if __name__ == "__main__":
    from benchmarks._harness import render

    print(render(run(quick=True)))
