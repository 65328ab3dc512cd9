"""AIOps actions: past-tense facts from the server, imperative commands from the UI.

Facts (``DetectorUpserted``, ``AnomaliesLoaded``, ...) say what the server published. Commands
(``AcknowledgeAnomaly``, ``ResolveAnomaly``, ``PauseDetector``, ``ResumeDetector``) say what a user
asked for: the reducers apply them at once (optimistically; see :mod:`reactive_aiops.aiops.
reducers`), and the bridge carries them to the server as an RPC named by :attr:`rpc_method` with
:meth:`rpc_data`. Each command carries a ``command_id`` that the server applies at most once and
echoes on the resulting event, so the optimistic layer can match the two. Pass ``command_id``
explicitly for deterministic tests and replays; by default a random one is drawn.

Facts that arrive as server events carry the event's
:class:`~reactive_aiops.core.events.EventMeta` in ``meta`` (channel, offset, event id and the
``command_id`` that caused it), which is what dedupe and the optimistic journal's echo match read.
"""

from __future__ import annotations

import uuid
from typing import ClassVar, Protocol

import attrs

from reactive_aiops.aiops.models import Anomaly, Detector, SystemHealth
from reactive_aiops.core.actions import action
from reactive_aiops.core.events import EventMeta

__all__ = [
    "COMMAND_TYPES",
    "AcknowledgeAnomaly",
    "AnomaliesLoaded",
    "AnomalyRemoved",
    "AnomalyUpserted",
    "Command",
    "DetectorUpserted",
    "DetectorsLoaded",
    "HealthUpdated",
    "PauseDetector",
    "ResolveAnomaly",
    "ResumeDetector",
    "is_command",
    "new_command_id",
]


def new_command_id() -> str:
    """A fresh random command id (32 hex digits)."""
    return uuid.uuid4().hex


def _to_tuple(items: object) -> tuple[object, ...]:
    # Accept any iterable but store a tuple so the action stays immutable and hashable.
    if isinstance(items, (str, bytes)) or not hasattr(items, "__iter__"):
        raise TypeError(f"expected an iterable of entities, got {type(items).__name__}")
    return tuple(items)


# -- facts ------------------------------------------------------------------------------------


@action(name="detector.upserted")
class DetectorUpserted:
    """The server published a detector (new or changed)."""

    detector: Detector
    #: Where the event came from (attached by the event table); read by dedupe and by the
    #: optimistic journal to match a command's echo. None for actions made locally.
    meta: EventMeta | None = attrs.field(default=None, kw_only=True)


@action(name="detectors.loaded")
class DetectorsLoaded:
    """A full detector snapshot arrived: the collection becomes exactly these.

    By default a held detector newer than its counterpart is kept (a snapshot fetched before a live
    update arrived must not roll it back). ``exact``: take the snapshot as it is: it was read at
    the channel's stream position and every later event follows it (what the bridge loads; after
    the server lost its state, versions start again and a held newer version is a dead one).
    """

    detectors: tuple[Detector, ...] = attrs.field(converter=_to_tuple)
    exact: bool = attrs.field(default=False, kw_only=True)


@action(name="anomaly.upserted")
class AnomalyUpserted:
    """The server published an anomaly (new or changed)."""

    anomaly: Anomaly
    #: Where the event came from (attached by the event table); read by dedupe and by the
    #: optimistic journal to match a command's echo. None for actions made locally.
    meta: EventMeta | None = attrs.field(default=None, kw_only=True)


@action(name="anomalies.loaded")
class AnomaliesLoaded:
    """A full anomaly snapshot arrived: the collection becomes exactly these.

    By default a held anomaly newer than its counterpart is kept (a snapshot fetched before a live
    update arrived must not roll it back). ``exact``: take the snapshot as it is: it was read at
    the channel's stream position and every later event follows it (what the bridge loads; after
    the server lost its state, versions start again and a held newer version is a dead one).
    """

    anomalies: tuple[Anomaly, ...] = attrs.field(converter=_to_tuple)
    exact: bool = attrs.field(default=False, kw_only=True)


@action(name="anomaly.removed")
class AnomalyRemoved:
    """An anomaly left the client's view (expired or purged by the server)."""

    anomaly_id: str


@action(name="health.updated")
class HealthUpdated:
    """The server published a new system health summary."""

    health: SystemHealth
    #: Where the event came from (attached by the event table); read by dedupe and by the
    #: optimistic journal to match a command's echo. None for actions made locally.
    meta: EventMeta | None = attrs.field(default=None, kw_only=True)


# -- commands ---------------------------------------------------------------------------------


class Command(Protocol):
    """What every command offers the bridge: an RPC method name and its data."""

    rpc_method: ClassVar[str]

    @property
    def command_id(self) -> str: ...

    def rpc_data(self) -> dict[str, str]:
        """The RPC ``data`` object of the contract (``command_id`` plus the target id)."""
        ...


@action(name="anomaly.acknowledge")
class AcknowledgeAnomaly:
    """Ask to acknowledge an open anomaly; ``by`` names who did (shown optimistically)."""

    rpc_method: ClassVar[str] = "anomaly.acknowledge"

    anomaly_id: str
    command_id: str = attrs.field(factory=new_command_id)
    by: str | None = None
    at: float | None = None

    def rpc_data(self) -> dict[str, str]:
        """``{"command_id", "anomaly_id"}`` for the ``anomaly.acknowledge`` RPC."""
        return {"command_id": self.command_id, "anomaly_id": self.anomaly_id}


@action(name="anomaly.resolve")
class ResolveAnomaly:
    """Ask to resolve an anomaly (open or acknowledged)."""

    rpc_method: ClassVar[str] = "anomaly.resolve"

    anomaly_id: str
    command_id: str = attrs.field(factory=new_command_id)
    at: float | None = None

    def rpc_data(self) -> dict[str, str]:
        """``{"command_id", "anomaly_id"}`` for the ``anomaly.resolve`` RPC."""
        return {"command_id": self.command_id, "anomaly_id": self.anomaly_id}


@action(name="detector.pause")
class PauseDetector:
    """Ask to pause a detector."""

    rpc_method: ClassVar[str] = "detector.pause"

    detector_id: str
    command_id: str = attrs.field(factory=new_command_id)
    at: float | None = None

    def rpc_data(self) -> dict[str, str]:
        """``{"command_id", "detector_id"}`` for the ``detector.pause`` RPC."""
        return {"command_id": self.command_id, "detector_id": self.detector_id}


@action(name="detector.resume")
class ResumeDetector:
    """Ask to resume a paused detector."""

    rpc_method: ClassVar[str] = "detector.resume"

    detector_id: str
    command_id: str = attrs.field(factory=new_command_id)
    at: float | None = None

    def rpc_data(self) -> dict[str, str]:
        """``{"command_id", "detector_id"}`` for the ``detector.resume`` RPC."""
        return {"command_id": self.command_id, "detector_id": self.detector_id}


#: Every command class, for middleware that must recognise commands (``isinstance(a, ...)``).
COMMAND_TYPES: tuple[type, ...] = (
    AcknowledgeAnomaly,
    ResolveAnomaly,
    PauseDetector,
    ResumeDetector,
)


def is_command(act: object) -> bool:
    """Whether ``act`` is one of the AIOps commands (to be sent to the server)."""
    return isinstance(act, COMMAND_TYPES)
