"""``reactive-aiops dashboard`` and ``run_demo``: options, usage errors, the headless path."""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import pytest

from reactive_aiops.cli import build_parser
from reactive_aiops.cli import dashboard as cli


def _parse(*argv: str) -> argparse.Namespace:
    return build_parser().parse_args(["dashboard", *argv])


def test_defaults() -> None:
    args = _parse()
    assert (args.url, args.token, args.headless, args.duration) == (None, None, False, None)
    assert (args.rate, args.seed, args.fps) == (20.0, 0, 30.0)


@pytest.mark.parametrize("bad", ["0", "-1", "nan", "inf", "x"])
def test_durations_and_rates_must_be_positive_numbers(
    bad: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit):
        _parse("--duration", bad)
    assert "--duration" in capsys.readouterr().err


def test_url_without_a_token_is_a_usage_error(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv(cli.TOKEN_ENV, raising=False)
    assert cli.run(_parse("--url", "ws://127.0.0.1:9/connection/websocket")) == 2
    assert cli.TOKEN_ENV in capsys.readouterr().err


def test_run_demo_headless_prints_a_summary(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.run_demo(headless=True, duration=1.0, rate=200.0, seed=3) == 0
    out = capsys.readouterr().out
    assert "headless dashboard run" in out
    assert "connection connected" in out
    assert "event-to-render" in out


def test_stdout_not_a_terminal_means_headless() -> None:
    # A pipe is not a terminal: no UI may start, the summary is printed and the exit is 0.
    done = subprocess.run(
        [sys.executable, "-m", "reactive_aiops", "dashboard", "--duration", "1", "--rate", "50"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("headless dashboard run: 1.0 s")
    assert "reconnects        0" in done.stdout


def test_screenshot_runs_the_ui_without_a_terminal_and_saves_an_svg(tmp_path: Path) -> None:
    target = tmp_path / "shot.svg"
    args = _parse("--duration", "1", "--rate", "100", "--screenshot", str(target))
    assert cli.run(args) == 0
    svg = target.read_text(encoding="utf-8")
    assert svg.startswith("<svg")
    assert "CONNECTED" in svg


def test_screenshot_needs_a_duration(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.run(_parse("--screenshot", "x.svg")) == 2
    assert "--duration" in capsys.readouterr().err
