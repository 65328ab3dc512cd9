"""The ready ``demo`` subcommand module: live headless run, scripted fallback, bad options."""

from __future__ import annotations

import argparse

import pytest

from reactive_aiops.ui.dashboard import demo_cli


def _parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    demo_cli.add_arguments(parser)
    return parser.parse_args(list(argv))


def test_defaults_decide_headless_by_the_terminal() -> None:
    args = _parse()
    assert args.headless is None
    assert (args.duration, args.rate, args.seed, args.scripted) == (10.0, 100.0, 0, False)
    assert _parse("--ui").headless is False
    assert _parse("--headless").headless is True


def test_headless_live_demo(capsys: pytest.CaptureFixture[str]) -> None:
    assert demo_cli.run(_parse("--headless", "--duration", "1", "--rate", "200")) == 0
    out = capsys.readouterr().out
    assert out.startswith("headless dashboard run: 1.0 s, connection connected")
    assert "detectors         6" in out  # the simulated source's detectors were loaded


def test_scripted_fallback_needs_no_server(capsys: pytest.CaptureFixture[str]) -> None:
    assert demo_cli.run(_parse("--scripted")) == 0
    assert capsys.readouterr().out.strip()


def test_bad_rate_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert demo_cli.run(_parse("--rate", "0")) == 2
    assert "--rate" in capsys.readouterr().err


def test_modes_are_exclusive() -> None:
    with pytest.raises(SystemExit):
        _parse("--scripted", "--headless")
