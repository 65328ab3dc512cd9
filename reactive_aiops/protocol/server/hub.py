"""What one server connection needs from the server around it: the :class:`Hub` contract.

The connection (:mod:`.connection`) calls the hub to verify tokens, check channels, subscribe,
read history and run RPCs; the server (``reactive_aiops.server.core.ServerCore``) implements it
over its engine. Only shapes here: no I/O, no state.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from reactive_aiops.wire.messages import Error, RPCResult

__all__ = [
    "AuthFailure",
    "HistoryOutcome",
    "Hub",
    "Principal",
    "PublicationLike",
    "SubscribeOutcome",
    "Subscriber",
]


class Principal(Protocol):
    """What a verified token grants (``reactive_aiops.server.auth.Claims`` satisfies it)."""

    @property
    def sub(self) -> str: ...

    @property
    def exp(self) -> float: ...

    def allows_channel(self, channel: str) -> bool: ...


class PublicationLike(Protocol):
    """A broker publication: ``frame`` caches its encoded push for the whole fan-out."""

    channel: str
    offset: int
    data: Any
    frame: str | None


class Subscriber(Protocol):
    """What the hub delivers live publications to (a :class:`.connection.ServerConnection`)."""

    def deliver(self, publication: PublicationLike, epoch: str) -> None: ...


class AuthFailure(enum.Enum):
    """Why a token was refused: ``EXPIRED`` (client refreshes) or ``INVALID`` (terminal)."""

    EXPIRED = "expired"
    INVALID = "invalid"


#: What ``Hub.subscribe`` reports: ``(epoch, offset, recovered, publications)``, or an error.
SubscribeOutcome = tuple[str, int, bool, Sequence[PublicationLike]]
#: What ``Hub.history`` reports: ``(epoch, top offset, retained publications)``, or an error.
HistoryOutcome = tuple[str, int, Sequence[PublicationLike]]


class Hub(Protocol):
    """The server-wide parts a connection calls (no I/O in the connection itself).

    ``subscribe``, ``history`` and ``rpc`` report through a ``done`` callback: an in-process
    engine calls it before returning, a networked one (Redis) later, from the event loop. A
    subscriber is registered for live publications *before* ``subscribe`` reads the stream's
    position, and the connection buffers what arrives until ``done``: nothing published in
    between is lost, and what the read already returned is dropped by offset.
    """

    def authenticate(self, token: str, now: float) -> Principal | AuthFailure:
        """Verify a connection token at ``now``."""
        ...

    def channel_exists(self, channel: str) -> bool: ...

    def subscribe(
        self, channel: str, subscriber: Subscriber, recover: bool, offset: int, epoch: str,
        done: Callable[[SubscribeOutcome | Error], None],
    ) -> None:
        """Register ``subscriber``, then report ``(epoch, offset, recovered, publications)``.

        On an error the hub has already unregistered ``subscriber``.
        """
        ...

    def unsubscribe(self, channel: str, subscriber: Subscriber) -> None: ...

    def history(self, channel: str, done: Callable[[HistoryOutcome | Error], None]) -> None:
        """Report ``(epoch, top offset, retained publications)``."""
        ...

    def rpc(self, method: str, data: Any, principal: Principal,
            done: Callable[[RPCResult | Error], None]) -> None: ...
