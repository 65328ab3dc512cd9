"""``--loop``: the standard asyncio loop by default, uvloop on request, a usage error otherwise."""

from __future__ import annotations

import argparse
import asyncio
import sys

import pytest
from server_helpers import serve_until_sigterm

from reactive_aiops import _loop
from reactive_aiops.cli import build_parser
from reactive_aiops.cli._common import add_loop_argument


async def _loop_module() -> str:
    await asyncio.sleep(0)
    return type(asyncio.get_running_loop()).__module__


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="x")
    add_loop_argument(parser)
    return parser


def test_default_is_the_standard_asyncio_loop() -> None:
    assert _parser().parse_args([]).loop == "asyncio"
    assert _loop.run(_loop_module()).startswith("asyncio")


def test_uvloop_runs_the_coroutine_on_a_uvloop_loop() -> None:
    pytest.importorskip("uvloop")
    assert _parser().parse_args(["--loop", "uvloop"]).loop == "uvloop"
    assert _loop.run(_loop_module(), "uvloop").startswith("uvloop")


def test_unknown_loop_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        _parser().parse_args(["--loop", "trio"])
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert "unknown event loop 'trio'" in err
    with pytest.raises(_loop.LoopUnavailableError):
        _loop.loop_factory("trio")


def test_missing_uvloop_is_a_usage_error_naming_the_extra(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "uvloop", None)  # as if it were not installed
    with pytest.raises(SystemExit) as exited:
        _parser().parse_args(["--loop", "uvloop"])
    assert exited.value.code == 2
    assert "reactive-aiops[uvloop]" in capsys.readouterr().err


def test_run_closes_the_coroutine_when_the_loop_is_unavailable() -> None:
    main = _loop_module()
    with pytest.raises(_loop.LoopUnavailableError):
        _loop.run(main, "nope")
    # closed, not merely dropped: no "never awaited" warning, and it cannot be started now
    with pytest.raises(RuntimeError, match="cannot reuse already awaited coroutine"):
        main.send(None)


@pytest.mark.parametrize("command", ["serve", "dashboard", "demo"])
def test_the_long_running_commands_take_loop(command: str) -> None:
    args = build_parser().parse_args([command, "--loop", "asyncio"])
    assert args.loop == "asyncio"


def test_dashboard_headless_on_uvloop(capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("uvloop")
    from reactive_aiops.cli import dashboard as cli

    assert cli.run_demo(headless=True, duration=1.0, rate=200.0, seed=3, loop="uvloop") == 0
    out = capsys.readouterr().out
    assert "connection connected" in out
    assert "event-to-render" in out


@pytest.mark.asyncio
async def test_serve_on_uvloop_serves_and_stops_on_sigterm() -> None:
    pytest.importorskip("uvloop")
    await serve_until_sigterm("--no-simulation", "--loop", "uvloop")
