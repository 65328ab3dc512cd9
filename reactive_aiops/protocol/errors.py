"""Errors a client command can fail with, and client-local disconnect codes.

Exception tree::

    Exception
     └── ClientError            a command did not get a successful reply
          ├── ReplyError        the server answered with an error reply (code, message, temporary)
          ├── CommandTimeout    no reply within the command's timeout (maybe still applied!)
          ├── OutboxFull        issued while disconnected and the bounded outbox was full
          └── ClientClosed      the client was closed or failed terminally before a reply
"""

from __future__ import annotations

import enum


class ClientCode(enum.IntEnum):
    """Codes for reasons that never travel on the wire (kept below 100, apart from server codes)."""

    DISCONNECT_CALLED = 0
    TRANSPORT_CLOSED = 1
    NO_PING = 2
    CONNECT_TIMEOUT = 3
    SUBSCRIBE_TIMEOUT = 4
    BAD_PROTOCOL = 5
    HANDSHAKE_REJECTED = 6
    TOKEN_UNAVAILABLE = 7


class ClientError(Exception):
    """A command failed. Subclasses say why."""


class ReplyError(ClientError):
    """The server rejected the command: ``code``/``message`` as sent (see wire.codes.ErrorCode)."""

    def __init__(self, code: int, message: str, temporary: bool = False) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.temporary = temporary


class CommandTimeout(ClientError, TimeoutError):
    """No reply in time. The command may still have been applied: retry with the same
    command_id (our server applies each command_id at most once)."""


class OutboxFull(ClientError):
    """Too many commands waiting for a connection; retry later or raise ``outbox_size``."""


class ClientClosed(ClientError):
    """The client stopped (closed by the application, or failed terminally) before a reply."""
