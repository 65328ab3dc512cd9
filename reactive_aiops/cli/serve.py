"""``reactive-aiops serve``: run the event server until SIGINT/SIGTERM.

Secrets come from the environment (``REACTIVE_AIOPS_TOKEN_SECRET``, ``REACTIVE_AIOPS_API_KEY``) so
they never appear in ``ps`` output; flags cover the rest of ``ServerConfig``. There is no built-in
token secret: without the variable ``serve`` refuses to start, unless ``--dev`` (loopback only, a
random secret for this run, a ready token printed).
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import logging
import os
import signal
import sys
import time

import attrs

from reactive_aiops import _loop
from reactive_aiops.cli._common import add_loop_argument, is_loopback
from reactive_aiops.server.app import EventServer
from reactive_aiops.server.auth import mint_token
from reactive_aiops.server.config import ServerConfig, SimulationConfig
from reactive_aiops.server.logging_setup import FORMATS, configure
from reactive_aiops.server.redis_url import (
    CA_ENV,
    PASSWORD_ENV,
    URL_ENV,
    USERNAME_ENV,
    check_redis_url,
)
from reactive_aiops.server.tls import TlsConfigError

SECRET_ENV = "REACTIVE_AIOPS_TOKEN_SECRET"
API_KEY_ENV = "REACTIVE_AIOPS_API_KEY"
#: How long the token printed by ``--dev`` is valid.
DEV_TOKEN_TTL = 24 * 3600.0
MISSING_SECRET = (f"reactive-aiops serve: no token secret: set {SECRET_ENV} "
                  f"(e.g. export {SECRET_ENV}=$(openssl rand -hex 32)), or use --dev "
                  "for a loopback-only server with a random secret")


class UsageError(Exception):
    """A bad flag combination or environment: one line on stderr, exit status 2."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``serve`` options to ``parser``."""
    d = ServerConfig()
    s = SimulationConfig()
    parser.add_argument("--host", default=d.host)
    parser.add_argument("--port", type=int, default=d.port)
    parser.add_argument("--dev", action="store_true",
                        help="development: loopback only, a random token secret for this run, "
                        "an operator token printed (no environment needed)")
    parser.add_argument("--allowed-origin", action="append", dest="allowed_origins",
                        metavar="ORIGIN", help="allow this Origin (repeat); default: any")
    parser.add_argument("--require-origin", action="store_true",
                        help="refuse WebSocket clients that send no Origin header")
    parser.add_argument("--tls-cert", metavar="FILE", help="PEM certificate chain: serve wss:// "
                        "and https:// (needs --tls-key)")
    parser.add_argument("--tls-key", metavar="FILE", help="PEM private key of --tls-cert")
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
    parser.add_argument("--log-format", choices=FORMATS, default="text",
                        help="text lines, or one JSON object per line")
    parser.add_argument("--redis-url", default=os.environ.get(URL_ENV),
                        help="join the cluster sharing this Redis (redis://HOST:PORT/DB or "
                        f"rediss://...; default ${URL_ENV}); the password comes from "
                        f"${PASSWORD_ENV}. Without it: one process, in memory")
    parser.add_argument("--redis-ca", metavar="FILE", default=os.environ.get(CA_ENV),
                        help="CA certificate (PEM) of a rediss:// server with a private CA "
                        f"(default ${CA_ENV}; none: the system's CAs)")
    add_loop_argument(parser)


def _secret(args: argparse.Namespace) -> str | None:
    """The token secret: None for ``--dev`` (each config makes a random one)."""
    if getattr(args, "dev", False):
        if not is_loopback(args.host):
            raise UsageError(f"reactive-aiops serve: --dev serves loopback only, not "
                             f"{args.host!r}; set {SECRET_ENV} to serve other hosts")
        return None
    secret = os.environ.get(SECRET_ENV)
    if not secret:
        raise UsageError(MISSING_SECRET)
    return secret


def config_from(args: argparse.Namespace) -> ServerConfig:
    """Build a ``ServerConfig`` from parsed arguments and the environment.

    Raises ``UsageError`` when the secret is missing or too short, for ``--dev`` on a
    non-loopback host, and for only one of ``--tls-cert`` / ``--tls-key``.
    """
    secret = _secret(args)
    redis_url = getattr(args, "redis_url", None) or None
    if redis_url is not None:
        if getattr(args, "dev", False):
            raise UsageError("reactive-aiops serve: --dev is one process with a random secret; "
                             "it cannot join a cluster (--redis-url)")
        try:
            check_redis_url(redis_url)
        except ValueError as exc:
            raise UsageError(f"reactive-aiops serve: {exc}") from None
    tls_cert, tls_key = getattr(args, "tls_cert", None), getattr(args, "tls_key", None)
    if (tls_cert is None) != (tls_key is None):
        raise UsageError("reactive-aiops serve: --tls-cert and --tls-key go together")
    try:
        config = ServerConfig(
            host=args.host, port=args.port,
            api_key=os.environ.get(API_KEY_ENV),
            allowed_origins=frozenset(args.allowed_origins) if args.allowed_origins else None,
            allow_missing_origin=not getattr(args, "require_origin", False),
            max_message_size=args.max_message_size,
            max_channels_per_connection=args.max_channels, rate_limit_per_second=args.rate_limit,
            send_queue_size=args.send_queue, history_size=args.history_size,
            history_ttl=args.history_ttl, ping_interval=args.ping_interval,
            compression=args.compression, tls_cert=tls_cert, tls_key=tls_key,
            simulation=SimulationConfig(enabled=not args.no_simulation, seed=args.seed,
                                        samples_per_second=args.rate, detectors=args.detectors),
            redis_url=redis_url, redis_username=os.environ.get(USERNAME_ENV) or None,
            redis_password=os.environ.get(PASSWORD_ENV) or None,
            redis_ca_file=getattr(args, "redis_ca", None) or None,
        )
        return config if secret is None else attrs.evolve(config, token_secret=secret)
    except ValueError as exc:
        name = SECRET_ENV if "token_secret" in str(exc) else "configuration"
        raise UsageError(f"reactive-aiops serve: {name}: {exc}") from None


async def _main(server: EventServer, dev: bool) -> int:
    if server.config.redis_url is not None:
        from reactive_aiops.server.engine import EngineUnavailable
        from reactive_aiops.server.redis_engine import RedisEngine

        engine = server.core.engine
        assert isinstance(engine, RedisEngine)
        try:
            await engine.check()
        except ValueError as exc:  # a Redis too old for the engine's commands
            print(f"reactive-aiops serve: {exc}", file=sys.stderr)
            await engine.close()
            return 2
        except EngineUnavailable as exc:
            # Serve anyway: the engine reconnects with backoff and /health says degraded.
            logging.getLogger("reactive_aiops.server").warning("%s", exc)
    await server.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    print(f"reactive-aiops serving on {server.url}", flush=True)
    if dev:
        token = mint_token(server.config.token_secret, "dev", exp=time.time() + DEV_TOKEN_TTL,
                           roles=(server.config.operator_role,))
        print(f"dev token (operator, valid 24 h, this run only): {token}", flush=True)
    await server.serve_forever(stop)
    await server.core.engine.close()
    return 0


def run(args: argparse.Namespace) -> int:
    """Serve until SIGINT/SIGTERM; clients are closed with 3001 (reconnectable)."""
    try:
        configure(args.log_level, args.log_format)
        config = config_from(args)
        if config.redis_url is not None and importlib.util.find_spec("redis") is None:
            raise UsageError("reactive-aiops serve: --redis-url needs the redis extra: "
                             "pip install 'reactive-aiops[redis]'")
        server = EventServer(config)
    except (UsageError, TlsConfigError, ValueError) as exc:
        print(str(exc) if isinstance(exc, UsageError) else f"reactive-aiops serve: {exc}",
              file=sys.stderr)
        return 2
    try:
        return _loop.run(_main(server, args.dev), args.loop)
    except OSError as exc:  # the port is taken, the host is not ours...
        reason = exc.strerror or exc
        print(f"reactive-aiops serve: cannot listen on {args.host}:{args.port}: {reason}",
              file=sys.stderr)
        return 2
