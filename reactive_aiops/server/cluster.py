"""One simulated source per cluster: a lease in Redis and fenced writes.

Every node runs ``LeasedSource``. It takes or renews the lease (``redis_lua.LEASE``) every
``renew`` seconds; the lease expires ``ttl`` seconds after the holder stops renewing, so another
node takes over within ``ttl + renew`` (defaults: 3 + 1 s). A new holder gets a new fencing
token (so does a holder that starts its source again after stopping it in an outage); every
write of the source carries its token and the publish script refuses a stale one, so a holder
that was only paused (SIGSTOP) and wakes up later publishes nothing.

The source keeps a mirror of the state (``MirrorState``) so the synchronous ``Simulator`` runs as
in one process; its writes go to Redis in order, each a compare-and-set on the entity's version.
When an operator changed the entity meanwhile (on any node), the writer re-reads it and applies
only the fields the source changed, never undoing a resolve.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from typing import Any

import attrs

from reactive_aiops.server.broker import Broker, Clock, Publication
from reactive_aiops.server.config import SimulationConfig
from reactive_aiops.server.engine import EngineUnavailable, Fenced
from reactive_aiops.server.redis_engine import RedisEngine
from reactive_aiops.server.simulation import Pacer, Simulator
from reactive_aiops.server.state import (
    AiopsState,
    AnomalyRecord,
    DetectorRecord,
    HealthRecord,
    record_from,
)
from reactive_aiops.wire.events import (
    ANOMALY_UPSERTED,
    CHANNEL_ANOMALIES,
    CHANNEL_DETECTORS,
    DETECTOR_UPSERTED,
    EventEnvelope,
    encode_event,
)

logger = logging.getLogger("reactive_aiops.server.cluster")

_KINDS = {DETECTOR_UPSERTED: "detector", ANOMALY_UPSERTED: "anomaly"}


@attrs.frozen
class _Write:
    kind: str
    channels: tuple[str, ...]
    event_type: str
    payload: dict[str, Any]
    base: dict[str, Any] | None


class MirrorState(AiopsState):
    """The source's view of the state: changes apply here at once and queue for Redis."""

    def __init__(self, engine: RedisEngine, *, clock: Clock) -> None:
        super().__init__(Broker(history_size=0), clock=clock)
        self.engine = engine
        self.queue: deque[_Write] = deque()
        self.wake = asyncio.Event()
        self._base: dict[str, Any] | None = None

    @property
    def published(self) -> int:
        """Publications this node made (the health rate)."""
        return self.engine.published

    def upsert_detector(self, detector: DetectorRecord, *, command_id: str | None = None,
                        bump: bool = True) -> DetectorRecord:
        """Store in the mirror and queue the write."""
        old = self.detectors.get(detector.id)
        self._base = None if old is None else old.payload()
        return super().upsert_detector(detector, command_id=command_id, bump=bump)

    def upsert_anomaly(self, anomaly: AnomalyRecord, *, command_id: str | None = None,
                       bump: bool = True) -> AnomalyRecord:
        """Store in the mirror and queue the write."""
        old = self.anomalies.get(anomaly.id)
        self._base = None if old is None else old.payload()
        return super().upsert_anomaly(anomaly, command_id=command_id, bump=bump)

    def _publish(self, channels: tuple[str, ...], event_type: str, payload: dict[str, Any],
                 command_id: str | None) -> None:
        kind = _KINDS.get(event_type, "health")
        self.queue.append(_Write(kind, channels, event_type, payload, self._base))
        self._base = None
        self.wake.set()

    def deliver(self, publication: Publication, epoch: str) -> None:
        """A publication from any node: keep the mirror at the newest version."""
        event = publication.data
        kind = _KINDS.get(event.get("type", "")) if isinstance(event, dict) else None
        if kind is None:
            return
        self._observe(kind, event["data"])

    def _observe(self, kind: str, data: dict[str, Any]) -> None:
        record = record_from(kind, data)
        assert not isinstance(record, HealthRecord)
        table: dict[str, Any] = self.detectors if kind == "detector" else self.anomalies
        known = table.get(data["id"])
        if known is None or known.version <= record.version:
            table[data["id"]] = record

    def load(self, snapshot: dict[str, Any]) -> None:
        """Start from what the cluster holds (after taking the lease)."""
        for data in snapshot["detectors"]:
            self._observe("detector", data)
        for data in snapshot["anomalies"]:
            self._observe("anomaly", data)
        if snapshot["health"] is not None:
            health = record_from("health", snapshot["health"])
            assert isinstance(health, HealthRecord)
            self.health = health

    async def flush(self, fence: str) -> None:
        """Write queued changes in order; raises ``Fenced`` or ``EngineUnavailable``."""
        while self.queue:
            write = self.queue[0]
            await self._write(write, fence)
            self.queue.popleft()

    async def _write(self, write: _Write, fence: str) -> None:
        payload = write.payload
        for _attempt in range(32):
            expected = None if write.kind == "health" else int(payload["version"]) - 1
            channels: list[tuple[str, dict[str, Any], str | None]] = [
                (name, encode_event(EventEnvelope(type=write.event_type, id=self._new_event_id(),
                                                  ts=self.clock(), data=payload)), None)
                for name in write.channels]
            reply = await self.engine.emit(channels, record=(write.kind, payload),
                                           expected=expected, fence=fence)
            if reply[0] != "conflict":
                return
            current, version = await self.engine.read_entity(write.kind, payload["id"])
            changed = {k: v for k, v in payload.items()
                       if write.base is None or write.base.get(k) != v}
            merged = {**(current or {}), **changed, "version": version + 1}
            if current is not None and current.get("state") == "resolved":
                merged["state"] = "resolved"
                merged["resolved_at"] = current.get("resolved_at")
            payload = merged
            self._observe(write.kind, payload)
        raise EngineUnavailable("too much contention writing the simulated source's state")


class LeasedSource:
    """Runs the simulated source on whichever node holds the cluster's lease."""

    def __init__(self, engine: RedisEngine, config: SimulationConfig, *, clock: Clock,
                 ttl: float = 3.0, renew: float = 1.0, tick: float = 0.01) -> None:
        self.engine = engine
        self.config = config
        self.clock = clock
        self.ttl = ttl
        self.renew = renew
        self.tick = tick
        self.fence = ""
        self.simulator: Simulator | None = None
        #: how many times this node took the lease (tests, metrics)
        self.takeovers = 0

    @property
    def leading(self) -> bool:
        """True while this node runs the source."""
        return self.simulator is not None

    async def run(self) -> None:
        """Until cancelled: hold or wait for the lease; run the source while holding it."""
        try:
            while True:
                fence = await self._lease()
                if fence and not self.leading:
                    await self._take_over(fence)
                elif not fence and self.leading:
                    logger.warning("simulated source: lease lost; stopping here")
                    self._stop()
                if self.leading:
                    await self._run_for(self.renew)
                else:
                    await asyncio.sleep(self.renew)
        finally:
            await self._release()

    async def _lease(self) -> str:
        try:
            reply = await self.engine.lease_script(
                keys=[self.engine.lease_key, self.engine.fence_key],
                args=[self.engine.node_id, int(self.ttl * 1000), "" if self.leading else "1"])
        except Exception:  # an outage: we cannot prove we hold it, so we do not
            return ""
        return str(reply or "")

    async def _take_over(self, fence: str) -> None:
        state = MirrorState(self.engine, clock=self.clock)
        try:
            state.load(await self.engine.snapshot(lambda _channel: True))
        except EngineUnavailable:
            return
        self.engine.subscribe_local(CHANNEL_ANOMALIES, state)
        self.engine.subscribe_local(CHANNEL_DETECTORS, state)
        simulator = Simulator(state, self.config, id_prefix=f"f{fence}")
        simulator.adopt_open_anomalies()
        simulator.start()
        self.fence, self.simulator = fence, simulator
        self.takeovers += 1
        logger.info("simulated source: running on this node (fencing token %s)", fence)

    def _stop(self) -> None:
        if self.simulator is not None:
            state = self.simulator.state
            assert isinstance(state, MirrorState)
            self.engine.unsubscribe(CHANNEL_ANOMALIES, state)
            self.engine.unsubscribe(CHANNEL_DETECTORS, state)
        self.simulator, self.fence = None, ""

    async def _run_for(self, seconds: float) -> None:
        simulator = self.simulator
        assert simulator is not None
        state = simulator.state
        assert isinstance(state, MirrorState)
        pacer = Pacer(self.config.samples_per_second, self.clock())
        until = self.clock() + seconds
        while self.clock() < until:
            now = self.clock()
            simulator.run(pacer.due(now))
            simulator.tick(now)
            try:
                await state.flush(self.fence)
            except Fenced:
                logger.warning("simulated source: fenced off by a newer holder; stopping here")
                self._stop()
                return
            except EngineUnavailable:
                await asyncio.sleep(self.tick)  # keep the queue; retry once Redis is back
                continue
            await asyncio.sleep(self.tick)

    async def _release(self) -> None:
        if self.leading:
            with contextlib.suppress(Exception):
                await asyncio.shield(self.engine.release_script(
                    keys=[self.engine.lease_key], args=[self.engine.node_id]))
        self._stop()
