"""The Centrifuge client protocol v2 message schema (JSON form), as frozen attrs classes.

Field names are the protobuf names, which the JSON form uses verbatim. Every field has the zero
value as default and zero values are omitted on the wire (Go's ``omitempty``); a missing key
decodes to the default. ``data``/``info``/``conn_info``/``chan_info`` are ``bytes`` in the proto
but carry embedded JSON in the JSON form: here they are plain JSON values (``None`` = absent, so a
JSON ``null`` payload cannot be told apart from no payload -- nothing in the protocol needs that).

Shapes on the wire (see docs/protocol.md):

- client -> server: ``Command(id, request)`` is ``{"id": N, "<method>": {request}}``; ``Pong()`` is
  ``{}``; ``send`` is a ``Command`` with ``id == 0``.
- server -> client: ``Reply(id, result)`` is ``{"id": N, "<method>": {result}}`` or
  ``{"id": N, "error": {...}}``; ``Push(channel, body)`` is ``{"push": {"channel": c, "<type>":
  {...}}}``; ``Ping()`` is ``{}``.
"""

from __future__ import annotations

from typing import Any, TypeAlias

import attrs

#: An embedded JSON value (dict, list, str, int, float, bool); ``None`` means "absent".
JSONValue: TypeAlias = Any

MAX_ID = 2**32 - 1
#: Stream offsets are unsigned 64-bit integers, as in Centrifuge's protocol.
MAX_OFFSET = 2**64 - 1


def _check_offset(instance: object, attribute: attrs.Attribute[int], value: int) -> None:
    # A negative offset would recover "everything after -1"; the Go server's uint64 refuses it.
    if not 0 <= value <= MAX_OFFSET:
        raise ValueError(f"{attribute.name} must be a uint64, got {value}")


def _offset() -> Any:
    return attrs.field(default=0, validator=_check_offset)


# -- shared parts -----------------------------------------------------------------------------


@attrs.frozen
class ClientInfo:
    """Who published / joined: ``user`` id, ``client`` connection id, and info payloads."""

    user: str = ""
    client: str = ""
    conn_info: JSONValue = None
    chan_info: JSONValue = None


@attrs.frozen
class Publication:
    """One message in a channel; ``offset`` is its stream position (0 when not positioned)."""

    data: JSONValue = None
    info: ClientInfo | None = None
    offset: int = _offset()
    tags: dict[str, str] = attrs.field(factory=dict)


@attrs.frozen
class StreamPosition:
    """A position in a channel stream: ``offset`` within ``epoch``."""

    offset: int = _offset()
    epoch: str = ""


@attrs.frozen
class Error:
    """An error reply body. ``temporary`` asks the client to retry (see wire.codes)."""

    code: int = 0
    message: str = ""
    temporary: bool = False


# -- requests (client -> server) --------------------------------------------------------------


@attrs.frozen
class SubscribeRequest:
    """``subscribe``. Send ``recover`` (+ epoch/offset) only if the last result was recoverable."""

    channel: str = ""
    token: str = ""
    recover: bool = False
    epoch: str = ""
    offset: int = _offset()
    data: JSONValue = None
    positioned: bool = False
    recoverable: bool = False
    join_leave: bool = False
    delta: str = ""
    flag: int = 0


@attrs.frozen
class ConnectRequest:
    """``connect``: the first command on every socket. ``subs`` recovers server-side subs."""

    token: str = ""
    data: JSONValue = None
    subs: dict[str, SubscribeRequest] = attrs.field(factory=dict)
    name: str = ""
    version: str = ""


@attrs.frozen
class UnsubscribeRequest:
    """``unsubscribe``; the result is empty."""

    channel: str = ""


@attrs.frozen
class PublishRequest:
    """``publish`` ``data`` to ``channel``; the result is empty."""

    channel: str = ""
    data: JSONValue = None


@attrs.frozen
class PresenceRequest:
    """``presence`` of ``channel``."""

    channel: str = ""


@attrs.frozen
class PresenceStatsRequest:
    """``presence_stats`` of ``channel``."""

    channel: str = ""


@attrs.frozen
class HistoryRequest:
    """``history``: ``limit`` 0 = position only, -1 = no limit; ``since`` = start after it."""

    channel: str = ""
    limit: int = 0
    since: StreamPosition | None = None
    reverse: bool = False


@attrs.frozen
class RPCRequest:
    """``rpc``: call ``method`` with ``data`` (see wire.rpc for our method names)."""

    data: JSONValue = None
    method: str = ""


@attrs.frozen
class RefreshRequest:
    """``refresh`` the connection with a fresh ``token`` before it expires."""

    token: str = ""


@attrs.frozen
class SubRefreshRequest:
    """``sub_refresh`` a channel's subscription token."""

    channel: str = ""
    token: str = ""


@attrs.frozen
class SendRequest:
    """``send``: fire-and-forget ``data``; carried by a ``Command`` with ``id == 0``."""

    data: JSONValue = None


Request: TypeAlias = (
    ConnectRequest
    | SubscribeRequest
    | UnsubscribeRequest
    | PublishRequest
    | PresenceRequest
    | PresenceStatsRequest
    | HistoryRequest
    | RPCRequest
    | RefreshRequest
    | SubRefreshRequest
    | SendRequest
)


# -- results (server -> client) ---------------------------------------------------------------


@attrs.frozen
class SubscribeResult:
    """``subscribe`` result. ``offset``/``epoch`` are the stream top (or the client's position
    when ``recovered``); ``publications`` are the recovered ones, in order."""

    expires: bool = False
    ttl: int = 0
    recoverable: bool = False
    epoch: str = ""
    publications: tuple[Publication, ...] = ()
    recovered: bool = False
    offset: int = _offset()
    positioned: bool = False
    data: JSONValue = None
    was_recovering: bool = False
    delta: bool = False


@attrs.frozen
class ConnectResult:
    """``connect`` result. ``ping`` = server ping interval (s); ``pong`` = answer pings."""

    client: str = ""
    version: str = ""
    expires: bool = False
    ttl: int = 0
    data: JSONValue = None
    subs: dict[str, SubscribeResult] = attrs.field(factory=dict)
    ping: int = 0
    pong: bool = False
    session: str = ""
    node: str = ""
    time: int = 0


@attrs.frozen
class UnsubscribeResult:
    """``unsubscribe`` result (empty)."""


@attrs.frozen
class PublishResult:
    """``publish`` result (empty)."""


@attrs.frozen
class PresenceResult:
    """``presence`` result: connection id -> ClientInfo."""

    presence: dict[str, ClientInfo] = attrs.field(factory=dict)


@attrs.frozen
class PresenceStatsResult:
    """``presence_stats`` result."""

    num_clients: int = 0
    num_users: int = 0


@attrs.frozen
class HistoryResult:
    """``history`` result: publications and the current stream top."""

    publications: tuple[Publication, ...] = ()
    epoch: str = ""
    offset: int = _offset()


@attrs.frozen
class RPCResult:
    """``rpc`` result ``data``."""

    data: JSONValue = None


@attrs.frozen
class RefreshResult:
    """``refresh`` result: new expiry (``ttl`` seconds from now when ``expires``)."""

    client: str = ""
    version: str = ""
    expires: bool = False
    ttl: int = 0


@attrs.frozen
class SubRefreshResult:
    """``sub_refresh`` result."""

    expires: bool = False
    ttl: int = 0


Result: TypeAlias = (
    ConnectResult
    | SubscribeResult
    | UnsubscribeResult
    | PublishResult
    | PresenceResult
    | PresenceStatsResult
    | HistoryResult
    | RPCResult
    | RefreshResult
    | SubRefreshResult
)


# -- pushes (server -> client) ----------------------------------------------------------------


@attrs.frozen
class Join:
    """Someone subscribed (only with join_leave)."""

    info: ClientInfo = attrs.field(factory=ClientInfo)


@attrs.frozen
class Leave:
    """Someone unsubscribed (only with join_leave)."""

    info: ClientInfo = attrs.field(factory=ClientInfo)


@attrs.frozen
class UnsubscribePush:
    """Server unsubscribed the channel: ``code`` < 2500 terminal, >= 2500 resubscribe."""

    code: int = 0
    reason: str = ""


@attrs.frozen
class SubscribePush:
    """Server-side subscription added."""

    recoverable: bool = False
    epoch: str = ""
    offset: int = _offset()
    positioned: bool = False
    data: JSONValue = None


@attrs.frozen
class Message:
    """Unsolicited ``data`` from the server (counterpart of ``send``)."""

    data: JSONValue = None


@attrs.frozen
class Disconnect:
    """Disconnect notice (over WebSocket the server usually closes with the code instead)."""

    code: int = 0
    reason: str = ""
    reconnect: bool = False


@attrs.frozen
class RefreshPush:
    """Server-side refresh of the connection expiry."""

    expires: bool = False
    ttl: int = 0


PushBody: TypeAlias = (
    Publication
    | Join
    | Leave
    | UnsubscribePush
    | SubscribePush
    | Message
    | Disconnect
    | RefreshPush
)


# -- envelopes --------------------------------------------------------------------------------


def _check_id(instance: object, attribute: attrs.Attribute[int], value: int) -> None:
    if not 0 <= value <= MAX_ID:
        raise ValueError(f"{attribute.name} must be a uint32, got {value}")


def _check_reply_id(instance: object, attribute: attrs.Attribute[int], value: int) -> None:
    if not 1 <= value <= MAX_ID:
        raise ValueError(f"reply id must be in 1..{MAX_ID}, got {value}")


@attrs.frozen
class Command:
    """A client command ``{"id": N, "<method>": {request}}``; ``id`` 0 only for ``send``.

    Raises ``ValueError`` if ``id`` is not a uint32 or is 0 for anything but ``SendRequest``
    (and non-zero for it): the server could not tell it from a pong otherwise.
    """

    id: int = attrs.field(validator=_check_id)
    request: Request

    def __attrs_post_init__(self) -> None:
        if (self.id == 0) != isinstance(self.request, SendRequest):
            raise ValueError("only send commands have id 0, and they must")


@attrs.frozen
class Reply:
    """A reply to command ``id``: a ``result`` (type matching the command) or an ``Error``."""

    id: int = attrs.field(validator=_check_reply_id)
    result: Result | Error

    @property
    def error(self) -> Error | None:
        """The error, or None on success."""
        return self.result if isinstance(self.result, Error) else None


@attrs.frozen
class Push:
    """An asynchronous server message for ``channel`` ("" for connection-level pushes)."""

    channel: str
    body: PushBody


@attrs.frozen
class Ping:
    """Server heartbeat ``{}`` (server -> client)."""


@attrs.frozen
class Pong:
    """Client heartbeat answer ``{}`` (client -> server), sent only if connect said ``pong``."""


ClientMessage: TypeAlias = Command | Pong
ServerMessage: TypeAlias = Reply | Push | Ping

#: Wire method key for each request type, and the result type the reply carries under that key.
REQUEST_METHODS: dict[type[Any], str] = {
    ConnectRequest: "connect",
    SubscribeRequest: "subscribe",
    UnsubscribeRequest: "unsubscribe",
    PublishRequest: "publish",
    PresenceRequest: "presence",
    PresenceStatsRequest: "presence_stats",
    HistoryRequest: "history",
    RPCRequest: "rpc",
    RefreshRequest: "refresh",
    SubRefreshRequest: "sub_refresh",
    SendRequest: "send",
}
RESULT_METHODS: dict[type[Any], str] = {
    ConnectResult: "connect",
    SubscribeResult: "subscribe",
    UnsubscribeResult: "unsubscribe",
    PublishResult: "publish",
    PresenceResult: "presence",
    PresenceStatsResult: "presence_stats",
    HistoryResult: "history",
    RPCResult: "rpc",
    RefreshResult: "refresh",
    SubRefreshResult: "sub_refresh",
}
PUSH_TYPES: dict[type[Any], str] = {
    Publication: "pub",
    Join: "join",
    Leave: "leave",
    UnsubscribePush: "unsubscribe",
    SubscribePush: "subscribe",
    Message: "message",
    Disconnect: "disconnect",
    RefreshPush: "refresh",
}
