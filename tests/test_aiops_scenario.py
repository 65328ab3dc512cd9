"""The scripted scenario (aiops/scenario.py) and ``demo --scripted``, which prints its timeline."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from reactive_aiops.aiops import AnomalyUpserted, root_reducer
from reactive_aiops.aiops import scenario as demo
from reactive_aiops.cli import demo as demo_cli
from reactive_aiops.cli import main
from reactive_aiops.core import Init

EXPECTED_LINES = [
    "[+00s]  server: sends the detector snapshot",
    "         detector latency (p99 latency): training  [v0]",
    "         health: degraded, 340 events/s, 2 open anomalies, 3 detectors active, 0 in error",
    "[+20s]  alice: acknowledges an-2 (applied at once, optimistically)",
    "         anomaly an-2: acknowledged by alice, critical, score 0.98 on errors.rate  [v0]",
    "         anomaly an-2: acknowledged by alice, critical, score 0.98 on errors.rate  [v1]",
    "         unresolved anomalies: 2 critical",
    "         top of the list: an-1 (critical, open)",
    "         detector cpu (CPU saturation): paused  [v0]",
    "         anomaly an-2: gone",
]


def test_demo_prints_the_timeline_and_exits_zero(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--scripted"]) == 0
    lines = capsys.readouterr().out.splitlines()
    for expected in EXPECTED_LINES:
        assert expected in lines
    # The stale copy is shown as ignored: nothing emitted under it.
    stale = lines.index("[+26s]  server: a late copy of an-1 (version 0) arrives: ignored")
    assert lines[stale + 1] == "         (no stream emitted: the state did not change)"
    # Streams print only changes: the snapshot lists each detector once.
    snapshot = lines.index("[+00s]  server: sends the detector snapshot")
    assert lines[snapshot + 1 : snapshot + 4] == [
        "         detector cpu (CPU saturation): active  [v0]",
        "         detector latency (p99 latency): training  [v0]",
        "         detector errors (5xx error rate): active  [v0]",
    ]
    assert lines[-1].startswith("done: 20 actions dispatched")
    assert lines[-1].endswith("3 detectors and 1 anomaly held.")


def test_demo_output_is_deterministic(capsys: pytest.CaptureFixture[str]) -> None:
    main(["demo", "--scripted"])
    first = capsys.readouterr().out
    main(["demo", "--scripted"])
    assert capsys.readouterr().out == first


def test_negative_delay_is_refused() -> None:
    with pytest.raises(SystemExit, match="delay"):
        main(["demo", "--scripted", "--delay", "-1"])


def test_delay_pauses_between_steps(monkeypatch: pytest.MonkeyPatch) -> None:
    slept: list[float] = []
    monkeypatch.setattr(demo_cli.time, "sleep", slept.append)
    assert main(["demo", "--scripted", "--delay", "0.25"]) == 0
    assert slept == [0.25] * len(demo.scenario())


def test_scenario_actions_are_reusable_and_replay_to_the_same_state() -> None:
    actions = demo.scenario_actions()
    assert len(actions) == len(demo.scenario()) == 20
    assert any(isinstance(a, AnomalyUpserted) for a in actions)
    state = root_reducer(None, Init())
    for act in actions:
        state = root_reducer(state, act)
    assert sorted(state.detectors) == ["cpu", "errors", "latency"]
    assert sorted(state.anomalies) == ["an-1"]
    assert state.health is not None


def test_run_scenario_takes_custom_steps() -> None:
    lines: list[str] = []
    summary = demo.run_scenario(lines.append, demo.scenario()[:1])
    assert summary == demo.Summary(actions=1, emissions=6)
    assert lines[-1].startswith("done: 1 action dispatched, 6 stream values printed")


def test_the_scenario_imports_no_ui_toolkit() -> None:
    code = (
        "import sys, reactive_aiops.aiops.scenario; "
        "bad = [m for m in ('textual', 'PySide6', 'tkinter', 'websockets') if m in sys.modules]; "
        "print(bad); sys.exit(1 if bad else 0)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


class _ClosedPipe:
    """A stdout whose reader has gone: every write fails like ``demo | head`` after head exits."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.writes = 0

    def write(self, text: str) -> int:
        self.writes += 1
        raise BrokenPipeError(32, "Broken pipe")

    def flush(self) -> None:
        pass

    def fileno(self) -> int:
        return self.fd


def test_a_closed_pipe_ends_the_output_quietly(monkeypatch: pytest.MonkeyPatch) -> None:
    read_end, write_end = os.pipe()
    try:
        stdout = _ClosedPipe(write_end)
        monkeypatch.setattr(sys, "stdout", stdout)
        assert main(["demo", "--scripted"]) == 0
        assert stdout.writes == 1  # gave up after the first failure
    finally:
        os.close(read_end)
        os.close(write_end)


def test_the_old_demo_module_is_a_deprecated_alias_of_the_scenario() -> None:
    import reactive_aiops.demo as old

    for name in demo.__all__:
        with pytest.warns(DeprecationWarning, match=f"aiops.scenario.{name}"):
            assert getattr(old, name) is getattr(demo, name)
    with pytest.raises(AttributeError):
        _ = old.run  # the command moved to reactive_aiops.cli.demo, with no alias
