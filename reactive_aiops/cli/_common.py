"""What several commands share: argument types, the ``--loop`` option, the token variable."""

from __future__ import annotations

import argparse
import ipaddress

from reactive_aiops import _loop

__all__ = ["TOKEN_ENV", "add_loop_argument", "is_loopback", "port", "positive"]

#: The connection token of ``dashboard --url`` and ``web --url`` (keeps it out of ``ps``).
TOKEN_ENV = "REACTIVE_AIOPS_TOKEN"


def positive(text: str) -> float:
    """An argparse type: a finite number > 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a finite number > 0, got {text}")
    return value


def port(text: str) -> int:
    """An argparse type: a TCP port number, 0 (any free port) to 65535."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {text!r}") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"port out of range: {value}")
    return value


def is_loopback(host: str) -> bool:
    """Whether ``host`` only listens on this machine (``localhost``, 127.0.0.0/8, ``::1``)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _loop_name(text: str) -> str:
    try:
        _loop.loop_factory(text)
    except _loop.LoopUnavailableError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def add_loop_argument(parser: argparse.ArgumentParser) -> None:
    """Add ``--loop {asyncio,uvloop}`` (default asyncio) to ``parser``; read it as ``args.loop``.

    The name is checked while parsing, so a missing uvloop is a usage error (exit status 2)
    before anything starts.
    """
    parser.add_argument(
        "--loop",
        type=_loop_name,
        default=_loop.DEFAULT_LOOP,
        metavar="{" + ",".join(_loop.LOOPS) + "}",
        help="event loop to run on (default asyncio; uvloop needs the 'uvloop' extra)",
    )
