"""Shared harness: server and Redis processes, an HTTP publisher, a live client, the figures.

Counting follows tests/test_net_reliability.py: an event is *published* when the publish API
answered 200 (publishers retry with the same ``idempotency_key`` until it does); *applied* when
the live store's reducer saw it (the store's actions, after dedupe). Per channel, against the
publish order: *lost* = published, never applied; *duplicated* = applied more than once;
*out of order* = applied after an event published later than it.

The processes live in ``chaos._procs``; their names are re-exported here so a scenario imports
from one place.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Sequence
from typing import Any

import attrs
from reactivex import abc

from chaos._procs import (
    WS_PATH,
    RedisProcess,
    ScenarioError,
    Secrets,
    ServerProcess,
    free_port,
    rss_mb,
    socket_count,
    wait_until,
    workspace,
)
from reactive_aiops.aiops.live_store import create_live_store
from reactive_aiops.aiops.state import AppState
from reactive_aiops.core import Store
from reactive_aiops.core.connection import Connected, ConnectionLost, ResyncRequired
from reactive_aiops.core.events import event_meta
from reactive_aiops.core.optimistic import TransactionReverted
from reactive_aiops.net.bridge import StoreBridge
from reactive_aiops.net.client import WebSocketManager
from reactive_aiops.protocol import CloseTransport, Subscribed
from reactive_aiops.protocol.backoff import BackoffPolicy
from reactive_aiops.protocol.config import ClientConfig

# -- the publish API ---------------------------------------------------------------------------


async def http_post(port: int, path: str, body: bytes, headers: dict[str, str],
                    within: float = 3.0) -> tuple[int, dict[str, Any]]:
    """One HTTP/1.1 POST on a new connection (the server closes it after the response)."""
    head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    request = (f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
               f"Content-Length: {len(body)}\r\n{head}\r\n").encode() + body
    async with asyncio.timeout(within):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            writer.write(request)
            raw = await reader.read()
        finally:
            writer.close()
    status_line, _, rest = raw.partition(b"\r\n")
    parts = status_line.split(b" ")
    if len(parts) < 2 or not parts[1].isdigit():
        raise ConnectionError("no HTTP response")
    _, _, payload = rest.partition(b"\r\n\r\n")
    return int(parts[1]), json.loads(payload or b"{}")


def anomaly_event(seq: int, tag: str, distinct: int = 100) -> dict[str, Any]:
    """An ``anomaly.upserted`` envelope whose id ``tag-seq`` names it; ``distinct`` anomaly ids
    are reused round-robin."""
    data = {"id": f"{tag}-a{seq % distinct}", "detector_id": "d1", "metric": "cpu",
            "severity": "high", "score": 9.5, "value": 97.0, "started_at": 1.0, "state": "open",
            "version": seq + 1, "updated_at": 1.0, "resolved_at": None,
            "acknowledged_by": None}
    return {"type": "anomaly.upserted", "v": 1, "id": f"{tag}-{seq}", "ts": 0.0, "data": data}


def detector_event(seq: int, tag: str) -> dict[str, Any]:
    """A ``detector.upserted`` envelope (for the ``detectors`` channel)."""
    data = {"id": f"{tag}-d{seq % 10}", "name": "d", "metric": "cpu", "status": "active",
            "updated_at": 1.0, "version": seq + 1}
    return {"type": "detector.upserted", "v": 1, "id": f"{tag}-{seq}", "ts": 0.0, "data": data}


def health_event(seq: int, tag: str) -> dict[str, Any]:
    """A ``health.updated`` envelope."""
    data = {"status": "ok", "events_per_second": float(seq), "open_anomalies": 0,
            "detectors_active": 1, "detectors_error": 0, "updated_at": 1.0}
    return {"type": "health.updated", "v": 1, "id": f"{tag}-{seq}", "ts": 0.0, "data": data}


EVENT_MAKERS: dict[str, Callable[[int, str], dict[str, Any]]] = {
    "anomalies": anomaly_event, "detectors": detector_event, "health": health_event}


class Publisher:
    """Publishes through ``POST /api/publish``; retries with the same idempotency key until 200.

    ``port`` is read before every attempt, so a scenario can point it at another node.
    ``published[channel]`` lists accepted event ids in the order they were accepted.
    """

    def __init__(self, keys: Secrets, port: Callable[[], int], tag: str,
                 distinct_anomalies: int = 100) -> None:
        self.keys = keys
        self.distinct = distinct_anomalies
        self.port = port
        self.tag = tag
        self.published: dict[str, list[str]] = {}
        self.retries = 0
        self.statuses: dict[int, int] = {}
        #: event id -> (epoch, offset) the publish API answered
        self.positions: dict[str, tuple[str, Any]] = {}
        #: (monotonic time, HTTP status or 0 for no answer) of every attempt
        self.status_log: list[tuple[float, int]] = []
        #: held by :meth:`stream` around each publish; hold it to publish a burst in between
        #: without interleaving (so acceptance order stays publish order)
        self.lock = asyncio.Lock()
        self._seq = 0

    async def publish(self, channel: str = "anomalies", patience: float = 60.0,
                      pad: int = 0) -> str:
        """Publish the next event on ``channel``; returns its id once accepted. ``pad``: make
        an anomaly's ``metric`` that many characters longer (big frames)."""
        seq = self._seq
        self._seq += 1
        event = (anomaly_event(seq, self.tag, self.distinct) if channel == "anomalies"
                 else EVENT_MAKERS[channel](seq, self.tag))
        if pad and channel == "anomalies":
            event["data"]["metric"] += "x" * pad
        key = f"{self.tag}-k{seq}"
        body = json.dumps({"channel": channel, "data": event, "idempotency_key": key}).encode()
        headers = {"Authorization": f"apikey {self.keys.api_key}"}
        deadline = time.monotonic() + patience
        while True:
            try:
                status, reply = await http_post(self.port(), "/api/publish", body, headers)
            except (OSError, TimeoutError, ConnectionError, ValueError):
                status, reply = 0, {}
            self.statuses[status] = self.statuses.get(status, 0) + 1
            self.status_log.append((time.monotonic(), status))
            if status == 200:
                self.published.setdefault(channel, []).append(event["id"])
                result = reply.get("result") or {}
                self.positions[event["id"]] = (str(result.get("epoch")), result.get("offset"))
                return str(event["id"])
            if 400 <= status < 500:
                raise ScenarioError(f"publish refused: {status} {reply}")
            if time.monotonic() > deadline:
                raise ScenarioError(f"publish not accepted within {patience} s")
            self.retries += 1
            await asyncio.sleep(0.02)

    async def stream(self, count: int, channels: Sequence[str] = ("anomalies",),
                     rate: float | None = None) -> None:
        """Publish ``count`` events round-robin over ``channels``, at most ``rate`` per second."""
        started = time.monotonic()
        for i in range(count):
            async with self.lock:
                await self.publish(channels[i % len(channels)])
            if rate is not None:
                await asyncio.sleep(max(0.0, started + (i + 1) / rate - time.monotonic()))

    async def wait_total(self, target: int, streaming: asyncio.Task[None],
                         within: float = 120.0) -> None:
        """Wait until ``target`` events were accepted (or the ``streaming`` task ended)."""
        await wait_until(lambda: self.total() >= target or streaming.done(), within,
                         f"{target} events accepted")

    async def wait_first_after(self, stamp: float, ok: bool, within: float = 20.0) -> float:
        """Wait for :meth:`first_after` to have an answer; return it."""
        await wait_until(lambda: self.first_after(stamp, ok) is not None, within,
                         "a publish " + ("accepted" if ok else "refused"))
        seconds = self.first_after(stamp, ok)
        assert seconds is not None
        return seconds

    def first_after(self, stamp: float, ok: bool) -> float | None:
        """Seconds from ``stamp`` to the first attempt answered 200 (``ok``) or not."""
        for t, status in self.status_log:
            if t >= stamp and (status == 200) == ok:
                return t - stamp
        return None

    def total(self) -> int:
        """Events accepted on every channel."""
        return sum(len(ids) for ids in self.published.values())


# -- the live client ---------------------------------------------------------------------------


def client_config(*, ping_grace: float = 1.0, **overrides: Any) -> ClientConfig:
    """Quick reconnects and a dead link noticed ``ping_grace`` s after a missed server ping."""
    base = ClientConfig(backoff=BackoffPolicy(initial=0.05, maximum=0.25, reset_after=1.0),
                        command_timeout=30.0, connect_timeout=3.0,
                        max_server_ping_delay=ping_grace, health_interval=0.5)
    return attrs.evolve(base, **overrides)


class LiveClient:
    """``WebSocketManager`` + ``StoreBridge`` + live store, and a log of what the store applied
    and when the connection came and went (monotonic stamps)."""

    def __init__(self, url: str, token: str, *, config: ClientConfig | None = None,
                 get_token: Callable[[], Any] | None = None, open_timeout: float = 2.0) -> None:
        self.manager = WebSocketManager(url, token=token, get_token=get_token,
                                        config=config or client_config(),
                                        open_timeout=open_timeout)
        self.bridge = StoreBridge(self.manager)
        self.store: Store[AppState] = create_live_store(middleware=[self.bridge.middleware])
        self.applied: dict[str, list[str]] = {}
        self.epochs: dict[str, list[str]] = {}
        #: (channel, epoch) -> offsets applied as events
        self.positions: dict[tuple[str, str], list[int]] = {}
        self.connected: list[float] = []
        self.lost: list[tuple[float, str]] = []
        self.lost_codes: list[int] = []
        self.dropped: list[tuple[float, str]] = []
        self.reverted: list[str] = []
        self.resync_at: list[float] = []
        self.subscribed: set[str] = set()
        self._subs: list[abc.DisposableBase] = [
            self.store.actions.subscribe(self._on_action),
            self.manager.events.subscribe(self._on_event),
        ]

    def _on_action(self, act: object) -> None:
        meta = event_meta(act)
        if meta is not None and meta.event_id is not None:
            self.applied.setdefault(meta.channel, []).append(meta.event_id)
            self.epochs.setdefault(meta.channel, []).append(meta.epoch or "")
            if meta.offset is not None:
                self.positions.setdefault((meta.channel, meta.epoch or ""), []).append(meta.offset)
        elif isinstance(act, TransactionReverted):
            self.reverted.append(act.reason)
        elif isinstance(act, ResyncRequired):
            self.resync_at.append(time.monotonic())

    def _on_event(self, event: object) -> None:
        if isinstance(event, Subscribed):
            self.subscribed.add(event.channel)
        elif isinstance(event, CloseTransport):
            self.dropped.append((time.monotonic(), event.reason))
        elif isinstance(event, Connected):
            self.connected.append(time.monotonic())
        elif isinstance(event, ConnectionLost):
            self.lost.append((time.monotonic(), event.reason))
            self.lost_codes.append(event.code)

    async def start(self, within: float = 10.0) -> None:
        """Subscribe the AIOps channels, connect, and wait for every subscribe reply: until
        then a publication is not the client's (a first subscribe starts at the top; the
        bridge has no initial load yet), so counting it as lost would be wrong."""
        await self.bridge.start()
        async with asyncio.timeout(within):
            await self.manager.connect()
        await wait_until(lambda: self.subscribed >= set(self.bridge.channels), within,
                         "every channel subscribed")

    async def aclose(self) -> None:
        """Stop recording, release the bridge, close the manager."""
        for sub in self._subs:
            sub.dispose()
        await self.bridge.aclose()
        async with asyncio.timeout(10):
            await self.manager.close()

    def resyncs(self) -> int:
        """Resyncs the connection slice counted, all channels."""
        return sum(self.store.state.connection.resyncs.values())

    def has(self, published: dict[str, list[str]]) -> Callable[[], bool]:
        """A predicate: every published id has been applied (or more events than that)."""
        return lambda: all(len(self.applied.get(c, [])) >= len(set(ids))
                           and set(ids) <= set(self.applied.get(c, []))
                           for c, ids in published.items())

    async def wait_connected_after(self, stamp: float, within: float = 20.0) -> float:
        """Wait for a Connected after ``stamp``; return the seconds from ``stamp`` to it."""
        await wait_until(lambda: self.connected_after(stamp) is not None, within,
                         "connected again")
        seconds = self.connected_after(stamp)
        assert seconds is not None
        return seconds

    async def wait_lost_after(self, stamp: float, within: float) -> float:
        """Wait for a ConnectionLost after ``stamp``; return the seconds from ``stamp`` to it."""
        await wait_until(lambda: self.lost_after(stamp) is not None, within, "the link lost")
        seconds = self.lost_after(stamp)
        assert seconds is not None
        return seconds

    def connected_after(self, stamp: float) -> float | None:
        """Seconds from ``stamp`` to the first Connected after it."""
        later = [t for t in self.connected if t >= stamp]
        return later[0] - stamp if later else None

    def lost_after(self, stamp: float) -> float | None:
        """Seconds from ``stamp`` to the first ConnectionLost after it."""
        later = [t for t, _ in self.lost if t >= stamp]
        return later[0] - stamp if later else None


async def settle(client: LiveClient, published: dict[str, list[str]], within: float,
                 quiet: float = 3.0) -> None:
    """Wait until every published event is applied, or nothing new was applied for ``quiet``
    seconds, or ``within`` passed; then a little more so a late duplicate would be counted."""
    done = client.has(published)
    deadline = time.monotonic() + within
    count, changed = -1, time.monotonic()
    while not done() and time.monotonic() < deadline:
        now_count = sum(len(ids) for ids in client.applied.values())
        if now_count != count:
            count, changed = now_count, time.monotonic()
        elif time.monotonic() - changed > quiet:
            break
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.2)


def where_lost(pub: Publisher, client: LiveClient, mark: dict[str, int] | None = None) -> str:
    """Which events were lost, by channel: their indexes in the publish order (and ``mark``,
    e.g. how many were published before a kill)."""
    parts = []
    for channel, ids in pub.published.items():
        got = set(client.applied.get(channel, []))
        lost = [i for i, eid in enumerate(ids) if eid not in got]
        if lost:
            at = "" if mark is None else f" (fault after #{mark.get(channel, 0) - 1})"
            seen = set(client.epochs.get(channel, []))
            where = [pub.positions.get(ids[i], ("?", None)) for i in lost[:2]]
            told = ", ".join(f"offset {off} of {'an applied' if ep in seen else 'an unseen'}"
                             f" epoch" for ep, off in where)
            parts.append(f"{channel}: #{lost[:6]}{'...' if len(lost) > 6 else ''} of "
                         f"{len(ids)}{at} ({told})")
    return "lost events: " + ", ".join(parts)


def record(result: Result, pub: Publisher, client: LiveClient,
           mark: dict[str, int] | None = None) -> None:
    """Set ``result``'s tally and resyncs from what ``pub`` published and ``client`` applied;
    name the lost events in the notes."""
    covered = covered_by_loads(pub, client)
    result.tally = tally(pub.published, client.applied, covered)
    result.resyncs = client.resyncs()
    if covered:
        result.note(f"{len(covered)} events came inside a snapshot load (a resync), not as "
                    "events: not lost")
    if result.tally.lost:
        result.note(where_lost(pub, client, mark))


def covered_by_loads(pub: Publisher, client: LiveClient) -> set[str]:
    """Events a snapshot load brought in: never applied as events, yet the client applied a later
    offset of the same epoch, and a load could have covered them: the first load (before any
    event the client applied in that epoch) or one after a resync. docs/reliability.md: after a
    load the state is the snapshot's, then every later event once, in order. An unapplied event
    between two applied ones with no resync is lost, not covered."""
    resynced = client.resyncs() > 0
    covered: set[str] = set()
    for channel, ids in pub.published.items():
        got = set(client.applied.get(channel, []))
        for eid in ids:
            if eid in got:
                continue
            epoch, offset = pub.positions.get(eid, ("", None))
            offsets = client.positions.get((channel, epoch))
            if not isinstance(offset, int) or not offsets:
                continue
            if offset < min(offsets) or (resynced and offset < max(offsets)):
                covered.add(eid)
    return covered


# -- figures -----------------------------------------------------------------------------------


@attrs.define
class Tally:
    """Published against applied, per channel, summed."""

    published: int = 0
    applied: int = 0
    lost: int = 0
    duplicated: int = 0
    out_of_order: int = 0


def tally(published: dict[str, list[str]], applied: dict[str, list[str]],
          covered: set[str] | None = None) -> Tally:
    """Count lost, duplicated and out-of-order events (module docstring); ``covered`` events
    (brought in by a snapshot load) are neither applied nor lost."""
    out = Tally()
    covered = covered or set()
    for channel, ids in published.items():
        rank = {eid: i for i, eid in enumerate(ids)}
        got = [e for e in applied.get(channel, []) if e in rank]
        out.published += len(ids)
        out.applied += len(got)
        out.lost += len(set(ids) - set(got) - covered)
        out.duplicated += len(got) - len(set(got))
        highest = -1
        for eid in got:
            if rank[eid] < highest:
                out.out_of_order += 1
            highest = max(highest, rank[eid])
    return out


@attrs.define
class Result:
    """One row of the table. ``checks``: what must hold, by name; the row passes if all do."""

    scenario: str
    engine: str = "memory"
    tally: Tally = attrs.field(factory=Tally)
    resyncs: int | None = None
    detect: list[float] = attrs.field(factory=list)
    reconnect: list[float] = attrs.field(factory=list)
    rss_before: float = float("nan")
    rss_after: float = float("nan")
    checks: dict[str, bool] = attrs.field(factory=dict)
    notes: list[str] = attrs.field(factory=list)
    seconds: float = 0.0
    error: str | None = None
    #: when the row's variant started (rows are created first thing in each variant)
    started: float = attrs.field(factory=time.monotonic)

    @property
    def ok(self) -> bool:
        """No error and every check holds."""
        return self.error is None and all(self.checks.values())

    def expect(self, name: str, holds: bool) -> None:
        """Record a check."""
        self.checks[name] = bool(holds)

    def note(self, text: str) -> None:
        """Add a figure or remark for the notes column."""
        self.notes.append(text)


def _span(values: list[float]) -> str:
    if not values:
        return "-"
    lo, hi = min(values), max(values)
    return f"{lo:.2f}" if abs(hi - lo) < 0.005 else f"{lo:.2f}-{hi:.2f}"


def _mb(value: float) -> str:
    return "-" if value != value else f"{value:.0f}"


COLUMNS = ("scenario", "engine", "published", "applied", "lost", "dup", "out of order",
           "resyncs", "detect (s)", "reconnect (s)", "RSS MB before/after", "result", "notes")


def render(results: Sequence[Result]) -> str:
    """A Markdown table, one row per result."""
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    for r in results:
        t = r.tally
        failed = [name for name, holds in r.checks.items() if not holds]
        verdict = ("ERROR: " + (r.error or "")) if r.error else (
            "ok" if not failed else "FAIL: " + ", ".join(failed))
        cells = (r.scenario, r.engine, str(t.published), str(t.applied), str(t.lost),
                 str(t.duplicated), str(t.out_of_order),
                 "-" if r.resyncs is None else str(r.resyncs), _span(r.detect),
                 _span(r.reconnect), f"{_mb(r.rss_before)} / {_mb(r.rss_after)}", verdict,
                 "; ".join([*r.notes, f"{r.seconds:.0f} s"]))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


__all__ = [
    "WS_PATH", "LiveClient", "Publisher", "RedisProcess", "Result", "ScenarioError", "Secrets",
    "ServerProcess", "Tally", "client_config", "free_port", "record", "render", "rss_mb",
    "settle", "socket_count", "tally", "wait_until", "where_lost", "workspace",
]
