"""The ``connection`` state slice: link status and health, as pure data, actions and a reducer.

The client protocol (reactive_aiops.protocol) emits these actions as facts; the WebSocketManager
folds them with :func:`connection_reducer` for its own streams, and the store bridge dispatches
the same actions into the application store. No I/O and no clock here: every action carries its
time (``at``, float Unix seconds, or the injected clock's seconds).

Status machine::

    DISCONNECTED --Connecting--> CONNECTING --Connected--> CONNECTED
         ^                          |  ^                       |
         |                 ConnectionLost  Connecting          ConnectionLost (retryable)
         |                          v  |                       v
     Disconnected (user)        RECONNECTING(attempt, next_retry_at) <-+
                                 any --ConnectionFailed (terminal)--> FAILED(reason)
"""

from __future__ import annotations

import enum

import attrs
import immutables

from reactive_aiops.core.actions import action
from reactive_aiops.core.dedupe import DuplicateDropped
from reactive_aiops.core.routing import handles

#: Weight of a new latency sample in the smoothed latency (like TCP's SRTT, alpha = 1/8).
LATENCY_ALPHA = 0.125

_EMPTY: immutables.Map[str, int] = immutables.Map()  # shared: immutable


class Status(enum.StrEnum):
    """Where the link is."""

    DISCONNECTED = "disconnected"
    CONNECTING = "connecting"
    CONNECTED = "connected"
    RECONNECTING = "reconnecting"
    FAILED = "failed"


@attrs.frozen
class ConnectionHealth:
    """Link health. ``latency`` is the smoothed round trip (seconds), ``latency_last`` the last
    sample; ``last_message_at`` feeds :func:`message_age`."""

    latency: float | None = None
    latency_last: float | None = None
    last_message_at: float | None = None
    reconnects: int = 0
    messages_per_second: float = 0.0
    #: Every duplicate delivery dropped on the way in, whichever layer dropped it: the client
    #: protocol's offset check (:class:`DuplicatesDropped`, also the bridge's snapshot merge)
    #: and the store's dedupe (``core.dedupe.DuplicateDropped``). The store's
    #: ``state.dedupe`` keeps the breakdown of the latter by reason.
    duplicates_dropped_total: int = 0
    resyncs: int = 0

    @property
    def duplicates_dropped(self) -> int:
        """Former name of :attr:`duplicates_dropped_total` (which then counted only the
        protocol's drops); kept so existing readers see the complete figure."""
        return self.duplicates_dropped_total


@attrs.frozen
class ConnectionState:
    """The slice. ``attempt``/``next_retry_at`` are set while RECONNECTING (and ``attempt`` while
    CONNECTING after a loss); ``reason``/``code`` explain the last loss or the failure."""

    status: Status = Status.DISCONNECTED
    attempt: int = 0
    next_retry_at: float | None = None
    reason: str = ""
    code: int = 0
    client_id: str = ""
    since: float = 0.0
    health: ConnectionHealth = ConnectionHealth()
    #: channel -> number of resyncs asked for it (the app reloads a snapshot each time)
    resyncs: immutables.Map[str, int] = _EMPTY


# -- actions (facts) ---------------------------------------------------------------------------


@action(name="connection.connecting")
class Connecting:
    """A connection attempt started (``attempt`` 0 for the first, n for the n-th retry)."""

    at: float
    attempt: int = 0


@action(name="connection.connected")
class Connected:
    """The server accepted ``connect``; ``client_id`` is the server's id for this connection."""

    at: float
    client_id: str = ""


@action(name="connection.lost")
class ConnectionLost:
    """The link dropped for a retryable reason; the next attempt is at ``next_retry_at``."""

    at: float
    code: int
    reason: str
    attempt: int
    next_retry_at: float


@action(name="connection.failed")
class ConnectionFailed:
    """A terminal error (bad token, forbidden, terminal disconnect code): no more retries."""

    at: float
    code: int
    reason: str


@action(name="connection.disconnected")
class Disconnected:
    """The application closed the connection on purpose."""

    at: float
    reason: str = "disconnect called"


@action(name="connection.latency_measured")
class LatencyMeasured:
    """A command's reply arrived ``rtt`` seconds after it was sent."""

    at: float
    rtt: float


@action(name="connection.health_sampled")
class HealthSampled:
    """Periodic sample of traffic: time of the last message and the recent message rate."""

    at: float
    last_message_at: float | None
    messages_per_second: float


@action(name="connection.duplicates_dropped")
class DuplicatesDropped:
    """``count`` publications of ``channel`` were dropped before the store because their offset
    was already applied (the protocol's position check, the bridge's snapshot merge)."""

    channel: str
    count: int = 1


@action(name="connection.resync_required")
class ResyncRequired:
    """``channel``'s stream has a hole (gap, changed epoch, not recovered): reload a snapshot of
    it. The stream continues from the new position after this action."""

    channel: str
    reason: str
    at: float = 0.0


ConnectionAction = (
    Connecting
    | Connected
    | ConnectionLost
    | ConnectionFailed
    | Disconnected
    | LatencyMeasured
    | HealthSampled
    | DuplicatesDropped
    | ResyncRequired
)


# -- reducer ----------------------------------------------------------------------------------

#: The members of :data:`ConnectionAction`, for one ``isinstance`` check (the reducer's fast exit,
#: the bridge's routing).
CONNECTION_ACTIONS = (
    Connecting,
    Connected,
    ConnectionLost,
    ConnectionFailed,
    Disconnected,
    LatencyMeasured,
    HealthSampled,
    DuplicatesDropped,
    ResyncRequired,
)


#: What the reducer reacts to: the connection actions, and the store dedupe's drops (counted
#: into the one duplicate figure).
_HANDLED = (*CONNECTION_ACTIONS, DuplicateDropped)


def _idle(health: ConnectionHealth) -> ConnectionHealth:
    # No link, no traffic: a stale rate would read as a live one.
    return (
        health if not health.messages_per_second else attrs.evolve(health, messages_per_second=0.0)
    )


def _smooth(previous: float | None, sample: float) -> float:
    return sample if previous is None else previous + LATENCY_ALPHA * (sample - previous)


@handles(*_HANDLED)
def connection_reducer(state: ConnectionState | None, act: object) -> ConnectionState:
    """Fold one action into the slice; unknown actions return ``state`` itself (identity)."""
    if state is None:
        state = ConnectionState()
    elif not isinstance(act, _HANDLED):
        # The usual case (every server event goes through here): one check, not nine class
        # patterns in turn.
        return state
    health = state.health
    match act:
        case Connecting(at=at, attempt=attempt):
            return attrs.evolve(
                state, status=Status.CONNECTING, attempt=attempt, next_retry_at=None, since=at
            )
        case Connected(at=at, client_id=client_id):
            return attrs.evolve(
                state,
                status=Status.CONNECTED,
                attempt=0,
                next_retry_at=None,
                reason="",
                code=0,
                client_id=client_id,
                since=at,
                health=attrs.evolve(health, last_message_at=at),
            )
        case ConnectionLost():
            return attrs.evolve(
                state,
                status=Status.RECONNECTING,
                attempt=act.attempt,
                next_retry_at=act.next_retry_at,
                reason=act.reason,
                code=act.code,
                since=act.at,
                health=attrs.evolve(
                    health, reconnects=health.reconnects + 1, messages_per_second=0.0
                ),
            )
        case ConnectionFailed(at=at, code=code, reason=reason):
            return attrs.evolve(
                state,
                status=Status.FAILED,
                next_retry_at=None,
                reason=reason,
                code=code,
                since=at,
                health=_idle(health),
            )
        case Disconnected(at=at, reason=reason):
            return attrs.evolve(
                state,
                status=Status.DISCONNECTED,
                next_retry_at=None,
                reason=reason,
                code=0,
                since=at,
                health=_idle(health),
            )
        case LatencyMeasured(rtt=rtt):
            return attrs.evolve(
                state,
                health=attrs.evolve(health, latency=_smooth(health.latency, rtt), latency_last=rtt),
            )
        case HealthSampled(last_message_at=last, messages_per_second=rate):
            if last == health.last_message_at and rate == health.messages_per_second:
                return state
            return attrs.evolve(
                state, health=attrs.evolve(health, last_message_at=last, messages_per_second=rate)
            )
        case DuplicatesDropped(count=count):
            total = health.duplicates_dropped_total + count
            return attrs.evolve(state, health=attrs.evolve(health, duplicates_dropped_total=total))
        case DuplicateDropped():
            total = health.duplicates_dropped_total + 1
            return attrs.evolve(state, health=attrs.evolve(health, duplicates_dropped_total=total))
        case ResyncRequired(channel=channel):
            return attrs.evolve(
                state,
                health=attrs.evolve(health, resyncs=health.resyncs + 1),
                resyncs=state.resyncs.set(channel, state.resyncs.get(channel, 0) + 1),
            )
    return state


# -- selectors --------------------------------------------------------------------------------


def message_age(state: ConnectionState, now: float) -> float | None:
    """Seconds since the last message (None before the first), given the current time."""
    last = state.health.last_message_at
    return None if last is None else max(0.0, now - last)


def is_connected(state: ConnectionState) -> bool:
    """True while CONNECTED."""
    return state.status is Status.CONNECTED


def retry_in(state: ConnectionState, now: float) -> float | None:
    """Seconds until the next reconnect attempt while RECONNECTING, else None."""
    if state.status is not Status.RECONNECTING or state.next_retry_at is None:
        return None
    return max(0.0, state.next_retry_at - now)
