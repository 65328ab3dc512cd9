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
from reactive_aiops.ui.dashboard.session import open_session
from reactive_aiops.ui.gc_policy import streaming_gc

__all__ = ["add_arguments", "run", "run_demo"]

TOKEN_ENV = "REACTIVE_AIOPS_TOKEN"
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
        type=_positive,
        default=None,
        help=f"seconds to run headless (default {DEFAULT_HEADLESS_DURATION:g}); "
        "with the UI, quit after this long",
    )
    parser.add_argument(
        "--rate", type=_positive, default=20.0, help="simulated samples per second (embedded)"
    )
    parser.add_argument("--seed", type=int, default=0, help="simulation seed (embedded)")
    parser.add_argument("--user", default="operator", help="name recorded on acknowledgements")
    parser.add_argument(
        "--fps", type=_positive, default=30.0, help="maximum renders per panel per second"
    )
    parser.add_argument(
        "--screenshot",
        default=None,
        metavar="SVG",
        help="run the UI without a terminal for --duration seconds, then save an SVG screenshot",
    )
    _loop.add_loop_argument(parser)


def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a finite number > 0, got {text}")
    return value


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
            return _loop.run(
                _headless(url, token, duration or DEFAULT_HEADLESS_DURATION, rate, seed), loop
            )
        return _loop.run(_tui(url, token, duration, rate, seed, user, fps), loop)
    except (ConnectionError, TimeoutError) as exc:
        where = url or "the embedded server"
        print(f"could not connect to {where}: {exc or type(exc).__name__}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


async def _headless(
    url: str | None, token: str | None, duration: float, rate: float, seed: int
) -> int:
    from reactive_aiops.ui.dashboard.headless import run_headless

    async with open_session(url, token=token, rate=rate, seed=seed) as session:
        with streaming_gc():
            summary = await run_headless(session.store, duration)
    print(summary.format())
    sys.stdout.flush()
    return 0


def _main_screenshot(args: argparse.Namespace, token: str | None) -> int:
    try:
        return _loop.run(
            _tui(args.url, token, args.duration, args.rate, args.seed, args.user, args.fps,
                 screenshot=args.screenshot),
            args.loop,
        )
    except (ConnectionError, TimeoutError) as exc:
        print(f"could not connect: {exc or type(exc).__name__}", file=sys.stderr)
        return 1


async def _tui(
    url: str | None,
    token: str | None,
    duration: float | None,
    rate: float,
    seed: int,
    user: str,
    fps: float,
    *,
    screenshot: str | None = None,
) -> int:
    from reactive_aiops.ui.dashboard.app import DashboardApp

    async with open_session(url, token=token, rate=rate, seed=seed, user=user) as session:
        app = DashboardApp(
            session.store,
            user=user,
            fps=fps,
            title=session.url,
            quit_after=duration,
            screenshot=screenshot,
        )
        with streaming_gc():
            if screenshot is not None:
                # No terminal needed: Textual renders into a virtual screen of this size.
                await app.run_async(headless=True, size=(120, 34))
            else:
                await app.run_async()
    return app.return_code or 0
