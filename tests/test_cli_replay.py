"""``reactive-aiops replay FILE``: final state summary and action counts; errors, no tracebacks."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import attrs
import pytest

from reactive_aiops.aiops.actions import AcknowledgeAnomaly
from reactive_aiops.aiops.event_table import aiops_event_table
from reactive_aiops.aiops.live_store import create_live_reducer
from reactive_aiops.aiops.state import AppState
from reactive_aiops.cli import main
from reactive_aiops.core import create_store
from reactive_aiops.core.actionlog import JsonlLog, read_jsonl, record_actions, replay
from reactive_aiops.core.dedupe import dedupe
from reactive_aiops.core.entities import EntityCollection
from reactive_aiops.core.events import EventMeta, ServerEvent, map_events
from reactive_aiops.core.optimistic import Optimistic, TransactionCommitted, expire_transactions

ANOMALY = {
    "id": "a1",
    "detector_id": "d1",
    "metric": "cpu",
    "severity": "critical",
    "score": 3.5,
    "value": 97.0,
    "started_at": 100.0,
}


def same_state(a: AppState, b: AppState) -> bool:
    """Entity collections compare by identity, so compare their contents."""
    for field in attrs.fields(AppState):
        x, y = getattr(a, field.name), getattr(b, field.name)
        if isinstance(x, EntityCollection):
            if dict(x.items()) != dict(y.items()):
                return False
        elif x != y:
            return False
    return True


def event(offset: int, data: Any, event_type: str = "anomaly.upserted") -> ServerEvent:
    channel = "anomalies" if event_type.startswith("anomaly") else "health"
    meta = EventMeta(channel, event_type, offset=offset, event_id=f"e{offset}", epoch="E")
    return ServerEvent(meta, data)


def record_session(path: Path, *, log_outermost: bool) -> Any:
    clock = iter(float(t) for t in range(1_000, 2_000))
    table = aiops_event_table()
    with JsonlLog(path, truncate=True) as log:
        logger = record_actions(log, now=lambda: next(clock))
        inner = [dedupe(), map_events(table), expire_transactions(now=lambda: 5.0)]
        chain = [logger, *inner] if log_outermost else [*inner, logger]
        store = create_store(create_live_reducer(), middleware=chain)
        store.dispatch(event(1, ANOMALY))
        store.dispatch(event(1, ANOMALY))  # re-delivered
        store.dispatch(event(2, {"id": "broken"}))
        store.dispatch(event(3, {}, "anomaly.deleted"))
        ack = AcknowledgeAnomaly("a1", command_id="c1", by="ops")
        store.dispatch(Optimistic(ack, "c1"))
        store.dispatch(TransactionCommitted("c1"))
    return store.state


@pytest.mark.parametrize("log_outermost", [False, True])
def test_replay_prints_summary_and_counts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], log_outermost: bool
) -> None:
    path = tmp_path / "session.jsonl"
    final = record_session(path, log_outermost=log_outermost)
    assert main(["replay", str(path)]) == 0
    out = capsys.readouterr().out
    records = list(read_jsonl(path))
    assert out.startswith(f"replayed {len(records)} actions from {path} (")
    assert "final state (AppState):" in out
    assert "  anomalies: EntityCollection of 1" in out
    assert "  dedupe: 1 duplicates, 0 too old, 1 unknown, 1 malformed\n" in out
    assert "  optimistic: 0 pending (0 actions), 1 committed, 0 reverted, " in out
    lines = out.splitlines()
    counts = dict(line.split() for line in lines[lines.index("actions:") + 1 :])
    assert counts["Optimistic"] == "1"
    assert counts["TransactionCommitted"] == "1"
    if log_outermost:
        assert counts["ServerEvent"] == "4"
    else:
        assert counts["anomaly.upserted"] == "1"
        assert counts["DuplicateDropped"] == "1"
        assert counts["UnknownEvent"] == "1"
        assert counts["MalformedEvent"] == "1"
        assert same_state(replay(records, create_live_reducer()), final)


def test_malformed_line_is_reported_with_its_number(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "session.jsonl"
    record_session(path, log_outermost=False)
    lines = path.read_text().splitlines()
    lines.insert(2, '{"seq": 3, "ts": 1.0, "action": {"type": "nope", "data": {}}}')
    path.write_text("\n".join(lines) + "\n")
    assert main(["replay", str(path)]) == 2
    captured = capsys.readouterr()
    assert captured.err == (
        f"replay: error: {path}:3: unknown action type 'nope' @ record.action\n"
    )
    assert captured.out == ""


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["missing.jsonl"], "No such file"),
        (["FILE", "--reducer", "nocolon"], "expected module:attribute"),
        (["FILE", "--reducer", "no_such_module_xyz:r"], "cannot import 'no_such_module_xyz'"),
        (["FILE", "--reducer-factory", "reactive_aiops.cli:nothing"], "has no callable"),
    ],
)
def test_bad_arguments_exit_2_without_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    path = tmp_path / "empty.jsonl"
    path.write_text("")
    argv = [
        "replay",
        *[
            str(path) if a == "FILE" else str(tmp_path / a) if a.endswith(".jsonl") else a
            for a in args
        ],
    ]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("replay: error: ")
    assert message in err


def test_empty_log_replays_to_initial_state(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "empty.jsonl"
    path.write_text("\n")
    assert main(["replay", str(path)]) == 0
    assert capsys.readouterr().out.startswith(f"replayed 0 actions from {path} (0.000 s")


def test_python_dash_m_entry_point(tmp_path: Path) -> None:
    path = tmp_path / "session.jsonl"
    record_session(path, log_outermost=False)
    done = subprocess.run(
        [sys.executable, "-m", "reactive_aiops", "replay", str(path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "final state (AppState):" in done.stdout
    path.write_text("garbage\n")
    done = subprocess.run(
        [sys.executable, "-m", "reactive_aiops", "replay", str(path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert f"{path}:1: not JSON" in done.stderr
