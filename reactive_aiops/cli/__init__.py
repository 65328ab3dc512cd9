"""Command line entry point: ``reactive-aiops`` and ``python -m reactive_aiops``.

The outermost layer: one module per command in this package (``demo``, ``serve``,
``dashboard``, ``web``, ``replay``, ``token``), each a thin layer that turns flags and the
environment into calls to the library and exposes ``add_arguments(parser)`` and
``run(args) -> int``. Nothing in the library imports this package. A command's module is imported
only when the parser is built, and a missing optional extra leaves the command listed with what
to install, so ``serve`` never pays for Textual.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable, Sequence
from typing import NoReturn

#: subcommand -> (module path, one-line help)
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "demo": (
        "reactive_aiops.cli.demo",
        "the main job: embedded server + simulated source + dashboard (headless summary "
        "when stdout is not a terminal; --scripted for the pure store scenario)",
    ),
    "replay": ("reactive_aiops.cli.replay", "replay a recorded JSON Lines action log"),
    "serve": ("reactive_aiops.cli.serve", "run the Centrifuge-compatible event server"),
    "token": ("reactive_aiops.cli.token",
              "mint a connection token from $REACTIVE_AIOPS_TOKEN_SECRET"),
    "dashboard": ("reactive_aiops.cli.dashboard", "run the Textual AIOps dashboard"),
    "web": ("reactive_aiops.cli.web", "run the AIOps dashboard in the browser (NiceGUI)"),
}


class _Parser(argparse.ArgumentParser):
    """Usage errors are one line on stderr and exit status 2 (``--help`` shows the usage)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    """Return the top-level parser with every subcommand whose module is importable."""
    parser = _Parser(prog="reactive-aiops", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (module_path, help_text) in SUBCOMMANDS.items():
        try:
            module = importlib.import_module(module_path)
        except ModuleNotFoundError as exc:
            # An optional extra (e.g. Textual) is not installed: keep the command visible and
            # say what to install, instead of breaking every other command.
            missing = exc.name or str(exc)
            sp = sub.add_parser(name, help=f"{help_text} [unavailable: {missing} missing]")
            sp.add_argument("rest", nargs=argparse.REMAINDER)
            sp.set_defaults(_run=_unavailable(name, missing))
            continue
        sp = sub.add_parser(name, help=help_text, description=help_text)
        module.add_arguments(sp)
        sp.set_defaults(_run=module.run)
    return parser


def _unavailable(command: str, missing: str) -> Callable[[argparse.Namespace], int]:
    def run(_args: argparse.Namespace) -> int:
        print(
            f"reactive-aiops {command}: the module {missing!r} is not installed; "
            "install the extras, e.g. pip install 'reactive-aiops[textual]'",
            file=sys.stderr,
        )
        return 2

    return run


def main(argv: Sequence[str] | None = None) -> int:
    """Parse ``argv`` and run the chosen subcommand; returns the process exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    status: int = args._run(args)
    return status
