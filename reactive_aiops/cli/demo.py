"""``reactive-aiops demo``: the main job, the live pipeline in one command (``make demo``).

It starts the embedded server with the simulated source and the dashboard connected to it
(:func:`reactive_aiops.cli.dashboard.run_demo`); headless with a summary when standard output is
not a terminal. ``--scripted`` prints the pure scripted store scenario of
:mod:`reactive_aiops.aiops.scenario` instead, with no network and no Textual.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable

from reactive_aiops.aiops.scenario import run_scenario
from reactive_aiops.cli._common import add_loop_argument
from reactive_aiops.cli.dashboard import run_demo

__all__ = ["DEFAULT_DEMO_DURATION", "DEFAULT_DEMO_RATE", "add_arguments", "run"]

DEFAULT_DEMO_DURATION = 10.0
#: Simulated samples per second: enough for incidents to show within a short headless run.
DEFAULT_DEMO_RATE = 100.0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the demo's options to ``parser``."""
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument(
        "--headless",
        action="store_true",
        default=None,
        help="no UI: run the pipeline for --duration seconds and print a summary "
        "(automatic when stdout is not a terminal)",
    )
    mode.add_argument(
        "--ui",
        dest="headless",
        action="store_false",
        help="start the Textual UI even when stdout is not a terminal",
    )
    mode.add_argument(
        "--scripted",
        action="store_true",
        help="run the scripted store scenario instead (no server, no UI)",
    )
    parser.add_argument(
        "--duration",
        type=float,
        default=None,
        help=f"seconds to run (headless default {DEFAULT_DEMO_DURATION:g}; "
        "the UI runs until you quit unless given)",
    )
    parser.add_argument(
        "--rate",
        type=float,
        default=DEFAULT_DEMO_RATE,
        help=f"simulated samples per second (default {DEFAULT_DEMO_RATE:g})",
    )
    parser.add_argument("--seed", type=int, default=0, help="simulation seed (default 0)")
    parser.add_argument(
        "--delay", type=float, default=0.0, help="--scripted only: seconds between steps"
    )
    add_loop_argument(parser)


def run(args: argparse.Namespace) -> int:
    """Run the live demo (or the scripted scenario); returns the exit status."""
    if args.scripted:
        return _run_scripted(args.delay)
    duration: float | None = args.duration
    if not args.rate > 0 or (duration is not None and not duration > 0):
        print("demo: --rate and --duration must be > 0", file=sys.stderr)
        return 2
    headless: bool | None = args.headless
    if headless is None:
        headless = not sys.stdout.isatty()
    if duration is None:
        duration = DEFAULT_DEMO_DURATION if headless else 0.0  # 0: the UI runs until quit
    return run_demo(headless, duration, args.rate, args.seed, args.loop)


def _run_scripted(delay: float) -> int:
    """Run the scripted scenario and print its timeline; returns 0."""
    if delay < 0:
        raise SystemExit("demo: --delay must not be negative")
    pause = (lambda: time.sleep(delay)) if delay > 0 else None
    run_scenario(_stdout_writer(), pause=pause)
    return 0


def _stdout_writer() -> Callable[[str], None]:
    """Print lines; once the reader has gone (``demo | head``), stop printing quietly."""
    gone = False

    def write(line: str) -> None:
        nonlocal gone
        if gone:
            return
        try:
            print(line, flush=True)
        except BrokenPipeError:
            gone = True
            # Point stdout at /dev/null so the interpreter's final flush does not fail again.
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            os.close(devnull)

    return write
