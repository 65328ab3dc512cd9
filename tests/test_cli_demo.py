"""The ready ``demo`` subcommand module: live headless run, scripted fallback, bad options."""

from __future__ import annotations

import argparse

import pytest

from reactive_aiops.cli import demo as demo_cli


def _parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    demo_cli.add_arguments(parser)
    return parser.parse_args(list(argv))


def test_defaults_decide_headless_by_the_terminal() -> None:
    args = _parse()
    assert args.headless is None
    assert (args.duration, args.rate, args.seed, args.scripted) == (None, 100.0, 0, False)
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


@pytest.mark.parametrize("bad", [("--rate", "0"), ("--duration", "0"), ("--duration", "-1")])
def test_bad_rate_or_duration_is_a_usage_error(
    bad: tuple[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert demo_cli.run(_parse(*bad)) == 2
    assert bad[0] in capsys.readouterr().err


def test_headless_by_default_when_stdout_is_not_a_terminal(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: list[tuple[object, ...]] = []
    monkeypatch.setattr(demo_cli, "run_demo", lambda *a: calls.append(a) or 0)
    assert demo_cli.run(_parse()) == 0  # pytest captures stdout: not a terminal
    assert calls == [(True, 10.0, 100.0, 0, "asyncio")]
    assert demo_cli.run(_parse("--ui")) == 0
    assert calls[-1] == (False, 0.0, 100.0, 0, "asyncio")  # the UI runs until quit


def test_modes_are_exclusive() -> None:
    with pytest.raises(SystemExit):
        _parse("--scripted", "--headless")
