"""The only package that imports websockets and asyncio transports.

``WebSocketManager`` (net.client): the Centrifuge v2 JSON client; ``SubscriptionError`` for
channels the server refused.
"""

from reactive_aiops.net.client import FATAL_HTTP_STATUSES, TokenFetcher, WebSocketManager
from reactive_aiops.net.client_streams import SubscriptionError

__all__ = ["FATAL_HTTP_STATUSES", "SubscriptionError", "TokenFetcher", "WebSocketManager"]
