"""The engine boundary: where a server node keeps channels, history and the AIOps state.

Two engines implement ``Engine``:

- ``MemoryEngine`` (``server/memory.py``): one process, the embedded default; needs nothing.
- ``RedisEngine`` (``server/redis_engine.py``): several nodes share one Redis; a node or Redis
  can die and nothing accepted is lost (docs/scaling.md).

The protocol code (``protocol/server.py``) and ``ServerCore`` do not know which one runs. Reads
that a connection waits on (``subscribe``, ``history``) report through a ``done`` callback, and
the rest are coroutines run with ``submit``: the memory engine's coroutines never suspend, so
``submit`` finishes them before it returns and an in-process server stays synchronous (tests
drive it with strings and a manual clock); a networked engine runs them as tasks.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any, Protocol, TypeVar

import attrs

from reactive_aiops.protocol.server import HistoryOutcome, SubscribeOutcome
from reactive_aiops.server.commands import Outcome, ParsedCommand
from reactive_aiops.wire.codes import ErrorCode
from reactive_aiops.wire.events import CHANNEL_ANOMALIES, CHANNEL_DETECTORS, CHANNEL_HEALTH
from reactive_aiops.wire.messages import Error

T = TypeVar("T")

#: Engine states reported by ``/health`` and the logs.
ENGINE_OK = "ok"
ENGINE_UNAVAILABLE = "unavailable"


class EngineUnavailable(Exception):
    """The engine cannot be reached right now (e.g. Redis is down); a retry may succeed.

    The publish API answers 503, a command gets a temporary error, a subscribe a temporary error
    (the client retries); client connections stay up.
    """


class Fenced(Exception):
    """A write carried a fencing token that is no longer current: another node leads now."""


#: The channels an ``aiops.snapshot`` reads, in its result's order.
SNAPSHOT_CHANNELS = (CHANNEL_DETECTORS, CHANNEL_ANOMALIES, CHANNEL_HEALTH)


def unavailable(message: str = "engine unavailable") -> Error:
    """The error reply for a request the engine could not serve right now: temporary, so the
    client (and the official SDKs) retry it."""
    return Error(int(ErrorCode.INTERNAL), message, True)


def snapshot_result(positions: dict[str, dict[str, Any]],
                    detectors: Callable[[], list[dict[str, Any]]],
                    anomalies: Callable[[], list[dict[str, Any]]],
                    health: Callable[[], dict[str, Any] | None]) -> dict[str, Any]:
    """The ``aiops.snapshot`` result: the entities of the channels in ``positions`` (those the
    caller may read), each read only if its channel is there."""
    return {
        "detectors": detectors() if CHANNEL_DETECTORS in positions else [],
        "anomalies": anomalies() if CHANNEL_ANOMALIES in positions else [],
        "health": health() if CHANNEL_HEALTH in positions else None,
        "positions": positions,
    }


@attrs.frozen
class PublishResult:
    """Where a publication landed; ``duplicate`` when an ``idempotency_key`` was seen before
    (then nothing was published and this is the first publish's position)."""

    channel: str
    offset: int
    epoch: str
    duplicate: bool = False


class Subscriber(Protocol):
    """Receives live publications of the channels it subscribed; must not raise."""

    def deliver(self, publication: Any, epoch: str) -> None: ...


#: An entity kind and its checked contract payload, recorded as the engine's current state (the
#: engine fills in the defaults of absent optional fields: ``state.record_from``).
Record = tuple[str, dict[str, Any]]


class Engine(Protocol):
    """What a server node needs from where its channels and state live."""

    name: str

    @property
    def state(self) -> str:
        """``ENGINE_OK`` or ``ENGINE_UNAVAILABLE``."""
        ...

    @property
    def published(self) -> int:
        """Publications this node made (for the health rate and metrics)."""
        ...

    async def start(self) -> None:
        """Connect (a networked engine); raises ``EngineUnavailable`` if it cannot."""
        ...

    async def close(self) -> None:
        """Release connections and tasks."""
        ...

    def submit(self, work: Coroutine[Any, Any, T], done: Callable[[T], None]) -> None:
        """Run ``work`` and call ``done`` with its result (now, for an in-process engine)."""
        ...

    def subscribe(self, channel: str, subscriber: Subscriber, recover: bool, offset: int,
                  epoch: str, done: Callable[[SubscribeOutcome | Error], None]) -> None:
        """Register ``subscriber`` for live publications first, then read the position (and
        what was missed since ``offset`` if ``recover``) and report it."""
        ...

    def unsubscribe(self, channel: str, subscriber: Subscriber) -> None:
        """Stop delivering ``channel`` to ``subscriber``."""
        ...

    def history(self, channel: str, done: Callable[[HistoryOutcome | Error], None]) -> None:
        """Report ``(epoch, top, retained publications)``; reading never creates a stream."""
        ...

    async def publish(self, channel: str, data: dict[str, Any], *, record: Record | None = None,
                      idempotency_key: str | None = None) -> PublishResult:
        """Append ``data`` to ``channel`` (and store ``record`` as current state) atomically."""
        ...

    async def command(self, command: ParsedCommand, event_id: Callable[[], str]) -> Outcome:
        """Apply an operator command at most once per ``command_id``, across nodes."""
        ...

    async def snapshot(self, allowed: Callable[[str], bool]) -> dict[str, Any]:
        """Current detectors, anomalies and health with the position of each channel they were
        read at (the ``aiops.snapshot`` RPC result); channels not ``allowed`` are left out."""
        ...


def run_now(work: Coroutine[Any, Any, T]) -> T:
    """Finish a coroutine that never suspends (an in-process engine's) and return its result.

    Raises ``RuntimeError`` if it does suspend: the caller needed the async API.
    """
    try:
        work.send(None)
    except StopIteration as stop:
        result: T = stop.value
        return result
    work.close()
    raise RuntimeError("this engine does I/O: use the async API (await server.apublish(...))")
