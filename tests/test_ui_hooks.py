"""Hook-style streams over a real store: current value first, then only on change."""

from __future__ import annotations

import asyncio
import gc
import threading
import weakref
from typing import Any

import pytest
from reactivex import Observable
from ui_helpers import feed_in_thread

from reactive_aiops.aiops.actions import AnomalyUpserted, DetectorUpserted
from reactive_aiops.aiops.models import (
    Anomaly,
    AnomalyState,
    Detector,
    DetectorStatus,
    Severity,
)
from reactive_aiops.aiops.state import AppState, make_root_reducer
from reactive_aiops.core import Store, create_store
from reactive_aiops.core.connection import (
    Connected,
    Connecting,
    ConnectionHealth,
    ConnectionState,
    LatencyMeasured,
    Status,
    connection_reducer,
)
from reactive_aiops.ui import hooks
from reactive_aiops.ui.aio import aiter_stream
from reactive_aiops.ui.hooks import (
    AnomalyFilter,
    use_real_time_anomalies,
    use_real_time_detector,
    use_websocket,
    use_websocket_health,
)

T0 = 1_700_000_000.0


def make_store() -> Store[AppState]:
    return create_store(make_root_reducer(connection=connection_reducer))


def detector(
    id: str, *, version: int = 1, status: DetectorStatus = DetectorStatus.ACTIVE
) -> Detector:
    return Detector(
        id=id, name=f"det {id}", metric=f"{id}.m", status=status, updated_at=T0, version=version
    )


def anomaly(
    id: str,
    severity: Severity,
    *,
    detector_id: str = "d1",
    state: AnomalyState = AnomalyState.OPEN,
    version: int = 1,
    started_at: float = T0,
) -> Anomaly:
    return Anomaly(
        id=id,
        detector_id=detector_id,
        metric=f"{detector_id}.m",
        severity=severity,
        score=0.5,
        value=1.0,
        started_at=started_at,
        state=state,
        version=version,
    )


def record(stream: Observable[Any]) -> list[Any]:
    seen: list[Any] = []
    stream.subscribe(seen.append)
    return seen


def test_use_websocket_emits_the_slice_then_only_its_changes() -> None:
    store = make_store()
    seen = record(use_websocket(store))
    assert seen == [ConnectionState()]
    store.dispatch(Connecting(at=T0))
    store.dispatch(DetectorUpserted(detector("d1")))  # another slice: no emission
    store.dispatch(Connected(at=T0 + 1, client_id="c1"))
    assert [s.status for s in seen] == [Status.DISCONNECTED, Status.CONNECTING, Status.CONNECTED]
    assert seen[-1].client_id == "c1"


def test_use_websocket_health_ignores_status_changes_that_keep_health() -> None:
    store = make_store()
    seen = record(use_websocket_health(store))
    assert seen == [ConnectionHealth()]
    store.dispatch(Connecting(at=T0))  # status changes, health does not
    assert len(seen) == 1
    store.dispatch(LatencyMeasured(at=T0, rtt=0.02))
    assert len(seen) == 2
    assert seen[-1].latency_last == 0.02


def test_use_real_time_detector_follows_one_detector_only() -> None:
    store = make_store()
    d1 = record(use_real_time_detector(store, "d1"))
    d2 = record(use_real_time_detector(store, "d2"))
    assert d1 == [None]
    store.dispatch(DetectorUpserted(detector("d1")))
    store.dispatch(DetectorUpserted(detector("d2")))
    store.dispatch(DetectorUpserted(detector("d1", version=2, status=DetectorStatus.PAUSED)))
    assert [d and d.status for d in d1] == [None, DetectorStatus.ACTIVE, DetectorStatus.PAUSED]
    assert [d and d.id for d in d2] == [None, "d2"]
    store.dispatch(DetectorUpserted(detector("d1", version=2, status=DetectorStatus.PAUSED)))
    assert len(d1) == 3  # an equal copy is no change


def test_detector_hooks_of_one_store_share_one_keyed_selector() -> None:
    store = make_store()
    subscriptions = [use_real_time_detector(store, f"d{i}").subscribe() for i in range(50)]
    keyed = hooks._detectors_of(store)
    assert keyed.subscribed_keys == 50
    assert keyed.subscriber_count == 50
    before = keyed.stats.keys_checked
    store.dispatch(DetectorUpserted(detector("d7")))
    # One changed key is examined, not fifty subscribers.
    assert keyed.stats.keys_checked - before == 1
    for subscription in subscriptions:
        subscription.dispose()
    assert not keyed.connected
    assert hooks._detectors_of(make_store()) is not keyed


def test_detector_id_must_be_a_string() -> None:
    with pytest.raises(TypeError, match="detector_id"):
        use_real_time_detector(make_store(), 7)  # type: ignore[arg-type]


def test_use_real_time_anomalies_orders_by_severity_and_emits_on_change() -> None:
    store = make_store()
    seen = record(use_real_time_anomalies(store))
    assert list(seen[-1]) == []
    store.dispatch(AnomalyUpserted(anomaly("a1", Severity.LOW)))
    store.dispatch(AnomalyUpserted(anomaly("a2", Severity.CRITICAL)))
    assert [a.id for a in seen[-1]] == ["a2", "a1"]
    count = len(seen)
    store.dispatch(DetectorUpserted(detector("d1")))
    assert len(seen) == count


def test_filtered_anomalies_emit_only_when_the_filtered_list_changes() -> None:
    store = make_store()
    serious = record(use_real_time_anomalies(store, AnomalyFilter(min_severity="high")))
    assert serious == [()]
    store.dispatch(AnomalyUpserted(anomaly("a1", Severity.HIGH)))
    store.dispatch(AnomalyUpserted(anomaly("a2", Severity.LOW)))  # filtered out: no emission
    store.dispatch(AnomalyUpserted(anomaly("a3", Severity.CRITICAL, started_at=T0 + 5)))
    assert [[a.id for a in batch] for batch in serious] == [[], ["a1"], ["a3", "a1"]]


def test_anomaly_filter_criteria_and_predicates() -> None:
    store = make_store()
    open_of_d2 = record(
        use_real_time_anomalies(store, AnomalyFilter(detector_id="d2", states="open"))
    )
    by_predicate = record(use_real_time_anomalies(store, lambda a: a.score > 0.4))
    store.dispatch(AnomalyUpserted(anomaly("a1", Severity.LOW, detector_id="d2")))
    store.dispatch(AnomalyUpserted(anomaly("a2", Severity.LOW, detector_id="d1")))
    acknowledged = anomaly(
        "a1", Severity.LOW, detector_id="d2", state=AnomalyState.ACKNOWLEDGED, version=2
    )
    store.dispatch(AnomalyUpserted(acknowledged))
    assert [[a.id for a in batch] for batch in open_of_d2] == [[], ["a1"], []]
    assert [a.id for a in by_predicate[-1]] == ["a1", "a2"]
    f = AnomalyFilter(metric="d1.m", states=[AnomalyState.OPEN, "resolved"])
    assert f.states == frozenset({AnomalyState.OPEN, AnomalyState.RESOLVED})
    assert f(anomaly("x", Severity.LOW))
    assert not f(anomaly("x", Severity.LOW, detector_id="d9"))


def test_bad_filters_are_typed_errors() -> None:
    with pytest.raises(ValueError, match="nope"):
        AnomalyFilter(states=["nope"])
    with pytest.raises(ValueError, match="extreme"):
        AnomalyFilter(min_severity="extreme")
    with pytest.raises(TypeError, match="filter"):
        use_real_time_anomalies(make_store(), "high")  # type: ignore[arg-type]


@pytest.mark.asyncio
async def test_a_hook_stream_fed_by_a_dispatching_thread_reaches_an_asyncio_consumer() -> None:
    store = make_store()
    loop_thread = threading.get_ident()
    async with aiter_stream(use_real_time_detector(store, "d1")) as stream:
        assert await anext(stream) is None
        thread, _ = feed_in_thread(
            lambda v: store.dispatch(DetectorUpserted(detector("d1", version=v))), [1, 2, 3]
        )
        seen: list[int] = []
        async for value in stream:
            assert threading.get_ident() == loop_thread
            assert value is not None
            seen.append(value.version)
            if value.version == 3:
                break
        await asyncio.to_thread(thread.join, 10)
    assert seen[-1] == 3
    assert seen == sorted(seen)


def test_a_store_used_by_detector_hooks_can_still_be_garbage_collected() -> None:
    store = make_store()
    subscription = use_real_time_detector(store, "d1").subscribe()
    subscription.dispose()
    alive = weakref.ref(store)
    del store
    gc.collect()
    assert alive() is None
