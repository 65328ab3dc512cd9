"""``reactive-aiops web``: the live dashboard in a browser (NiceGUI), on one store per process.

Without ``--url`` it starts the embedded server with the simulated source, like ``demo``. With
``--url`` the token comes from ``--token`` or ``$REACTIVE_AIOPS_TOKEN`` (the flag shows in
``ps``). Loopback by default, where the local user is the operator; on any other ``--host`` the
page asks for a login, and a users file (``--users-file`` or ``$REACTIVE_AIOPS_WEB_USERS``, see
:mod:`reactive_aiops.ui.web.auth`) is required. Usage errors: one line on stderr, exit status 2.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys

from reactive_aiops.cli._common import TOKEN_ENV, is_loopback, port, positive
from reactive_aiops.ui.web.auth import USERS_ENV, UsersFileError, load_users

__all__ = ["add_arguments", "is_loopback", "run"]



def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the web dashboard's options to ``parser``."""
    parser.add_argument("--url", default=None,
                        help="server WebSocket URL (default: start the embedded server with "
                        "simulated data)")
    parser.add_argument("--token", default=None,
                        help=f"connection token for --url (default: ${TOKEN_ENV})")
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to listen on (default 127.0.0.1; any other needs a login "
                        "configuration)")
    parser.add_argument("--port", type=port, default=8080,
                        help="port to listen on (default 8080; 0: any free port)")
    parser.add_argument("--tls-cert", default=None, metavar="FILE",
                        help="PEM certificate: serve https (browsers allow notifications only "
                        "on https or localhost)")
    parser.add_argument("--tls-key", default=None, metavar="FILE", help="PEM private key")
    parser.add_argument("--users-file", default=None, metavar="FILE",
                        help=f"users and scrypt password hashes (default: ${USERS_ENV})")
    parser.add_argument("--login", action="store_true",
                        help="ask for a login even on loopback (e.g. behind a reverse proxy)")
    parser.add_argument("--user", default="operator",
                        help="who the local user is on loopback without login (default operator)")
    parser.add_argument("--rate", type=positive, default=20.0,
                        help="simulated samples per second (embedded server)")
    parser.add_argument("--seed", type=int, default=0, help="simulation seed (embedded server)")
    parser.add_argument("--fps", type=positive, default=60.0,
                        help="maximum renders (UI messages) per tab per second (default 60)")
    parser.add_argument("--duration", type=positive, default=None,
                        help="stop after this many seconds (default: run until interrupted)")


def _fail(message: str) -> int:
    print(f"reactive-aiops web: {message}", file=sys.stderr)
    return 2


def run(args: argparse.Namespace) -> int:
    """Run the web dashboard; 0 after a normal stop, 1 when the server cannot be reached, 2 for
    a usage error (including a non-loopback host without a login configuration)."""
    token = args.token or os.environ.get(TOKEN_ENV)
    if args.url is not None and not token:
        return _fail(f"--url needs --token or ${TOKEN_ENV}")
    if (args.tls_cert is None) != (args.tls_key is None):
        return _fail("--tls-cert and --tls-key go together")
    for path in (args.tls_cert, args.tls_key):
        if path is not None and not os.path.isfile(path):
            return _fail(f"no such file: {path}")
    try:
        users = load_users(args.users_file)
    except (OSError, UsersFileError) as exc:
        return _fail(f"cannot read the users: {exc}")
    needs_login = args.login or not is_loopback(args.host)
    if needs_login and users is None:
        return _fail(
            f"--host {args.host} is not loopback: a login configuration is required "
            f"(--users-file FILE or ${USERS_ENV})"
        )
    try:
        from reactive_aiops.ui.web.server import WebOptions, serve_dashboard
    except ImportError as exc:
        return _fail(f"{exc.name or exc} is not installed: pip install 'reactive-aiops[web]'")

    _log_setup()
    options = WebOptions(
        url=args.url, token=token, host=args.host, port=args.port,
        users=users if needs_login else None, local_user=args.user,
        tls_cert=args.tls_cert, tls_key=args.tls_key, rate=args.rate, seed=args.seed,
        fps=args.fps, duration=args.duration,
        on_ready=lambda where: print(f"web dashboard on {where}", flush=True),
    )
    try:
        return asyncio.run(serve_dashboard(options))
    except (ConnectionError, TimeoutError) as exc:
        where = args.url or "the embedded server"
        print(f"could not connect to {where}: {str(exc) or type(exc).__name__}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


def _log_setup() -> None:
    # Audit lines (and warnings) on stderr, one per line, with a timestamp.
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(message)s"))
    audit = logging.getLogger("reactive_aiops.web.audit")
    audit.setLevel(logging.INFO)
    audit.addHandler(handler)
    audit.propagate = False
