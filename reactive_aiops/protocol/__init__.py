"""Sans-I/O Centrifuge v2 client protocol: state machines, backoff, heartbeat deadlines.

No asyncio, no sockets, no clock: ``ClientProtocol`` takes text and ``now`` and returns events
and text to send (see its module docstring for the driving loop). The server side lives in
``protocol.server`` (a package: connection state machine, hub contract, limits).
"""

from reactive_aiops.protocol.backoff import BackoffPolicy, backoff
from reactive_aiops.protocol.channels import ChannelStatus
from reactive_aiops.protocol.client import CLIENT_CLOSE_CODE, ClientProtocol, Phase
from reactive_aiops.protocol.config import ClientConfig
from reactive_aiops.protocol.errors import (
    ClientClosed,
    ClientCode,
    ClientError,
    CommandTimeout,
    OutboxFull,
    ReplyError,
)
from reactive_aiops.protocol.events import (
    CloseTransport,
    CommandFailed,
    CommandSucceeded,
    Event,
    PublicationReceived,
    RawPublicationReceived,
    RefreshNeeded,
    Subscribed,
    SubscriptionFailed,
)

__all__ = [
    "CLIENT_CLOSE_CODE",
    "BackoffPolicy",
    "ChannelStatus",
    "ClientClosed",
    "ClientCode",
    "ClientConfig",
    "ClientError",
    "ClientProtocol",
    "CloseTransport",
    "CommandFailed",
    "CommandSucceeded",
    "CommandTimeout",
    "Event",
    "OutboxFull",
    "Phase",
    "PublicationReceived",
    "RawPublicationReceived",
    "RefreshNeeded",
    "ReplyError",
    "Subscribed",
    "SubscriptionFailed",
    "backoff",
]
