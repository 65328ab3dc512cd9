"""A fast subset of ``make chaos`` (chaos/): the same scenarios with small numbers, against a real
``python -m reactive_aiops serve`` process. The full run and its table: docs/reliability.md."""

from __future__ import annotations

import pytest

from chaos._harness import Result
from chaos.fuzz import fuzzed_frames
from chaos.network import random_cuts
from chaos.sessions import commands_with_cut_replies


def _only_row(rows: list[Result]) -> Result:
    assert len(rows) == 1
    row = rows[0]
    assert row.error is None, row.error
    return row


@pytest.mark.asyncio
async def test_random_cuts_mid_subscribe_and_mid_replay_lose_and_duplicate_nothing() -> None:
    row = _only_row(await random_cuts(quick=True))
    t = row.tally
    assert t.published > 1000
    assert (t.lost, t.duplicated, t.out_of_order) == (0, 0, 0)
    assert t.applied == t.published
    assert row.resyncs == 0
    assert row.ok, row.checks  # incl. cuts that fell inside the subscribe replies


@pytest.mark.asyncio
async def test_commands_whose_replies_are_cut_apply_exactly_once_and_none_stay_pending() -> None:
    row = _only_row(await commands_with_cut_replies(quick=True))
    assert row.checks["each applied exactly once"]
    assert row.checks["none pending"]
    assert row.checks["none reverted"]
    assert (row.tally.lost, row.tally.duplicated) == (0, 0)
    assert row.ok, row.checks


@pytest.mark.asyncio
async def test_fuzzed_frames_neither_crash_the_server_nor_print_a_traceback() -> None:
    row = _only_row(await fuzzed_frames(quick=True))
    assert row.checks["server alive"]
    assert row.checks["no traceback in stderr"]
    assert row.checks["fuzz sockets released"]
    assert row.checks["still serves"]
