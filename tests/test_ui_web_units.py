"""The web dashboard's toolkit-free parts: records, filter, notification gate, histories, audit,
users file, the NiceGUI adapter (with a stand-in client) and the CLI's usage errors."""

from __future__ import annotations

import argparse
import asyncio
import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from reactivex.subject import Subject

from reactive_aiops.aiops.models import AnomalyState, HealthStatus, Severity
from reactive_aiops.cli.web import add_arguments, is_loopback, run
from reactive_aiops.core.optimistic import OptimisticJournal, RevertedTransaction
from reactive_aiops.ui.dashboard.view import AnomalyRow, ConnectionView, HealthView
from reactive_aiops.ui.web.adapter import bind_client
from reactive_aiops.ui.web.auth import (
    USERS_ENV,
    UsersFileError,
    hash_password,
    load_users,
    parse_users,
    verify_password,
)
from reactive_aiops.ui.web.model import (
    AuditRecord,
    CommandAudit,
    NotificationGate,
    RateHistory,
    ScoreHistory,
    TabFilter,
    connection_text,
    row_cells,
)

# Cheap scrypt parameters for tests: the format and checks are what is under test.
FAST = {"n": 16, "r": 1, "p": 1}


def _row(anomaly_id: str, severity: Severity = Severity.HIGH, *,
         state: AnomalyState = AnomalyState.OPEN, score: float = 5.0, **kw: Any) -> AnomalyRow:
    return AnomalyRow(id=anomaly_id, detector_id="det-1", metric="cpu", severity=severity,
                      state=state, score=score, value=1.0, started_at=0.0, **kw)


# -- records ---------------------------------------------------------------------------------------


def test_connection_text_names_every_figure_and_the_detail() -> None:
    view = ConnectionView(status="reconnecting", detail="lost: shutdown", latency_ms=2.5,
                          retry_at=12.0, reconnects=3, messages_per_second=41.6)
    text = connection_text(view, 2, now=10.0)
    assert text == ("RECONNECTING · retry in 2.0s · latency 2.5 ms · 42 msg/s · reconnects 3 · "
                    "resyncs 2 · lost: shutdown")
    assert "latency -" in connection_text(ConnectionView(status="connecting"), 0, now=0.0)


def test_row_cells_are_plain_values_with_the_status_marker() -> None:
    cells = row_cells(_row("a1", pending="acknowledge", acknowledged_by="ann"))
    assert cells["status"] == "acknowledge pending"
    assert cells["by"] == "ann"
    assert all(isinstance(v, str | int | float) for v in cells.values())


def test_tab_filter_from_query_and_its_rows() -> None:
    tab = TabFilter.from_query({"severity": "critical,high", "state": "open"})
    rows = [_row("a", Severity.CRITICAL), _row("b", Severity.LOW),
            _row("c", Severity.HIGH, state=AnomalyState.ACKNOWLEDGED)]
    assert [r.id for r in tab.apply(rows)] == ["a"]
    assert TabFilter.from_query({}).apply(rows) == rows
    with pytest.raises(ValueError, match="unknown severity"):
        TabFilter.from_query({"severity": "urgent"})


@given(st.lists(st.tuples(st.sampled_from(["a", "b", "c", "d"]), st.sampled_from(list(Severity))),
                max_size=30))
def test_notification_gate_notifies_each_new_high_or_critical_id_once(
    updates: list[tuple[str, Severity]],
) -> None:
    gate = NotificationGate()
    assert gate.fresh([_row("old", Severity.CRITICAL)]) == []  # there when the tab opened
    notified: list[str] = []
    for anomaly_id, severity in updates:
        notified += [r.id for r in gate.fresh([_row(anomaly_id, severity)])]
    assert len(notified) == len(set(notified))
    expected = []
    for anomaly_id, severity in updates:
        if severity in (Severity.HIGH, Severity.CRITICAL) and anomaly_id not in expected:
            expected.append(anomaly_id)
    assert notified == expected


def test_rate_history_keeps_one_sample_per_health_update() -> None:
    history = RateHistory(size=3)
    history.add(HealthView(status=None))
    for t in (1.0, 2.0, 2.0, 1.5, 3.0, 4.0):
        history.add(HealthView(status=HealthStatus.OK, events_per_second=t * 10, updated_at=t))
    assert history.samples() == [(2.0, 20.0), (3.0, 30.0), (4.0, 40.0)]
    assert history.version == 4


def test_score_history_samples_changes_and_forgets_the_oldest_anomaly() -> None:
    history = ScoreHistory(keep=2, size=2)
    history.add([_row("a", score=1.0)], now=1.0)
    history.add([_row("a", score=1.0), _row("b", score=2.0)], now=2.0)
    history.add([_row("a", score=3.0)], now=3.0)
    history.add([_row("a", score=4.0), _row("c", score=5.0)], now=4.0)
    assert history.samples("a") == [(3.0, 3.0), (4.0, 4.0)]
    assert history.samples("b") == []  # evicted: least recently changed
    assert history.samples("c") == [(4.0, 5.0)]


def test_command_audit_reports_each_outcome_once() -> None:
    records: list[AuditRecord] = []
    audit = CommandAudit(records.append)
    audit.issued("c1", "ann", "acknowledge", "anomaly:a1")
    audit.issued("c2", "bob", "pause", "detector:d1")
    audit.observe(OptimisticJournal())
    assert records == []
    audit.observe(OptimisticJournal(committed=("c1",)))
    journal = OptimisticJournal(committed=("c1",), reverted=(
        RevertedTransaction("c2", (), "rejected: 409 conflict", None),))
    audit.observe(journal)
    audit.observe(journal)
    assert [r.format() for r in records] == [
        "user=ann action=acknowledge entity=anomaly:a1 outcome=confirmed",
        "user=bob action=pause entity=detector:d1 outcome='reverted: rejected: 409 conflict'",
    ]
    assert audit.pending == 0


# -- users file ------------------------------------------------------------------------------------


@settings(max_examples=20, deadline=None)
@given(st.text(min_size=1, max_size=40).filter(lambda p: "\x00" not in p))
def test_password_hash_round_trips_through_the_users_format(password: str) -> None:
    line = f"ann:{hash_password(password, **FAST).encode()}"
    users = parse_users(f"# comment\n\n{line}\n")
    assert verify_password(password, users["ann"])
    assert not verify_password(password + "x", users["ann"])


@pytest.mark.parametrize(("text", "message"), [
    ("", "no user"),
    ("ann", "NAME:HASH"),
    ("a b:scrypt$16$1$1$00$" + "0" * 64, "NAME:HASH"),
    ("ann:md5$abc", "scrypt"),
    ("ann:scrypt$15$1$1$00$" + "0" * 64, "power of 2"),
    ("ann:scrypt$16$1$1$zz$" + "0" * 64, "hex"),
    ("ann:scrypt$16$1$1$00$00", "hex"),
    ("ann:scrypt$16$1$1$00$" + "0" * 64 + "\nann:scrypt$16$1$1$00$" + "0" * 64, "twice"),
])
def test_malformed_users_are_refused_with_the_line(text: str, message: str) -> None:
    with pytest.raises(UsersFileError, match=message):
        parse_users(text)


def test_users_come_from_the_file_else_the_environment(tmp_path: Path) -> None:
    line = f"ann:{hash_password('pw', **FAST).encode()}"
    path = tmp_path / "users"
    path.write_text(line + "\n", encoding="utf-8")
    assert set(load_users(str(path), environ={}) or {}) == {"ann"}
    other = f"bob:{hash_password('pw', **FAST).encode()}"
    assert set(load_users(None, environ={USERS_ENV: f"{line} {other}"}) or {}) == {"ann", "bob"}
    assert load_users(None, environ={}) is None


# -- adapter ---------------------------------------------------------------------------------------


class _Client:
    def __init__(self) -> None:
        self.handlers: list[Callable[[], Any]] = []

    def on_delete(self, handler: Callable[[], Any]) -> None:
        self.handlers.append(handler)

    def delete(self) -> None:
        for handler in self.handlers:
            handler()


@pytest.mark.asyncio
async def test_bind_client_delivers_on_the_loop_until_the_tab_is_deleted(
    caplog: pytest.LogCaptureFixture,
) -> None:
    loop_thread = threading.get_ident()
    subject: Subject[int] = Subject()
    seen: list[tuple[int, bool]] = []
    third = asyncio.Event()

    def render(value: int) -> None:
        seen.append((value, threading.get_ident() == loop_thread))
        if value == 3:
            third.set()
        if value == 2:
            raise RuntimeError("bad render")

    client = _Client()
    bind_client(client, subject, render, fps=None)
    subject.on_next(1)
    with caplog.at_level(logging.ERROR):
        subject.on_next(2)  # logged, the binding survives
    assert "render failed" in caplog.text
    other = threading.Thread(target=subject.on_next, args=(3,))
    other.start()
    other.join()
    await asyncio.wait_for(third.wait(), 5)
    assert seen == [(1, True), (2, True), (3, True)]
    client.delete()
    subject.on_next(4)
    await asyncio.sleep(0)
    assert len(seen) == 3


@pytest.mark.asyncio
async def test_bind_client_coalesces_a_burst_to_the_first_and_the_newest() -> None:
    subject: Subject[int] = Subject()
    seen: list[int] = []
    newest = asyncio.Event()

    def render(value: int) -> None:
        seen.append(value)
        if value == 99:
            newest.set()

    bind_client(_Client(), subject, render, fps=60.0)
    for value in range(100):
        subject.on_next(value)
    assert seen == [0]  # the leading value at once, the rest held for the frame's end
    await asyncio.wait_for(newest.wait(), 5)
    assert seen == [0, 99]


# -- CLI -------------------------------------------------------------------------------------------


def _args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return parser.parse_args(list(argv))


@pytest.mark.parametrize("host", ["127.0.0.1", "127.1.2.3", "::1", "localhost"])
def test_loopback_hosts(host: str) -> None:
    assert is_loopback(host)


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "10.0.0.1", "example.org"])
def test_other_hosts_are_not_loopback(host: str) -> None:
    assert not is_loopback(host)


@pytest.mark.parametrize(("argv", "message"), [
    (["--url", "ws://127.0.0.1:1/x"], "--url needs --token"),
    (["--tls-cert", "/nonexistent"], "go together"),
    (["--tls-cert", "/nonexistent", "--tls-key", "/nonexistent"], "no such file"),
    (["--users-file", "/nonexistent/users"], "cannot read the users"),
    (["--login"], "login configuration is required"),
    (["--host", "0.0.0.0"], "not loopback"),
])
def test_usage_errors_are_one_line_and_exit_2(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in ("REACTIVE_AIOPS_TOKEN", USERS_ENV):
        monkeypatch.delenv(name, raising=False)
    assert run(_args(*argv)) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert message in err[0]


def test_bad_users_file_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(USERS_ENV, raising=False)
    path = tmp_path / "users"
    path.write_text("ann:plain-password\n", encoding="utf-8")
    assert run(_args("--host", "0.0.0.0", "--users-file", str(path))) == 2
    assert f"{path}:1" in capsys.readouterr().err
