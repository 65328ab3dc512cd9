"""``reactive-aiops serve``: run the event server until SIGINT/SIGTERM.

Secrets come from the environment (``REACTIVE_AIOPS_TOKEN_SECRET``, ``REACTIVE_AIOPS_API_KEY``) so
they never appear in ``ps`` output; flags cover the rest of ``ServerConfig``.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal

from reactive_aiops import _loop
from reactive_aiops.server.app import EventServer
from reactive_aiops.server.config import ServerConfig, SimulationConfig


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``serve`` options to ``parser``."""
    d = ServerConfig()
    s = SimulationConfig()
    parser.add_argument("--host", default=d.host)
    parser.add_argument("--port", type=int, default=d.port)
    parser.add_argument("--allowed-origin", action="append", dest="allowed_origins",
                        metavar="ORIGIN", help="allow this Origin (repeat); default: any")
    parser.add_argument("--max-message-size", type=int, default=d.max_message_size)
    parser.add_argument("--max-channels", type=int, default=d.max_channels_per_connection)
    parser.add_argument("--rate-limit", type=float, default=d.rate_limit_per_second,
                        help="commands per second per connection")
    parser.add_argument("--send-queue", type=int, default=d.send_queue_size)
    parser.add_argument("--history-size", type=int, default=d.history_size)
    parser.add_argument("--history-ttl", type=float, default=d.history_ttl)
    parser.add_argument("--ping-interval", type=float, default=d.ping_interval)
    parser.add_argument("--compression", action="store_true", help="enable permessage-deflate")
    parser.add_argument("--no-simulation", action="store_true", help="no simulated source")
    parser.add_argument("--rate", type=float, default=s.samples_per_second,
                        help="simulated samples per second")
    parser.add_argument("--seed", type=int, default=s.seed)
    parser.add_argument("--detectors", type=int, default=s.detectors)
    parser.add_argument("--log-level", default="INFO")
    _loop.add_loop_argument(parser)


def config_from(args: argparse.Namespace) -> ServerConfig:
    """Build a ``ServerConfig`` from parsed arguments and the environment."""
    secret = os.environ.get("REACTIVE_AIOPS_TOKEN_SECRET", ServerConfig().token_secret)
    return ServerConfig(
        host=args.host, port=args.port, token_secret=secret,
        api_key=os.environ.get("REACTIVE_AIOPS_API_KEY"),
        allowed_origins=frozenset(args.allowed_origins) if args.allowed_origins else None,
        max_message_size=args.max_message_size,
        max_channels_per_connection=args.max_channels, rate_limit_per_second=args.rate_limit,
        send_queue_size=args.send_queue, history_size=args.history_size,
        history_ttl=args.history_ttl, ping_interval=args.ping_interval,
        compression=args.compression,
        simulation=SimulationConfig(enabled=not args.no_simulation, seed=args.seed,
                                    samples_per_second=args.rate, detectors=args.detectors),
    )


async def _main(config: ServerConfig) -> None:
    server = EventServer(config)
    await server.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    print(f"reactive-aiops serving on {server.url}", flush=True)
    await server.serve_forever(stop)


def run(args: argparse.Namespace) -> int:
    """Serve until SIGINT/SIGTERM; clients are closed with 3001 (reconnectable)."""
    logging.basicConfig(level=args.log_level.upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    _loop.run(_main(config_from(args)), args.loop)
    return 0
