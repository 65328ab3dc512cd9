"""Centrifuge v2 disconnect, unsubscribe and error codes, and how a client must react to each.

Sources: centrifugal/centrifuge ``disconnect.go``, ``errors.go``, ``unsubscribe.go`` and the SDKs'
``codes`` modules (protocol v2 numbering; the v1 tables still quoted online differ, see
docs/protocol.md). Our application error codes (400-429) are in the 400-1999 range Centrifuge
leaves to applications.
"""

from __future__ import annotations

import enum


class DisconnectCode(enum.IntEnum):
    """Close / disconnect-push codes. ``is_reconnectable`` says what a client does next."""

    NORMAL = 1000
    GOING_AWAY = 1001
    MESSAGE_TOO_BIG = 1009
    CONNECTION_CLOSED = 3000
    SHUTDOWN = 3001
    SERVER_ERROR = 3004
    EXPIRED = 3005
    SUB_EXPIRED = 3006
    SLOW = 3008
    WRITE_ERROR = 3009
    INSUFFICIENT_STATE = 3010
    FORCE_RECONNECT = 3011
    NO_PONG = 3012
    TOO_MANY_REQUESTS = 3013
    STATE_INVALIDATED = 3014
    INVALID_TOKEN = 3500
    BAD_REQUEST = 3501
    STALE = 3502
    FORCE_NO_RECONNECT = 3503
    CONNECTION_LIMIT = 3504
    CHANNEL_LIMIT = 3505
    INAPPROPRIATE_PROTOCOL = 3506
    PERMISSION_DENIED = 3507
    NOT_AVAILABLE = 3508
    TOO_MANY_ERRORS = 3509


def is_reconnectable(code: int) -> bool:
    """True if a client should reconnect after disconnect ``code``.

    Ranges: < 3000 transport (reconnect; 1009 "message too big" is terminal, as in centrifuge-js,
    since the same message would be too big again), 3000-3499 reconnect, 3500-3999 terminal,
    4000-4499 reconnect (app), 4500-4999 terminal (app), >= 5000 reconnect.
    """
    if code == DisconnectCode.MESSAGE_TOO_BIG:
        return False
    return not (3500 <= code < 4000 or 4500 <= code < 5000)


class UnsubscribeCode(enum.IntEnum):
    """Codes of the unsubscribe push: < 2500 terminal, >= 2500 resubscribe."""

    SERVER = 2000
    INSUFFICIENT_STATE = 2500
    EXPIRED = 2501
    STATE_INVALIDATED = 2502


def is_resubscribable(code: int) -> bool:
    """True if a client should resubscribe (with recovery) after an unsubscribe push ``code``."""
    return code >= 2500


class ErrorCode(enum.IntEnum):
    """Error reply codes: Centrifuge's standard ones (100-113) and our application's (400-429)."""

    INTERNAL = 100
    UNAUTHORIZED = 101
    UNKNOWN_CHANNEL = 102
    PERMISSION_DENIED = 103
    METHOD_NOT_FOUND = 104
    ALREADY_SUBSCRIBED = 105
    LIMIT_EXCEEDED = 106
    BAD_REQUEST = 107
    NOT_AVAILABLE = 108
    TOKEN_EXPIRED = 109
    EXPIRED = 110
    TOO_MANY_REQUESTS = 111
    UNRECOVERABLE_POSITION = 112
    # application codes (contracts.md): RPC command rejections
    APP_BAD_REQUEST = 400
    APP_FORBIDDEN = 403
    APP_NOT_FOUND = 404
    APP_CONFLICT = 409
    APP_RATE_LIMITED = 429


#: Messages the server sends with each standard code (the Go library's wording).
ERROR_MESSAGES: dict[int, str] = {
    100: "internal server error",
    101: "unauthorized",
    102: "unknown channel",
    103: "permission denied",
    104: "method not found",
    105: "already subscribed",
    106: "limit exceeded",
    107: "bad request",
    108: "not available",
    109: "token expired",
    110: "expired",
    111: "too many requests",
    112: "unrecoverable position",
    400: "bad request",
    403: "forbidden",
    404: "not found",
    409: "conflict",
    429: "rate limited",
}

#: Standard codes that are temporary by nature (the server also sets ``temporary: true``).
TEMPORARY_ERRORS = frozenset({ErrorCode.INTERNAL, ErrorCode.TOO_MANY_REQUESTS})


def is_retryable_error(code: int, temporary: bool) -> bool:
    """True if a failed ``connect``/``subscribe`` should be retried with backoff.

    Temporary errors and 109 (token expired -- fetch a new token first) are retried, as are
    codes < 100 (transport-ish, as centrifuge-js does); anything else is terminal.
    """
    return temporary or code == ErrorCode.TOKEN_EXPIRED or code < 100
