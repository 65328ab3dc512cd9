"""``reactive-aiops token``: mint a connection token from the environment's secret.

Like Centrifugo's ``gentoken``: an operator (or a script) makes a token for a user without writing
code. The secret is read from ``REACTIVE_AIOPS_TOKEN_SECRET``, never from a flag; the token goes
to standard output, alone on its line, so ``TOKEN=$(reactive-aiops token --sub alice)`` works.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

from reactive_aiops.cli._common import positive
from reactive_aiops.cli.serve import SECRET_ENV
from reactive_aiops.server.auth import mint_token

#: Default validity of a minted token (seconds).
DEFAULT_TTL = 3600.0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``token`` options to ``parser``."""
    parser.add_argument("--sub", required=True, help="the user the token is for (claim sub)")
    parser.add_argument("--role", action="append", dest="roles", default=[], metavar="ROLE",
                        help="grant a role, e.g. operator (commands allowed); repeat for more")
    parser.add_argument("--channel", action="append", dest="channels", default=None,
                        metavar="C", help="allow channel C (repeat; a trailing * allows a "
                        "prefix); default: every channel")
    parser.add_argument("--ttl", type=positive, default=DEFAULT_TTL,
                        help=f"seconds the token is valid (default {DEFAULT_TTL:g})")


def run(args: argparse.Namespace) -> int:
    """Print a signed token; exit 2 with one line if the secret is missing or too short."""
    secret = os.environ.get(SECRET_ENV)
    if not secret:
        print(f"reactive-aiops token: set {SECRET_ENV} to the server's token secret",
              file=sys.stderr)
        return 2
    if len(secret.encode()) < 32:
        print(f"reactive-aiops token: {SECRET_ENV} must be at least 32 bytes for HS256",
              file=sys.stderr)
        return 2
    if not args.sub:
        print("reactive-aiops token: --sub must not be empty", file=sys.stderr)
        return 2
    print(mint_token(secret, args.sub, exp=time.time() + args.ttl, channels=args.channels,
                     roles=args.roles))
    return 0
