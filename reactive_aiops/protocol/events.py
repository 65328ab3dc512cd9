"""Events the sans-I/O client protocol emits (besides the core.connection actions it emits).

The driver (net.client) reacts: ``CloseTransport`` -> close the socket with that code;
``RefreshNeeded`` -> fetch a token and call ``ClientProtocol.refresh_token``;
``PublicationReceived`` (or ``RawPublicationReceived``, when asked for) -> deliver to the
channel's subscribers; ``CommandSucceeded`` /
``CommandFailed`` -> resolve the caller's future.
"""

from __future__ import annotations

from typing import TypeAlias

import attrs
import msgspec

from reactive_aiops.core.connection import ConnectionAction
from reactive_aiops.wire import Publication, Result, SubscribeResult, decode_raw_data


@attrs.frozen
class PublicationReceived:
    """A publication of ``channel``, in order and not seen before."""

    channel: str
    publication: Publication


class RawPublicationReceived(msgspec.Struct, frozen=True, gc=False):
    """:class:`PublicationReceived` with the publication's data still undecoded: what
    ``ClientProtocol(raw_publications=True)`` emits for a plain, in-order publication (the
    per-event push), for a consumer that decodes ``data`` (the JSON text, empty for none)
    straight into its own types. A msgspec struct: built in C, once per event."""

    channel: str
    offset: int
    data: msgspec.Raw

    def to_publication(self) -> Publication:
        """The publication as :class:`PublicationReceived` would carry it."""
        return Publication(decode_raw_data(self.data), None, self.offset)

    def received(self) -> PublicationReceived:
        """The :class:`PublicationReceived` event this one stands for."""
        return PublicationReceived(self.channel, self.to_publication())


@attrs.frozen
class Subscribed:
    """``channel`` is (re)subscribed. ``recovered``: missed publications were recovered."""

    channel: str
    result: SubscribeResult
    recovered: bool


@attrs.frozen
class SubscriptionFailed:
    """``channel`` is off for good: the server refused it or unsubscribed it (code < 2500)."""

    channel: str
    code: int
    reason: str


@attrs.frozen
class CommandSucceeded:
    """Call ``key`` got its result."""

    key: int
    result: Result


@attrs.frozen
class CommandFailed:
    """Call ``key`` failed with ``error`` (a protocol.errors.ClientError)."""

    key: int
    error: Exception


@attrs.frozen
class CloseTransport:
    """Close the socket with ``code``/``reason``, then call ``transport_closed``. With
    ``abort`` the link is believed dead (no ping, a timeout): drop it at once, no closing
    handshake, so the loss is reported without waiting for a peer that will never answer."""

    code: int
    reason: str
    abort: bool = False


@attrs.frozen
class RefreshNeeded:
    """The connection token expires soon: fetch a fresh one and call ``refresh_token``."""


Event: TypeAlias = (
    ConnectionAction
    | PublicationReceived
    | RawPublicationReceived
    | Subscribed
    | SubscriptionFailed
    | CommandSucceeded
    | CommandFailed
    | CloseTransport
    | RefreshNeeded
)
