"""``reactive-aiops dashboard``: the Textual dashboard, or the same pipeline headless.

With ``--url`` it connects to a running server (token from ``--token`` or the
``REACTIVE_AIOPS_TOKEN`` environment variable, which keeps it out of ``ps``); without, it starts
the embedded server with the simulated source on the same event loop and connects to that.
When standard output is not a terminal, or with ``--headless``, no UI starts: the pipeline runs
for ``--duration`` seconds and a summary is printed (events, open anomalies, event-to-render
latency percentiles, reconnects). :func:`run_demo` is the ``demo`` subcommand's entry point.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import TextIO

from reactive_aiops import _loop
from reactive_aiops.cli._common import TOKEN_ENV, add_loop_argument, positive
from reactive_aiops.ui.dashboard.runner import run_dashboard_session, run_headless_session

__all__ = ["add_arguments", "run", "run_demo"]

DEFAULT_HEADLESS_DURATION = 10.0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the dashboard's options to ``parser``."""
    parser.add_argument(
        "--url",
        default=None,
        help="server WebSocket URL (default: start the embedded server with simulated data)",
    )
    parser.add_argument(
        "--token",
        default=None,
        help=f"connection token for --url (default: ${TOKEN_ENV})",
    )
    parser.add_argument(
        "--headless",
        action="store_true",
        help="no UI: run the pipeline for --duration seconds and print a summary "
        "(automatic when stdout is not a terminal)",
    )
    parser.add_argument(
        "--duration",
        type=positive,
        default=None,
        help=f"seconds to run headless (default {DEFAULT_HEADLESS_DURATION:g}); "
        "with the UI, quit after this long",
    )
    parser.add_argument(
        "--rate", type=positive, default=20.0, help="simulated samples per second (embedded)"
    )
    parser.add_argument("--seed", type=int, default=0, help="simulation seed (embedded)")
    parser.add_argument("--user", default="operator", help="name recorded on acknowledgements")
    parser.add_argument(
        "--fps", type=positive, default=30.0, help="maximum renders per panel per second"
    )
    parser.add_argument(
        "--screenshot",
        default=None,
        metavar="SVG",
        help="run the UI without a terminal for --duration seconds, then save an SVG screenshot",
    )
    add_loop_argument(parser)


def _interactive(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def run(args: argparse.Namespace) -> int:
    """Run the dashboard (or the headless pipeline); returns the exit status.

    0 after a normal run, 1 when the connection cannot be made, 2 for a usage error.
    """
    token = args.token or os.environ.get(TOKEN_ENV)
    if args.url is not None and not token:
        print(f"--url needs --token or ${TOKEN_ENV}", file=sys.stderr)
        return 2
    if args.screenshot is not None:
        if args.duration is None:
            print("--screenshot needs --duration", file=sys.stderr)
            return 2
        return _main_screenshot(args, token)
    headless = args.headless or not _interactive(sys.stdout)
    return _main(
        url=args.url,
        token=token,
        headless=headless,
        duration=args.duration,
        rate=args.rate,
        seed=args.seed,
        user=args.user,
        fps=args.fps,
        loop=args.loop,
    )


def run_demo(
    headless: bool | None,
    duration: float,
    rate: float,
    seed: int,
    loop: str = _loop.DEFAULT_LOOP,
) -> int:
    """Embedded server with the simulated source plus the dashboard, in one command.

    ``headless=None`` decides by whether standard output is a terminal. Headless, the pipeline
    runs ``duration`` seconds and prints a summary; with the UI, ``duration <= 0`` runs until the
    user quits. ``loop`` names the event loop (see :mod:`reactive_aiops._loop`). Returns the exit
    status (0 on success).
    """
    if headless is None:
        headless = not _interactive(sys.stdout)
    return _main(
        url=None,
        token=None,
        headless=headless,
        duration=duration if duration > 0 else None,
        rate=rate,
        seed=seed,
        user="operator",
        fps=30.0,
        loop=loop,
    )


def _main(
    *,
    url: str | None,
    token: str | None,
    headless: bool,
    duration: float | None,
    rate: float,
    seed: int,
    user: str,
    fps: float,
    loop: str,
) -> int:
    try:
        if headless:
            summary = _loop.run(
                run_headless_session(url, token, duration=duration or DEFAULT_HEADLESS_DURATION,
                                     rate=rate, seed=seed),
                loop,
            )
            print(summary.format())
            sys.stdout.flush()
            return 0
        return _loop.run(
            run_dashboard_session(url, token, duration=duration, rate=rate, seed=seed, user=user,
                                  fps=fps),
            loop,
        )
    except (ConnectionError, TimeoutError) as exc:
        where = url or "the embedded server"
        print(f"could not connect to {where}: {exc or type(exc).__name__}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


def _main_screenshot(args: argparse.Namespace, token: str | None) -> int:
    try:
        return _loop.run(
            run_dashboard_session(args.url, token, duration=args.duration, rate=args.rate,
                                  seed=args.seed, user=args.user, fps=args.fps,
                                  screenshot=args.screenshot),
            args.loop,
        )
    except (ConnectionError, TimeoutError) as exc:
        print(f"could not connect: {exc or type(exc).__name__}", file=sys.stderr)
        return 1
