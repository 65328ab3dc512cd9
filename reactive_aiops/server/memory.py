"""The in-process engine: one node's channels, history and AIOps state in memory.

The embedded default (``make demo``, ``serve`` without ``--redis-url``): nothing to install, and
everything happens in the caller's stack, so ``submit`` and the ``done`` callbacks complete before
they return. A restart of the process loses everything (new epochs: clients resync).
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from reactive_aiops.protocol.server import HistoryOutcome, SubscribeOutcome
from reactive_aiops.server.broker import Broker, Clock, Publication
from reactive_aiops.server.commands import CommandService, Outcome, ParsedCommand
from reactive_aiops.server.config import ServerConfig
from reactive_aiops.server.engine import (
    ENGINE_OK,
    SNAPSHOT_CHANNELS,
    PublishResult,
    Record,
    Subscriber,
    run_now,
    snapshot_result,
)
from reactive_aiops.server.state import AiopsState, AnomalyRecord, DetectorRecord, record_from
from reactive_aiops.wire.messages import Error

T = TypeVar("T")

#: How long a publish ``idempotency_key`` is remembered (Centrifugo: 5 minutes).
IDEMPOTENCY_TTL = 300.0
#: At most this many keys are remembered (oldest forgotten first).
IDEMPOTENCY_MEMORY = 100_000


class MemoryEngine:
    """``Broker`` + ``AiopsState`` + command memory, behind the ``Engine`` boundary."""

    name = "memory"

    def __init__(self, config: ServerConfig, *, clock: Clock = time.time,
                 broker: Broker | None = None, state: AiopsState | None = None) -> None:
        self.clock = clock
        self.broker = broker or Broker(
            history_size=config.history_size, history_ttl=config.history_ttl,
            stream_ttl=config.stream_ttl, clock=clock)
        self.aiops = state or AiopsState(self.broker, clock=clock)
        self.commands = CommandService(self.aiops, operator_role=config.operator_role,
                                       memory=config.command_memory)
        self._idempotent: OrderedDict[tuple[str, str], tuple[float, PublishResult]] = (
            OrderedDict())

    @property
    def state(self) -> str:
        """Always ``ok``: nothing to lose contact with."""
        return ENGINE_OK

    @property
    def published(self) -> int:
        """Publications made so far."""
        return self.broker.published

    async def start(self) -> None:
        """Nothing to connect."""

    async def close(self) -> None:
        """Nothing to release."""

    def submit(self, work: Coroutine[Any, Any, T], done: Callable[[T], None]) -> None:
        """Finish ``work`` now (it never suspends) and report its result."""
        done(run_now(work))

    def subscribe(self, channel: str, subscriber: Subscriber, recover: bool, offset: int,
                  epoch: str, done: Callable[[SubscribeOutcome | Error], None]) -> None:
        """Register and recover in one synchronous step (no publication can fall between)."""
        result = self.broker.subscribe(channel, subscriber, recover=recover, offset=offset,
                                       epoch=epoch)
        done((result.epoch, result.offset, result.recovered, result.publications))

    def unsubscribe(self, channel: str, subscriber: Subscriber) -> None:
        """Stop delivering ``channel`` to ``subscriber``."""
        self.broker.unsubscribe(channel, subscriber)

    def history(self, channel: str, done: Callable[[HistoryOutcome | Error], None]) -> None:
        """``(epoch, top, retained)``; a channel with no stream yet reads as empty."""
        found = self.broker.peek(channel)
        if found is None:
            done(("", 0, ()))
            return
        top, epoch, retained = found
        done((epoch, top, retained))

    def publish_now(self, channel: str, data: dict[str, Any], *, record: Record | None = None,
                    idempotency_key: str | None = None) -> tuple[Publication | None,
                                                                  PublishResult]:
        """``publish`` for synchronous callers; the publication is None for a duplicate."""
        key = None if idempotency_key is None else (channel, idempotency_key)
        now = self.clock()
        if key is not None:
            self._forget_idempotency(now)
            seen = self._idempotent.get(key)
            if seen is not None:
                return None, seen[1]
        if record is not None:
            self._record(*record)
        pub = self.broker.publish(channel, data)
        _top, epoch = self.broker.position(channel)
        result = PublishResult(channel, pub.offset, epoch)
        if key is not None:
            self._idempotent[key] = (now + IDEMPOTENCY_TTL,
                                     PublishResult(channel, pub.offset, epoch, duplicate=True))
            if len(self._idempotent) > IDEMPOTENCY_MEMORY:
                self._idempotent.popitem(last=False)
        return pub, result

    def _forget_idempotency(self, now: float) -> None:
        while self._idempotent:
            key, (expires, _result) = next(iter(self._idempotent.items()))
            if expires > now:
                return
            del self._idempotent[key]

    def _record(self, kind: str, data: dict[str, Any]) -> None:
        record = record_from(kind, data)
        if isinstance(record, DetectorRecord):
            self.aiops.detectors[record.id] = record
        elif isinstance(record, AnomalyRecord):
            self.aiops.anomalies[record.id] = record
        else:
            self.aiops.health = record

    async def publish(self, channel: str, data: dict[str, Any], *, record: Record | None = None,
                      idempotency_key: str | None = None) -> PublishResult:
        """Append and deliver now; see ``Engine.publish``."""
        return self.publish_now(channel, data, record=record,
                                idempotency_key=idempotency_key)[1]

    async def command(self, command: ParsedCommand, event_id: Callable[[], str]) -> Outcome:
        """Apply at most once per ``command_id`` (remembered in this process)."""
        return self.commands.apply(command)

    async def snapshot(self, allowed: Callable[[str], bool]) -> dict[str, Any]:
        """Entities and positions read in one synchronous step (so they agree)."""
        positions: dict[str, dict[str, Any]] = {}
        for channel in SNAPSHOT_CHANNELS:
            if allowed(channel):
                top, epoch = self.broker.position(channel)
                positions[channel] = {"offset": top, "epoch": epoch}
        aiops = self.aiops
        return snapshot_result(
            positions,
            lambda: [d.payload() for d in aiops.detectors.values()],
            lambda: [a.payload() for a in aiops.anomalies.values()],
            lambda: None if aiops.health is None else aiops.health.payload())
