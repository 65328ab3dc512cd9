"""The peer stack for the latency benchmark: what a Python user would assemble without us.

A plain ``websockets`` client that speaks the Centrifuge JSON protocol by hand, decodes each
frame with ``json.loads`` and dispatches every ``anomaly.upserted`` event into a python-redux
store; the "render" is an ``autorun`` on the anomaly map that builds the most-severe-first list
(the same view ``select_anomalies_by_severity`` gives the dashboard) and runs synchronously
inside ``dispatch``, as python-redux does without a scheduler. The reducer keeps the newest
version of each anomaly in a plain dict, copied per update (the usual immutable-update idiom).

python-redux is in the ``bench`` extra; importing this module without it raises ImportError.
"""

from __future__ import annotations

import asyncio
import json
import time
from array import array
from typing import TYPE_CHECKING, Any

from immutable import Immutable
from redux import BaseAction, InitAction, Store, StoreOptions
from websockets.asyncio.client import connect

if TYPE_CHECKING:
    from benchmarks.bench_latency import Run

__all__ = ["peer_receiver"]

_RANK = {"critical": 0, "high": 1, "medium": 2, "low": 3}


class PeerState(Immutable):
    anomalies: dict[str, dict[str, Any]]


class AnomalyUpserted(BaseAction):
    anomaly: dict[str, Any]


def reducer(state: PeerState | None, action: BaseAction) -> PeerState:
    if state is None or isinstance(action, InitAction):
        return PeerState(anomalies={})
    if isinstance(action, AnomalyUpserted):
        new = action.anomaly
        old = state.anomalies.get(new["id"])
        if old is not None and old["version"] >= new["version"]:
            return state  # a duplicate or an older version
        return state(anomalies={**state.anomalies, new["id"]: new})
    return state


def _anomalies(state: PeerState) -> dict[str, dict[str, Any]]:
    return state.anomalies


def _by_severity(anomaly: dict[str, Any]) -> tuple[int, float, str]:
    return (_RANK[anomaly["severity"]], anomaly["started_at"], anomaly["id"])


async def peer_receiver(
    url: str, ready: asyncio.Event, run: Run, stop: asyncio.Event, token: str
) -> None:
    """Receive like the bare loop, then dispatch and render through python-redux."""
    store = Store(reducer, StoreOptions(auto_init=True))
    pending = array("d")  # send ts of events dispatched but not yet rendered

    @store.autorun(_anomalies)
    def render(anomalies: dict[str, dict[str, Any]]) -> int:
        view = sorted(anomalies.values(), key=_by_severity)
        if pending:
            now = time.time()
            run.latencies.extend([now - ts for ts in pending])
            run.renders += 1
            del pending[:]
        return len(view)

    try:
        async with connect(url, max_size=None, compression=None) as ws:
            await ws.send(json.dumps({"id": 1, "connect": {"token": token, "name": "peer"}}))
            await ws.send(json.dumps({"id": 2, "subscribe": {"channel": "anomalies"}}))
            subscribed = False
            while not stop.is_set():
                try:
                    async with asyncio.timeout(0.05):
                        frame = await ws.recv()
                except TimeoutError:
                    continue
                assert isinstance(frame, str)
                run.frames += 1
                for line in frame.split("\n"):
                    if not line:
                        continue
                    message = json.loads(line)
                    if not message:
                        await ws.send("{}")  # pong
                        continue
                    if not subscribed and message.get("id") == 2:
                        subscribed = True
                        ready.set()
                    push = message.get("push")
                    if push is None or "pub" not in push:
                        continue
                    event = push["pub"]["data"]
                    if event.get("type") != "anomaly.upserted":
                        continue
                    pending.append(event["ts"])
                    store.dispatch(AnomalyUpserted(anomaly=event["data"]))
                    run.arrived(time.time())
                run.progressed()
    finally:
        store.clean_up()
