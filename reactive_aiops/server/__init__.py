"""The backend event server: a Centrifuge v2 (JSON) WebSocket server for AIOps events.

Embed it (tests, the demo)::

    from reactive_aiops.server import ServerConfig, serve_embedded, mint_token

    async with serve_embedded(ServerConfig(port=0)) as server:   # a random token secret
        server.url, server.port, server.publish("anomalies", envelope)
        token = server.mint_token("alice", roles=("operator",))
        await server.restart(keep_history=False)

or run ``reactive-aiops serve`` (``REACTIVE_AIOPS_TOKEN_SECRET`` from the environment, or
``--dev``). See docs/server.md.
"""

from reactive_aiops.server.app import EventServer, ServerStats, serve_embedded
from reactive_aiops.server.auth import Claims, InvalidToken, TokenError, TokenExpired, mint_token
from reactive_aiops.server.broker import Broker, Publication, SubscribeResult
from reactive_aiops.server.config import ServerConfig, SimulationConfig
from reactive_aiops.server.core import PublishError, ServerCore
from reactive_aiops.server.simulation import Simulator

__all__ = [
    "Broker",
    "Claims",
    "EventServer",
    "InvalidToken",
    "Publication",
    "PublishError",
    "ServerConfig",
    "ServerCore",
    "ServerStats",
    "SimulationConfig",
    "Simulator",
    "SubscribeResult",
    "TokenError",
    "TokenExpired",
    "mint_token",
    "serve_embedded",
]
