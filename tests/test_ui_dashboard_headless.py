"""The headless pipeline: the latency probe, and a real run against the embedded server."""

from __future__ import annotations

import asyncio

import pytest
from dashboard_helpers import anomaly_event, live_session

from reactive_aiops.core.actions import Batch
from reactive_aiops.core.events import EventMeta, ServerEvent
from reactive_aiops.ui.dashboard.headless import LatencyProbe, Summary, run_headless


def _event(ts: float | None) -> ServerEvent:
    return ServerEvent(EventMeta("anomalies", "anomaly.upserted", sent_ts=ts), {})


def test_probe_gives_each_event_one_sample_at_the_render_covering_it() -> None:
    now = [100.0]
    probe = LatencyProbe(clock=lambda: now[0])
    probe.on_action(_event(99.0))
    probe.on_action(Batch((_event(99.5), _event(None), object())))
    probe.on_action(object())
    now[0] = 100.25
    probe.on_render()
    assert list(probe.samples) == [1.25, 0.75]
    assert list(probe.to_reducer) == [1.0, 0.5]  # both reached the reducer at 100.0
    assert list(probe.to_render) == [0.25, 0.25]
    assert probe.events == 2
    probe.on_render()  # a render with nothing new adds no sample
    assert list(probe.samples) == [1.25, 0.75]
    assert probe.renders == 2


def test_summary_without_samples_says_so() -> None:
    summary = Summary(seconds=1.0, events=0, renders=1, anomalies_open=0, reconnects=0,
                      status="connected")
    assert "p50 n/a" in summary.format()


@pytest.mark.asyncio
async def test_headless_run_measures_events_from_a_live_server() -> None:
    async with live_session() as session:
        async def publish() -> None:
            for n in range(40):
                session.server.publish(
                    "anomalies", anomaly_event(f"a{n % 5}", "high", version=n // 5 + 1,
                                               event_id=f"ev-{n}"))
                if n % 10 == 9:
                    await asyncio.sleep(0.02)  # four bursts, so several frames render

        publisher = asyncio.create_task(publish())
        summary = await run_headless(session.store, 1.0, fps=60.0)
        await publisher
    assert summary.events == 40
    assert summary.anomalies_open == 5
    assert summary.status == "connected"
    assert summary.reconnects == 0
    assert summary.p50_ms is not None
    assert summary.max_ms is not None
    assert 0 < summary.p50_ms <= summary.max_ms < 1000
    assert 1 < summary.renders <= 62  # coalesced: at most one frame per 1/60 s (+ the first)
    assert "events received   40" in summary.format()
